//! The splitter: cuts one input stream into chunks of whole records, without parsing fields.
//!
//! A record ends at a line feed, except, in CSV, inside quotes (quoted fields may hold delimiters,
//! quotes and line breaks), and in PostgreSQL's text format after a backslash (`\` + line feed is
//! data). The splitter toggles a flag at every quote character, skips the byte after a backslash,
//! and looks for line feeds with `memchr`, so it runs at memory speed on the reader thread; the workers parse the
//! fields. Line numbers are counted so that a rejected record names the line it starts on.

use std::io::{self, Read};

use crate::figures;

/// Bytes read from the input at a time.
const READ_BYTES: usize = 1 << 20;
/// The longest record accepted unless `--max-record-size` says otherwise: a quoted field that runs
/// past this is far more often an unbalanced quote than data, and without a cap one stray quote
/// turns the rest of the file into one rejected "record" held in memory whole.
pub(crate) const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// A run of whole records cut from one input.
#[derive(Debug, Default, Clone)]
pub struct Chunk {
    /// The records, each ending with a line feed (one is added after a last unterminated record).
    pub data: Vec<u8>,
    /// The 1-based line of the input the chunk starts on.
    pub first_line: u64,
    /// Records in `data`, blank lines not counted.
    pub records: u64,
}

/// Why an input cannot be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error(
        "the record starting on line {line} runs past {} bytes over {line_breaks} line breaks; \
         an unbalanced quote on that line is the likely cause (check it, --quote and --format), \
         or raise --max-record-size",
        figures::count(*.limit as u64)
    )]
    RecordTooLong {
        line: u64,
        limit: usize,
        line_breaks: u64,
    },
}

/// Reads one input and hands out its records.
pub struct Splitter {
    input: Box<dyn Read + Send>,
    framing: Framing,
    /// Bytes asked of `input` at a time ([`READ_BYTES`]; smaller in tests and fuzzing).
    read_bytes: usize,
    /// The longest record accepted ([`DEFAULT_MAX_RECORD_BYTES`] unless raised).
    max_record_bytes: usize,
    /// Read but not yet handed out; starts at a record boundary.
    pending: Vec<u8>,
    /// Where scanning resumes in `pending`.
    cursor: usize,
    /// Where the record being scanned starts in `pending`.
    record_start: usize,
    in_quotes: bool,
    /// The line the record being scanned starts on.
    line: u64,
    /// Line feeds seen inside the record being scanned.
    record_lines: u64,
    at_eof: bool,
}

/// Which line feeds end a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Every line feed (NDJSON).
    Lines,
    /// Line feeds outside quotes made with this character (CSV).
    Quoted(u8),
    /// Line feeds not escaped by a backslash (PostgreSQL's text format, TSV).
    Escaped,
}

/// One record found in `pending`.
struct Found {
    end: usize,
    blank: bool,
}

impl Splitter {
    pub fn new(input: Box<dyn Read + Send>, framing: Framing) -> Splitter {
        Splitter::with_read_bytes(input, framing, READ_BYTES)
    }

    /// A splitter that asks `input` for at most `read_bytes` (at least 1) at a time: small reads
    /// put record ends and escapes across read boundaries, without zeroing a 1 MiB buffer each.
    pub(crate) fn with_read_bytes(
        input: Box<dyn Read + Send>,
        framing: Framing,
        read_bytes: usize,
    ) -> Splitter {
        Splitter {
            input,
            framing,
            read_bytes: read_bytes.max(1),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            pending: Vec::new(),
            cursor: 0,
            record_start: 0,
            in_quotes: false,
            line: 1,
            record_lines: 0,
            at_eof: false,
        }
    }

    /// Accepts records up to `bytes` long (`--max-record-size`).
    pub(crate) fn max_record_bytes(mut self, bytes: usize) -> Splitter {
        self.max_record_bytes = bytes;
        self
    }

    /// Reads the first block of input, so that an unreadable input (a bad gzip header) is found
    /// before the load starts.
    pub fn prefetch(&mut self) -> Result<(), SplitError> {
        if self.pending.is_empty() && !self.at_eof {
            self.fill()?;
        }
        Ok(())
    }

    /// Skips `count` physical lines (quotes are not looked at); returns how many there were.
    pub fn skip_lines(&mut self, count: u64) -> Result<u64, SplitError> {
        let (mut skipped, mut from) = (0, 0);
        while skipped < count {
            match memchr::memchr(b'\n', &self.pending[from..]) {
                Some(at) => {
                    self.consume(from + at + 1);
                    from = 0;
                    self.line += 1;
                    skipped += 1;
                }
                None if self.at_eof => {
                    if !self.pending.is_empty() {
                        self.consume(self.pending.len());
                        skipped += 1;
                    }
                    break;
                }
                None => {
                    from = self.pending.len();
                    self.fill()?;
                }
            }
        }
        Ok(skipped)
    }

    /// Takes the next non-blank record (its line feed stripped), or `None` at the end.
    pub fn take_record(&mut self) -> Result<Option<Vec<u8>>, SplitError> {
        while let Some(found) = self.next_record()? {
            let mut record = self.pending[..found.end].to_vec();
            self.consume(found.end);
            if !found.blank {
                while matches!(record.last(), Some(b'\n' | b'\r')) {
                    record.pop();
                }
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// The next chunk: up to `max_records` records, cut after the record that reaches
    /// `max_bytes`. `None` at the end of the input.
    pub fn next_chunk(
        &mut self,
        max_records: u64,
        max_bytes: usize,
    ) -> Result<Option<Chunk>, SplitError> {
        let mut records = 0;
        // The chunk starts where the previous one ended, blank lines included.
        let first_line = self.line;
        let mut end = 0;
        while records < max_records && end < max_bytes {
            let Some(found) = self.next_record()? else {
                break;
            };
            end = found.end;
            if !found.blank {
                records += 1;
            }
        }
        if end == 0 {
            return Ok(None);
        }
        let chunk = Chunk {
            data: self.pending[..end].to_vec(),
            first_line,
            records,
        };
        self.consume(end);
        Ok(Some(chunk))
    }

    /// Finds the end of the record starting at `record_start`, reading more input as needed.
    fn next_record(&mut self) -> Result<Option<Found>, SplitError> {
        let end = loop {
            if let Some(end) = self.scan() {
                break end;
            }
            if self.at_eof {
                if self.record_start == self.pending.len() {
                    return Ok(None);
                }
                // A last record without a line feed: give it one, so every record looks alike.
                self.pending.push(b'\n');
                self.in_quotes = false;
                self.cursor = self.pending.len();
                self.record_lines += 1;
                break self.pending.len();
            }
            if self.pending.len() - self.record_start > self.max_record_bytes {
                return Err(SplitError::RecordTooLong {
                    line: self.line,
                    limit: self.max_record_bytes,
                    line_breaks: self.record_lines,
                });
            }
            self.fill()?;
        };
        let found = Found {
            end,
            blank: matches!(&self.pending[self.record_start..end], b"\n" | b"\r\n"),
        };
        self.line += self.record_lines;
        self.record_lines = 0;
        self.record_start = end;
        Ok(Some(found))
    }

    /// Scans `pending` from `cursor` for the line feed that ends the current record.
    fn scan(&mut self) -> Option<usize> {
        let pending = &self.pending;
        match self.framing {
            Framing::Lines => {
                let at = memchr::memchr(b'\n', &pending[self.cursor..]).map(|i| self.cursor + i);
                self.cursor = at.map_or(pending.len(), |at| at + 1);
                if at.is_some() {
                    self.record_lines = 1;
                }
                at.map(|at| at + 1)
            }
            Framing::Escaped => {
                while let Some(i) = memchr::memchr2(b'\\', b'\n', &pending[self.cursor..]) {
                    let at = self.cursor + i;
                    if pending[at] == b'\n' {
                        self.cursor = at + 1;
                        self.record_lines += 1;
                        return Some(at + 1);
                    }
                    match pending.get(at + 1) {
                        Some(escaped) => {
                            self.record_lines += u64::from(*escaped == b'\n');
                            self.cursor = at + 2;
                        }
                        // The escaped byte is not read yet: look again from the backslash.
                        None => {
                            self.cursor = at;
                            return None;
                        }
                    }
                }
                self.cursor = pending.len();
                None
            }
            Framing::Quoted(quote) => {
                while let Some(i) = memchr::memchr2(quote, b'\n', &pending[self.cursor..]) {
                    let at = self.cursor + i;
                    self.cursor = at + 1;
                    if pending[at] == quote {
                        self.in_quotes = !self.in_quotes;
                    } else {
                        self.record_lines += 1;
                        if !self.in_quotes {
                            return Some(at + 1);
                        }
                    }
                }
                self.cursor = pending.len();
                None
            }
        }
    }

    /// Reads more input onto the end of `pending`.
    fn fill(&mut self) -> Result<(), SplitError> {
        let filled = self.pending.len();
        self.pending.resize(filled + self.read_bytes, 0);
        let read = loop {
            match self.input.read(&mut self.pending[filled..]) {
                Ok(read) => break read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    self.pending.truncate(filled);
                    return Err(err.into());
                }
            }
        };
        self.pending.truncate(filled + read);
        self.at_eof = read == 0;
        Ok(())
    }

    /// Drops `pending[..end]`, which was handed out or skipped.
    fn consume(&mut self, end: usize) {
        self.pending.drain(..end);
        self.cursor -= end.min(self.cursor);
        self.record_start -= end.min(self.record_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitter(text: &str, framing: Framing) -> Splitter {
        Splitter::new(Box::new(io::Cursor::new(text.as_bytes().to_vec())), framing)
    }

    fn chunks(text: &str, framing: Framing, max_records: u64) -> Vec<(String, u64, u64)> {
        let mut splitter = splitter(text, framing);
        std::iter::from_fn(|| splitter.next_chunk(max_records, usize::MAX).unwrap())
            .map(|chunk| {
                (
                    String::from_utf8(chunk.data).unwrap(),
                    chunk.first_line,
                    chunk.records,
                )
            })
            .collect()
    }

    #[test]
    fn quoted_line_feeds_stay_inside_their_record() {
        let text = "1,\"a\nb\"\n2,\"x,\"\"y\"\"\"\n3,z";
        assert_eq!(
            chunks(text, Framing::Quoted(b'"'), 2),
            [
                ("1,\"a\nb\"\n2,\"x,\"\"y\"\"\"\n".to_string(), 1, 2),
                ("3,z\n".to_string(), 4, 1)
            ]
        );
        // Without quote handling every line feed ends a record.
        assert_eq!(chunks(text, Framing::Lines, 10)[0].2, 4);
    }

    #[test]
    fn blank_lines_are_kept_but_not_counted() {
        assert_eq!(
            chunks("a\n\r\n\nb\n", Framing::Lines, 1),
            [("a\n".to_string(), 1, 1), ("\r\n\nb\n".to_string(), 2, 1)]
        );
        assert!(chunks("", Framing::Lines, 1).is_empty());
    }

    #[test]
    fn header_and_skipped_lines() {
        let mut splitter = splitter("junk \"\nh1,h2\r\n1,2\n", Framing::Quoted(b'"'));
        assert_eq!(splitter.skip_lines(1).unwrap(), 1);
        assert_eq!(splitter.take_record().unwrap(), Some(b"h1,h2".to_vec()));
        let chunk = splitter.next_chunk(10, usize::MAX).unwrap().unwrap();
        assert_eq!((chunk.data, chunk.first_line), (b"1,2\n".to_vec(), 3));
    }

    #[test]
    fn escaped_line_feeds_stay_inside_their_record() {
        assert_eq!(
            chunks("a\\\nb\tc\\\\\nd\n", Framing::Escaped, 10),
            [("a\\\nb\tc\\\\\nd\n".to_string(), 1, 2)]
        );
    }

    #[test]
    fn a_stray_quote_stops_at_the_record_cap_naming_its_line() {
        let mut text = String::from("1,a\n2,\"b\n");
        for id in 3..2_000 {
            text.push_str(&format!("{id},c\n"));
        }
        let framing = Framing::Quoted(b'"');
        let mut capped = Splitter::with_read_bytes(
            Box::new(io::Cursor::new(text.clone().into_bytes())),
            framing,
            64,
        )
        .max_record_bytes(1_000);
        let first = capped.next_chunk(1, usize::MAX).unwrap().unwrap();
        assert_eq!(first.records, 1);
        let err = capped.next_chunk(1, usize::MAX).unwrap_err();
        assert!(
            matches!(err, SplitError::RecordTooLong { line: 2, limit: 1_000, line_breaks } if line_breaks > 100),
            "{err}"
        );
        assert!(err.to_string().contains("line 2"), "{err}");
        // Under the default cap the same file is two records, the second holding the rest.
        assert_eq!(
            chunks(&text, framing, 10).iter().map(|c| c.2).sum::<u64>(),
            2
        );
    }

    #[test]
    fn chunks_are_cut_by_bytes_too() {
        let mut splitter = splitter("aaaa\nbbbb\ncccc\n", Framing::Lines);
        let first = splitter.next_chunk(100, 6).unwrap().unwrap();
        assert_eq!(
            first.records, 2,
            "cut after the record that reaches the limit"
        );
    }
}
