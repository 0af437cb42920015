//! `loader tune`'s flags into a [`TuneConfig`]: gen's settings for the trials, and the grid of
//! settings to try within the budget.

use std::time::Duration;

use super::{positive, A_DAY};
use crate::cli::TuneArgs;
use crate::gen::GenConfig;
use crate::target::Target;
use crate::tune::{TuneConfig, MIN_TRIAL};
use crate::usage::EnvLookup;
use crate::usage::{invalid, ConfigError};

/// The most settings one search tries.
const MAX_TRIALS: usize = 200;

impl TuneConfig {
    /// Validates `loader tune` arguments: gen's, less the ones the search sets, and the grid.
    pub(crate) fn from_args(
        args: &TuneArgs,
        env: EnvLookup<'_>,
    ) -> Result<TuneConfig, ConfigError> {
        let gen_args = &args.gen;
        let set_per_trial = |instead: &str| format!("tune sets it for each trial; use {instead}");
        let refused = [
            (
                "threads",
                gen_args.load.threads.is_some(),
                set_per_trial("--try-threads"),
            ),
            (
                "batch",
                gen_args.load.batch != 1000,
                set_per_trial("--try-batch"),
            ),
            (
                "commit-every",
                gen_args.load.commit_every != 1,
                set_per_trial("--try-commit-every"),
            ),
            ("rows", gen_args.rows.is_some(), set_per_trial("--budget")),
            (
                "duration",
                gen_args.duration.is_some(),
                set_per_trial("--budget"),
            ),
            (
                "rate",
                gen_args.rate.is_some(),
                "tune measures the fastest rate".to_string(),
            ),
            (
                "run-id",
                gen_args.run_id.is_some(),
                "each trial is a run of its own".to_string(),
            ),
            (
                "explain",
                gen_args.explain,
                "use loader gen --explain to see the columns".to_string(),
            ),
        ];
        if let Some((flag, _, reason)) = refused.into_iter().find(|(_, given, _)| *given) {
            return Err(invalid(flag, "given", reason));
        }
        let gen = GenConfig::from_args(gen_args, env)?;
        for path in &gen.load.report {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !crate::tune::REPORT_EXTENSIONS.contains(&extension) {
                return Err(invalid(
                    "report",
                    path.display(),
                    "tune writes .json, .md or .svg",
                ));
            }
        }
        if !matches!(gen.load.target, Target::Postgres(_) | Target::Local) {
            return Err(invalid(
                "target",
                gen.load.target.to_string(),
                "tune measures PostgreSQL targets (postgres://…, or local)",
            ));
        }
        let grid = |flag: &'static str, values: &[usize]| {
            if values.contains(&0) {
                return Err(invalid(flag, 0, "every value must be at least 1"));
            }
            let mut values = values.to_vec();
            values.sort_unstable();
            values.dedup();
            Ok(values)
        };
        let threads = grid("try-threads", &args.try_threads)?;
        let batches = grid("try-batch", &args.try_batch)?;
        let commit_every = grid("try-commit-every", &args.try_commit_every)?;
        let trials = threads.len() * batches.len() * commit_every.len();
        if trials > MAX_TRIALS {
            return Err(invalid(
                "try-threads",
                trials,
                format!("the grid has more than {MAX_TRIALS} settings; try fewer values"),
            ));
        }
        let budget: Duration = positive("budget", args.budget, A_DAY)?;
        let trial = budget / trials as u32;
        if trial < MIN_TRIAL {
            return Err(invalid(
                "budget",
                args.budget,
                format!(
                    "gives {} settings {} each; at least {} each is needed: raise --budget or try \
                     fewer values",
                    trials,
                    humantime::format_duration(trial),
                    humantime::format_duration(MIN_TRIAL)
                ),
            ));
        }
        Ok(TuneConfig {
            gen,
            trial,
            threads,
            batches,
            commit_every,
        })
    }
}
