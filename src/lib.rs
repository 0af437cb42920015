//! `loader`: a thread-per-core, synchronous bulk loader and load probe.
//!
//! [`run`] parses the command line ([`cli`]), validates it into a config ([`config`]), installs the
//! Ctrl-C handler, and hands the mode's source to [`load::run`], which drives the [`engine`]'s
//! pinned workers against a [`sink`]; `loader probe` runs its own user threads ([`probe`]). See
//! docs/ARCHITECTURE.md for the threads and the data flow.

// The rooms, from the top down: a room uses only the rooms below it (tests/layers checks this).
pub mod cli;
pub mod config;
pub mod conninfo;
pub mod copy;
pub mod encode;
pub mod engine;
pub mod failure;
pub mod figures;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gen;
pub mod http_client;
pub mod ingest;
pub mod ledger;
pub mod metrics;
pub mod pem;
pub mod pg;
pub mod probe;
pub mod process;
pub mod reject;
pub mod report;
pub mod rows;
pub mod run;
pub mod sink;
pub mod sql;
pub mod stats;
pub mod target;
pub mod usage;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::Parser;

use cli::{Cli, Command};
use copy::CopyConfig;
use engine::StopSignal;
use gen::GenConfig;
use ingest::IngestConfig;
use probe::ProbeConfig;
use usage::ConfigError;

/// Runs `loader` with these arguments and returns its exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                report::EXIT_USAGE
            } else {
                0
            });
        }
    };
    let signal = stop_signal();
    let env = &usage::process_env;
    let code = match &cli.command {
        Some(Command::Gen(args)) => {
            validated(GenConfig::from_args(args, env), |c| gen::run(&c, &signal))
        }
        None => validated(GenConfig::from_args(&cli.gen, env), |c| {
            gen::run(&c, &signal)
        }),
        Some(Command::Copy(args)) => {
            validated(CopyConfig::from_args(args, env), |c| copy::run(&c, &signal))
        }
        Some(Command::Ingest(args)) => validated(IngestConfig::from_args(args, env), |c| {
            ingest::run(c, &signal)
        }),
        Some(Command::Probe(args)) => {
            validated(ProbeConfig::from_args(args), |c| probe::run(&c, &signal))
        }
    };
    ExitCode::from(code)
}

/// Runs a mode with its validated settings, or prints why the flags cannot be used (exit 2).
fn validated<C>(config: Result<C, ConfigError>, run: impl FnOnce(C) -> u8) -> u8 {
    match config {
        Ok(config) => run(config),
        Err(err) => {
            eprintln!("loader: error: {err}");
            report::EXIT_USAGE
        }
    }
}

/// The process's stop signal, with the Ctrl-C/SIGTERM handler installed on first use: the first
/// signal lets workers finish the batch in hand, the second abandons retries (and the load then
/// ends normally: summary, report, the local cluster stopped), a third exits at once.
fn stop_signal() -> Arc<StopSignal> {
    static SIGNAL: OnceLock<Arc<StopSignal>> = OnceLock::new();
    SIGNAL
        .get_or_init(|| {
            let signal = Arc::new(StopSignal::default());
            let handler_signal = Arc::clone(&signal);
            let installed = ctrlc::set_handler(move || {
                if handler_signal.is_abandoning() {
                    eprintln!("loader: interrupted a third time, exiting now");
                    std::process::exit(report::EXIT_INTERRUPTED.into());
                }
                if handler_signal.interrupt() == 1 {
                    eprintln!(
                        "loader: interrupted, finishing the batches or requests in hand (Ctrl-C again abandons retries)"
                    );
                } else {
                    eprintln!(
                        "loader: interrupted again, abandoning retries (a third Ctrl-C exits at once)"
                    );
                }
            });
            if let Err(err) = installed {
                eprintln!("loader: warning: Ctrl-C will stop the process abruptly: {err}");
            }
            signal
        })
        .clone()
}
