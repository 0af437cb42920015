//! The final report: one [`Report`] built from the engine's outcome, printed as a short summary and
//! written with `--report FILE` as JSON, CSV, Markdown or SVG (by extension) through one small
//! [`ReportWriter`] trait.

pub(crate) mod human;
mod svg;
mod verdict;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::encode;
use crate::engine::{Outcome as EngineOutcome, Settlement, SourceSummary, Throughput};
use crate::figures;
use crate::pg::activity::ServerTime;
use crate::process::ProcessCost;
use crate::reject::RejectLog;
use crate::sink::http::clickhouse_time::ClickHouseTime;
use crate::sink::http::elastic_time::WritePoolTime;
use crate::stats::{add_at, LatencyBucket, LatencySummary, Stats};
use svg::SvgReport;
pub(crate) use svg::{svg_bars, svg_probe, ProbePicture, ProbeRoundPoint};
use verdict::{ClientSide, Verdict};

/// The retry kinds of requests the server refused for now (the HTTP sinks' failures): HTTP 429,
/// `_bulk` items refused with 429, ClickHouse's busy codes.
const THROTTLED: [&str; 3] = ["throttled", "item_throttled", "clickhouse_busy"];

/// What a server watch saw during the load, by target.
#[derive(Debug, Clone)]
pub(crate) enum ServerFigures {
    Postgres(ServerTime),
    ClickHouse(ClickHouseTime),
    Elastic(WritePoolTime),
}

/// Buckets of the batch-latency histogram in the report.
const LATENCY_BUCKETS: usize = 40;

/// Exit code of a load that finished with rejected rows.
pub(crate) const EXIT_REJECTS: u8 = 1;
/// Exit code of a usage or configuration error.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code of a fatal runtime error.
pub(crate) const EXIT_FATAL: u8 = 3;
/// Exit code after Ctrl-C or SIGTERM.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// How a load ended; decides the exit code: 0 all loaded, 1 finished with rejected rows, 2 usage
/// or config error, 3 fatal runtime error, 130 interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Every row loaded.
    Completed,
    /// A fatal error stopped the load.
    Failed,
    /// Ctrl-C or SIGTERM stopped the load.
    Interrupted,
}

impl Outcome {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Outcome::Completed => 0,
            Outcome::Failed => EXIT_FATAL,
            Outcome::Interrupted => EXIT_INTERRUPTED,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        })
    }
}

/// Everything a load reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub loader_version: &'static str,
    /// The commit the binary was built from (`unknown` outside a git checkout).
    pub loader_commit: &'static str,
    /// When the load started, RFC 3339 in UTC.
    pub started_at: String,
    /// The machine loader ran on.
    pub host: String,
    /// The target server's version, where it tells it (PostgreSQL's `server_version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    pub mode: &'static str,
    pub outcome: Outcome,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows the target stored, by its own count (PostgreSQL's `COPY n`, `INSERT 0 n`).
    pub rows_loaded: u64,
    /// Rows sent and acknowledged: `rows_loaded` plus `rows_skipped_by_server`.
    pub rows_sent: u64,
    /// Rows sent that the server did not store: a trigger returning NULL, a `DO INSTEAD NOTHING`
    /// rule.
    pub rows_skipped_by_server: u64,
    /// Rows rejected for their data; each is a line of `reject_file`.
    pub rows_rejected: u64,
    /// Rejected rows by kind (`parse`, `data`, `constraint`, `item`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rejects: BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_file: Option<String>,
    /// Copy mode into PostgreSQL columns typed by its sample: the rows the target refused a value
    /// of (the `data` rejects), which disagreed with the types sniffed from the sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_disagreeing_with_sample: Option<u64>,
    /// What `--resume` skipped because an earlier attempt of the run committed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<SourceSummary>,
    pub rows_per_s: f64,
    pub bytes_sent: u64,
    pub mb_per_s: f64,
    pub batches: u64,
    pub elapsed_s: f64,
    pub batch_latency_ms: LatencySummary,
    /// The batch latencies in log-spaced buckets from the smallest to the largest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batch_latency_histogram: Vec<LatencyBucket>,
    /// Rows loaded over time: `[seconds, rows so far, rows/s in the interval]`.
    #[serde(skip_serializing_if = "Throughput::is_empty")]
    pub throughput: Throughput,
    pub retries: BTreeMap<&'static str, u64>,
    pub errors: BTreeMap<&'static str, u64>,
    pub workers: Vec<WorkerReport>,
    /// Rows by host, for a target with several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostReport>,
    /// Batches sent again to another host after their COMMIT was in doubt on a failed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<Settlement>,
    /// The figures of the mode's own stages in front of the workers (ingest: documents, chunks,
    /// requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<serde_json::Value>,
    /// The same, as lines of the human summary.
    #[serde(skip)]
    pub stage_lines: Vec<String>,
    pub process: ProcessCost,
    /// Where the workers spent the load, over all of them.
    pub workers_time: WorkersTime,
    /// Where the server's backends spent it (PostgreSQL targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<ServerTime>,
    /// What a ClickHouse server did for the load: its INSERTs, throttling, merges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseTime>,
    /// What an Elasticsearch or OpenSearch server's write thread pools and indexing did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<WritePoolTime>,
    /// What bound the load, from both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The settings of the run, secrets redacted.
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// The workers' time, summed over them: producing batches (generating, parsing, waiting for input
/// or `--rate`) and writing them (sending, the server's work, commits, retries).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct WorkersTime {
    pub producing_s: f64,
    pub writing_s: f64,
}

impl WorkersTime {
    /// The share of the two spent producing (0 when the workers did neither).
    fn producing_share(&self) -> f64 {
        let total = self.producing_s + self.writing_s;
        if total > 0.0 {
            self.producing_s / total
        } else {
            0.0
        }
    }
}

/// One host's share.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostReport {
    pub host: String,
    pub rows: u64,
}

/// One worker's share.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkerReport {
    pub worker: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<usize>,
    pub rows: u64,
    pub batches: u64,
    pub rows_per_s: f64,
    pub batch_latency_ms: LatencySummary,
}

impl Report {
    /// Builds the report of a finished (or failed, or interrupted) load; `setup` holds the retries
    /// and errors of preparing the target before the workers started; `resumed` what `--resume`
    /// skipped (its rejects also make the exit code 1). The rows rejected are the reject log's, so
    /// that `rows_rejected`, the counts by kind and the reject file's lines agree on every ending:
    /// the workers' own counts leave out the rejects of a batch that failed after they were
    /// written (the one that went past `--max-rejects`, among others).
    pub(crate) fn new(
        mode: &'static str,
        engine: &EngineOutcome,
        setup: &Stats,
        rejects: &RejectLog,
        interrupted: bool,
        resumed: Option<SourceSummary>,
        config: serde_json::Map<String, serde_json::Value>,
    ) -> Report {
        let mut total = setup.clone();
        for worker in &engine.workers {
            total += &worker.stats;
        }
        let outcome = match (&engine.failure, interrupted) {
            (Some(_), _) => Outcome::Failed,
            (None, true) => Outcome::Interrupted,
            (None, false) => Outcome::Completed,
        };
        let seconds = engine.elapsed.as_secs_f64();
        let per_second = |value: u64| figures::per_second(value, seconds);
        let earlier_rejects = resumed.map_or(0, |resumed| resumed.skipped_rejected);
        let rejected = rejects.count();
        let exit_code = match outcome {
            Outcome::Completed if rejected + earlier_rejects > 0 => EXIT_REJECTS,
            _ => outcome.exit_code(),
        };
        Report {
            loader_version: env!("CARGO_PKG_VERSION"),
            loader_commit: env!("LOADER_COMMIT"),
            started_at: String::new(),
            host: host_name(),
            server_version: None,
            mode,
            outcome,
            exit_code,
            error: engine.failure.clone(),
            rows_loaded: total.rows,
            rows_sent: total.rows + total.skipped,
            rows_skipped_by_server: total.skipped,
            rows_rejected: rejected,
            rejects: rejects.by_kind(),
            reject_file: (rejected > 0).then(|| rejects.path().display().to_string()),
            rows_disagreeing_with_sample: None,
            resumed,
            rows_per_s: per_second(total.rows),
            bytes_sent: total.bytes,
            mb_per_s: per_second(total.bytes) / 1_000_000.0,
            batches: total.batches,
            elapsed_s: seconds,
            batch_latency_ms: total.batch_latency.summary(),
            batch_latency_histogram: total.batch_latency.buckets(LATENCY_BUCKETS),
            throughput: engine.throughput.clone(),
            retries: total.retries.clone(),
            errors: total.errors.clone(),
            workers: engine
                .workers
                .iter()
                .map(|worker| WorkerReport {
                    worker: worker.worker,
                    core: worker.core,
                    rows: worker.stats.rows,
                    batches: worker.stats.batches,
                    rows_per_s: figures::per_second(
                        worker.stats.rows,
                        worker.elapsed.as_secs_f64(),
                    ),
                    batch_latency_ms: worker.stats.batch_latency.summary(),
                })
                .collect(),
            hosts: Vec::new(),
            moved: None,
            stages: None,
            stage_lines: Vec::new(),
            process: ProcessCost::measure(engine.peak_threads),
            workers_time: WorkersTime {
                producing_s: engine
                    .workers
                    .iter()
                    .map(|worker| worker.producing.as_secs_f64())
                    .sum(),
                writing_s: engine
                    .workers
                    .iter()
                    .map(|worker| worker.writing.as_secs_f64())
                    .sum(),
            },
            server_time: None,
            clickhouse: None,
            elasticsearch: None,
            verdict: None,
            config,
        }
    }

    /// Counts the rows that disagreed with the sample's types, in a load into columns of those
    /// types: the values the target refused.
    pub(crate) fn count_disagreements_with_sample(&mut self) {
        self.rows_disagreeing_with_sample = Some(self.rejects.get("data").copied().unwrap_or(0));
    }

    /// Adds what the server's watch saw, and the verdict it gives with loader's own figures.
    pub(crate) fn add_server(&mut self, server: ServerFigures) {
        let cpu_seconds = self.process.user_cpu_s + self.process.system_cpu_s;
        let client = ClientSide {
            producing_share: self.workers_time.producing_share(),
            cpu_cores: if self.elapsed_s > 0.0 {
                cpu_seconds / self.elapsed_s
            } else {
                0.0
            },
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            threads: self.workers.len(),
            rows: self.rows_loaded,
            commits: self.batches,
            throttled_retries: THROTTLED
                .iter()
                .filter_map(|kind| self.retries.get(kind))
                .sum(),
        };
        self.verdict = Some(match server {
            ServerFigures::Postgres(server) => {
                let verdict = verdict::judge(&server, &client);
                self.server_time = Some(server);
                verdict
            }
            ServerFigures::ClickHouse(server) => {
                let verdict = verdict::judge_clickhouse(&server, &client);
                self.clickhouse = Some(server);
                verdict
            }
            ServerFigures::Elastic(pool) => {
                let verdict = verdict::judge_elastic(&pool, &client);
                self.elasticsearch = Some(pool);
                verdict
            }
        });
    }

    /// Adds the rows per host of a target with several (`names`, indexed as the workers counted
    /// them), and how the batches moved between hosts while in doubt were settled: rows found on
    /// two hosts are counted twice, so that `rows_loaded` equals the hosts' counts.
    pub(crate) fn add_hosts(
        &mut self,
        names: &[String],
        engine: &EngineOutcome,
        settlement: Settlement,
    ) {
        let mut rows = vec![0; names.len()];
        for worker in &engine.workers {
            for (host, &count) in worker.stats.rows_by_host.iter().enumerate() {
                add_at(&mut rows, host, count);
            }
        }
        for &(host, count) in &settlement.duplicated_by_host {
            add_at(&mut rows, host, count);
        }
        self.rows_loaded += settlement.duplicated_rows;
        self.rows_per_s = figures::per_second(self.rows_loaded, self.elapsed_s);
        self.hosts = names
            .iter()
            .zip(rows)
            .map(|(host, rows)| HostReport {
                host: host.clone(),
                rows,
            })
            .collect();
        if settlement.moved_batches > 0 {
            self.moved = Some(settlement);
        }
    }

    /// Writes the report to `path` in the format its extension names (JSON for an unknown one;
    /// the flags' check refuses those before the load).
    pub(crate) fn write_to(&self, path: &Path) -> io::Result<()> {
        let writer: &dyn ReportWriter = match ReportFormat::of(path) {
            Some(ReportFormat::Csv) => &CsvReport,
            Some(ReportFormat::Markdown) => &MarkdownReport,
            Some(ReportFormat::Svg) => &SvgReport,
            Some(ReportFormat::Json) | None => &JsonReport,
        };
        let mut out = BufWriter::new(File::create(path)?);
        writer.write(self, &mut out)?;
        out.flush()
    }

    /// A setting from `config` as text (empty when absent).
    fn setting(&self, key: &str) -> String {
        match self.config.get(key) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(value) => value.to_string(),
            None => String::new(),
        }
    }
}

/// This machine's host name, empty when it cannot be read.
fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default()
}

/// The formats a report file can have, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    Json,
    Csv,
    Markdown,
    Svg,
}

impl ReportFormat {
    /// The format `path`'s extension names: `.json`, `.csv`, `.md` (`.markdown`), `.svg`.
    pub(crate) fn of(path: &Path) -> Option<ReportFormat> {
        match path.extension()?.to_str()? {
            "json" => Some(ReportFormat::Json),
            "csv" => Some(ReportFormat::Csv),
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "svg" => Some(ReportFormat::Svg),
            _ => None,
        }
    }
}

/// One report file format.
pub(crate) trait ReportWriter {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// The whole report as pretty JSON.
pub(crate) struct JsonReport;

impl ReportWriter for JsonReport {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    }
}

/// The headline figures as one CSV record under a header line.
pub(crate) struct CsvReport;

impl ReportWriter for CsvReport {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let fields = headline(report);
        let header: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
        writeln!(out, "{}", header.join(","))?;
        let mut line = Vec::new();
        for (i, (_, value)) in fields.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            encode::csv_field(&mut line, value.as_bytes());
        }
        line.push(b'\n');
        out.write_all(&line)
    }
}

/// The headline figures and the per-worker table in Markdown.
pub(crate) struct MarkdownReport;

impl ReportWriter for MarkdownReport {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "# loader {} report\n\n| metric | value |\n|---|---|",
            report.mode
        )?;
        for (name, value) in headline(report) {
            writeln!(out, "| {name} | {} |", value.replace('|', "\\|"))?;
        }
        writeln!(out, "\n| worker | core | rows | batches | rows/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|")?;
        for worker in &report.workers {
            let core = worker.core.map_or("-".to_string(), |core| core.to_string());
            writeln!(
                out,
                "| {} | {core} | {} | {} | {:.0} | {:.2} | {:.2} |",
                worker.worker,
                worker.rows,
                worker.batches,
                worker.rows_per_s,
                worker.batch_latency_ms.p50,
                worker.batch_latency_ms.p99
            )?;
        }
        if !report.hosts.is_empty() {
            writeln!(out, "\n| host | rows |\n|---|---|")?;
            for host in &report.hosts {
                writeln!(out, "| {} | {} |", host.host, host.rows)?;
            }
        }
        Ok(())
    }
}

/// The scalar figures shared by the CSV and Markdown reports, in order.
fn headline(report: &Report) -> Vec<(&'static str, String)> {
    let latency = &report.batch_latency_ms;
    let process = &report.process;
    let server = report.server_time.as_ref();
    let clickhouse = report.clickhouse.as_ref();
    let share = |pick: fn(&crate::pg::activity::Shares) -> f64| {
        server.map_or_else(String::new, |s| format!("{:.3}", pick(&s.shares)))
    };
    vec![
        ("loader_version", report.loader_version.to_string()),
        ("loader_commit", report.loader_commit.to_string()),
        ("started_at", report.started_at.clone()),
        ("host", report.host.clone()),
        (
            "server_version",
            report.server_version.clone().unwrap_or_default(),
        ),
        ("mode", report.mode.to_string()),
        ("outcome", report.outcome.to_string()),
        ("exit_code", report.exit_code.to_string()),
        ("error", report.error.clone().unwrap_or_default()),
        ("target", report.setting("target")),
        ("workers", report.setting("threads")),
        ("batch", report.setting("batch")),
        ("rows_loaded", report.rows_loaded.to_string()),
        ("rows_sent", report.rows_sent.to_string()),
        (
            "rows_skipped_by_server",
            report.rows_skipped_by_server.to_string(),
        ),
        ("rows_rejected", report.rows_rejected.to_string()),
        (
            "rows_disagreeing_with_sample",
            report
                .rows_disagreeing_with_sample
                .map(|rows| rows.to_string())
                .unwrap_or_default(),
        ),
        ("rows_per_s", format!("{:.1}", report.rows_per_s)),
        ("bytes_sent", report.bytes_sent.to_string()),
        ("mb_per_s", format!("{:.3}", report.mb_per_s)),
        ("batches", report.batches.to_string()),
        ("elapsed_s", format!("{:.3}", report.elapsed_s)),
        ("latency_p50_ms", format!("{:.3}", latency.p50)),
        ("latency_p90_ms", format!("{:.3}", latency.p90)),
        ("latency_p99_ms", format!("{:.3}", latency.p99)),
        ("latency_p999_ms", format!("{:.3}", latency.p999)),
        ("latency_max_ms", format!("{:.3}", latency.max)),
        ("retries", report.retries.values().sum::<u64>().to_string()),
        ("errors", report.errors.values().sum::<u64>().to_string()),
        ("user_cpu_s", format!("{:.3}", process.user_cpu_s)),
        ("system_cpu_s", format!("{:.3}", process.system_cpu_s)),
        ("peak_rss_mb", format!("{:.1}", process.peak_rss_mb)),
        (
            "voluntary_context_switches",
            process.voluntary_context_switches.to_string(),
        ),
        (
            "involuntary_context_switches",
            process.involuntary_context_switches.to_string(),
        ),
        ("process_threads", process.threads.to_string()),
        (
            "bound_by",
            report
                .verdict
                .as_ref()
                .map_or_else(String::new, Verdict::line),
        ),
        ("backend_cpu_share", share(|s| s.cpu)),
        ("backend_client_share", share(|s| s.client)),
        ("backend_commit_share", share(|s| s.commit)),
        ("backend_lock_share", share(|s| s.lock)),
        ("backend_io_share", share(|s| s.io)),
        (
            "wal_bytes",
            server
                .and_then(|s| s.wal_bytes)
                .map_or_else(String::new, |b| b.to_string()),
        ),
        (
            "wal_syncs",
            server
                .and_then(|s| s.wal_syncs)
                .map_or_else(String::new, |n| n.to_string()),
        ),
        (
            "clickhouse_executing_share",
            clickhouse.map_or_else(String::new, |c| format!("{:.3}", c.executing_share)),
        ),
        (
            "clickhouse_delayed_inserts",
            clickhouse.map_or_else(String::new, |c| c.delayed_inserts.to_string()),
        ),
        (
            "clickhouse_rejected_inserts",
            clickhouse.map_or_else(String::new, |c| c.rejected_inserts.to_string()),
        ),
        (
            "write_pool_rejected",
            report
                .elasticsearch
                .as_ref()
                .map_or_else(String::new, |pool| pool.rejected.to_string()),
        ),
    ]
}
