//! `split`: the copy-mode record splitter (`src/copy/split.rs`) on arbitrary bytes, read in small
//! arbitrary pieces (with `Interrupted` reads and an optional injected error).
//!
//! Checked against a plain in-memory reference of the framing rule (a record ends at a line feed;
//! not inside quotes for CSV, not after a backslash for TSV; a last record without a line feed
//! gets one):
//! - `skip_lines` skips and counts physical lines; `take_record` returns the first non-blank
//!   record without its line end;
//! - the chunks concatenate to the rest of the input, byte for byte (plus the line feed given to
//!   an unterminated last record), each chunk is whole records ending with a line feed;
//! - a chunk's `records` counts its non-blank records and its `first_line` is 1 + the line feeds
//!   before it; chunks are cut as `next_chunk` says (max records, or the record reaching max bytes);
//! - a read error is returned as an error, never a panic.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use loader::fuzzing;
use loader::parts::Framing;

/// Hands out `data` in pieces of the sizes given, with an `Interrupted` error for a size of 0
/// (never two in a row) and an error at `fail_at`.
struct Pieces {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<u8>,
    reads: usize,
    interrupted: bool,
    fail_at: Option<usize>,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self
            .sizes
            .get(self.reads % self.sizes.len().max(1))
            .copied()
            .unwrap_or(7);
        self.reads += 1;
        // Never two in a row, so that a read always comes.
        if size == 0 && !std::mem::replace(&mut self.interrupted, true) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        if self.fail_at.is_some_and(|at| self.at >= at) {
            return Err(io::Error::other("injected"));
        }
        let n = (size as usize % 23 + 1)
            .min(buf.len())
            .min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The records of `data` by the framing rule, each with its line feed (one added to an
/// unterminated last record).
fn reference(data: &[u8], framing: Framing) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let (mut start, mut i, mut in_quotes) = (0, 0, false);
    while i < data.len() {
        let byte = data[i];
        match framing {
            Framing::Escaped if byte == b'\\' => {
                i += 2;
                continue;
            }
            Framing::Quoted(quote) if byte == quote => in_quotes = !in_quotes,
            _ if byte == b'\n' && !in_quotes => {
                records.push(data[start..=i].to_vec());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        let mut last = data[start..].to_vec();
        last.push(b'\n');
        records.push(last);
    }
    records
}

fn blank(record: &[u8]) -> bool {
    record == b"\n" || record == b"\r\n"
}

fn line_feeds(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 6 {
        return;
    }
    let (head, data) = input.split_at(6);
    let framing = match head[0] % 4 {
        0 => Framing::Lines,
        1 => Framing::Escaped,
        2 => Framing::Quoted(b'"'),
        // Any ASCII quote but a line break (what --quote accepts).
        _ => match head[0] >> 2 & 0x7f {
            b'\n' | b'\r' => Framing::Quoted(b'\''),
            quote => Framing::Quoted(quote),
        },
    };
    let read_bytes = usize::from(head[1] % 64) + 1;
    let max_records = u64::from(head[2] % 8) + 1;
    let max_bytes = match head[3] {
        0 => usize::MAX,
        n => usize::from(n % 64) + 1,
    };
    let skip = u64::from(head[4] % 4);
    let take_header = head[4] & 4 != 0;
    let prefetch = head[4] & 8 != 0;
    // A few piece sizes from the input's tail (0 = an Interrupted read).
    let sizes: Vec<u8> = data.iter().rev().take(5).copied().collect();
    let fail_at = (head[5] & 0x80 != 0).then(|| usize::from(head[5] & 0x7f) * 8);
    let pieces = Pieces {
        data: data.to_vec(),
        at: 0,
        sizes,
        reads: 0,
        interrupted: false,
        fail_at: fail_at.filter(|&at| at < data.len()),
    };
    let failing = pieces.fail_at.is_some();
    let mut splitter = fuzzing::splitter(Box::new(pieces), framing, read_bytes);

    // Any error must come from the injected read error.
    macro_rules! ok {
        ($result:expr) => {
            match $result {
                Ok(value) => value,
                Err(err) => {
                    assert!(failing, "an error without a failing read: {err}");
                    return;
                }
            }
        };
    }

    if prefetch {
        ok!(splitter.prefetch());
    }
    // The stream as handed out so far (skipped lines and the header with their line ends).
    let mut handed_out = 0usize;
    let mut lines_before = 0u64;
    if skip > 0 {
        let skipped = ok!(splitter.skip_lines(skip));
        let mut lines = 0;
        while lines < skip && handed_out < data.len() {
            handed_out = memchr_after(data, handed_out);
            lines += 1;
        }
        assert_eq!(skipped, lines, "lines skipped");
        lines_before += line_feeds(&data[..handed_out]);
    }
    let rest = &data[handed_out..];
    let mut records = reference(rest, framing).into_iter().peekable();
    if take_header {
        let header = ok!(splitter.take_record());
        let mut expected = None;
        for record in records.by_ref() {
            lines_before += line_feeds(&record);
            if !blank(&record) {
                let mut record = record;
                while matches!(record.last(), Some(b'\n' | b'\r')) {
                    record.pop();
                }
                expected = Some(record);
                break;
            }
        }
        assert_eq!(header, expected, "the header record");
    }
    let mut previous_full = true;
    while let Some(chunk) = ok!(splitter.next_chunk(max_records, max_bytes)) {
        assert!(previous_full, "a chunk after one cut short of its limits");
        assert!(chunk.data.ends_with(b"\n"), "a chunk ends with a line feed");
        assert_eq!(chunk.first_line, 1 + lines_before, "first_line");
        // The chunk is whole reference records, in order.
        let (mut taken, mut count, mut last_len) = (0, 0, 0);
        while taken < chunk.data.len() {
            let record = records.next().expect("a chunk past the end of the input");
            assert_eq!(
                &chunk.data[taken..taken + record.len()],
                &record[..],
                "a chunk cuts a record"
            );
            taken += record.len();
            last_len = record.len();
            count += u64::from(!blank(&record));
        }
        assert_eq!(taken, chunk.data.len());
        assert_eq!(chunk.records, count, "records counted in a chunk");
        assert!(chunk.records <= max_records);
        // Not cut later than the rule says: without its last record it was under both limits.
        assert!(chunk.data.len() - last_len < max_bytes);
        previous_full = chunk.records == max_records || chunk.data.len() >= max_bytes;
        lines_before += line_feeds(&chunk.data);
    }
    assert!(
        records.next().is_none(),
        "records left after the last chunk"
    );
});

/// The index after the next line feed at or after `from`, or the end.
fn memchr_after(data: &[u8], from: usize) -> usize {
    data[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| from + i + 1)
}
