//! `answers`: the judges of the HTTP sinks (`src/sink/http/{cratedb,elastic,clickhouse,ndjson}.rs`)
//! on an arbitrary status, body and row count.
//!
//! Checked, for every protocol:
//! - no panic;
//! - per-item results (`Items`) hold exactly one result per row sent (the sink pairs them with its
//!   pending rows in order);
//! - a bad row (`BadRow`) is one of the rows sent (the sink removes it by position);
//! - only a 2xx answer stores rows (`Stored`, `Items`); a failure has a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::fuzzing::{self, Judged};

fuzz_target!(|input: &[u8]| {
    if input.len() < 4 {
        return;
    }
    let (head, body) = input.split_at(4);
    let protocol = usize::from(head[0]) % fuzzing::PROTOCOL_COUNT;
    // Mostly the statuses the judges look at; any u16 now and then.
    let status = match head[1] {
        0..=127 => 200,
        128..=199 => [
            201, 204, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 301,
        ][usize::from(head[1]) % 14],
        _ => u16::from_be_bytes([head[2], head[1]]),
    };
    // The sink never sends an empty request.
    let rows = usize::from(head[3] % 64) + 1;
    let judged = fuzzing::judge_answer(protocol, status, body, rows);
    let stored_ok = (200..300).contains(&status);
    match &judged {
        Judged::Stored => assert!(stored_ok, "stored on HTTP {status}"),
        Judged::Items(items) => {
            assert!(stored_ok, "items on HTTP {status}");
            assert_eq!(items.len(), rows, "one item result per row: {judged:?}");
        }
        Judged::BadRow { position, message } => {
            assert!(*position < rows, "bad row {position} of {rows}");
            assert!(!message.is_empty() || body.trim_ascii().is_empty());
        }
        Judged::Failed(message) => assert!(!message.is_empty()),
    }
});
