//! Local stand-ins for HTTP targets that cannot be installed here (CrateDB, Elasticsearch): a
//! `tiny_http` server on a free loopback port whose answers a test scripts with a closure, stopped
//! when dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the handler sees it.
pub struct Seen {
    pub method: String,
    /// The path and query.
    pub url: String,
    pub body: Vec<u8>,
}

pub struct ProtocolServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProtocolServer {
    /// Serves every request with `handler`'s status and JSON body, one at a time.
    pub fn start(handler: impl FnMut(&Seen) -> (u16, String) + Send + 'static) -> ProtocolServer {
        ProtocolServer::start_at(0, handler)
    }

    /// The same on this loopback port (0: a free one).
    pub fn start_at(
        port: u16,
        handler: impl FnMut(&Seen) -> (u16, String) + Send + 'static,
    ) -> ProtocolServer {
        let server = tiny_http::Server::http(("127.0.0.1", port)).expect("bind a loopback port");
        ProtocolServer::serve(server, handler)
    }

    /// The same over HTTPS, with this PEM certificate and key.
    pub fn start_https(
        certificate: &str,
        private_key: &str,
        handler: impl FnMut(&Seen) -> (u16, String) + Send + 'static,
    ) -> ProtocolServer {
        let server = tiny_http::Server::https(
            "127.0.0.1:0",
            tiny_http::SslConfig {
                certificate: certificate.as_bytes().to_vec(),
                private_key: private_key.as_bytes().to_vec(),
            },
        )
        .expect("bind a loopback port with TLS");
        ProtocolServer::serve(server, handler)
    }

    fn serve(
        server: tiny_http::Server,
        mut handler: impl FnMut(&Seen) -> (u16, String) + Send + 'static,
    ) -> ProtocolServer {
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let seen = Seen {
                    method: request.method().to_string(),
                    url: request.url().to_string(),
                    body,
                };
                let (status, answer) = handler(&seen);
                let response = tiny_http::Response::from_string(answer)
                    .with_status_code(status)
                    .with_header(
                        "Content-Type: application/json"
                            .parse::<tiny_http::Header>()
                            .expect("a valid header"),
                    );
                let _ = request.respond(response);
            }
        });
        ProtocolServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ProtocolServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ids of NDJSON rows, each with the number of times it was stored.
pub type StoredIds = Arc<Mutex<BTreeMap<i64, u32>>>;

/// An NDJSON endpoint that stores the `id` of every row it accepts in `stored`. Before storing,
/// `refuse` may answer instead (a failure: nothing is stored).
pub fn ndjson_endpoint(
    stored: StoredIds,
    refuse: impl FnMut() -> Option<(u16, String)> + Send + 'static,
) -> ProtocolServer {
    ndjson_endpoint_at(0, stored, refuse)
}

/// The same on this loopback port (0: a free one).
pub fn ndjson_endpoint_at(
    port: u16,
    stored: StoredIds,
    mut refuse: impl FnMut() -> Option<(u16, String)> + Send + 'static,
) -> ProtocolServer {
    ProtocolServer::start_at(port, move |seen| {
        if let Some(answer) = refuse() {
            return answer;
        }
        // A body cut short (the client's connection was reset mid-request) stores nothing.
        let ids: Option<Vec<i64>> = String::from_utf8_lossy(&seen.body)
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).ok()?["id"].as_i64())
            .collect();
        let Some(ids) = ids else {
            return (400, "{\"error\":\"a line is not an NDJSON row\"}".into());
        };
        let mut stored = stored.lock().unwrap();
        for id in ids {
            *stored.entry(id).or_default() += 1;
        }
        (200, "{}".into())
    })
}
