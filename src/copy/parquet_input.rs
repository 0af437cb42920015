//! Parquet input of copy mode: the files' footers read on main (schema, row groups), the row
//! groups handed to the workers, which decode them in parallel, each with its own reader of the
//! file, into the same [`CopyBatch`] cells text inputs give (columnar.rs), so every sink and
//! encoder works unchanged.
//!
//! ```text
//! main ── footers: the Arrow schema → Columns::Sniffed (what --create makes), the plan: every
//!   │     row group's rows after --skip-lines and within --limit, its batches numbered in order
//!   ▼
//! worker 0..N-1: claim the next row group (one atomic add) ── decode it --batch rows at a time
//!   (its projection: the load's columns) ── cells by column ── sink.write
//! ```
//!
//! Batch numbers and first rows follow from the footers alone (a row group's batches are
//! `--batch` rows each, the last one shorter), so `--run-id`/`--resume` skip committed batches
//! without decoding them, whichever worker read what.

use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::LogicalType;
use serde_json::{json, Map};

use super::batch::CopyBatch;
use super::columnar;
use super::reader::{Input, InputError};
use super::{flavor_of, source, CopyConfig, Dialect, InputFormat};
use crate::ddl;
use crate::engine::{Goal, Source, SourceError, SourceFactory, SourceSummary, StopSignal};
use crate::figures;
use crate::ledger::Committed;
use crate::report::{EXIT_FATAL, EXIT_USAGE};
use crate::rows::{Batch, Column, Columns, Schema, SqlType};
use crate::run::{self, Documents, Load, SourcePlan};
use crate::sink::stream::OutputFormat;

/// Rows `--sniff` shows.
const SHOWN_ROWS: usize = 5;

/// Why a Parquet input cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParquetError {
    #[error("{input}: cannot read it as Parquet: {err}")]
    Open { input: String, err: String },
    #[error(
        "{input}: its columns ({columns}) differ from those of {first}; load files of different \
         schemas separately"
    )]
    Differs {
        input: String,
        columns: String,
        first: String,
    },
    #[error(
        "--{flag} names column `{name}`, which {input} does not have; its columns are {columns}"
    )]
    UnknownColumn {
        flag: &'static str,
        name: String,
        input: String,
        columns: String,
    },
    #[error("{input}: row group {row_group}: {err}")]
    Read {
        input: String,
        row_group: usize,
        err: String,
    },
}

/// One Parquet file, its footer read.
#[derive(Debug, Clone)]
struct ParquetFile {
    name: String,
    path: PathBuf,
    metadata: ArrowReaderMetadata,
}

impl ParquetFile {
    fn open(input: &Input) -> Result<ParquetFile, ParquetError> {
        let name = input.name();
        let path = match input {
            Input::File { path, .. } => path.clone(),
            // Refused with its reason by the settings already; kept an error, never a panic.
            Input::Stdin | Input::Url { .. } => {
                return Err(ParquetError::Open {
                    input: name,
                    err: "Parquet is read from a file".into(),
                })
            }
        };
        let open_error = |err: String| ParquetError::Open {
            input: name.clone(),
            err,
        };
        let file = File::open(&path).map_err(|err| open_error(err.to_string()))?;
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|err| open_error(err.to_string()))?;
        Ok(ParquetFile {
            name,
            path,
            metadata,
        })
    }

    fn schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }

    fn column_names(&self) -> Vec<String> {
        self.schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect()
    }

    /// Whether top-level column `index` is of Parquet's UUID logical type.
    fn is_uuid(&self, index: usize) -> bool {
        let root = self.metadata.parquet_schema().root_schema();
        root.get_fields()
            .get(index)
            .is_some_and(|field| field.get_basic_info().logical_type() == Some(LogicalType::Uuid))
    }

    /// The SQL type column `index` loads as.
    fn sql_type(&self, index: usize) -> SqlType {
        columnar::sql_type(self.schema().field(index).data_type(), self.is_uuid(index))
    }

    fn row_group_rows(&self) -> impl Iterator<Item = u64> + '_ {
        let groups = self.metadata.metadata().row_groups();
        groups.iter().map(|group| group.num_rows().max(0) as u64)
    }
}

/// A row group's share of the load: `rows` rows from `offset` in it, in batches of `--batch` rows
/// numbered from `first_seq`.
#[derive(Debug, Clone)]
struct Group {
    input: usize,
    row_group: usize,
    offset: usize,
    rows: usize,
    first_seq: u64,
    /// The 1-based row of the file the group's share starts on.
    first_row: u64,
}

/// Every row group's share of the load, in input order: `--skip-lines` rows skipped at the start
/// of each file, `--limit` rows in all.
fn plan(files: &[ParquetFile], skip_rows: u64, limit: Option<u64>, batch_rows: u64) -> Vec<Group> {
    let mut groups = Vec::new();
    let (mut seq, mut remaining) = (0, limit.unwrap_or(u64::MAX));
    for (input, file) in files.iter().enumerate() {
        let (mut skip, mut start) = (skip_rows, 0u64);
        for (row_group, rows) in file.row_group_rows().enumerate() {
            let offset = skip.min(rows);
            skip -= offset;
            let taken = (rows - offset).min(remaining);
            if taken > 0 {
                groups.push(Group {
                    input,
                    row_group,
                    offset: offset as usize,
                    rows: taken as usize,
                    first_seq: seq,
                    first_row: start + offset + 1,
                });
                seq += taken.div_ceil(batch_rows);
                remaining -= taken;
            }
            start += rows;
        }
    }
    groups
}

/// A column of the load: where the decoded batch has it, and how it is spelled.
#[derive(Debug, Clone)]
struct LoadColumn {
    /// The position in the decoded batch, whose columns come in the file's order.
    position: usize,
    sql_type: SqlType,
    uuid: bool,
}

/// Runs `loader copy` of Parquet files and returns the exit code.
pub(crate) fn run(config: &CopyConfig, signal: &Arc<StopSignal>) -> u8 {
    let prepared = prepare(config);
    let (files, names, schema) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            eprintln!("loader: error: {err}");
            return EXIT_USAGE;
        }
    };
    if config.sniff.print_only {
        let described = match describe(config, &files[0], &names, &schema) {
            Ok(described) => described,
            Err(err) => {
                eprintln!("loader: error: {err}");
                return EXIT_USAGE;
            }
        };
        return match std::io::Write::write_all(&mut std::io::stdout().lock(), described.as_bytes())
        {
            Ok(()) => 0,
            Err(_) => EXIT_FATAL,
        };
    }
    let groups = plan(
        &files,
        config.skip_lines,
        config.limit,
        config.load.batch as u64,
    );
    let total_rows = groups.iter().map(|group| group.rows as u64).sum();
    let mut settings = Map::new();
    let inputs: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
    settings.insert("inputs".into(), json!(inputs));
    settings.insert("format".into(), json!(InputFormat::Parquet));
    settings.insert("columns".into(), json!(config.columns));
    settings.insert("skip_lines".into(), json!(config.skip_lines));
    settings.insert("limit".into(), json!(config.limit));
    settings.insert("resume".into(), json!(config.resume));
    settings.insert("row_groups".into(), json!(groups.len()));
    let mut sources = ParquetPlan {
        files: Arc::from(files),
        groups: Arc::from(groups),
        names,
        batch_rows: config.load.batch as u64,
        signal: Arc::clone(signal),
    };
    run::run(
        Load {
            mode: "copy",
            source: Some(source(&config.inputs)),
            config: &config.load,
            columns: Columns::Sniffed(schema),
            types_sniffed: false,
            sources: &mut sources,
            run_id: config.run_id.clone(),
            resume: config.resume,
            goal: Some(Goal::Rows(total_rows)),
            duration: None,
            output_format: OutputFormat::Csv,
            settings,
            documents: Documents::NotRecorded,
            stages: None,
        },
        signal,
    )
}

/// The inputs' footers (every file of the first one's columns), the names of the columns the
/// load takes from them (`--columns`, else all) and their types (`--schema` laid over).
fn prepare(config: &CopyConfig) -> Result<(Vec<ParquetFile>, Vec<String>, Schema), ParquetError> {
    let files: Vec<ParquetFile> = config
        .inputs
        .iter()
        .map(ParquetFile::open)
        .collect::<Result<_, _>>()?;
    let first = &files[0];
    for file in &files[1..] {
        if file.schema().fields() != first.schema().fields() {
            return Err(ParquetError::Differs {
                input: file.name.clone(),
                columns: file.column_names().join(", "),
                first: first.name.clone(),
            });
        }
    }
    let all = first.column_names();
    let unknown = |flag: &'static str, name: &str| ParquetError::UnknownColumn {
        flag,
        name: name.to_string(),
        input: first.name.clone(),
        columns: all.join(", "),
    };
    let names = config.columns.clone().unwrap_or_else(|| all.clone());
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let index = all
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| unknown("columns", name))?;
        columns.push(Column {
            name: name.clone().into(),
            sql_type: first.sql_type(index),
        });
    }
    for (name, sql_type) in &config.sniff.overrides {
        let column = columns
            .iter_mut()
            .find(|column| column.name == name.as_str())
            .ok_or_else(|| unknown("schema", name))?;
        column.sql_type = *sql_type;
    }
    Ok((
        files,
        names,
        Schema {
            columns: columns.into(),
        },
    ))
}

/// `--sniff` of a Parquet file: its rows and row groups, each column's Arrow type and the type
/// it loads as, the `CREATE TABLE` `--create` runs, and the first rows as they load.
fn describe(
    config: &CopyConfig,
    file: &ParquetFile,
    names: &[String],
    schema: &Schema,
) -> Result<String, ParquetError> {
    let mut out = String::new();
    let rows: u64 = file.row_group_rows().sum();
    let groups = file.metadata.metadata().num_row_groups();
    let _ = writeln!(out, "input:      {}", file.name);
    let _ = writeln!(out, "format:     parquet");
    let _ = writeln!(
        out,
        "rows:       {} in {} row groups",
        figures::count(rows),
        figures::count(groups as u64)
    );
    let _ = writeln!(out, "columns:");
    for (name, column) in names.iter().zip(schema.columns.iter()) {
        let index = file.schema().index_of(name).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {name}: {} → {}",
            file.schema().field(index).data_type(),
            column.sql_type.pg_name()
        );
    }
    out.push('\n');
    let flavor = flavor_of(&config.load.target);
    let _ = writeln!(
        out,
        "{};",
        ddl::create_table(flavor, &config.load.table, schema, true)
    );
    out.push('\n');
    let _ = writeln!(out, "{}", names.join(" | "));
    let shown = plan(
        std::slice::from_ref(file),
        config.skip_lines,
        Some(SHOWN_ROWS as u64),
        SHOWN_ROWS as u64,
    );
    let columns = load_columns(file, names, schema);
    let projection = projected(file, names);
    let mut batch = empty_batch(schema, std::slice::from_ref(&file.name));
    if let Some(group) = shown.first() {
        let mut reader = open_group(file, group, &projection, SHOWN_ROWS)?;
        if let Some(decoded) = reader.next() {
            let decoded = decoded.map_err(|err| read_error(file, group, err.to_string()))?;
            fill(&mut batch, &columns, group, 0, group.first_row, &decoded)
                .map_err(|err| read_error(file, group, err))?;
        }
    }
    for row in 0..batch.len() {
        let values: Vec<String> = batch
            .row_fields(row)
            .map(|field| {
                field.map_or("NULL".into(), |value| {
                    String::from_utf8_lossy(value).escape_debug().to_string()
                })
            })
            .collect();
        let _ = writeln!(out, "{}", values.join(" | "));
    }
    Ok(out)
}

/// Where each of the load's columns is in a batch decoded with [`projected`]'s columns, and how
/// it is spelled.
fn load_columns(file: &ParquetFile, names: &[String], schema: &Schema) -> Vec<LoadColumn> {
    let indices = projected(file, names);
    names
        .iter()
        .zip(schema.columns.iter())
        .map(|(name, column)| {
            let index = file.schema().index_of(name).unwrap_or_default();
            LoadColumn {
                position: indices.iter().filter(|&&other| other < index).count(),
                sql_type: column.sql_type,
                uuid: file.is_uuid(index),
            }
        })
        .collect()
}

/// The file's indices of the columns named, in the file's order.
fn projected(file: &ParquetFile, names: &[String]) -> Vec<usize> {
    let mut indices: Vec<usize> = names
        .iter()
        .filter_map(|name| file.schema().index_of(name).ok())
        .collect();
    indices.sort_unstable();
    indices
}

fn empty_batch(schema: &Schema, inputs: &[String]) -> CopyBatch {
    CopyBatch::new(
        Arc::new(Dialect::new(InputFormat::Parquet, None, None, None)),
        Arc::new(schema.clone()),
        Arc::from(inputs),
    )
}

/// A reader of a group's rows, `batch_rows` at a time, decoding only the load's columns.
fn open_group(
    file: &ParquetFile,
    group: &Group,
    projection: &[usize],
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, ParquetError> {
    let handle = File::open(&file.path).map_err(|err| read_error(file, group, err.to_string()))?;
    let mask = ProjectionMask::roots(file.metadata.parquet_schema(), projection.iter().copied());
    ParquetRecordBatchReaderBuilder::new_with_metadata(handle, file.metadata.clone())
        .with_row_groups(vec![group.row_group])
        .with_projection(mask)
        .with_batch_size(batch_rows)
        .with_offset(group.offset)
        .with_limit(group.rows)
        .build()
        .map_err(|err| read_error(file, group, err.to_string()))
}

fn read_error(file: &ParquetFile, group: &Group, err: String) -> ParquetError {
    ParquetError::Read {
        input: file.name.clone(),
        row_group: group.row_group,
        err,
    }
}

/// Fills `batch` with the decoded rows: batch `seq`, from row `first_row` of the group's file.
fn fill(
    batch: &mut CopyBatch,
    columns: &[LoadColumn],
    group: &Group,
    seq: u64,
    first_row: u64,
    decoded: &RecordBatch,
) -> Result<(), String> {
    let mut failed = None;
    batch.fill_cells(seq, group.input, first_row, decoded.num_rows(), |cells| {
        for (i, column) in columns.iter().enumerate() {
            let array = decoded.column(column.position).as_ref();
            let written = columnar::write_column(array, column.sql_type, column.uuid, i, cells);
            if let Err(err) = written {
                failed = Some(err.to_string());
                return;
            }
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// Copy mode's plan of a Parquet load: the footers read, the row groups planned.
struct ParquetPlan {
    files: Arc<[ParquetFile]>,
    groups: Arc<[Group]>,
    /// The names of the load's columns in the files.
    names: Vec<String>,
    batch_rows: u64,
    signal: Arc<StopSignal>,
}

impl SourcePlan for ParquetPlan {
    fn start(
        &mut self,
        schema: &Schema,
        committed: Committed,
        _workers: usize,
    ) -> Result<Box<dyn SourceFactory + '_>, SourceError> {
        let batch_rows = self.batch_rows;
        let mut summary = SourceSummary::default();
        let mut pending = Vec::with_capacity(self.groups.len());
        for group in self.groups.iter() {
            let batches = (group.rows as u64).div_ceil(batch_rows);
            let mut done = 0;
            for index in 0..batches {
                let seq = group.first_seq + index;
                let Some(batch) = committed.get(seq) else {
                    continue;
                };
                let first_row = group.first_row + index * batch_rows;
                let records = batch_rows.min(group.rows as u64 - index * batch_rows);
                let committed_records = batch.rows + batch.rejected + batch.skipped;
                if batch.first_row != first_row || committed_records != records {
                    return Err(SourceError::mode(InputError::Moved {
                        seq,
                        records,
                        first_line: first_row,
                        input: self.files[group.input].name.clone(),
                        committed_records,
                        committed_first_line: batch.first_row,
                    }));
                }
                summary.skipped_batches += 1;
                summary.skipped_rows += batch.rows;
                summary.skipped_rejected += batch.rejected;
                done += 1;
            }
            // A row group whose batches all committed is not even read.
            if done < batches {
                pending.push(group.clone());
            }
        }
        let first = &self.files[0];
        let inputs: Vec<String> = self.files.iter().map(|file| file.name.clone()).collect();
        Ok(Box::new(ParquetSourceFactory {
            files: Arc::clone(&self.files),
            groups: pending,
            next_group: AtomicUsize::new(0),
            columns: load_columns(first, &self.names, schema),
            projection: projected(first, &self.names),
            schema: schema.clone(),
            inputs: Arc::from(inputs),
            batch_rows,
            committed,
            summary,
            signal: Arc::clone(&self.signal),
        }))
    }
}

/// The workers' shared plan: the row groups still to load, claimed one at a time.
struct ParquetSourceFactory {
    files: Arc<[ParquetFile]>,
    groups: Vec<Group>,
    /// The next group of `groups` to claim.
    next_group: AtomicUsize,
    columns: Vec<LoadColumn>,
    projection: Vec<usize>,
    schema: Schema,
    inputs: Arc<[String]>,
    batch_rows: u64,
    committed: Committed,
    summary: SourceSummary,
    signal: Arc<StopSignal>,
}

impl SourceFactory for ParquetSourceFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Source + '_>, SourceError> {
        Ok(Box::new(ParquetSource {
            factory: self,
            reading: None,
            batch: empty_batch(&self.schema, &self.inputs),
        }))
    }

    fn finish(self: Box<Self>) -> Result<SourceSummary, SourceError> {
        Ok(self.summary)
    }
}

/// The row group a worker is reading: its decoder and the batches taken from it.
struct Reading<'a> {
    group: &'a Group,
    decoder: ParquetRecordBatchReader,
    taken: u64,
}

/// One worker's source: the row group in hand and its reused batch.
struct ParquetSource<'a> {
    factory: &'a ParquetSourceFactory,
    reading: Option<Reading<'a>>,
    batch: CopyBatch,
}

impl Source for ParquetSource<'_> {
    fn next_batch(&mut self) -> Result<Option<&dyn Batch>, SourceError> {
        let factory = self.factory;
        loop {
            if factory.signal.is_stopping() {
                return Ok(None);
            }
            let Some(reading) = &mut self.reading else {
                let claimed = factory.next_group.fetch_add(1, Ordering::Relaxed);
                let Some(group) = factory.groups.get(claimed) else {
                    return Ok(None);
                };
                let file = &factory.files[group.input];
                let decoder = open_group(
                    file,
                    group,
                    &factory.projection,
                    factory.batch_rows as usize,
                )
                .map_err(SourceError::mode)?;
                self.reading = Some(Reading {
                    group,
                    decoder,
                    taken: 0,
                });
                continue;
            };
            let group = reading.group;
            let file = &factory.files[group.input];
            let Some(decoded) = reading.decoder.next() else {
                self.reading = None;
                continue;
            };
            let decoded = decoded
                .map_err(|err| SourceError::mode(read_error(file, group, err.to_string())))?;
            let index = reading.taken;
            reading.taken += 1;
            let seq = group.first_seq + index;
            if factory.committed.get(seq).is_some() {
                continue;
            }
            let first_row = group.first_row + index * factory.batch_rows;
            fill(
                &mut self.batch,
                &factory.columns,
                group,
                seq,
                first_row,
                &decoded,
            )
            .map_err(|err| SourceError::mode(read_error(file, group, err)))?;
            return Ok(Some(&self.batch));
        }
    }
}
