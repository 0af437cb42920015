//! `gen` mode: its settings ([`GenConfig`]), its [`run`], and its source: rows of any table,
//! each value a pure function of `(seed, row id)`.
//!
//! What to generate comes from the target's catalog (`postgres.rs`, `catalog.rs`, `check.rs`),
//! a spec file laid over it or describing a whole table (`spec.rs`), or the built-in `readings`
//! spec, the reference table every benchmark loads; `plan.rs` decides and `--explain` shows the
//! decision. `model.rs` holds the generators and `table.rs` the batch. Workers claim batches of
//! ids from one [`IdPlan`] (one atomic add per batch), fill a reused [`TableBatch`] and hand it
//! to their sink; `--resume` skips the batches the ledger shows committed. With `--rate`, a
//! batch first waits for its share of one [`RateLimit`] over all workers.

mod catalog;
mod check;
mod draw;
mod held;
mod model;
mod plan;
mod postgres;
mod shard;
mod spec;
mod table;
mod values;

pub use shard::Shard;
pub use table::TableBatch;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map};

use crate::ddl;
use crate::engine::{
    Goal, RateLimit, Source, SourceError, SourceFactory, SourceSummary, StopSignal,
};
use crate::failure::Failure;
use crate::ledger::Committed;
use crate::pg;
use crate::report::{Report, EXIT_FATAL, EXIT_USAGE};
use crate::rows::{Batch, Columns, Schema};
use crate::run::{self, Documents, Load, LoadConfig, SourcePlan};
use crate::sink::http::{
    clickhouse_catalog, clickhouse_execute, cratedb_catalog, elastic_mapping, HttpClient,
};
use crate::sink::stream::OutputFormat;
use crate::sql::TableName;
use crate::target::{HttpProtocol, HttpTarget, Target};
use plan::Design;
use postgres::CatalogReader;
use spec::{Spec, SpecError};
use table::TablePlan;

/// Settings of `loader gen`.
#[derive(Debug, Clone)]
pub(crate) struct GenConfig {
    pub load: LoadConfig,
    pub rows: Option<u64>,
    pub duration: Option<Duration>,
    /// Rows per second over all workers.
    pub rate: Option<f64>,
    pub seed: u64,
    pub shard: Shard,
    pub output_format: OutputFormat,
    /// `--spec FILE`: columns described by generators.
    pub spec: Option<PathBuf>,
    /// `--explain`: print the plan and load nothing.
    pub explain: bool,
    /// `--run-id`: the run's name in the ledger.
    pub run_id: Option<String>,
    /// `--resume`: skip the batches the ledger shows committed by `run_id`.
    pub resume: bool,
}

impl GenConfig {
    /// The rows this process loads: its shard's part of `--rows`, or unbounded.
    pub(crate) fn rows_in_shard(&self) -> Option<u64> {
        self.rows.map(|rows| self.shard.rows_of(rows))
    }
}

/// The `readings` rows as a batch: the built-in spec's plan (for the benches).
pub fn readings_batch(seed: u64, capacity: usize) -> TableBatch {
    let design = plan::from_spec(&Spec::readings(), &mut no_keys).expect("the built-in spec plans");
    TableBatch::with_capacity(Arc::new(design.plan), seed, capacity)
}

/// The `readings` table's columns.
pub fn readings_schema() -> Schema {
    plan::from_spec(&Spec::readings(), &mut no_keys)
        .expect("the built-in spec plans")
        .schema()
}

fn no_keys(table: &str, _column: &str) -> Result<Vec<String>, SpecError> {
    Err(SpecError(format!(
        "a reference to {table} reads its keys from a PostgreSQL target; give the values with \
         `choice` instead"
    )))
}

/// Why gen cannot start: a spec or table it cannot generate for (exit 2), or the target failed.
#[derive(Debug, thiserror::Error)]
enum Unplanned {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Target(Failure),
}

/// Runs `loader gen` and returns the exit code.
pub(crate) fn run(config: &GenConfig, signal: &Arc<StopSignal>) -> u8 {
    run_with_report(config, signal).0
}

/// Runs `loader gen` and returns the exit code and the report ([`run::run_with_report`]).
pub(crate) fn run_with_report(
    config: &GenConfig,
    signal: &Arc<StopSignal>,
) -> (u8, Option<Report>) {
    let (design, columns, source) = match decide(config, signal) {
        Ok(decided) => decided,
        Err(err) => {
            eprintln!("loader: error: {err}");
            let code = match err {
                Unplanned::Spec(_) => EXIT_USAGE,
                Unplanned::Target(_) => EXIT_FATAL,
            };
            return (code, None);
        }
    };
    if config.explain {
        print!("{}", design.explain(&config.load.table.to_string(), source));
        return (0, None);
    }
    if !config.load.quiet {
        for (column, reason) in design.unmade() {
            eprintln!(
                "loader: warning: column `{column}` of {} is left out: {reason}; describe it \
                 in the spec to fill it",
                config.load.table
            );
        }
        for constraint in &design.not_understood {
            eprintln!(
                "loader: warning: {constraint} on {} is not understood; rows may be rejected; \
                 describe the column in the spec",
                config.load.table
            );
        }
    }
    let rows = config.rows_in_shard();
    let mut sources = GenPlan {
        plan: Arc::new(design.plan),
        rows_in_shard: rows,
        batch: config.load.batch,
        shard: config.shard,
        seed: config.seed,
        rate: config.rate,
        duration: config.duration,
        signal: Arc::clone(signal),
    };
    let mut settings = Map::new();
    settings.insert("rows".into(), json!(config.rows));
    settings.insert("rows_in_shard".into(), json!(rows));
    settings.insert(
        "duration_s".into(),
        json!(config.duration.map(|d| d.as_secs_f64())),
    );
    settings.insert("rate".into(), json!(config.rate));
    settings.insert("seed".into(), json!(config.seed));
    settings.insert("shard".into(), json!(config.shard.to_string()));
    settings.insert("columns_from".into(), json!(source));
    run::run_with_report(
        Load {
            mode: "gen",
            // A resumed run must draw the same batches: the same seed, batch size and shard.
            source: Some(format!(
                "gen seed={} batch={} shard={}",
                config.seed, config.load.batch, config.shard
            )),
            config: &config.load,
            columns,
            types_sniffed: false,
            sources: &mut sources,
            run_id: config.run_id.clone(),
            resume: config.resume,
            goal: rows.map(Goal::Rows).or(config.duration.map(Goal::Time)),
            duration: config.duration,
            output_format: config.output_format,
            settings,
            documents: Documents::NotRecorded,
            stages: None,
        },
        signal,
    )
}

/// What to generate, the columns to ask the target for, and where the plan came from.
fn decide(
    config: &GenConfig,
    signal: &StopSignal,
) -> Result<(Design, Columns, &'static str), Unplanned> {
    let spec = config.spec.as_deref().map(Spec::read).transpose()?;
    let table = &config.load.table;
    let readings = plan::from_spec(&Spec::readings(), &mut no_keys)?;
    // The table `readings` (the default) is the built-in spec's: no catalog is asked, so such a
    // load meets an unreachable target in the sink's setup, with its retries and summary.
    if spec.is_none() && table.name == "readings" {
        let schema = readings.schema();
        return Ok((readings, Columns::Fixed(schema), "built-in readings spec"));
    }
    if let Target::Http(http) = &config.load.target {
        return decide_http(config, http, spec.as_ref(), readings);
    }
    let Target::Postgres(target) = &config.load.target else {
        let (design, source) = match &spec {
            Some(spec) => (plan::from_spec(spec, &mut no_keys)?, "spec"),
            None => (
                plan::from_spec(&Spec::readings(), &mut no_keys)?,
                "built-in readings spec",
            ),
        };
        let schema = design.schema();
        return Ok((design, Columns::Fixed(schema), source));
    };
    let mut reader = config
        .load
        .retry
        .run(
            Some(signal.stopping_flag()),
            || {
                let first = target.split_hosts().swap_remove(0);
                CatalogReader::connect(&pg::resolve(&first, config.load.connect_timeout)?)
            },
            |err, pause| {
                if !config.load.quiet {
                    eprintln!("loader: {err}; retrying in {:.1}s", pause.as_secs_f64());
                }
            },
        )
        .map_err(Unplanned::Target)?;
    let mut catalog = reader.table(table).map_err(Unplanned::Target)?;
    if let (None, Some(spec), true) = (&catalog, &spec, config.load.create) {
        // A whole-table spec creates its table with the types it names, then plans from the
        // catalog like any other table.
        let columns = spec
            .columns
            .iter()
            .map(|column| match &column.type_name {
                Some(type_name) => Ok((column.name.clone(), type_name.clone())),
                None => Err(SpecError(format!(
                    "spec: column `{}` needs `type` for --create",
                    column.name
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        reader.create(table, &columns).map_err(Unplanned::Target)?;
        catalog = reader.table(table).map_err(Unplanned::Target)?;
    }
    let mut keys = |table: &str, column: &str| {
        reader
            .keys(table, column)
            .map_err(|err| SpecError(format!("cannot read the keys of {table}({column}): {err}")))
    };
    Ok(match (catalog, &spec) {
        (Some(catalog), spec) => {
            return planned(catalog, spec.as_ref(), readings, table, &mut keys)
        }
        (None, Some(spec)) => {
            let design = plan::from_spec(spec, &mut keys)?;
            let schema = design.schema();
            (design, Columns::Fixed(schema), "spec")
        }
        (None, None) => {
            let schema = readings.schema();
            (readings, Columns::Fixed(schema), "built-in readings spec")
        }
    })
}

/// What to generate for an HTTP target: from its catalog (ClickHouse's `system.columns`,
/// CrateDB's `information_schema`, the index's mapping) with the spec over it; else from the spec
/// (from which `--create` makes a ClickHouse table, with its NULLs and arrays) or the built-in
/// `readings` spec. An index without a mapping and no spec stops: nothing says what its
/// documents hold.
fn decide_http(
    config: &GenConfig,
    http: &HttpTarget,
    spec: Option<&Spec>,
    readings: Design,
) -> Result<(Design, Columns, &'static str), Unplanned> {
    let table = &config.load.table;
    let client = || HttpClient::new(&http.single_host(0), &config.load.http);
    let catalog = match http.protocol {
        HttpProtocol::ClickHouse => {
            let rows = client()
                .and_then(|client| clickhouse_catalog(&client, http, table))
                .map_err(Unplanned::Target)?;
            (!rows.is_empty()).then(|| catalog::from_clickhouse(&rows))
        }
        HttpProtocol::Crate => {
            let (rows, key) = client()
                .and_then(|client| cratedb_catalog(&client, table))
                .map_err(Unplanned::Target)?;
            (!rows.is_empty()).then(|| catalog::from_cratedb(&rows, &key))
        }
        HttpProtocol::Elasticsearch | HttpProtocol::OpenSearch => client()
            .and_then(|client| elastic_mapping(&client, table))
            .map_err(Unplanned::Target)?
            .map(|mapping| catalog::from_elastic(&mapping))
            .filter(|catalog| !catalog.columns.is_empty()),
        HttpProtocol::Ndjson => None,
    };
    if let Some(catalog) = catalog {
        return planned(catalog, spec, readings, table, &mut no_keys);
    }
    let (design, source) = match spec {
        Some(spec) => (plan::from_spec(spec, &mut no_keys)?, "spec"),
        None if matches!(
            http.protocol,
            HttpProtocol::Elasticsearch | HttpProtocol::OpenSearch
        ) =>
        {
            return Err(SpecError(format!(
                "index {table} at {http} has no mapping (it does not exist, or maps no field): \
                 give --spec FILE to describe its documents (with --create to make the index), \
                 or name an index with a mapping"
            ))
            .into())
        }
        None => (readings, "built-in readings spec"),
    };
    if spec.is_some() && config.load.create && http.protocol == HttpProtocol::ClickHouse {
        // Only the spec knows which columns take NULL and which hold arrays: gen creates the
        // table on every host (each is a server of its own), and the sink finds it there.
        let statement = ddl::create_clickhouse_table(table, &design.clickhouse_columns()?);
        if !config.explain {
            for host in 0..http.hosts().len() {
                HttpClient::new(&http.single_host(host), &config.load.http)
                    .and_then(|client| clickhouse_execute(&client, http, table, &statement))
                    .map_err(Unplanned::Target)?;
            }
        }
    }
    let schema = design.schema();
    Ok((design, Columns::Fixed(schema), source))
}

/// The plan for a table its catalog describes: the built-in `readings` spec for a table with its
/// columns and no spec, else the catalog with the spec over it.
fn planned(
    catalog: catalog::Catalog,
    spec: Option<&Spec>,
    readings: Design,
    table: &TableName,
    keys: spec::KeyReader<'_>,
) -> Result<(Design, Columns, &'static str), Unplanned> {
    if spec.is_none() && is_readings(&catalog, &readings) {
        let schema = readings.schema();
        return Ok((readings, Columns::Fixed(schema), "built-in readings spec"));
    }
    let design = plan::from_catalog(&catalog, spec, &table.to_string(), keys)?;
    let names = design.names();
    let source = if spec.is_some() {
        "catalog and spec"
    } else {
        "catalog"
    };
    Ok((design, Columns::Named(names), source))
}

/// Whether a table has exactly the `readings` columns: the built-in spec fills it.
fn is_readings(catalog: &catalog::Catalog, readings: &Design) -> bool {
    let loaded: Vec<&catalog::CatalogColumn> = catalog
        .columns
        .iter()
        .filter(|c| !c.server_filled)
        .collect();
    loaded.len() == readings.plan.columns.len()
        && loaded
            .iter()
            .zip(&readings.plan.columns)
            .all(|(column, field)| {
                column.name == field.name && column.value_type.as_ref() == Some(&field.value_type)
            })
}

/// Hands out disjoint batches of ids: this shard's ids, in batch-sized blocks, to whichever worker
/// asks next.
#[derive(Debug)]
pub(crate) struct IdPlan {
    /// Ids this process loads, or `None` to run until stopped.
    rows_in_shard: Option<u64>,
    batch: u64,
    shard: Shard,
    next_block: AtomicU64,
}

/// One claimed batch: its sequence number and the shard-local positions it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub seq: u64,
    pub local: Range<u64>,
}

impl IdPlan {
    pub(crate) fn new(rows_in_shard: Option<u64>, batch: u64, shard: Shard) -> IdPlan {
        IdPlan {
            rows_in_shard,
            batch,
            shard,
            next_block: AtomicU64::new(0),
        }
    }

    /// Claims the next batch, or `None` when every id of the shard is handed out.
    pub(crate) fn claim(&self) -> Option<Claim> {
        let seq = self.next_block.fetch_add(1, Ordering::Relaxed);
        let start = seq.checked_mul(self.batch)?;
        let end = start.saturating_add(self.batch);
        let end = match self.rows_in_shard {
            Some(total) if start >= total => return None,
            Some(total) => end.min(total),
            None => end,
        };
        Some(Claim {
            seq,
            local: start..end,
        })
    }

    /// The shard this plan covers.
    pub(crate) fn shard(&self) -> Shard {
        self.shard
    }
}

/// Builds one [`GenSource`] per worker, all drawing from one [`IdPlan`] under one rate limit.
#[derive(Debug)]
pub(crate) struct GenSourceFactory {
    table: Arc<TablePlan>,
    plan: IdPlan,
    /// What `--resume` skips: the batches committed before.
    committed: Committed,
    seed: u64,
    batch: usize,
    rate: Option<RateLimit>,
    /// `--duration`: a wait for the rate ends when it has passed.
    duration: Option<Duration>,
    signal: Arc<StopSignal>,
}

impl SourceFactory for GenSourceFactory {
    fn finish(self: Box<Self>) -> Result<SourceSummary, SourceError> {
        let mut summary = SourceSummary {
            skipped_batches: self.committed.len() as u64,
            ..SourceSummary::default()
        };
        for batch in self.committed.batches() {
            summary.skipped_rows += batch.rows + batch.skipped;
            summary.skipped_rejected += batch.rejected;
        }
        Ok(summary)
    }

    fn open(&self, _worker: usize) -> Result<Box<dyn Source + '_>, SourceError> {
        Ok(Box::new(GenSource {
            factory: self,
            batch: TableBatch::with_capacity(Arc::clone(&self.table), self.seed, self.batch),
            deadline: None,
        }))
    }
}

/// Gen mode's [`SourcePlan`]: the columns to generate, decided before the target was prepared.
#[derive(Debug)]
pub(crate) struct GenPlan {
    pub plan: Arc<TablePlan>,
    pub rows_in_shard: Option<u64>,
    pub batch: usize,
    pub shard: Shard,
    pub seed: u64,
    /// Rows per second over all workers.
    pub rate: Option<f64>,
    /// `--duration`, which also ends a wait for the rate.
    pub duration: Option<Duration>,
    /// Ends a wait for the rate when the load stops.
    pub signal: Arc<StopSignal>,
}

impl SourcePlan for GenPlan {
    fn start(
        &mut self,
        _schema: &Schema,
        committed: Committed,
        _workers: usize,
    ) -> Result<Box<dyn SourceFactory + '_>, SourceError> {
        Ok(Box::new(GenSourceFactory {
            table: Arc::clone(&self.plan),
            committed,
            plan: IdPlan::new(self.rows_in_shard, self.batch as u64, self.shard),
            seed: self.seed,
            batch: self.batch,
            rate: self.rate.map(RateLimit::new),
            duration: self.duration,
            signal: Arc::clone(&self.signal),
        }))
    }
}

/// One worker's generator: claims ids and fills its own reused batch.
struct GenSource<'a> {
    factory: &'a GenSourceFactory,
    batch: TableBatch,
    /// The end of `--duration`, counted from the first batch asked for: the moment the engine's
    /// clock starts, give or take the time to call this.
    deadline: Option<Instant>,
}

impl Source for GenSource<'_> {
    fn next_batch(&mut self) -> Result<Option<&dyn Batch>, SourceError> {
        let GenSourceFactory {
            plan,
            committed,
            rate,
            duration,
            signal,
            batch,
            ..
        } = self.factory;
        if self.deadline.is_none() {
            self.deadline = duration.map(|duration| Instant::now() + duration);
        }
        let deadline = self.deadline;
        // The slot first (a whole batch's), then the ids: a wait cut short by a stop must not
        // leave a hole in the ids loaded.
        if let Some(rate) = rate {
            let past_deadline = || deadline.is_some_and(|at| Instant::now() >= at);
            if !rate.wait(*batch as u32, || signal.is_stopping() || past_deadline())
                || past_deadline()
            {
                return Ok(None);
            }
        }
        // Batches committed by the run being resumed are skipped: the same seed, batch size
        // and shard give the same batch numbers.
        let claim = loop {
            match plan.claim() {
                None => return Ok(None),
                Some(claim) if committed.get(claim.seq).is_some() => continue,
                Some(claim) => break claim,
            }
        };
        self.batch.fill(claim.seq, claim.local, plan.shard());
        Ok(Some(&self.batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_cover_the_shard_exactly_once() {
        let plan = IdPlan::new(Some(2_500), 1_000, Shard::WHOLE);
        let claims: Vec<Claim> = std::iter::from_fn(|| plan.claim()).collect();
        let ranges: Vec<Range<u64>> = claims.iter().map(|c| c.local.clone()).collect();
        assert_eq!(ranges, [0..1_000, 1_000..2_000, 2_000..2_500]);
        assert_eq!(plan.claim(), None, "an exhausted plan stays exhausted");
    }

    /// The hot path of gen mode: once a worker's batch and output buffer have grown to their
    /// size, filling a `readings` batch and encoding it in any format allocates nothing at all.
    #[test]
    fn filling_and_encoding_reused_readings_buffers_allocate_nothing() {
        const ROWS: u64 = 1000;
        let mut batch = readings_batch(7, ROWS as usize);
        let mut out = Vec::new();
        let round = |seq: u64, batch: &mut TableBatch, out: &mut Vec<u8>| {
            batch.fill(seq, seq * ROWS..(seq + 1) * ROWS, Shard::WHOLE);
            for format in crate::rows::RowFormat::ALL {
                out.clear();
                batch.encode(0..batch.len(), format, out).unwrap();
            }
        };
        // Later ids are longer: give `out` the room of the last round's too.
        round(0, &mut batch, &mut out);
        out.reserve(out.capacity());
        let counting =
            allocation_counter::measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(1))));
        assert_eq!(
            counting.count_total, 1,
            "the counting allocator is installed"
        );
        let measured = allocation_counter::measure(|| {
            for seq in 1..100 {
                round(seq, &mut batch, &mut out);
            }
        });
        assert_eq!(
            measured.count_total, 0,
            "99,000 rows × 7 formats: {measured:?}"
        );
    }

    #[test]
    fn readings_rows_keep_their_ranges() {
        let mut batch = readings_batch(1, 10_000);
        batch.fill(0, 0..10_000, Shard::WHOLE);
        let mut out = Vec::new();
        batch
            .encode(0..10_000, crate::rows::RowFormat::Ndjson, &mut out)
            .unwrap();
        let mut locations = std::collections::BTreeSet::new();
        for (id, line) in String::from_utf8(out).unwrap().lines().enumerate() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(row["id"], id as u64);
            assert!((0..10_000).contains(&row["sensor_id"].as_i64().unwrap()));
            assert!((-20.0..40.0).contains(&row["temperature"].as_f64().unwrap()));
            assert!((0.0..100.0).contains(&row["humidity"].as_f64().unwrap()));
            assert!(["ok", "warn", "fail"].contains(&row["status"].as_str().unwrap()));
            locations.insert(row["location"].as_str().unwrap().to_string());
        }
        assert_eq!(locations.len(), 8);
    }

    #[test]
    fn unbounded_plans_keep_going() {
        let plan = IdPlan::new(None, 10, Shard::WHOLE);
        assert_eq!(plan.claim().unwrap().local, 0..10);
        assert_eq!(plan.claim().unwrap().local, 10..20);
    }
}
