//! `loader`: a thread-per-core, synchronous bulk loader and load probe.
//!
//! [`run`] parses the command line (`cli`), validates it into the mode's settings (`config`),
//! installs the Ctrl-C handler, and runs the mode (`gen`, `copy`, `ingest`: each hands its source
//! to `run::run`, which drives the `engine`'s pinned workers against a `sink`; `probe` runs its own
//! user threads). docs/ARCHITECTURE.md draws the rooms, the threads and the data flow.

// Everything but the API below is `pub(crate)`, so that rustc reports unused code.
#![warn(unreachable_pub)]

// The rooms. A room uses only the rooms below it in their order, which tests/layers/mod.rs holds
// and checks (docs/ARCHITECTURE.md, "Rooms").
mod cli;
mod config;
mod conninfo;
mod copy;
mod ddl;
mod discover;
mod encode;
mod engine;
mod failure;
mod figures;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gen;
mod http_client;
mod ingest;
mod ledger;
mod metrics;
mod pem;
pub mod pg;
mod probe;
mod process;
mod progress_line;
mod reject;
mod report;
mod rows;
mod run;
mod sampler;
mod sink;
mod sql;
mod stats;
mod target;
mod tls;
mod tune;
mod usage;

/// The crate's API beside [`run`]: the parts that the benches (`benches/hot_path.rs`) time and the
/// fuzz targets (`fuzz/`) drive directly: copy mode's splitter and parser, the generated
/// rows (`readings`), the ingest chunker, and the batch contract they implement. (The end-to-end tests
/// reach the throwaway cluster through [`pg::local`].)
pub mod parts {
    pub use crate::copy::{
        Chunk, CopyBatch, Dialect, Encoding, Framing, InputFormat, RawBatch, Splitter,
    };
    pub use crate::gen::{readings_batch, readings_schema, Shard, TableBatch};
    pub use crate::ingest::{ChunkBy, Chunker};
    pub use crate::rows::{Batch, Column, RowFormat, Schema, SqlType};
}

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
use tune::TuneConfig;
use usage::ConfigError;

/// Runs `loader` with these arguments and returns its exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() => {
            eprintln!("loader: error: {}", usage::parse_error_line(&err));
            return ExitCode::from(report::EXIT_USAGE);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
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
        Some(Command::Tune(args)) => {
            validated(TuneConfig::from_args(args, env), |c| tune::run(&c, &signal))
        }
        Some(Command::Completions { shell }) => written(discover::completions(*shell)),
        Some(Command::Man { dir }) => written(discover::man(dir.as_deref())),
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

/// The exit code of writing completions or manual pages: 0, or 3 with the reason on stderr.
fn written(result: std::io::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("loader: error: cannot write: {err}");
            report::EXIT_FATAL
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
