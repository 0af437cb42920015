//! The local document API of the ingest tests (tests/support/docs.rs), as a program for the
//! ingest benchmark (scripts/bench-ingest): serves `GET /docs/N`, `GET /list?page=P` and
//! `POST /v1/embeddings` on 127.0.0.1 until killed.
//!
//! Usage: doc_server PORT DELAY_MS [DOCUMENT_BYTES]

// The tests read the server's request log; this program only serves.
#[allow(dead_code)]
#[path = "../tests/support/docs.rs"]
mod docs;

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| {
        args.get(i)
            .map(|text| text.parse::<u64>().unwrap_or_else(|_| usage(text)))
            .unwrap_or(default)
    };
    let behaviour = docs::Behaviour {
        documents: u64::MAX,
        delay: Duration::from_millis(number(1, 0)),
        document_bytes: args.get(2).map(|_| number(2, 0) as usize),
        ..docs::Behaviour::default()
    };
    let server = docs::DocServer::start(behaviour, number(0, 0) as u16);
    println!("{}", server.port);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn usage(text: &str) -> ! {
    eprintln!(
        "doc_server: `{text}` is not a number\nusage: doc_server PORT DELAY_MS [DOCUMENT_BYTES]"
    );
    std::process::exit(2);
}
