//! `gen` mode: its settings ([`GenConfig`]), its [`run`], and its source, the built-in `readings`
//! workload, the reference table every benchmark loads.
//!
//! Every row is a pure function of `(seed, id)`, so the same seed gives the same rows whatever the
//! thread count, batch size, method or shard. Workers claim batches of ids from one [`IdPlan`]
//! (one atomic add per batch), fill a reused [`ReadingsBatch`] and hand it to their sink. With
//! `--rate`, a batch first waits for its share of one [`RateLimit`] over all workers.

mod readings;
mod shard;

pub use readings::{ReadingsBatch, READINGS_SCHEMA};
pub use shard::Shard;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map};

use crate::engine::{Goal, RateLimit, Source, SourceError, SourceFactory, StopSignal};

use crate::ledger::Committed;
use crate::report::Report;
use crate::rows::{Batch, Columns, Schema};
use crate::run::{self, Documents, Load, LoadConfig, SourcePlan};
use crate::sink::stream::OutputFormat;

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
}

impl GenConfig {
    /// The rows this process loads: its shard's part of `--rows`, or unbounded.
    pub(crate) fn rows_in_shard(&self) -> Option<u64> {
        self.rows.map(|rows| self.shard.rows_of(rows))
    }
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
    let rows = config.rows_in_shard();
    let mut sources = GenPlan {
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
    run::run_with_report(
        Load {
            mode: "gen",
            source: None,
            config: &config.load,
            columns: Columns::Fixed(READINGS_SCHEMA),
            sources: &mut sources,
            run_id: None,
            resume: false,
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
    plan: IdPlan,
    seed: u64,
    batch: usize,
    rate: Option<RateLimit>,
    /// `--duration`: a wait for the rate ends when it has passed.
    duration: Option<Duration>,
    signal: Arc<StopSignal>,
}

impl SourceFactory for GenSourceFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Source + '_>, SourceError> {
        Ok(Box::new(GenSource {
            factory: self,
            batch: ReadingsBatch::with_capacity(self.seed, self.batch),
            deadline: None,
        }))
    }
}

/// Gen mode's [`SourcePlan`]: the generator needs nothing from the target.
#[derive(Debug)]
pub(crate) struct GenPlan {
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
        _committed: Committed,
        _workers: usize,
    ) -> Result<Box<dyn SourceFactory + '_>, SourceError> {
        Ok(Box::new(GenSourceFactory {
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
    batch: ReadingsBatch,
    /// The end of `--duration`, counted from the first batch asked for: the moment the engine's
    /// clock starts, give or take the time to call this.
    deadline: Option<Instant>,
}

impl Source for GenSource<'_> {
    fn next_batch(&mut self) -> Result<Option<&dyn Batch>, SourceError> {
        let GenSourceFactory {
            plan,
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
        let Some(claim) = plan.claim() else {
            return Ok(None);
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

    #[test]
    fn unbounded_plans_keep_going() {
        let plan = IdPlan::new(None, 10, Shard::WHOLE);
        assert_eq!(plan.claim().unwrap().local, 0..10);
        assert_eq!(plan.claim().unwrap().local, 10..20);
    }
}
