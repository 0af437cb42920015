//! The reader thread: opens each input in turn (plain, gzip or stdin), skips lines, checks headers,
//! cuts the records into numbered chunks with the [`Splitter`] and sends them to the workers over
//! a bounded channel, so memory stays flat however large the input. On `--resume` it skips the
//! chunks the ledger shows committed, after checking they start on the same line as before.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::batch::{parse_header, HeaderError, RawBatch};
use super::remote::UrlReader;
use super::split::{SplitError, Splitter};
use super::Dialect;
use crate::engine::{RetryPolicy, SourceSummary, StopSignal};
use crate::ledger::{fnv1a, Committed};

/// Largest chunk in bytes: a batch is `--batch` records or this many bytes, whichever comes first,
/// so that wide records cannot make a batch (and the channel's worth of them) huge.
pub(crate) const MAX_BATCH_BYTES: usize = 16 << 20;

/// Why the inputs cannot be read on: the load stops with it (before it starts, for the first
/// input's header).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    #[error("cannot read {input}: {err}")]
    Open { input: String, err: io::Error },
    #[error("{input}: {err}")]
    Split { input: String, err: SplitError },
    #[error("{input}: the header line {err}")]
    Header { input: String, err: HeaderError },
    #[error(
        "{input}: its header differs from the header of {first}; load files of different layouts \
         separately"
    )]
    HeaderDiffers { input: String, first: String },
    /// On `--resume`, a chunk that does not start where the committed batch of its number did.
    #[error(
        "cannot resume: batch {seq} is {records} records from line {first_line} of {input}, but \
         the committed batch {seq} was {committed_records} records from line \
         {committed_first_line}; resume with the same inputs, --batch and --limit as the first \
         attempt"
    )]
    Moved {
        seq: u64,
        records: u64,
        first_line: u64,
        input: String,
        committed_records: u64,
        committed_first_line: u64,
    },
    /// The first batch shows the inputs do not fit the table (its field count, a header line).
    #[error("{0}")]
    Layout(String),
    /// The plan was started twice, or without the first input (a signal came while it was
    /// awaited, and the load does not start).
    #[error("the inputs are not open: already read, or interrupted before the first was opened")]
    NotOpen,
}

/// `input` without the UTF-8 byte order mark it may start with.
fn without_bom(input: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(Box::new(reader))
}

/// Standard input's first bytes once the sniffer has read them: the load reads them again, ahead
/// of the rest, since a pipe cannot be read twice.
static STDIN_SAMPLE: parking_lot::Mutex<Option<Arc<[u8]>>> = parking_lot::Mutex::new(None);

/// Reads standard input's first bytes for the sniffer: up to `max_bytes`, or until `records` line
/// feeds or the input's end, whichever comes first. The load reads them again ahead of the rest.
/// Returns them cut after their last line feed (a record is not cut in two), and whether they
/// are the whole input.
pub(crate) fn sample_stdin(records: u64, max_bytes: usize) -> io::Result<(Arc<[u8]>, bool)> {
    let mut sample = Vec::with_capacity(1 << 16);
    let mut stdin = io::stdin().lock();
    let mut line_feeds = 0u64;
    let mut whole = false;
    while sample.len() < max_bytes && line_feeds < records {
        let buffer = stdin.fill_buf()?;
        if buffer.is_empty() {
            whole = true;
            break;
        }
        let take = buffer.len().min(max_bytes - sample.len());
        line_feeds += memchr::memchr_iter(b'\n', &buffer[..take]).count() as u64;
        sample.extend_from_slice(&buffer[..take]);
        stdin.consume(take);
    }
    let sample: Arc<[u8]> = sample.into();
    *STDIN_SAMPLE.lock() = Some(Arc::clone(&sample));
    let records_end = if whole {
        sample.len()
    } else {
        memchr::memrchr(b'\n', &sample).map_or(0, |at| at + 1)
    };
    Ok((Arc::from(&sample[..records_end]), whole))
}

/// Standard input, after the sample the sniffer read from it (if it did); the sample is let go
/// once read.
struct Stdin {
    sample: Option<io::Cursor<Arc<[u8]>>>,
}

impl Stdin {
    fn open() -> Stdin {
        Stdin {
            sample: STDIN_SAMPLE.lock().take().map(io::Cursor::new),
        }
    }
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(sample) = &mut self.sample {
            match sample.read(buf)? {
                0 => self.sample = None,
                read => return Ok(read),
            }
        }
        io::stdin().read(buf)
    }
}

/// The bytes of an input hashed into its identity.
const IDENTITY_BYTES: u64 = 1 << 20;

/// One input: a file or an `http(s)://` URL (gzip by a `.gz` extension), or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    Stdin,
    File {
        path: PathBuf,
        gzip: bool,
    },
    /// Streamed, a dropped connection resumed by `retry`'s rules (announced unless `quiet`).
    Url {
        url: url::Url,
        gzip: bool,
        retry: RetryPolicy,
        quiet: bool,
    },
}

impl Input {
    /// The name rejects and errors give: the path, or `-`.
    pub(crate) fn name(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File { path, .. } => path.display().to_string(),
            Input::Url { url, .. } => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("***"));
                }
                shown.to_string()
            }
        }
    }

    /// What tells this input from another across runs, for the ledger's source: the path, the
    /// size, the modification time and a hash of the first MiB; the name alone for standard input
    /// and anything else that is not a regular file, which a later run cannot check.
    pub(crate) fn identity(&self) -> String {
        let path = match self {
            Input::File { path, .. } => path,
            Input::Url { .. } => return self.name(),
            Input::Stdin => return "-".into(),
        };
        let name = path.display();
        // Only a regular file is read for its hash: opening a FIFO would wait for its writer.
        let Some(metadata) = std::fs::metadata(path).ok().filter(|m| m.is_file()) else {
            return name.to_string();
        };
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        let mut head = Vec::with_capacity(IDENTITY_BYTES as usize);
        let hashed =
            File::open(path).and_then(|file| file.take(IDENTITY_BYTES).read_to_end(&mut head));
        let hash = hashed.map_or_else(
            |_| "unreadable".into(),
            |_| format!("{:016x}", fnv1a(&head)),
        );
        format!(
            "{name} ({} bytes, modified {modified} ns after 1970, first MiB {hash})",
            metadata.len()
        )
    }

    /// The input's bytes, decompressed; a file's UTF-8 byte order mark (which would otherwise be
    /// part of its first column's name or value, invisibly) left out.
    pub(crate) fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        self.open_counting(&Arc::default())
    }

    /// Like [`Input::open`], adding to `read` the bytes taken from the file or the URL as they
    /// are read (before decompression), which the progress line measures against
    /// [`Input::size`].
    fn open_counting(&self, read: &Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Input::Stdin => without_bom(Box::new(Stdin::open())),
            Input::File { .. } | Input::Url { .. } => without_bom(self.open_raw_counting(read)?),
        }
    }

    /// The input's bytes, decompressed, as they are (a byte order mark kept).
    pub(crate) fn open_raw(&self) -> io::Result<Box<dyn Read + Send>> {
        self.open_raw_counting(&Arc::default())
    }

    fn open_raw_counting(&self, read: &Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
        let counted = |inner: Box<dyn Read + Send>| Counting {
            inner,
            read: Arc::clone(read),
        };
        let (stream, gzip): (Box<dyn Read + Send>, bool) = match self {
            Input::Stdin => return Ok(Box::new(Stdin::open())),
            Input::File { path, gzip } => (Box::new(counted(Box::new(File::open(path)?))), *gzip),
            Input::Url {
                url,
                gzip,
                retry,
                quiet,
            } => (
                Box::new(BufReader::with_capacity(
                    1 << 16,
                    counted(Box::new(UrlReader::new(url.as_str(), *retry, *quiet))),
                )),
                *gzip,
            ),
        };
        Ok(if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 16,
                stream,
            )))
        } else {
            stream
        })
    }

    /// A file's size on disk (compressed, for a gzip file); none for standard input.
    fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File { path, .. } => std::fs::metadata(path).ok().map(|meta| meta.len()),
            // Its length is not asked for before the load.
            Input::Url { .. } => None,
        }
    }
}

/// An input that counts the bytes read from it.
struct Counting {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// Reads the inputs of one copy load.
pub(crate) struct Reader {
    inputs: Vec<Input>,
    dialect: Arc<Dialect>,
    header: bool,
    skip_lines: u64,
    limit: Option<u64>,
    batch_rows: u64,
    /// `--max-record-size`.
    max_record_bytes: usize,
    /// The first input, opened by [`Reader::open_first`], positioned after its header.
    first: Option<Splitter>,
    /// The first input's header line, which every later input must repeat.
    first_header: Option<Vec<u8>>,
    /// Bytes read from the input files so far.
    read: Arc<AtomicU64>,
}

impl Reader {
    pub(crate) fn new(
        inputs: Vec<Input>,
        dialect: Arc<Dialect>,
        header: bool,
        skip_lines: u64,
        limit: Option<u64>,
        batch_rows: u64,
        max_record_bytes: usize,
    ) -> Reader {
        Reader {
            inputs,
            dialect,
            header,
            skip_lines,
            limit,
            batch_rows,
            max_record_bytes,
            first: None,
            first_header: None,
            read: Arc::default(),
        }
    }

    /// The inputs' size on disk when every input is a file, and the count of their bytes read,
    /// which grows as the reader thread reads.
    pub(crate) fn bytes(&self) -> (Option<u64>, Arc<AtomicU64>) {
        let total = self.inputs.iter().map(Input::size).sum();
        (total, Arc::clone(&self.read))
    }

    /// The names of the inputs, in order.
    pub(crate) fn names(&self) -> Arc<[String]> {
        self.inputs.iter().map(Input::name).collect()
    }

    /// Opens the first input and, with `--header`, returns the column names its header gives.
    pub(crate) fn open_first(&mut self) -> Result<Option<Vec<String>>, InputError> {
        let (splitter, header) = self.open(0)?;
        self.first = Some(splitter);
        let Some(header) = header else {
            return Ok(None);
        };
        let names =
            parse_header(Arc::clone(&self.dialect), &header).map_err(|err| InputError::Header {
                input: self.inputs[0].name(),
                err,
            })?;
        self.first_header = Some(header);
        Ok(Some(names))
    }

    /// Opens input `index`, skips its `--skip-lines` and takes its header line.
    fn open(&self, index: usize) -> Result<(Splitter, Option<Vec<u8>>), InputError> {
        let input = &self.inputs[index];
        let stream = input
            .open_counting(&self.read)
            .map_err(|err| InputError::Open {
                input: input.name(),
                err,
            })?;
        let stream = self.dialect.encoding.decode(stream);
        let mut splitter =
            Splitter::new(stream, self.dialect.framing()).max_record_bytes(self.max_record_bytes);
        let in_input = |err| InputError::Split {
            input: input.name(),
            err,
        };
        splitter.prefetch().map_err(in_input)?;
        splitter.skip_lines(self.skip_lines).map_err(in_input)?;
        let header = if self.header {
            splitter.take_record().map_err(in_input)?
        } else {
            None
        };
        Ok((splitter, header))
    }

    /// Sends every input's chunks to the workers until the inputs end, `--limit` is reached, the
    /// workers hang up or the load stops. A failure is sent to the workers, which stop the load.
    /// The load's first batch is shown to `first_check` before any worker has it: a layout that
    /// does not fit the table stops the load before a row is written.
    pub(crate) fn run(
        mut self,
        committed: &Committed,
        sender: &Sender<Result<RawBatch, InputError>>,
        signal: &StopSignal,
        first_check: impl FnMut(&RawBatch) -> Option<String>,
    ) -> SourceSummary {
        let mut summary = SourceSummary::default();
        if let Err(err) = self.send_all(committed, sender, signal, &mut summary, first_check) {
            let _ = sender.send(Err(err));
        }
        summary
    }

    fn send_all(
        &mut self,
        committed: &Committed,
        sender: &Sender<Result<RawBatch, InputError>>,
        signal: &StopSignal,
        summary: &mut SourceSummary,
        mut first_check: impl FnMut(&RawBatch) -> Option<String>,
    ) -> Result<(), InputError> {
        let mut seq = 0u64;
        let mut remaining = self.limit.unwrap_or(u64::MAX);
        for index in 0..self.inputs.len() {
            let name = self.inputs[index].name();
            let mut splitter = match self.first.take() {
                Some(splitter) if index == 0 => splitter,
                _ => {
                    let (splitter, header) = self.open(index)?;
                    if header.is_some() && header != self.first_header {
                        return Err(InputError::HeaderDiffers {
                            input: name,
                            first: self.inputs[0].name(),
                        });
                    }
                    splitter
                }
            };
            while remaining > 0 && !signal.is_stopping() {
                let chunk = splitter
                    .next_chunk(self.batch_rows.min(remaining), MAX_BATCH_BYTES)
                    .map_err(|err| InputError::Split {
                        input: name.clone(),
                        err,
                    })?;
                let Some(chunk) = chunk else {
                    break;
                };
                if chunk.records == 0 {
                    continue;
                }
                remaining -= chunk.records;
                if let Some(done) = committed.get(seq) {
                    if done.first_row != chunk.first_line
                        || done.rows + done.rejected + done.skipped != chunk.records
                    {
                        return Err(InputError::Moved {
                            seq,
                            records: chunk.records,
                            first_line: chunk.first_line,
                            input: name,
                            committed_records: done.rows + done.rejected + done.skipped,
                            committed_first_line: done.first_row,
                        });
                    }
                    summary.skipped_batches += 1;
                    summary.skipped_rows += done.rows;
                    summary.skipped_rejected += done.rejected;
                } else {
                    let batch = RawBatch {
                        seq,
                        input: index,
                        chunk,
                    };
                    if seq == 0 {
                        if let Some(problem) = first_check(&batch) {
                            return Err(InputError::Layout(problem));
                        }
                    }
                    if sender.send(Ok(batch)).is_err() {
                        return Ok(());
                    }
                }
                seq += 1;
            }
        }
        Ok(())
    }
}
