//! `loader tune`: a bounded search for the fastest `--threads`, `--batch` and `--commit-every`
//! against the user's own PostgreSQL target. Each setting of the grid gets an equal share of
//! `--budget` as a gen load (the same engine, sinks and report as any load) into a scratch copy of
//! the table, `loader_tune_scratch` beside it (created `LIKE` the table, or as `readings` when
//! there is no such table, and dropped after, with its ledger rows). Every trial's report gives
//! rows/s, p99 batch latency, loader's CPU and the verdict on what bound it; the knee is the
//! cheapest setting (fewest threads, then smallest batch, then fewest batches per commit) within
//! 5 % of the best, and its command is printed.

mod report;

pub(crate) use report::EXTENSIONS as REPORT_EXTENSIONS;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::engine::StopSignal;
use crate::failure::Failure;
use crate::gen::{self, GenConfig};
use crate::pg::{self, PgTarget};
use crate::report::{EXIT_FATAL, EXIT_INTERRUPTED};
use crate::run::{finish_local, start_local};
use crate::sql::{quote_literal, TableName};
use crate::target::Target;

/// The shortest trial: shorter ones measure the connecting more than the loading.
pub(crate) const MIN_TRIAL: Duration = Duration::from_secs(2);
/// Settings within this share of the best rows/s are as good as the best.
const KNEE_SHARE: f64 = 0.95;
/// The scratch table's name, in the table's schema.
const SCRATCH_TABLE: &str = "loader_tune_scratch";

/// Settings of `loader tune`.
#[derive(Debug, Clone)]
pub(crate) struct TuneConfig {
    /// The trials' gen settings: target, table, TLS, retries, seed.
    pub gen: GenConfig,
    /// Each trial's duration.
    pub trial: Duration,
    pub threads: Vec<usize>,
    pub batches: Vec<usize>,
    pub commit_every: Vec<usize>,
}

/// One setting tried and what it gave.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Trial {
    pub threads: usize,
    pub batch: usize,
    pub commit_every: usize,
    pub rows_per_s: f64,
    pub p99_ms: f64,
    /// loader's CPU seconds per second of the trial.
    pub cpu_cores: f64,
    /// The verdict's line, when the server was sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_by: Option<String>,
}

impl Trial {
    /// The knobs as flags.
    fn flags(&self) -> String {
        format!(
            "--threads {} --batch {} --commit-every {}",
            self.threads, self.batch, self.commit_every
        )
    }
}

/// What a search found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Search {
    pub trial_s: f64,
    pub trials: Vec<Trial>,
    /// Index in `trials` of the best rows/s, and of the knee.
    pub best: usize,
    pub knee: usize,
    /// The command the knee recommends.
    pub command: String,
}

/// Runs `loader tune` and returns the exit code.
pub(crate) fn run(config: &TuneConfig, signal: &Arc<StopSignal>) -> u8 {
    let load = &config.gen.load;
    let (target, local) = match &load.target {
        Target::Local => match start_local(load.quiet) {
            Ok(cluster) => (cluster.target(), Some(cluster)),
            Err(message) => {
                eprintln!("loader: error: {message}");
                return EXIT_FATAL;
            }
        },
        Target::Postgres(target) => (target.clone(), None),
        other => {
            eprintln!("loader: error: tune measures PostgreSQL targets, not {other}");
            return EXIT_FATAL;
        }
    };
    let code = search_and_report(config, &target, signal);
    let stopped = local.map_or(0, |cluster| finish_local(cluster, load.keep, load.quiet));
    code.max(stopped)
}

/// Prepares the scratch table, runs every trial, drops the table and prints what was found.
fn search_and_report(config: &TuneConfig, target: &PgTarget, signal: &Arc<StopSignal>) -> u8 {
    let load = &config.gen.load;
    let scratch = TableName {
        schema: load.table.schema.clone(),
        name: SCRATCH_TABLE.into(),
    };
    if let Err(err) = create_scratch(target, &load.table, &scratch, load.connect_timeout) {
        eprintln!("loader: error: cannot prepare the scratch table {scratch}: {err}");
        return EXIT_FATAL;
    }
    let trials = run_trials(config, target, &scratch, signal);
    if let Err(err) = drop_scratch(target, &scratch, load.connect_timeout) {
        eprintln!("loader: warning: cannot drop the scratch table {scratch}: {err}");
    }
    let trials = match trials {
        Ok(trials) => trials,
        Err(code) => return code,
    };
    let search = judge(config, trials);
    if !load.quiet {
        crate::report::human::print_stdout(&report::table(&search));
    }
    for path in &load.report {
        if let Err(err) = report::write_to(&search, path) {
            eprintln!(
                "loader: error: cannot write the report to {}: {err}",
                path.display()
            );
            return EXIT_FATAL;
        }
    }
    if signal.is_interrupted() {
        EXIT_INTERRUPTED
    } else {
        0
    }
}

/// Every setting of the grid, each a gen load of one trial's length into `scratch`. A trial that
/// fails stops the search with its exit code (its report's error is already printed); a signal
/// ends it with the trials done so far.
fn run_trials(
    config: &TuneConfig,
    target: &PgTarget,
    scratch: &TableName,
    signal: &Arc<StopSignal>,
) -> Result<Vec<Trial>, u8> {
    let settings: Vec<(usize, usize, usize)> = config
        .threads
        .iter()
        .flat_map(|&threads| {
            config.batches.iter().flat_map(move |&batch| {
                config
                    .commit_every
                    .iter()
                    .map(move |&commit_every| (threads, batch, commit_every))
            })
        })
        .collect();
    let mut trials = Vec::with_capacity(settings.len());
    for (i, &(threads, batch, commit_every)) in settings.iter().enumerate() {
        if signal.is_interrupted() {
            break;
        }
        let mut gen = config.gen.clone();
        gen.duration = Some(config.trial);
        gen.load.target = Target::Postgres(target.clone());
        gen.load.table = scratch.clone();
        gen.load.create = true;
        gen.load.truncate = true;
        gen.load.threads = threads;
        gen.load.batch = batch;
        gen.load.commit_every = commit_every;
        gen.load.quiet = true;
        gen.load.report = Vec::new();
        let (code, report) = gen::run_with_report(&gen, signal);
        let Some(report) = report.filter(|report| report.error.is_none()) else {
            return Err(code.max(EXIT_FATAL));
        };
        let cpu_seconds = report.process.user_cpu_s + report.process.system_cpu_s;
        let trial = Trial {
            threads,
            batch,
            commit_every,
            rows_per_s: report.rows_per_s,
            p99_ms: report.batch_latency_ms.p99,
            cpu_cores: cpu_seconds / report.elapsed_s.max(f64::EPSILON),
            bound_by: report.verdict.as_ref().map(|verdict| verdict.line()),
        };
        if !config.gen.load.quiet {
            eprintln!(
                "loader: tune {}/{}: {}: {} rows/s, p99 {:.1} ms",
                i + 1,
                settings.len(),
                trial.flags(),
                crate::figures::count(trial.rows_per_s as u64),
                trial.p99_ms
            );
        }
        trials.push(trial);
    }
    Ok(trials)
}

/// Finds the best setting and the knee, and the command to run.
fn judge(config: &TuneConfig, trials: Vec<Trial>) -> Search {
    let best = (0..trials.len())
        .max_by(|&a, &b| trials[a].rows_per_s.total_cmp(&trials[b].rows_per_s))
        .unwrap_or(0);
    let good_enough = trials.get(best).map_or(0.0, |t| t.rows_per_s * KNEE_SHARE);
    // The grid runs cheapest first: fewest threads, then smallest batch, then fewest batches per
    // commit.
    let knee = trials
        .iter()
        .position(|trial| trial.rows_per_s >= good_enough)
        .unwrap_or(best);
    let load = &config.gen.load;
    let command = trials.get(knee).map_or_else(String::new, |trial| {
        format!(
            "loader --target {} --table {} {}",
            shell_word(&load.target.to_string()),
            shell_word(&load.table.to_string()),
            trial.flags()
        )
    });
    Search {
        trial_s: config.trial.as_secs_f64(),
        trials,
        best,
        knee,
        command,
    }
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:@=,+%".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Creates `scratch` like `table` (its columns, defaults, constraints and indexes: what a load
/// into it pays for), or leaves it to the trials' `--create` (a `readings` table) when `table`
/// does not exist.
fn create_scratch(
    target: &PgTarget,
    table: &TableName,
    scratch: &TableName,
    connect_timeout: Duration,
) -> Result<(), Failure> {
    let resolved = pg::resolve(target, connect_timeout)?;
    let mut client = pg::connect(&resolved)?;
    let failed = |err: postgres::Error| pg::classify(&err, &resolved, Some(table));
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {}", scratch.quoted()))
        .map_err(failed)?;
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.quoted()])
        .map_err(failed)?
        .get(0);
    if exists {
        client
            .batch_execute(&format!(
                "CREATE TABLE {} (LIKE {} INCLUDING ALL)",
                scratch.quoted(),
                table.quoted()
            ))
            .map_err(failed)?;
    }
    Ok(())
}

/// Drops `scratch` and its rows in the ledger.
fn drop_scratch(
    target: &PgTarget,
    scratch: &TableName,
    connect_timeout: Duration,
) -> Result<(), Failure> {
    let resolved = pg::resolve(target, connect_timeout)?;
    let mut client = pg::connect(&resolved)?;
    let ledger = pg::ledger_table(scratch);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {}; DO $$ BEGIN IF to_regclass({}) IS NOT NULL THEN \
             DELETE FROM {} WHERE target_table = {}; END IF; END $$",
            scratch.quoted(),
            quote_literal(&ledger.quoted()),
            ledger.quoted(),
            quote_literal(&scratch.to_string()),
        ))
        .map_err(|err| pg::classify(&err, &resolved, Some(scratch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(threads: usize, batch: usize, rows_per_s: f64) -> Trial {
        Trial {
            threads,
            batch,
            commit_every: 1,
            rows_per_s,
            p99_ms: 1.0,
            cpu_cores: 0.5,
            bound_by: None,
        }
    }

    #[test]
    fn the_knee_is_the_cheapest_setting_within_five_percent_of_the_best() {
        let args = ["loader", "--target", "postgres://u@h/db"];
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(args).unwrap();
        let gen = GenConfig::from_args(&cli.gen, &|_| None).unwrap();
        let config = TuneConfig {
            gen,
            trial: MIN_TRIAL,
            threads: vec![1, 2, 4],
            batches: vec![1000],
            commit_every: vec![1],
        };
        let search = judge(
            &config,
            vec![
                trial(1, 1000, 100.0),
                trial(2, 1000, 196.0),
                trial(4, 1000, 200.0),
            ],
        );
        assert_eq!((search.best, search.knee), (2, 1));
        assert_eq!(
            search.command,
            "loader --target postgres://u@h:5432/db --table readings --threads 2 --batch 1000 \
             --commit-every 1"
        );
    }

    #[test]
    fn words_that_need_quotes_get_them() {
        assert_eq!(shell_word("postgres://u@h:5/db"), "postgres://u@h:5/db");
        assert_eq!(shell_word("host=h user=u"), "'host=h user=u'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
