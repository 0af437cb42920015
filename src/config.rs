//! The validated configuration the engine runs from: built from the clap types in [`crate::cli`],
//! checked once, so that every bad flag gets one clear line and exit code 2 before anything starts.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{GenArgs, LoadArgs, Method, OutputFormat};
use crate::engine::RetryPolicy;
use crate::target::{EnvLookup, Target};

/// The largest batch accepted: beyond this a batch buffer stops being "small and reused".
pub const MAX_BATCH: u64 = 1_000_000;
/// The most worker threads accepted (each holds one connection).
pub const MAX_THREADS: usize = 4096;
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
    #[error("{0}")]
    Conflict(String),
}

fn invalid(flag: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Settings shared by every loading mode.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    pub threads: usize,
    pub batch: usize,
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
}

/// Settings of `loader gen`.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub load: LoadConfig,
    pub rows: Option<u64>,
    pub duration: Option<Duration>,
    pub seed: u64,
    pub shard: Shard,
    pub output_format: OutputFormat,
}

impl GenConfig {
    /// Validates `loader gen` arguments, reading the environment through `env`.
    pub fn from_args(args: &GenArgs, env: EnvLookup<'_>) -> Result<GenConfig, ConfigError> {
        let load = LoadConfig::from_args(&args.load, env)?;
        let shard = match &args.shard {
            Some(text) => Shard::parse(text)?,
            None => Shard::WHOLE,
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
        let progress_every = Duration::from(args.progress_every);
        if progress_every < Duration::from_millis(50) {
            return Err(invalid(
                "progress-every",
                args.progress_every,
                "must be at least 50ms",
            ));
        }
        let connect_timeout = Duration::from(args.connect_timeout);
        if connect_timeout.is_zero() {
            return Err(invalid("connect-timeout", "0s", "must be longer than zero"));
        }
        let target = Target::resolve(args.target.as_deref(), env)?;
        if args.keep && !matches!(target, Target::Local) {
            return Err(ConfigError::Conflict(
                "--keep only applies to the local target".into(),
            ));
        }
        if let Some(path) = &args.report {
            if path.as_os_str().is_empty() || path.is_dir() {
                return Err(invalid("report", path.display(), "must name a file"));
            }
        }
        Ok(LoadConfig {
            target,
            threads,
            batch: args.batch as usize,
            table: TableName::parse(&args.table)?,
            create: args.create,
            truncate: args.truncate,
            method: args.method,
            pin: !args.no_pin,
            keep: args.keep,
            report: args.report.clone(),
            progress_every,
            quiet: args.quiet,
            retry: RetryPolicy {
                max_retries: args.max_retries,
                max_elapsed: args.retry_for.into(),
                ..RetryPolicy::default()
            },
            connect_timeout,
        })
    }
}

fn default_threads() -> usize {
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
        ] {
            assert!(gen_config(args).is_err(), "{args:?} must be rejected");
        }
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
