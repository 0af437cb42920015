//! An HTTP server that accepts every request and discards it: the far end for measuring loader's
//! own HTTP ceiling (scripts/bench-http), where the server costs next to nothing.
//!
//!     cargo build --release --example discard_server
//!     target/release/examples/discard_server [--port P] [--threads N] [--idle-exit SECS]
//!
//! It listens on 127.0.0.1 (port 0, the default, picks a free one) and prints
//! `listening on http://127.0.0.1:PORT` on stdout once bound. N handler threads share the server:
//! each reads a request's body to the end, counting bytes and newlines (NDJSON rows), and answers
//! 200 with an empty body. `GET /_stats` answers the totals so far as one JSON object,
//! `{"requests":…,"bytes":…,"lines":…}`, and is not counted itself. On SIGINT, SIGTERM or SIGHUP,
//! or after `--idle-exit` seconds without a request, it prints the totals the same way on stdout
//! and exits.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use tiny_http::{Method, Request, Response, Server};

/// Accepts HTTP requests on 127.0.0.1, reads and discards their bodies, answers 200.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (0: a free one, printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Handler threads taking requests at once.
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Exit after this many seconds without a request (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    idle_exit: u64,
}

/// What the server has seen, over all handler threads.
struct Totals {
    requests: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
    started: Instant,
    /// Milliseconds since `started` when the last request came in.
    last_request_ms: AtomicU64,
}

impl Totals {
    fn json(&self) -> String {
        format!(
            "{{\"requests\":{},\"bytes\":{},\"lines\":{}}}",
            self.requests.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
            self.lines.load(Ordering::SeqCst)
        )
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_request_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("discard_server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let server = Server::http(("127.0.0.1", args.port))
        .map_err(|err| format!("cannot listen on 127.0.0.1:{}: {err}", args.port))?;
    let address = server
        .server_addr()
        .to_ip()
        .ok_or("the server is not listening on an IP address")?;
    let server = Arc::new(server);
    let totals = Arc::new(Totals {
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        lines: AtomicU64::new(0),
        started: Instant::now(),
        last_request_ms: AtomicU64::new(0),
    });

    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|err| format!("cannot install the signal handler: {err}"))?;

    for _ in 0..args.threads {
        let (server, totals) = (Arc::clone(&server), Arc::clone(&totals));
        thread::Builder::new()
            .name("handler".into())
            .spawn(move || handle_requests(&server, &totals))
            .map_err(|err| format!("cannot start a handler thread: {err}"))?;
    }

    say(&format!("listening on http://{address}"))?;
    let idle_exit = Duration::from_secs(args.idle_exit);
    loop {
        match stopped.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if args.idle_exit > 0 && totals.idle_for() >= idle_exit {
                    break;
                }
            }
        }
    }
    // Requests still in flight are neither waited for nor counted: the process ends here.
    say(&totals.json())
}

/// Prints a line on stdout and flushes it, so that a script reading a pipe or a file sees it.
fn say(line: &str) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|err| format!("cannot write to stdout: {err}"))
}

/// One handler thread: takes requests until the process ends.
fn handle_requests(server: &Server, totals: &Totals) {
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match server.recv() {
            Ok(request) => handle(request, totals, &mut buffer),
            // A failed accept (out of file descriptors, say): not worth stopping for.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn handle(mut request: Request, totals: &Totals, buffer: &mut [u8]) {
    if *request.method() == Method::Get && request.url() == "/_stats" {
        let _ = request.respond(Response::from_string(totals.json()));
        return;
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    let reader = request.as_reader();
    let complete = loop {
        match reader.read(buffer) {
            Ok(0) => break true,
            Ok(n) => {
                bytes += n as u64;
                lines += memchr::memchr_iter(b'\n', &buffer[..n]).count() as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    totals.requests.fetch_add(1, Ordering::SeqCst);
    totals.bytes.fetch_add(bytes, Ordering::SeqCst);
    totals.lines.fetch_add(lines, Ordering::SeqCst);
    let since_start = u64::try_from(totals.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    totals
        .last_request_ms
        .fetch_max(since_start, Ordering::Relaxed);
    // A body cut short (the client went away) gets no answer: there is no one to read it.
    if complete {
        let _ = request.respond(Response::empty(200));
    }
}
