//! A local document API for ingest tests and the ingest benchmark (examples/doc_server.rs
//! includes this file): `GET /docs/N` answers document N, `GET /list?page=P` a listing page, and
//! `POST /v1/embeddings` an OpenAI-style embeddings answer. Documents are a pure function of N,
//! so a test can compute the chunks they must give. A plain HTTP/1.1 server on a free loopback
//! port (a thread per connection, TCP_NODELAY: tiny_http leaves Nagle on, which stalls kept-alive
//! clients 40 ms per answer), stopped when dropped.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Characters of one paragraph (without the blank line that follows it).
pub const PARAGRAPH_CHARS: usize = 798;
/// Documents per listing page.
pub const PAGE_SIZE: u64 = 100;

/// How the server misbehaves and how slowly it answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Documents in the listing (pages end after them).
    pub documents: u64,
    /// Of every 20 requests, this many get 429 with `Retry-After: 1` …
    pub throttled_per_20: u64,
    /// … and this many a 500.
    pub failed_per_20: u64,
    /// Documents N with N % 97 == 5 answer 404.
    pub missing: bool,
    /// Pause before every answer.
    pub delay: Duration,
    /// Every document is this many bytes of text instead of paragraphs.
    pub document_bytes: Option<usize>,
}

/// Paragraphs in document N: 1 to 12.
pub fn paragraphs(n: u64) -> usize {
    1 + (n * 7 % 12) as usize
}

/// Whether document N is one wall of text without whitespace (every tenth).
pub fn is_wall(n: u64) -> bool {
    n % 10 == 0
}

/// The length in characters of wall document N.
pub fn wall_chars(n: u64) -> usize {
    500 + 37 * n as usize
}

/// Document N's text.
pub fn text(n: u64, behaviour: &Behaviour) -> String {
    if let Some(bytes) = behaviour.document_bytes {
        return sentences(bytes);
    }
    if is_wall(n) {
        return "x".repeat(wall_chars(n));
    }
    let paragraph = sentences(PARAGRAPH_CHARS);
    vec![paragraph; paragraphs(n)].join("\n\n")
}

/// Sentences with accented words, cut to exactly `chars` characters.
fn sentences(chars: usize) -> String {
    "Un café naïve résumé über alles. Ein zweiter Satz folgt hier! Warum nicht? "
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

/// The server and what it saw.
pub struct DocServer {
    pub port: u16,
    /// When each document or listing request arrived (embedding requests are not counted).
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
    pub embed_requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// What every connection thread shares.
struct Shared {
    behaviour: Behaviour,
    /// With `document_bytes`: the text as a JSON string, made once.
    sized_text: Option<String>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    embed_requests: Arc<AtomicU64>,
    /// Document and listing requests so far, for the faults' turns.
    counter: AtomicU64,
    stop: Arc<AtomicBool>,
}

impl DocServer {
    /// Starts serving on `port` (0: a free one), one thread per connection (HTTP/1.1 keep-alive,
    /// TCP_NODELAY, each answer in one write, as production servers do).
    pub fn start(behaviour: Behaviour, port: u16) -> DocServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("an address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let embed_requests = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            sized_text: behaviour
                .document_bytes
                .map(|bytes| serde_json::to_string(&sentences(bytes)).expect("JSON of a string")),
            behaviour,
            arrivals: Arc::clone(&arrivals),
            embed_requests: Arc::clone(&embed_requests),
            counter: AtomicU64::new(0),
            stop: Arc::clone(&stop),
        });
        let acceptor = std::thread::spawn(move || {
            let mut connections = Vec::new();
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = Arc::clone(&shared);
                        connections.push(std::thread::spawn(move || serve(stream, &shared)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for connection in connections {
                let _ = connection.join();
            }
        });
        DocServer {
            port,
            arrivals,
            embed_requests,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Document requests (and listing pages) seen so far.
    pub fn requests(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Serves the requests of one connection until the client closes it or the server stops.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    while !shared.stop.load(Ordering::Relaxed) {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => return,
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut content_length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer, retry_after) = respond(&path, &body, shared);
        std::thread::sleep(shared.behaviour.delay);
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Internal Server Error",
        };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            answer.len()
        );
        if retry_after {
            response.push_str("Retry-After: 1\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&answer);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The status, body and whether to ask for a pause, for one request.
fn respond(path: &str, body: &[u8], shared: &Shared) -> (u16, String, bool) {
    if path.starts_with("/v1/embeddings") {
        shared.embed_requests.fetch_add(1, Ordering::Relaxed);
        return (200, embeddings(body), false);
    }
    shared.arrivals.lock().unwrap().push(Instant::now());
    let behaviour = &shared.behaviour;
    let turn = shared.counter.fetch_add(1, Ordering::Relaxed) % 20;
    if turn < behaviour.throttled_per_20 {
        (429, r#"{"error":"slow down"}"#.to_string(), true)
    } else if turn >= 20 - behaviour.failed_per_20 {
        (500, r#"{"error":"oops"}"#.to_string(), false)
    } else {
        answer(path, behaviour, shared.sized_text.as_deref())
    }
}

/// The answer to a document or listing request.
fn answer(url: &str, behaviour: &Behaviour, sized_text: Option<&str>) -> (u16, String, bool) {
    if let Some(n) = url
        .strip_prefix("/docs/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        if behaviour.missing && n % 97 == 5 {
            return (404, r#"{"error":"no such document"}"#.into(), false);
        }
        if let Some(text) = sized_text {
            let document =
                format!(r#"{{"id":"doc-{n}","title":"Title {n}","body":{{"text":{text}}}}}"#);
            return (200, document, false);
        }
        let document = serde_json::json!({
            "id": format!("doc-{n}"),
            "title": format!("Title {n}"),
            "body": {"text": text(n, behaviour)},
        });
        return (200, document.to_string(), false);
    }
    if let Some(page) = url
        .strip_prefix("/list?page=")
        .and_then(|p| p.parse::<u64>().ok())
    {
        let first = page * PAGE_SIZE;
        let last = (first + PAGE_SIZE).min(behaviour.documents);
        let items: Vec<String> = (first..last).map(|n| format!("/docs/{n}")).collect();
        let next = (last < behaviour.documents).then(|| format!("/list?page={}", page + 1));
        return (
            200,
            serde_json::json!({"items": items, "next": next}).to_string(),
            false,
        );
    }
    (404, r#"{"error":"not found"}"#.into(), false)
}

/// An embeddings answer: each input's vector is [its length in characters, 1, 0.5, 0.25].
fn embeddings(request: &[u8]) -> String {
    let request: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let inputs = request["input"].as_array().cloned().unwrap_or_default();
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let chars = input.as_str().map_or(0, |text| text.chars().count());
            serde_json::json!({"index": index, "embedding": [chars as f32, 1.0, 0.5, 0.25]})
        })
        .collect();
    serde_json::json!({"object": "list", "data": data, "model": request["model"]}).to_string()
}
