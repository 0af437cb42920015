//! The validated configuration the engine runs from: built from the clap types in [`crate::cli`],
//! checked once, so that every bad flag gets one clear line and exit code 2 before anything starts.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::{CopyArgs, GenArgs, InputFormat, LoadArgs, Method, OutputFormat};
use crate::copy::{Dialect, Input};
use crate::engine::RetryPolicy;
use crate::sink::http::HttpOptions;
use crate::target::{EnvLookup, Target};

/// The largest batch accepted: beyond this a batch buffer stops being "small and reused".
pub const MAX_BATCH: u64 = 1_000_000;
/// The most worker threads accepted (each holds one connection).
pub const MAX_THREADS: usize = 4096;
/// The table gen and copy load into when `--table` is not given.
pub const DEFAULT_TABLE: &str = "readings";
/// The most shards accepted in `--shard K/N`.
pub const MAX_SHARDS: u64 = 1_000_000;

/// A flag or setting that cannot be used; printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag} {value}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("target `{target}`: {reason}")]
    Target { target: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    Input { path: String, reason: String },
    #[error("{0}")]
    Conflict(String),
}

pub(crate) fn invalid(
    flag: &'static str,
    value: impl fmt::Display,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The interval of the live progress lines: at least 50 ms.
pub(crate) fn progress_interval(every: humantime::Duration) -> Result<Duration, ConfigError> {
    let interval = Duration::from(every);
    if interval < Duration::from_millis(50) {
        return Err(invalid("progress-every", every, "must be at least 50ms"));
    }
    Ok(interval)
}

/// A timeout flag's value, which must be longer than zero.
pub(crate) fn positive(
    flag: &'static str,
    value: humantime::Duration,
) -> Result<Duration, ConfigError> {
    let duration = Duration::from(value);
    if duration.is_zero() {
        return Err(invalid(flag, "0s", "must be longer than zero"));
    }
    Ok(duration)
}

/// The fastest `--rate` of gen mode: a billion rows a second.
const MAX_GEN_RATE: f64 = 1e9;
/// The slowest `--rate` accepted, in any unit: one in 1000 s.
const MIN_RATE: f64 = 0.001;

/// A `--rate` flag's value: finite, from [`MIN_RATE`] to `max` `unit`s per second.
pub(crate) fn rate(value: Option<f64>, max: f64, unit: &str) -> Result<Option<f64>, ConfigError> {
    match value {
        Some(rate) if !(rate.is_finite() && (MIN_RATE..=max).contains(&rate)) => Err(invalid(
            "rate",
            rate,
            format!("must be between {MIN_RATE} and {max} {unit} per second"),
        )),
        _ => Ok(value),
    }
}

/// A `--report` path: it must name a file.
pub(crate) fn check_report_path(path: &Path) -> Result<(), ConfigError> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(invalid("report", path.display(), "must name a file"));
    }
    Ok(())
}

/// Settings shared by every loading mode.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    pub threads: usize,
    pub batch: usize,
    /// Batches per PostgreSQL transaction.
    pub commit_every: usize,
    pub table: TableName,
    pub create: bool,
    pub truncate: bool,
    pub method: Method,
    pub pin: bool,
    pub keep: bool,
    pub report: Option<PathBuf>,
    pub progress_every: Duration,
    pub quiet: bool,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    pub reject_file: Option<PathBuf>,
    pub max_rejects: u64,
    /// How HTTP targets are spoken to.
    pub http: HttpOptions,
    /// Where the Prometheus endpoint listens.
    pub metrics_addr: Option<SocketAddr>,
    /// How long it keeps serving after the load.
    pub metrics_linger: Duration,
}

/// Settings of `loader gen`.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub load: LoadConfig,
    pub rows: Option<u64>,
    pub duration: Option<Duration>,
    /// Rows per second over all workers.
    pub rate: Option<f64>,
    pub seed: u64,
    pub shard: Shard,
    pub output_format: OutputFormat,
}

impl GenConfig {
    /// Validates `loader gen` arguments, reading the environment through `env`.
    pub fn from_args(args: &GenArgs, env: EnvLookup<'_>) -> Result<GenConfig, ConfigError> {
        let load = LoadConfig::from_args(&args.load, env)?;
        let shard = match (&args.shard, &args.shard_from_env) {
            (Some(text), _) => Shard::parse(text)?,
            (None, Some(variable)) => Shard::from_env(variable, args.shards, env)?,
            (None, None) => Shard::WHOLE,
        };
        if args.rows == Some(0) {
            return Err(invalid("rows", 0, "must be at least 1"));
        }
        let duration = args.duration.map(Duration::from);
        if duration == Some(Duration::ZERO) {
            return Err(invalid("duration", "0s", "must be longer than zero"));
        }
        let output_format = match (&load.target, args.output_format) {
            (_, Some(format)) => format,
            (Target::File(path), None) => match path.extension().and_then(|e| e.to_str()) {
                Some("ndjson" | "jsonl" | "json") => OutputFormat::Ndjson,
                _ => OutputFormat::Csv,
            },
            _ => OutputFormat::Csv,
        };
        Ok(GenConfig {
            load,
            rows: args.rows,
            duration,
            rate: rate(args.rate, MAX_GEN_RATE, "rows")?,
            seed: args.seed,
            shard,
            output_format,
        })
    }

    /// The rows this process loads: its shard's part of `--rows`, or unbounded.
    pub fn rows_in_shard(&self) -> Option<u64> {
        self.rows.map(|rows| self.shard.rows_of(rows))
    }
}

impl LoadConfig {
    /// Validates the options every loading mode shares.
    pub fn from_args(args: &LoadArgs, env: EnvLookup<'_>) -> Result<LoadConfig, ConfigError> {
        let threads = args.threads.unwrap_or_else(default_threads);
        if threads == 0 || threads > MAX_THREADS {
            return Err(invalid(
                "threads",
                threads,
                format!("must be between 1 and {MAX_THREADS}"),
            ));
        }
        if args.batch == 0 || args.batch > MAX_BATCH {
            return Err(invalid(
                "batch",
                args.batch,
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        if args.commit_every == 0 || args.commit_every.saturating_mul(args.batch) > MAX_BATCH {
            return Err(invalid(
                "commit-every",
                args.commit_every,
                format!(
                    "must be at least 1, and --commit-every × --batch at most {MAX_BATCH} rows \
                     per transaction"
                ),
            ));
        }
        let progress_every = progress_interval(args.progress.progress_every)?;
        let connect_timeout = positive("connect-timeout", args.connect_timeout)?;
        let mut target = Target::resolve(&args.target, env)?;
        let timeout = positive("timeout", args.timeout)?;
        let credentials_given = args.user.is_some() || args.password_file.is_some();
        let http_flags_given = args.gzip || args.tls.ca_file.is_some() || args.tls.insecure;
        match &mut target {
            Target::Http(http) => {
                let password = match &args.password_file {
                    Some(path) => Some(read_password(path)?),
                    None if http.password().is_none() => env("LOADER_PASSWORD"),
                    None => None,
                };
                http.fill_credentials(args.user.clone(), password);
            }
            _ if http_flags_given => return Err(ConfigError::Conflict(
                "--gzip, --ca-file and --insecure apply to HTTP targets only (PostgreSQL takes \
                     sslmode and sslrootcert in the target)"
                    .into(),
            )),
            Target::Postgres(pg) => {
                let config = pg.config_mut();
                if let Some(user) = &args.user {
                    config.user(user);
                }
                if let Some(path) = &args.password_file {
                    config.password(read_password(path)?);
                }
            }
            _ if credentials_given => {
                return Err(ConfigError::Conflict(
                    "--user and --password-file apply to PostgreSQL and HTTP targets only".into(),
                ))
            }
            _ => {}
        }
        if let Some(path) = &args.tls.ca_file {
            if !path.is_file() {
                return Err(invalid("ca-file", path.display(), "is not a readable file"));
            }
        }
        if args.commit_every > 1 && !matches!(target, Target::Postgres(_) | Target::Local) {
            return Err(ConfigError::Conflict(
                "--commit-every applies to PostgreSQL targets only (an HTTP request is \
                 acknowledged on its own)"
                    .into(),
            ));
        }
        if args.keep && !matches!(target, Target::Local) {
            return Err(ConfigError::Conflict(
                "--keep only applies to the local target".into(),
            ));
        }
        if let Some(path) = &args.report {
            check_report_path(path)?;
        }
        let metrics_addr = match &args.metrics_addr {
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "metrics-addr",
                    text,
                    "must be IP:PORT, such as 127.0.0.1:9184 or 0.0.0.0:9184",
                )
            })?),
            None => None,
        };
        Ok(LoadConfig {
            target,
            threads,
            batch: args.batch as usize,
            commit_every: args.commit_every as usize,
            table: TableName::parse(args.table.as_deref().unwrap_or(DEFAULT_TABLE))?,
            create: args.create,
            truncate: args.truncate,
            method: args.method,
            pin: !args.no_pin,
            keep: args.keep,
            report: args.report.clone(),
            progress_every,
            quiet: args.progress.quiet,
            retry: RetryPolicy {
                max_retries: args.max_retries,
                max_elapsed: args.retry_for.into(),
                ..RetryPolicy::default()
            },
            connect_timeout,
            reject_file: args.reject_file.clone(),
            max_rejects: args.max_rejects,
            http: HttpOptions {
                connect_timeout,
                timeout,
                gzip: args.gzip,
                ca_file: args.tls.ca_file.clone(),
                insecure: args.tls.insecure,
            },
            metrics_addr,
            metrics_linger: args.metrics_linger.into(),
        })
    }
}

/// The longest `--run-id` accepted.
const MAX_RUN_ID_CHARS: usize = 100;

/// Settings of `loader copy`.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    pub load: LoadConfig,
    pub inputs: Vec<Input>,
    pub dialect: Dialect,
    pub header: bool,
    pub columns: Option<Vec<String>>,
    pub skip_lines: u64,
    pub limit: Option<u64>,
    pub run_id: Option<String>,
    pub resume: bool,
}

impl CopyConfig {
    /// Validates `loader copy` arguments; every input must exist and be readable.
    pub fn from_args(args: &CopyArgs, env: EnvLookup<'_>) -> Result<CopyConfig, ConfigError> {
        let load = LoadConfig::from_args(&args.load, env)?;
        let inputs = inputs(&args.files)?;
        let format = match args.format {
            Some(format) => format,
            None => format_of(&inputs)?,
        };
        let single_byte = |flag: &'static str, value: &Option<String>| match value.as_deref() {
            None => Ok(None),
            Some(text) if text.len() == 1 && text.is_ascii() && !matches!(text, "\n" | "\r") => {
                Ok(Some(text.as_bytes()[0]))
            }
            Some(text) => Err(invalid(
                flag,
                text,
                "must be one ASCII character, not a line break",
            )),
        };
        let delimiter = single_byte("delimiter", &args.delimiter)?;
        let quote = single_byte("quote", &args.quote)?;
        let not_for = |flag: &'static str, given: bool, formats: &[InputFormat]| {
            if given && formats.contains(&format) {
                Err(ConfigError::Conflict(format!(
                    "--{flag} does not apply to {} input",
                    format!("{format:?}").to_lowercase()
                )))
            } else {
                Ok(())
            }
        };
        not_for("delimiter", delimiter.is_some(), &[InputFormat::Ndjson])?;
        not_for(
            "quote",
            quote.is_some(),
            &[InputFormat::Ndjson, InputFormat::Tsv],
        )?;
        not_for(
            "null-string",
            args.null_string.is_some(),
            &[InputFormat::Ndjson],
        )?;
        not_for("header", args.header, &[InputFormat::Ndjson])?;
        let dialect = Dialect::new(format, delimiter, quote, args.null_string.as_deref());
        if format == InputFormat::Csv && dialect.delimiter == dialect.quote {
            return Err(ConfigError::Conflict(
                "--delimiter and --quote must differ".into(),
            ));
        }
        if let Some(null) = &args.null_string {
            if null.contains(['\n', '\r']) {
                return Err(invalid(
                    "null-string",
                    null.escape_debug(),
                    "must not hold a line break",
                ));
            }
        }
        let columns = match &args.columns {
            Some(names) => Some(column_list(names)?),
            None => None,
        };
        if args.limit == Some(0) {
            return Err(invalid("limit", 0, "must be at least 1"));
        }
        if let Some(run_id) = &args.run_id {
            if run_id.is_empty()
                || run_id.chars().count() > MAX_RUN_ID_CHARS
                || run_id.chars().any(char::is_control)
            {
                return Err(invalid(
                    "run-id",
                    run_id.escape_debug(),
                    format!("must be 1 to {MAX_RUN_ID_CHARS} printable characters"),
                ));
            }
        }
        if args.resume {
            if load.truncate {
                return Err(ConfigError::Conflict(
                    "--resume continues a load; --truncate would empty what it loaded".into(),
                ));
            }
            if !matches!(load.target, Target::Postgres(_)) {
                return Err(ConfigError::Conflict(
                    "--resume needs a PostgreSQL target: the ledger of committed batches lives \
                     there"
                        .into(),
                ));
            }
        }
        Ok(CopyConfig {
            load,
            inputs,
            dialect,
            header: args.header,
            columns,
            skip_lines: args.skip_lines,
            limit: args.limit,
            run_id: args.run_id.clone(),
            resume: args.resume,
        })
    }
}

/// The inputs, each checked to be a readable file (stdin at most once).
fn inputs(files: &[PathBuf]) -> Result<Vec<Input>, ConfigError> {
    if files.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    if files.iter().filter(|path| path.as_os_str() == "-").count() > 1 {
        return Err(ConfigError::Conflict(
            "`-` (stdin) can be given only once".into(),
        ));
    }
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return Ok(Input::Stdin);
            }
            let unreadable = |reason: String| ConfigError::Input {
                path: path.display().to_string(),
                reason,
            };
            if path.is_dir() {
                return Err(unreadable("is a directory".into()));
            }
            std::fs::File::open(path).map_err(|err| unreadable(err.to_string()))?;
            let gzip = path.extension().is_some_and(|ext| ext == "gz");
            Ok(Input::File {
                path: path.clone(),
                gzip,
            })
        })
        .collect()
}

/// The format the inputs' extensions (under any `.gz`) name; stdin alone is CSV.
fn format_of(inputs: &[Input]) -> Result<InputFormat, ConfigError> {
    let mut formats = inputs.iter().filter_map(|input| match input {
        Input::Stdin => None,
        Input::File { path, gzip } => {
            let path = if *gzip {
                path.with_extension("")
            } else {
                path.clone()
            };
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("csv") => Some(InputFormat::Csv),
                Some("tsv" | "tab") => Some(InputFormat::Tsv),
                Some("ndjson" | "jsonl") => Some(InputFormat::Ndjson),
                _ => None,
            };
            Some((path, format))
        }
    });
    let mut chosen = None;
    for (path, format) in formats.by_ref() {
        let Some(format) = format else {
            return Err(ConfigError::Conflict(format!(
                "cannot tell the format of {} from its extension; give --format csv|tsv|ndjson",
                path.display()
            )));
        };
        if chosen.is_some_and(|chosen| chosen != format) {
            return Err(ConfigError::Conflict(
                "the inputs have different formats; load them separately".into(),
            ));
        }
        chosen = Some(format);
    }
    Ok(chosen.unwrap_or(InputFormat::Csv))
}

/// `--columns`: non-empty, distinct names.
fn column_list(names: &[String]) -> Result<Vec<String>, ConfigError> {
    let trimmed: Vec<String> = names.iter().map(|name| name.trim().to_string()).collect();
    for (i, name) in trimmed.iter().enumerate() {
        if name.is_empty() {
            return Err(invalid("columns", names.join(","), "holds an empty name"));
        }
        if trimmed[..i].contains(name) {
            return Err(invalid(
                "columns",
                names.join(","),
                format!("names `{name}` twice"),
            ));
        }
    }
    Ok(trimmed)
}

/// The first line of a password file, without its line end.
fn read_password(path: &std::path::Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        invalid(
            "password-file",
            path.display(),
            format!("cannot be read: {err}"),
        )
    })?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        return Err(invalid(
            "password-file",
            path.display(),
            "holds no password",
        ));
    }
    Ok(password)
}

pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `--shard K/N`: this process loads the ids `i` with `i % N == K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole id space: one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N` with `0 <= K < N`.
    pub fn parse(text: &str) -> Result<Shard, ConfigError> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok(Shard { index, count }),
            Some(_) => Err(invalid(
                "shard",
                text,
                "K must be below N (shards are 0-based)",
            )),
            None => Err(invalid("shard", text, "expected K/N, as in 0/4")),
        }
    }

    /// The shard named by the environment variable `variable`: `K/N`, or `K` with `shards` = N.
    pub fn from_env(
        variable: &str,
        shards: Option<u64>,
        env: EnvLookup<'_>,
    ) -> Result<Shard, ConfigError> {
        let flag = "shard-from-env";
        let value =
            env(variable).ok_or_else(|| invalid(flag, variable, "the variable is not set"))?;
        let text = match (value.contains('/'), shards) {
            (true, None) => value.clone(),
            (true, Some(_)) => {
                return Err(ConfigError::Conflict(format!(
                    "--shards: {variable}={value} already names the number of shards"
                )))
            }
            (false, Some(count)) => format!("{}/{count}", value.trim()),
            (false, None) => {
                return Err(invalid(
                    flag,
                    variable,
                    format!("holds `{value}`: give the number of shards with --shards N"),
                ))
            }
        };
        Shard::parse(&text).map_err(|err| match err {
            ConfigError::Invalid { reason, .. } => {
                invalid(flag, format!("{variable}={value}"), reason)
            }
            other => other,
        })
    }

    /// How many of the ids `0..total` fall in this shard.
    pub fn rows_of(&self, total: u64) -> u64 {
        if total > self.index {
            (total - self.index - 1) / self.count + 1
        } else {
            0
        }
    }

    /// The global id of this shard's `local`-th id.
    pub fn global_id(&self, local: u64) -> u64 {
        local * self.count + self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A table name, optionally schema-qualified; always rendered quoted in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// Parses `table` or `schema.table`.
    pub fn parse(text: &str) -> Result<TableName, ConfigError> {
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(schema.to_string()), name.to_string()),
            None => (None, text.to_string()),
        };
        if name.is_empty() || schema.as_deref() == Some("") {
            return Err(invalid("table", text, "expected NAME or SCHEMA.NAME"));
        }
        if text.contains('\0') {
            return Err(invalid("table", text.escape_debug(), "contains a NUL byte"));
        }
        Ok(TableName { schema, name })
    }

    /// The name as SQL: each part double-quoted, inner quotes doubled.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Quotes an SQL identifier.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn gen_config(args: &[&str]) -> Result<GenConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("loader").chain(args.iter().copied()))
            .expect("arguments parse");
        GenConfig::from_args(&cli.gen, &|_| None)
    }

    #[test]
    fn rejects_zero_and_oversized_settings() {
        for args in [
            &["--threads", "0"][..],
            &["--batch", "0"],
            &["--batch", "2M"],
            &["--rows", "0"],
            &["--duration", "0s"],
            &["--shard", "2/2"],
            &["--shard", "x"],
            &["--progress-every", "1ms"],
            &["--table", "a."],
            &["--keep", "--target", "null"],
            &["--rate", "0"],
            &["--rate", "inf"],
            &[
                "--password-file",
                "/nonexistent",
                "--target",
                "postgres://h/db",
            ],
            &["--user", "app", "--target", "null"],
            &["--gzip", "--target", "postgres://h/db"],
            &["--commit-every", "0"],
            &["--commit-every", "1001", "--batch", "1000"],
            &["--commit-every", "2", "--target", "null"],
            &["--commit-every", "2", "--target", "http://127.0.0.1:9/x"],
        ] {
            assert!(gen_config(args).is_err(), "{args:?} must be rejected");
        }
    }

    #[test]
    fn commit_every_takes_up_to_a_million_rows_per_postgres_transaction() {
        for (args, expected) in [
            (&["--target", "postgres://h/db"][..], 1),
            (&["--commit-every", "10"], 10),
            (&["--commit-every", "1000", "--batch", "1000"], 1000),
        ] {
            assert_eq!(gen_config(args).unwrap().load.commit_every, expected);
        }
    }

    #[test]
    fn user_and_password_file_fill_a_postgres_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from-the-file\nsecond line ignored\n").unwrap();
        let config = gen_config(&[
            "--target",
            "postgres://bob:from-the-url@h/db",
            "--user",
            "app",
            "--password-file",
            path.to_str().unwrap(),
        ])
        .unwrap();
        let Target::Postgres(pg) = &config.load.target else {
            panic!("a PostgreSQL target");
        };
        assert_eq!(pg.user(), "app");
        assert_eq!(pg.config().get_password(), Some(&b"from-the-file"[..]));
    }

    #[test]
    fn defaults_are_local_target_and_binary_copy() {
        let config = gen_config(&["--rows", "10"]).unwrap();
        assert!(matches!(config.load.target, Target::Local));
        assert_eq!(config.load.method, Method::CopyBinary);
        assert_eq!(config.load.batch, 1000);
        assert!(config.load.pin);
        assert_eq!(config.shard, Shard::WHOLE);
    }

    #[test]
    fn output_format_follows_the_file_extension() {
        let config = gen_config(&["--target", "file:/tmp/r.ndjson"]).unwrap();
        assert_eq!(config.output_format, OutputFormat::Ndjson);
        let config = gen_config(&["--target", "file:/tmp/r.csv"]).unwrap();
        assert_eq!(config.output_format, OutputFormat::Csv);
    }

    #[test]
    fn shards_partition_the_ids() {
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        for total in [0, 1, 2, 3, 10, 1_000_000] {
            assert_eq!(shards.iter().map(|s| s.rows_of(total)).sum::<u64>(), total);
        }
        assert_eq!(Shard::parse("1/3").unwrap().global_id(4), 13);
    }

    #[test]
    fn a_shard_comes_from_the_environment_as_k_with_shards_or_as_k_over_n() {
        let env = |value: &'static str| move |name: &str| (name == "IDX").then(|| value.into());
        let shard = |value, shards| Shard::from_env("IDX", shards, &env(value));
        assert_eq!(shard("2", Some(3)).unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(shard("1/4", None).unwrap(), Shard { index: 1, count: 4 });
        for (value, shards, expected) in [
            ("2", None, "give the number of shards with --shards N"),
            ("1/4", Some(4), "already names the number of shards"),
            ("3", Some(3), "--shard-from-env IDX=3: K must be below N"),
            ("x", Some(3), "--shard-from-env IDX=x: expected K/N"),
        ] {
            let err = shard(value, shards).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
        let unset = Shard::from_env("UNSET", Some(3), &env("1")).unwrap_err();
        assert_eq!(
            unset.to_string(),
            "--shard-from-env UNSET: the variable is not set"
        );
    }

    fn copy_config(args: &[&str]) -> Result<CopyConfig, ConfigError> {
        let cli = Cli::try_parse_from(["loader", "copy"].into_iter().chain(args.iter().copied()))
            .expect("arguments parse");
        match &cli.command {
            Some(crate::cli::Command::Copy(copy)) => CopyConfig::from_args(copy, &|name| {
                (name == "DATABASE_URL").then(|| "postgres://u@h/d".into())
            }),
            other => panic!("not copy: {other:?}"),
        }
    }

    #[test]
    fn copy_formats_follow_extensions_and_flags_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"").unwrap();
            path.display().to_string()
        };
        let (csv_gz, tsv, ndjson, xlsx) = (
            file("a.csv.gz"),
            file("b.tsv"),
            file("c.jsonl"),
            file("d.xlsx"),
        );
        let config = copy_config(&[&csv_gz]).unwrap();
        assert_eq!(config.dialect.format, InputFormat::Csv);
        assert!(matches!(config.inputs[0], Input::File { gzip: true, .. }));
        assert_eq!(copy_config(&[&tsv]).unwrap().dialect.null_string, b"\\N");
        assert_eq!(
            copy_config(&[&ndjson]).unwrap().dialect.format,
            InputFormat::Ndjson
        );
        assert_eq!(copy_config(&[]).unwrap().inputs, [Input::Stdin]);
        for args in [
            &[xlsx.as_str()][..],
            &[&csv_gz, &tsv],
            &[&csv_gz, "--delimiter", "ab"],
            &[&csv_gz, "--delimiter", ",", "--quote", ","],
            &[&tsv, "--quote", "'"],
            &[&ndjson, "--header"],
            &[&csv_gz, "--limit", "0"],
            &[&csv_gz, "--columns", "a,,b"],
            &[&csv_gz, "--columns", "a,b,a"],
            &[&csv_gz, "--run-id", "r", "--resume", "--truncate"],
            &[&csv_gz, "--run-id", ""],
            &["-", "-"],
            &[dir.path().to_str().unwrap()],
        ] {
            assert!(copy_config(args).is_err(), "{args:?} must be rejected");
        }
        assert!(
            Cli::try_parse_from(["loader", "copy", "--resume"]).is_err(),
            "--resume needs --run-id"
        );
    }

    #[test]
    fn table_names_are_quoted() {
        assert_eq!(
            TableName::parse("readings").unwrap().quoted(),
            "\"readings\""
        );
        assert_eq!(
            TableName::parse("s.My \"T\"").unwrap().quoted(),
            "\"s\".\"My \"\"T\"\"\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
