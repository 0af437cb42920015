//! A streaming HTTP/1.1 server for the probe tests, written on plain sockets so that every chunk
//! leaves when the test says: headers at once, then chunks at scripted times, with keep-alive,
//! one thread per connection, and optionally a pool of N slots, one held for a whole answer (one
//! slot: a server that serializes requests; four: a worker pool of four). It counts the requests
//! it read, listens on a free loopback port, and stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What an answer's chunks carry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Body {
    /// `chunk\n` each, as text/plain.
    Text,
    /// An OpenAI-compatible chat stream (text/event-stream): with the headers a metadata event
    /// (the role, no content) and a keep-alive comment, then one token event per chunk, then
    /// `data: [DONE]`.
    OpenAiEvents,
    /// Ollama's NDJSON: one `{"message":{"content":…}}` line per chunk, then a `done` line.
    OllamaLines,
}

/// How every request is answered.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub status: u16,
    pub body: Body,
    /// The pause between the headers and the first chunk.
    pub first_chunk_after: Duration,
    pub chunks: usize,
    /// The pause between two chunks.
    pub chunk_every: Duration,
    /// Serve at most this many answers at once, headers included; the others wait for a slot.
    pub at_once: Option<usize>,
}

impl Script {
    /// A 200 answer of `chunks` chunks, the first at once, the next every `every`.
    pub fn streaming(chunks: usize, every: Duration) -> Script {
        Script {
            status: 200,
            body: Body::Text,
            first_chunk_after: Duration::ZERO,
            chunks,
            chunk_every: every,
            at_once: None,
        }
    }
}

pub struct StreamServer {
    pub url: String,
    requests: Arc<AtomicU64>,
    last_request: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl StreamServer {
    pub fn start(script: Script) -> StreamServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(AtomicU64::new(0));
        let last_request = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(Slots::default());
        let acceptor = std::thread::spawn({
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            let last_request = Arc::clone(&last_request);
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let seen = Seen {
                        requests: Arc::clone(&requests),
                        last_request: Arc::clone(&last_request),
                    };
                    let slots = Arc::clone(&slots);
                    std::thread::spawn(move || serve(stream, script, &seen, &slots));
                }
            }
        });
        StreamServer {
            url: format!("http://127.0.0.1:{port}/stream"),
            requests,
            last_request,
            stop,
            port,
            acceptor: Some(acceptor),
        }
    }

    /// Requests read so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The last request read: its head as sent, then its body.
    pub fn last_request(&self) -> String {
        self.last_request.lock().unwrap().clone()
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The answers being served, and a wake-up for those waiting for a slot.
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// Runs `serve` once fewer than `at_once` answers are being served.
    fn within<T>(&self, at_once: usize, serve: impl FnOnce() -> T) -> T {
        let mut busy = self
            .busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while *busy >= at_once {
            busy = self
                .freed
                .wait(busy)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *busy += 1;
        drop(busy);
        let served = serve();
        *self
            .busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) -= 1;
        self.freed.notify_one();
        served
    }
}

/// What the server keeps of the requests it read.
struct Seen {
    requests: Arc<AtomicU64>,
    last_request: Arc<Mutex<String>>,
}

/// Answers the requests of one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, script: Script, seen: &Seen, slots: &Slots) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some((head, body_length)) = read_head(&mut reader) {
        let mut body = vec![0; body_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        *seen.last_request.lock().unwrap() = head + &String::from_utf8_lossy(&body);
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let answered = match script.at_once {
            Some(at_once) => slots.within(at_once, || answer(&mut writer, &script)),
            None => answer(&mut writer, &script),
        };
        if answered.is_err() {
            return;
        }
    }
}

/// Reads one request head; returns it and its Content-Length, or None at the end of the
/// connection.
fn read_head(reader: &mut impl BufRead) -> Option<(String, usize)> {
    let mut body_length = 0;
    let mut head = String::new();
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let text = line.trim_end();
        if text.is_empty() {
            if first {
                continue;
            }
            head.push_str("\r\n");
            return Some((head, body_length));
        }
        head.push_str(&line);
        first = false;
        if let Some((name, value)) = text.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                body_length = value.trim().parse().ok()?;
            }
        }
    }
}

fn answer(out: &mut TcpStream, script: &Script) -> std::io::Result<()> {
    let content_type = match script.body {
        Body::Text => "text/plain",
        Body::OpenAiEvents => "text/event-stream",
        Body::OllamaLines => "application/x-ndjson",
    };
    write!(
        out,
        "HTTP/1.1 {} Scripted\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
        script.status
    )?;
    if script.body == Body::OpenAiEvents {
        chunk(
            out,
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n: keep-alive\n\n",
        )?;
    }
    out.flush()?;
    std::thread::sleep(script.first_chunk_after);
    for index in 0..script.chunks {
        if index > 0 {
            std::thread::sleep(script.chunk_every);
        }
        match script.body {
            Body::Text => chunk(out, "chunk\n")?,
            Body::OpenAiEvents => chunk(
                out,
                &format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{index} \"}}}}]}}\n\n"),
            )?,
            Body::OllamaLines => chunk(
                out,
                &format!("{{\"message\":{{\"content\":\"t{index} \"}},\"done\":false}}\n"),
            )?,
        }
        out.flush()?;
    }
    match script.body {
        Body::Text => {}
        Body::OpenAiEvents => chunk(out, "data: [DONE]\n\n")?,
        Body::OllamaLines => chunk(out, "{\"message\":{\"content\":\"\"},\"done\":true}\n")?,
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// Writes `text` as one chunk of a chunked body.
fn chunk(out: &mut TcpStream, text: &str) -> std::io::Result<()> {
    write!(out, "{:x}\r\n{text}\r\n", text.len())
}
