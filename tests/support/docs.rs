//! A local document API for ingest tests and the ingest benchmark (examples/doc_server.rs
//! includes this file): `GET /docs/N` answers document N, `GET /list?page=P` a listing page, and
//! `POST /v1/embeddings` an OpenAI-style embeddings answer. Documents are a pure function of N,
//! so a test can compute the chunks they must give. A `tiny_http` server on a free loopback
//! port, with several handler threads, stopped when dropped.

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
    threads: Vec<JoinHandle<()>>,
}

impl DocServer {
    /// Starts serving on `port` (0: a free one) with `threads` handler threads.
    pub fn start(behaviour: Behaviour, port: u16, threads: usize) -> DocServer {
        let server =
            Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind a loopback port"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let embed_requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::new(AtomicU64::new(0));
        let behaviour = Arc::new(behaviour);
        let threads = (0..threads)
            .map(|_| {
                let (server, stop, arrivals, embed_requests, counter, behaviour) = (
                    Arc::clone(&server),
                    Arc::clone(&stop),
                    Arc::clone(&arrivals),
                    Arc::clone(&embed_requests),
                    Arc::clone(&counter),
                    Arc::clone(&behaviour),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50))
                        else {
                            continue;
                        };
                        let url = request.url().to_string();
                        let (status, body, retry_after) = if url.starts_with("/v1/embeddings") {
                            embed_requests.fetch_add(1, Ordering::Relaxed);
                            let mut body = Vec::new();
                            let _ = request.as_reader().read_to_end(&mut body);
                            (200, embeddings(&body), false)
                        } else {
                            arrivals.lock().unwrap().push(Instant::now());
                            let turn = counter.fetch_add(1, Ordering::Relaxed) % 20;
                            if turn < behaviour.throttled_per_20 {
                                (429, r#"{"error":"slow down"}"#.to_string(), true)
                            } else if turn >= 20 - behaviour.failed_per_20 {
                                (500, r#"{"error":"oops"}"#.to_string(), false)
                            } else {
                                answer(&url, &behaviour)
                            }
                        };
                        std::thread::sleep(behaviour.delay);
                        let mut response = tiny_http::Response::from_string(body)
                            .with_status_code(status)
                            .with_header(header("Content-Type: application/json"));
                        if retry_after {
                            response.add_header(header("Retry-After: 1"));
                        }
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        DocServer {
            port,
            arrivals,
            embed_requests,
            stop,
            threads,
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
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn header(text: &str) -> tiny_http::Header {
    text.parse().expect("a valid header")
}

/// The answer to a document or listing request.
fn answer(url: &str, behaviour: &Behaviour) -> (u16, String, bool) {
    if let Some(n) = url
        .strip_prefix("/docs/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        if behaviour.missing && n % 97 == 5 {
            return (404, r#"{"error":"no such document"}"#.into(), false);
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
