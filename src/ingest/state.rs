//! The state file: how ingest remembers the documents it loaded into an HTTP target, which has no
//! transaction to hold a ledger row. One JSON line per document (`id`, `source`, `chunks`) is
//! appended once the target acknowledged the whole batch holding it, so a rerun skips it. A crash
//! between the acknowledgement and the append loads those documents again on the rerun: at least
//! once (exactly once for Elasticsearch, whose `_id` makes the resend overwrite).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::ledger::LoadedDocuments;
use crate::rows::DocumentRecord;

/// Why the state file cannot be used; the load stops with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateFileError {
    #[error("cannot use the state file {}: {err}", path.display())]
    Use { path: PathBuf, err: io::Error },
    #[error(
        "the state file {} line {line} is not a document record ({err}); remove it or give \
         --no-resume",
        path.display()
    )]
    NotARecord {
        path: PathBuf,
        line: usize,
        err: serde_json::Error,
    },
    #[error("cannot append to the state file {}: {err}", path.display())]
    Append { path: PathBuf, err: io::Error },
}

/// The open state file, appended to by every worker.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl StateFile {
    /// Opens (or creates, mode 0600) the state file and reads the documents it records; with
    /// `forget` (`--no-resume`) it is emptied instead. A torn last line (a crash mid-append) is
    /// ignored; any other unreadable line is an error.
    pub(crate) fn open(
        path: &Path,
        forget: bool,
    ) -> Result<(StateFile, LoadedDocuments), StateFileError> {
        let failed = |err: io::Error| StateFileError::Use {
            path: path.to_path_buf(),
            err,
        };
        let mut loaded = LoadedDocuments::default();
        if !forget && path.exists() {
            let lines: Vec<String> = BufReader::new(File::open(path).map_err(failed)?)
                .lines()
                .collect::<Result<_, _>>()
                .map_err(failed)?;
            for (number, line) in lines.iter().enumerate() {
                match serde_json::from_str::<DocumentRecord>(line) {
                    Ok(record) => loaded.insert(record.id, record.source),
                    Err(_) if number + 1 == lines.len() => {}
                    Err(err) => {
                        return Err(StateFileError::NotARecord {
                            path: path.to_path_buf(),
                            line: number + 1,
                            err,
                        })
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
        // Appends start on a line of their own: a torn last line is cut off (and forgotten).
        let whole = if forget {
            0
        } else {
            let bytes = std::fs::read(path).map_err(failed)?;
            bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| at + 1) as u64
        };
        file.set_len(whole).map_err(failed)?;
        Ok((
            StateFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            loaded,
        ))
    }

    /// Appends the documents of an acknowledged batch, in one write.
    pub(crate) fn record(&self, documents: &[DocumentRecord]) -> Result<(), StateFileError> {
        if documents.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for document in documents {
            serde_json::to_writer(&mut lines, document).expect("writing JSON to a Vec cannot fail");
            lines.push(b'\n');
        }
        self.file
            .lock()
            .write_all(&lines)
            .map_err(|err| StateFileError::Append {
                path: self.path.clone(),
                err,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> DocumentRecord {
        DocumentRecord {
            id: id.into(),
            source: format!("http://x/{id}"),
            chunks: 2,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_forget_empties_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.ndjson");
        let (state, loaded) = StateFile::open(&path, false).unwrap();
        assert_eq!(loaded.len(), 0);
        state.record(&[record("a"), record("b")]).unwrap();
        drop(state);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the state file is the owner's alone");
        // A torn last line, as a crash mid-append leaves it, is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":\"c\",\"sou")
            .unwrap();
        let (state, loaded) = StateFile::open(&path, false).unwrap();
        assert_eq!(loaded.len(), 2);
        assert!(loaded.has_id("a") && loaded.has_source("http://x/b"));
        assert!(!loaded.has_id("c"));
        // The next record starts on its own line, not glued to the torn one.
        state.record(&[record("d")]).unwrap();
        let (_, loaded) = StateFile::open(&path, false).unwrap();
        assert_eq!(loaded.len(), 3);
        assert!(loaded.has_id("d"));
        let (_, loaded) = StateFile::open(&path, true).unwrap();
        assert_eq!(loaded.len(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.ndjson");
        std::fs::write(
            &path,
            "nonsense\n{\"id\":\"a\",\"source\":\"s\",\"chunks\":1}\n",
        )
        .unwrap();
        let message = StateFile::open(&path, false).unwrap_err().to_string();
        assert!(message.contains("line 1"), "{message}");
    }
}
