//! From the command line to the validated settings the modes run from: every `from_args` lives
//! here, one file per mode, so that every bad flag gets one clear line and exit code 2 before
//! anything starts. The settings types belong to the code that runs from them (`LoadConfig` to
//! [`crate::run`], `GenConfig` to [`crate::gen`], …); this room only builds them from the clap
//! types of [`crate::cli`], which no other room sees.

mod copy;
mod gen;
mod ingest;
mod probe;
mod tune;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::cli::LoadArgs;
use crate::engine::RetryPolicy;
use crate::http_client::HttpOptions;
use crate::report::ReportFormat;
use crate::run::LoadConfig;
use crate::sql::TableName;
use crate::target::Target;
use crate::usage::EnvLookup;
use crate::usage::{invalid, ConfigError};

/// The largest batch accepted: beyond this a batch buffer stops being "small and reused".
pub(crate) const MAX_BATCH: u64 = 1_000_000;
/// The most worker threads accepted (each holds one connection).
pub(crate) const MAX_THREADS: usize = 4096;
/// The table gen and copy load into when `--table` is not given.
pub(crate) const DEFAULT_TABLE: &str = "readings";

/// The longest value a time flag accepts, and how its help and its error spell it. Every time
/// flag has one, so that no `Instant + value` can overflow (which panics).
#[derive(Clone, Copy)]
pub(crate) struct Longest {
    duration: Duration,
    spelled: &'static str,
}

/// The longest timeout, `--retry-for`, `--progress-every` and `--metrics-linger`: a day.
pub(crate) const A_DAY: Longest = Longest {
    duration: Duration::from_secs(24 * 3600),
    spelled: "24h",
};

/// The longest `--duration`: 100 years (of humantime's 365.25 days).
pub(crate) const A_CENTURY: Longest = Longest {
    duration: Duration::from_secs(100 * 31_557_600),
    spelled: "100years",
};

/// A time flag's value, at most `longest`.
pub(crate) fn at_most(
    flag: &'static str,
    value: humantime::Duration,
    longest: Longest,
) -> Result<Duration, ConfigError> {
    let duration = Duration::from(value);
    if duration > longest.duration {
        return Err(invalid(
            flag,
            value,
            format!("must be at most {}; give a shorter time", longest.spelled),
        ));
    }
    Ok(duration)
}

/// The interval of the live progress lines: at least 50 ms, at most a day.
pub(crate) fn progress_interval(every: humantime::Duration) -> Result<Duration, ConfigError> {
    let interval = at_most("progress-every", every, A_DAY)?;
    if interval < Duration::from_millis(50) {
        return Err(invalid("progress-every", every, "must be at least 50ms"));
    }
    Ok(interval)
}

/// A time flag's value, which must be longer than zero and at most `longest`.
pub(crate) fn positive(
    flag: &'static str,
    value: humantime::Duration,
    longest: Longest,
) -> Result<Duration, ConfigError> {
    let duration = at_most(flag, value, longest)?;
    if duration.is_zero() {
        return Err(invalid(flag, "0s", "must be longer than zero"));
    }
    Ok(duration)
}

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

/// A `--report` path: it must name a file that can be written, before the load starts (a file
/// that is not there yet is created to see, and removed again; a FIFO or device is not opened).
pub(crate) fn check_report_path(path: &Path) -> Result<(), ConfigError> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(invalid("report", path.display(), "must name a file"));
    }
    let existed = path.exists();
    // A FIFO or a device (/dev/stdout) is taken as it is: opening a FIFO to see would wait for
    // its reader.
    if std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_file()) {
        return Ok(());
    }
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path);
    match opened {
        Ok(_) if !existed => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(err) => Err(invalid(
            "report",
            path.display(),
            format!("cannot be written: {err}"),
        )),
    }
}

/// A load's `--report` path: a writable file whose extension names a format.
fn check_load_report_path(path: &Path) -> Result<(), ConfigError> {
    if ReportFormat::of(path).is_none() {
        return Err(invalid(
            "report",
            path.display(),
            "must end in .json, .csv, .md or .svg (the extension chooses the format)",
        ));
    }
    check_report_path(path)
}

impl LoadConfig {
    /// Validates the options every loading mode shares.
    pub(crate) fn from_args(
        args: &LoadArgs,
        env: EnvLookup<'_>,
    ) -> Result<LoadConfig, ConfigError> {
        let threads = sizes(args)?;
        let progress_every = progress_interval(args.progress.progress_every)?;
        let connect_timeout = positive("connect-timeout", args.connect_timeout, A_DAY)?;
        let mut target = Target::resolve(&args.target, env)?;
        let timeout = positive("timeout", args.timeout, A_DAY)?;
        apply_credentials(&mut target, args, env)?;
        check_target_flags(&target, args)?;
        let table = table_name(args, &target)?;
        for path in &args.report {
            check_load_report_path(path)?;
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
            table,
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
                max_elapsed: at_most("retry-for", args.retry_for, A_DAY)?,
                ..RetryPolicy::default()
            },
            connect_timeout,
            wait_for_target: args
                .wait_for_target
                .map(|wait| positive("wait-for-target", wait, A_DAY))
                .transpose()?,
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
            metrics_linger: at_most("metrics-linger", args.metrics_linger, A_DAY)?,
        })
    }
}

/// The longest name PostgreSQL keeps: it cuts longer ones to this many bytes without a word.
const PG_NAME_BYTES: usize = 63;

/// `--table`, or the mode's default; on PostgreSQL each part at most [`PG_NAME_BYTES`], since the
/// server would load into a table of another (cut) name.
fn table_name(args: &LoadArgs, target: &Target) -> Result<TableName, ConfigError> {
    let text = args.table.as_deref().unwrap_or(DEFAULT_TABLE);
    let table = TableName::parse(text)?;
    let parts = [Some(table.name.as_str()), table.schema.as_deref()];
    let too_long = parts
        .into_iter()
        .flatten()
        .any(|part| part.len() > PG_NAME_BYTES);
    if too_long && matches!(target, Target::Postgres(_) | Target::Local) {
        return Err(invalid(
            "table",
            text,
            format!(
                "PostgreSQL keeps at most {PG_NAME_BYTES} bytes of a name; choose a shorter one"
            ),
        ));
    }
    Ok(table)
}

/// `--threads`, `--batch` and `--commit-every` within their bounds; returns the thread count.
fn sizes(args: &LoadArgs) -> Result<usize, ConfigError> {
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
    Ok(threads)
}

/// `--user` and `--password-file` (or LOADER_PASSWORD for HTTP targets) into the target; the HTTP
/// and credential flags refused where they do not apply.
fn apply_credentials(
    target: &mut Target,
    args: &LoadArgs,
    env: EnvLookup<'_>,
) -> Result<(), ConfigError> {
    let credentials_given = args.user.is_some() || args.password_file.is_some();
    let http_flags_given = args.gzip || args.tls.ca_file.is_some() || args.tls.insecure;
    match target {
        Target::Http(http) => {
            let password = match &args.password_file {
                Some(path) => Some(read_password(path)?),
                None if http.password().is_none() => env("LOADER_PASSWORD"),
                None => None,
            };
            http.fill_credentials(args.user.clone(), password);
        }
        _ if http_flags_given => {
            return Err(ConfigError::Conflict(
                "--gzip, --ca-file and --insecure apply to HTTP targets only (PostgreSQL takes \
                 sslmode and sslrootcert in the target)"
                    .into(),
            ))
        }
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
    Ok(())
}

/// `--ca-file` readable; `--commit-every` and `--keep` only where they apply.
fn check_target_flags(target: &Target, args: &LoadArgs) -> Result<(), ConfigError> {
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
    Ok(())
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
