//! `copy` mode: CSV, TSV and NDJSON files (plain or gzip) or stdin, and Parquet files
//! (parquet_input.rs), into any target: its settings
//! ([`CopyConfig`]), its [`run`], the reader thread and the batches it hands the workers.
//!
//! ```text
//! reader thread ── Splitter: whole records, numbered chunks ──► bounded channel (2 × workers)
//!                                                                  │
//! worker 0..N-1 ◄──────────────────────────────────────────────────┘
//!    CopyBatch: parse fields, set aside invalid records, encode (binary COPY by the table's types)
//! ```
//!
//! The reader only finds record boundaries; parsing and encoding run on the pinned workers, one
//! batch each, so they scale with the workers and need no hand-off to another pool. Nothing here
//! knows the target: the sinks ask the batch for the format they speak.

pub(crate) mod batch;
mod columnar;
mod infer;
mod parquet_input;
mod reader;
mod remote;
mod sniff;
mod split;
mod transcode;
pub(crate) mod typed;

pub use batch::{CopyBatch, RawBatch};
pub(crate) use reader::{Input, InputError, Reader};
pub(crate) use sniff::SniffSettings;
pub use split::{Chunk, Framing, Splitter};
pub use transcode::Encoding;

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use serde_json::{json, Map};

use crate::engine::{Goal, Source, SourceError, SourceFactory, SourceSummary, StopSignal, Unit};

use crate::ddl::Flavor;
use crate::ledger::Committed;
use crate::report::{EXIT_FATAL, EXIT_USAGE};
use crate::rows::{Batch, Columns, Schema};
use crate::run::{self, Documents, Load, LoadConfig, SourcePlan};
use crate::sink::stream::OutputFormat;
use crate::target::{HttpProtocol, Target};
use sniff::Sniffed;
use std::io::Write;

/// Format of copy-mode input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// Comma-separated values, PostgreSQL's CSV rules.
    Csv,
    /// PostgreSQL's text format: tab-separated, backslash escapes, \N for NULL.
    Tsv,
    /// One JSON object per line; fields taken by column name.
    Ndjson,
    /// An Apache Parquet file; columns taken by name. It never reaches the text reader, splitter
    /// or sniffer (`run` hands it to the Parquet reader), whose arms read it as NDJSON's lines.
    Parquet,
}

/// Settings of `loader copy`.
#[derive(Debug, Clone)]
pub(crate) struct CopyConfig {
    pub load: LoadConfig,
    pub inputs: Vec<Input>,
    pub dialect: Dialect,
    pub header: bool,
    pub columns: Option<Vec<String>>,
    pub skip_lines: u64,
    pub limit: Option<u64>,
    /// `--max-record-size`.
    pub max_record_bytes: usize,
    pub run_id: Option<String>,
    pub resume: bool,
    pub sniff: SniffSettings,
}

/// The ledger's source of a copy run: `copy` and the identity of every input, so that `--resume`
/// refuses other files.
fn source(inputs: &[Input]) -> String {
    let identities: Vec<String> = inputs.iter().map(Input::identity).collect();
    format!("copy {}", identities.join("; "))
}

/// Runs `loader copy` and returns the exit code.
pub(crate) fn run(config: &CopyConfig, signal: &Arc<StopSignal>) -> u8 {
    if config.dialect.format == InputFormat::Parquet {
        return parquet_input::run(config, signal);
    }
    let sniffed = match sniff_first(config, signal) {
        Ok(sniffed) => sniffed,
        Err(message) => {
            eprintln!("loader: error: {message}");
            return EXIT_USAGE;
        }
    };
    let (dialect, has_header) = match &sniffed {
        Some(sniffed) => (sniffed.dialect.clone(), sniffed.header),
        None => (config.dialect.clone(), config.header),
    };
    if let (true, Some(sniffed)) = (config.sniff.print_only, &sniffed) {
        let described = sniffed.describe(
            &config.inputs[0].name(),
            &config.load.table,
            flavor_of(&config.load.target),
            config.columns.as_deref(),
        );
        let mut stdout = std::io::stdout().lock();
        return match stdout.write_all(described.as_bytes()) {
            Ok(()) => 0,
            Err(_) => EXIT_FATAL,
        };
    }
    let dialect = Arc::new(dialect);
    let reader = Reader::new(
        config.inputs.clone(),
        Arc::clone(&dialect),
        has_header,
        config.skip_lines,
        config.limit,
        config.load.batch as u64,
        config.max_record_bytes,
    );
    let inputs = reader.names();
    if config.inputs.contains(&Input::Stdin) && std::io::stdin().is_terminal() {
        // Not under --quiet either: a silent wait on the keyboard looks like a hang.
        eprintln!("loader: reading standard input (Ctrl-D ends it)");
    }
    let (input_bytes, bytes_read) = reader.bytes();
    let read_so_far = || bytes_read.load(Ordering::Relaxed);
    let (reader, header) = match first_input(reader, signal) {
        Ok(Some((reader, Ok(header)))) => (Some(reader), header),
        Ok(Some((_, Err(message)))) => {
            eprintln!("loader: error: {message}");
            return EXIT_USAGE;
        }
        Ok(None) => (None, None),
        Err(err) => {
            eprintln!("loader: error: cannot start the input thread: {err}");
            return EXIT_FATAL;
        }
    };
    // NDJSON names its columns by key: the sampled keys are the columns of a table it creates.
    let keys = match &sniffed {
        Some(sniffed) if config.load.create && dialect.format == InputFormat::Ndjson => {
            sniffed.names.clone()
        }
        _ => None,
    };
    let names = config.columns.clone().or(header).or(keys);
    let typed = names
        .as_ref()
        .zip(sniffed.as_ref())
        .and_then(|(names, sniffed)| sniffed.schema(names));
    let columns = match (&names, typed) {
        (Some(_), Some(schema)) => Columns::Sniffed(schema),
        (Some(names), None) => Columns::Named(names.clone()),
        (None, _) => Columns::Table,
    };
    let mut settings = Map::new();
    settings.insert("inputs".into(), json!(inputs.to_vec()));
    settings.insert("format".into(), json!(config.dialect.format));
    settings.insert("header".into(), json!(has_header));
    settings.insert(
        "delimiter".into(),
        json!(char::from(dialect.delimiter).to_string()),
    );
    settings.insert("columns".into(), json!(config.columns));
    settings.insert("skip_lines".into(), json!(config.skip_lines));
    settings.insert("max_record_bytes".into(), json!(config.max_record_bytes));
    settings.insert("limit".into(), json!(config.limit));
    settings.insert("resume".into(), json!(config.resume));
    let mut sources = CopyPlan::new(reader, dialect, names, Arc::clone(signal));
    run::run(
        Load {
            mode: "copy",
            source: Some(source(&config.inputs)),
            config: &config.load,
            columns,
            types_sniffed: true,
            sources: &mut sources,
            run_id: config.run_id.clone(),
            resume: config.resume,
            goal: match (config.limit, input_bytes) {
                (Some(limit), _) => Some(Goal::Rows(limit)),
                (None, Some(total)) => Some(Goal::Measured {
                    total,
                    unit: Unit::Bytes,
                    done: &read_so_far,
                }),
                (None, None) => None,
            },
            duration: None,
            output_format: OutputFormat::Csv,
            settings,
            documents: Documents::NotRecorded,
            stages: None,
        },
        signal,
    )
}

/// The SQL `--sniff` shows the `CREATE TABLE` of: the target's.
fn flavor_of(target: &Target) -> Flavor {
    match target {
        Target::Http(http) if http.protocol == HttpProtocol::ClickHouse => Flavor::ClickHouse,
        Target::Http(http) if http.protocol == HttpProtocol::Crate => Flavor::CrateDb,
        _ => Flavor::Postgres,
    }
}

/// The sniffed sample of the first input when it is a regular file, a URL or standard input
/// that is not a terminal (a named pipe is not sniffed: a sample read from it would be lost to
/// the load); `--sniff` and `--schema` need one.
///
/// Standard input's sample is read on a thread of its own, so that a signal while a pipe has not
/// written enough yet ends the wait: the load then ends as interrupted, unsniffed.
fn sniff_first(config: &CopyConfig, signal: &StopSignal) -> Result<Option<Sniffed>, String> {
    let first = &config.inputs[0];
    let sniffable = match first {
        Input::File { path, .. } => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
        // A URL is fetched twice: once for the sample, once for the load.
        Input::Url { .. } => true,
        // Read once: the load reads the sample again, ahead of the rest.
        Input::Stdin => !std::io::stdin().is_terminal(),
    };
    if !sniffable {
        if config.sniff.print_only || !config.sniff.overrides.is_empty() {
            let what = match first {
                Input::Stdin => "a terminal",
                _ => "a named pipe, not a regular file",
            };
            return Err(format!(
                "--sniff and --schema read a sample of the first input, and {} is {what}; save \
                 it to a file first, or pipe it to standard input",
                first.name()
            ));
        }
        return Ok(None);
    }
    let (first, dialect, settings) = (first.clone(), config.dialect.clone(), config.sniff.clone());
    let (skip_lines, columns) = (config.skip_lines, config.columns.clone());
    let max_record_bytes = config.max_record_bytes;
    let sniffing = move || {
        sniff::sniff(
            &first,
            &dialect,
            &settings,
            skip_lines,
            columns.as_deref(),
            max_record_bytes,
        )
    };
    match unless_interrupted("loader-sniff", signal, sniffing) {
        Ok(Some(Ok(sniffed))) => Ok(Some(sniffed)),
        Ok(Some(Err(err))) => Err(err.to_string()),
        Ok(None) => Ok(None),
        Err(err) => Err(format!("cannot sniff the first input: {err}")),
    }
}

/// The reader with its first input open, and what its header gave.
type Opened = (Reader, Result<Option<Vec<String>>, InputError>);

/// Opens the first input and reads its header on a thread of its own, which main waits for while
/// watching the stop signal: a pipe nobody writes to yet, or a FIFO without a writer (where
/// open(2) itself blocks), must not make Ctrl-C and SIGTERM wait. A thread blocked in the kernel
/// cannot be woken portably, so on a signal it is left to the exiting process: `None`. Otherwise
/// the reader, positioned after the header, and the column names the header gives.
fn first_input(mut reader: Reader, signal: &StopSignal) -> std::io::Result<Option<Opened>> {
    unless_interrupted("loader-open", signal, move || {
        let header = reader.open_first();
        (reader, header)
    })
}

/// Runs `work` on a thread named `name` and waits for it, unless a signal comes first (`None`:
/// the thread is left blocked in its input, which the process's exit ends).
fn unless_interrupted<T: Send + 'static>(
    name: &str,
    signal: &StopSignal,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (sender, receiver) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = sender.send(work());
        })?;
    loop {
        match receiver.recv_timeout(RECEIVE_POLL) {
            Ok(done) => return Ok(Some(done)),
            Err(RecvTimeoutError::Timeout) if signal.is_interrupted() => return Ok(None),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other(format!("its thread {name} panicked")))
            }
        }
    }
}

/// How the records of the inputs are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    pub format: InputFormat,
    /// Field separator of CSV and TSV.
    pub delimiter: u8,
    /// CSV quote character.
    pub quote: u8,
    /// The spelling of NULL: an unquoted field equal to it (CSV), a field equal to it (TSV).
    pub null_string: Vec<u8>,
    /// Per column, whether the [`NULL_MARKERS`] read as NULL there too (sniffed: the columns
    /// that are typed otherwise).
    pub null_markers: Vec<bool>,
    /// The inputs' encoding; anything but UTF-8 is transcoded as it is read.
    pub encoding: Encoding,
}

/// The spellings of a missing value that the sniffer reads as NULL in a column whose other values
/// all have one type (an empty unquoted field is NULL in every column already).
pub(crate) const NULL_MARKERS: [&[u8]; 5] = [b"NA", b"NULL", b"\\N", b"null", b"N/A"];

impl Dialect {
    /// The dialect with PostgreSQL's defaults for what is not given: `,` and `"` and an empty
    /// unquoted field as NULL for CSV; tab and `\N` for TSV.
    pub fn new(
        format: InputFormat,
        delimiter: Option<u8>,
        quote: Option<u8>,
        null_string: Option<&str>,
    ) -> Dialect {
        let (default_delimiter, default_null) = match format {
            InputFormat::Csv => (b',', ""),
            InputFormat::Tsv | InputFormat::Ndjson | InputFormat::Parquet => (b'\t', "\\N"),
        };
        Dialect {
            format,
            delimiter: delimiter.unwrap_or(default_delimiter),
            quote: quote.unwrap_or(b'"'),
            null_string: null_string.unwrap_or(default_null).as_bytes().to_vec(),
            null_markers: Vec::new(),
            encoding: Encoding::Utf8,
        }
    }

    /// Whether `value`, an unquoted field of `column` that is not the null string, is NULL.
    pub fn is_null_marker(&self, column: usize, value: &[u8]) -> bool {
        self.null_markers.get(column) == Some(&true) && NULL_MARKERS.contains(&value)
    }
}

impl Dialect {
    /// Which line feeds end a record in this dialect.
    pub fn framing(&self) -> Framing {
        match self.format {
            InputFormat::Csv => Framing::Quoted(self.quote),
            InputFormat::Tsv => Framing::Escaped,
            InputFormat::Ndjson | InputFormat::Parquet => Framing::Lines,
        }
    }
}

/// How long a worker waits on the channel before looking at the stop signal again.
const RECEIVE_POLL: Duration = Duration::from_millis(100);

/// Starts the reader thread and builds one [`CopySource`] per worker on the channel it feeds.
pub(crate) struct CopySourceFactory {
    receiver: Receiver<Result<RawBatch, InputError>>,
    reader: Mutex<Option<JoinHandle<SourceSummary>>>,
    dialect: Arc<Dialect>,
    schema: Arc<Schema>,
    keys: Arc<[String]>,
    names: Arc<[String]>,
    signal: Arc<StopSignal>,
}

impl CopySourceFactory {
    /// Starts reading: `schema` names and types the fields of every record, in order; `keys` are
    /// the NDJSON keys of those fields.
    pub(crate) fn start(
        reader: Reader,
        dialect: Arc<Dialect>,
        schema: Schema,
        keys: Arc<[String]>,
        committed: Committed,
        workers: usize,
        signal: Arc<StopSignal>,
    ) -> Result<CopySourceFactory, SourceError> {
        let (sender, receiver) = crossbeam_channel::bounded(2 * workers.max(1));
        let names = reader.names();
        let reader_signal = Arc::clone(&signal);
        let schema = Arc::new(schema);
        let mut first = CopyBatch::new(
            Arc::clone(&dialect),
            Arc::clone(&schema),
            Arc::clone(&names),
        )
        .with_keys(Arc::clone(&keys));
        let first_check = move |raw: &RawBatch| {
            first.fill(raw.clone());
            first.layout_problem()
        };
        let handle = std::thread::Builder::new()
            .name("loader-reader".into())
            .spawn(move || reader.run(&committed, &sender, &reader_signal, first_check))
            .map_err(|err| SourceError::Start {
                what: "the reader thread",
                err: Box::new(err),
            })?;
        Ok(CopySourceFactory {
            receiver,
            reader: Mutex::new(Some(handle)),
            dialect,
            schema,
            keys,
            names,
            signal,
        })
    }
}

impl SourceFactory for CopySourceFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Source + '_>, SourceError> {
        Ok(Box::new(CopySource {
            receiver: self.receiver.clone(),
            signal: &self.signal,
            batch: CopyBatch::new(
                Arc::clone(&self.dialect),
                Arc::clone(&self.schema),
                Arc::clone(&self.names),
            )
            .with_keys(Arc::clone(&self.keys)),
        }))
    }

    fn finish(self: Box<Self>) -> Result<SourceSummary, SourceError> {
        let CopySourceFactory {
            receiver,
            reader,
            signal,
            ..
        } = *self;
        // Hanging up wakes a reader blocked on a full channel; a reader blocked on a silent stdin
        // after Ctrl-C or a failure is left behind, as the process is about to exit.
        drop(receiver);
        let handle = reader.lock().take();
        match handle {
            Some(handle) if !signal.is_stopping() || handle.is_finished() => {
                handle.join().map_err(|_| SourceError::Panicked {
                    what: "the reader thread",
                })
            }
            _ => Ok(SourceSummary::default()),
        }
    }
}

/// One worker's end of the channel and its reused batch.
struct CopySource<'a> {
    receiver: Receiver<Result<RawBatch, InputError>>,
    signal: &'a StopSignal,
    batch: CopyBatch,
}

impl Source for CopySource<'_> {
    fn next_batch(&mut self) -> Result<Option<&dyn Batch>, SourceError> {
        loop {
            match self.receiver.recv_timeout(RECEIVE_POLL) {
                Ok(Ok(raw)) => {
                    self.batch.fill(raw);
                    return Ok(Some(&self.batch));
                }
                Ok(Err(err)) => return Err(SourceError::mode(err)),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) if self.signal.is_stopping() => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// Copy mode's [`SourcePlan`]: the reader, its first input opened (its header already read), is
/// handed to its own thread once the target's column types are known.
pub(crate) struct CopyPlan {
    reader: Option<Reader>,
    dialect: Arc<Dialect>,
    /// The column names as the user gave them (`--columns` or the header), if any.
    names: Option<Vec<String>>,
    signal: Arc<StopSignal>,
}

impl CopyPlan {
    /// The plan of a load whose first input is opened (`reader`), or not opened because a signal
    /// came first (`None`: the load ends before it starts).
    pub(crate) fn new(
        reader: Option<Reader>,
        dialect: Arc<Dialect>,
        names: Option<Vec<String>>,
        signal: Arc<StopSignal>,
    ) -> CopyPlan {
        CopyPlan {
            reader,
            dialect,
            names,
            signal,
        }
    }
}

impl SourcePlan for CopyPlan {
    fn start(
        &mut self,
        schema: &Schema,
        committed: Committed,
        workers: usize,
    ) -> Result<Box<dyn SourceFactory + '_>, SourceError> {
        let reader = self
            .reader
            .take()
            .ok_or_else(|| SourceError::mode(InputError::NotOpen))?;
        // NDJSON keys are the names as given: the table may spell a column in another case.
        let keys = match &self.names {
            Some(names) => names.iter().cloned().collect(),
            None => schema.columns.iter().map(|c| c.name.to_string()).collect(),
        };
        Ok(Box::new(CopySourceFactory::start(
            reader,
            Arc::clone(&self.dialect),
            schema.clone(),
            keys,
            committed,
            workers,
            Arc::clone(&self.signal),
        )?))
    }
}
