//! The reject file: one JSON object per rejected row (`source`, `line`, `record`, `error`),
//! shared by the workers, created on the first reject, flushed after every batch's rejects, and
//! the `--max-rejects` budget that stops a load drowning in bad rows.
//!
//! Rejects are written before the batch that dropped them commits, so a crash between the two can
//! repeat a batch's rejects on `--resume` (at least once); `source` and `line` identify duplicates.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;

use crate::failure::Failure;

/// Where a row came from, for the reject file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowOrigin {
    /// The input file (or `-`, or `gen`).
    pub source: String,
    /// The 1-based line the record starts on (the id, for generated rows).
    pub line: u64,
    /// The record as read (invalid UTF-8 shown as U+FFFD).
    pub record: String,
}

/// One rejected row, as written to the reject file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    #[serde(flatten)]
    pub origin: RowOrigin,
    /// What kind of refusal: `parse` (the record is not a row), `data` (a value the target
    /// refused), `constraint` (a PostgreSQL constraint), `item` (an HTTP target's per-row refusal).
    pub kind: &'static str,
    /// Why: the server's message, or the parser's worded as the server words it.
    pub error: String,
}

/// The shared reject file and count.
#[derive(Debug)]
pub(crate) struct RejectLog {
    path: PathBuf,
    /// Append to an existing file (a resumed run) instead of replacing it.
    append: bool,
    max_rejects: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    file: Option<BufWriter<File>>,
    count: u64,
    by_kind: BTreeMap<&'static str, u64>,
}

impl RejectLog {
    pub(crate) fn new(path: PathBuf, append: bool, max_rejects: u64) -> RejectLog {
        RejectLog {
            path,
            append,
            max_rejects,
            state: Mutex::default(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Rows rejected so far.
    pub(crate) fn count(&self) -> u64 {
        self.state.lock().count
    }

    /// Rows rejected so far, by kind.
    pub(crate) fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.state.lock().by_kind.clone()
    }

    /// Writes `rejects` and flushes them. Fails permanently when the file cannot be written or the
    /// rejects go past `--max-rejects` (they are written first, so the file shows why).
    pub(crate) fn record(&self, rejects: &[Reject]) -> Result<(), Failure> {
        if rejects.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock();
        let written = self.write(&mut state, rejects);
        written.map_err(|err| Failure::Permanent {
            kind: "reject_file",
            message: format!(
                "cannot write the reject file {}: {err}",
                self.path.display()
            ),
        })?;
        state.count += rejects.len() as u64;
        for reject in rejects {
            *state.by_kind.entry(reject.kind).or_default() += 1;
        }
        if state.count > self.max_rejects {
            return Err(Failure::Permanent {
                kind: "max_rejects",
                message: format!(
                    "more than --max-rejects {} rows rejected (see {}); fix the input or raise \
                     --max-rejects",
                    self.max_rejects,
                    self.path.display()
                ),
            });
        }
        Ok(())
    }

    fn write(&self, state: &mut State, rejects: &[Reject]) -> std::io::Result<()> {
        if state.file.is_none() {
            // Rejected rows are the user's data: readable by the owner only.
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(self.append)
                .truncate(!self.append)
                .mode(0o600)
                .open(&self.path)?;
            state.file = Some(BufWriter::new(file));
        }
        let file = state.file.as_mut().expect("opened above");
        for reject in rejects {
            serde_json::to_writer(&mut *file, reject)?;
            file.write_all(b"\n")?;
        }
        file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(line: u64) -> Reject {
        Reject {
            origin: RowOrigin {
                source: "in.csv".into(),
                line,
                record: "a,\"b\"".into(),
            },
            kind: "parse",
            error: "bad".into(),
        }
    }

    #[test]
    fn writes_one_json_line_per_reject_and_enforces_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects.ndjson");
        let log = RejectLog::new(path.clone(), false, 2);
        log.record(&[]).unwrap();
        assert!(!path.exists(), "no file until the first reject");
        log.record(&[reject(3), reject(9)]).unwrap();
        let err = log.record(&[reject(12)]).unwrap_err();
        assert_eq!(err.kind(), "max_rejects");
        assert_eq!(log.count(), 3);
        assert_eq!(log.by_kind()["parse"], 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            serde_json::json!({"source": "in.csv", "line": 3, "record": "a,\"b\"", "kind": "parse", "error": "bad"})
        );
        assert_eq!(text.lines().count(), 3);
    }
}
