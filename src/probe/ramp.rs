//! Finding the breaking point: `--users A..B` ramps the users from A to B (doubling, or by
//! `--step`), and `--until RULE,…` ends the ramp after the first round where a rule holds
//! (`p99>2s`, `first_token.p90>800ms`, `success<99%`, `plateau`), naming the last good level.

use std::time::Duration;

use serde::Serialize;

use crate::stats::LatencySummary;

/// The user counts of `A..B`: A, then doubling (or adding `step`), then B.
pub(crate) fn ramp(from: usize, to: usize, step: Option<usize>) -> Vec<usize> {
    let mut counts = vec![from];
    let mut users = from;
    while users < to {
        users = match step {
            Some(step) => users.saturating_add(step),
            None => users.saturating_mul(2),
        }
        .min(to);
        counts.push(users);
    }
    counts
}

/// A timing of a round a rule may bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    Total,
    FirstByte,
    FirstToken,
}

/// A figure of a timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Figure {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

/// What a stop rule weighs of one round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundFigures<'a> {
    pub users: usize,
    pub success_rate: f64,
    pub requests_per_s: f64,
    pub total: &'a LatencySummary,
    pub first_byte: &'a LatencySummary,
    /// Streamed answers only.
    pub first_token: Option<&'a LatencySummary>,
}

/// When the ramp stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StopRule {
    /// The timing's figure is above the limit.
    Slower {
        timing: Timing,
        figure: Figure,
        limit: Duration,
    },
    /// Fewer than this share of the requests succeeded.
    SuccessBelow(f64),
    /// Requests/s grew by less than [`PLATEAU_GROWTH`] over the round before: more users no
    /// longer bring more answers.
    Plateau,
}

/// The growth of requests/s from one round to the next below which the ramp has reached a
/// plateau.
pub(crate) const PLATEAU_GROWTH: f64 = 0.1;

impl StopRule {
    /// `p99>2s`, `first_byte.max>1s`, `first_token.p50>300ms`, `success<99%` or `plateau`.
    pub(crate) fn parse(text: &str) -> Result<StopRule, String> {
        let text = text.trim();
        if text == "plateau" {
            return Ok(StopRule::Plateau);
        }
        if let Some(share) = text.strip_prefix("success<") {
            let percent = share
                .strip_suffix('%')
                .and_then(|percent| percent.trim().parse::<f64>().ok())
                .filter(|percent| (0.0..=100.0).contains(percent))
                .ok_or("success<N% takes a percentage between 0 and 100, e.g. success<99%")?;
            return Ok(StopRule::SuccessBelow(percent / 100.0));
        }
        let (figure, limit) = text
            .split_once('>')
            .ok_or("must be FIGURE>TIME (p99>2s, first_token.p90>800ms), success<N% or plateau")?;
        let (timing, figure) = match figure.trim().split_once('.') {
            None => (Timing::Total, figure.trim()),
            Some(("total", figure)) => (Timing::Total, figure),
            Some(("first_byte", figure)) => (Timing::FirstByte, figure),
            Some(("first_token", figure)) => (Timing::FirstToken, figure),
            Some((other, _)) => {
                return Err(format!(
                    "knows the timings total, first_byte and first_token, not {other}"
                ))
            }
        };
        let figure = match figure {
            "p50" => Figure::P50,
            "p90" => Figure::P90,
            "p99" => Figure::P99,
            "p99.9" | "p999" => Figure::P999,
            "max" => Figure::Max,
            "mean" => Figure::Mean,
            other => {
                return Err(format!(
                    "knows the figures p50, p90, p99, p99.9, max and mean, not {other}"
                ))
            }
        };
        let limit = humantime::parse_duration(limit.trim())
            .map_err(|err| format!("has a limit that is no time ({err}); e.g. 2s or 500ms"))?;
        Ok(StopRule::Slower {
            timing,
            figure,
            limit,
        })
    }

    /// Why `round` breaks this rule, after `previous`; None when it does not.
    pub(crate) fn broken_by(
        &self,
        round: &RoundFigures<'_>,
        previous: Option<&RoundFigures<'_>>,
    ) -> Option<String> {
        match *self {
            StopRule::Slower {
                timing,
                figure,
                limit,
            } => {
                let (name, latency) = match timing {
                    Timing::Total => ("total", Some(round.total)),
                    Timing::FirstByte => ("first_byte", Some(round.first_byte)),
                    Timing::FirstToken => ("first_token", round.first_token),
                };
                let (figure_name, value_ms) = figure.of(latency?);
                let limit_ms = limit.as_secs_f64() * 1000.0;
                (value_ms > limit_ms)
                    .then(|| format!("{name} {figure_name} {value_ms:.1} ms > {limit_ms:.1} ms"))
            }
            StopRule::SuccessBelow(share) => (round.success_rate < share).then(|| {
                format!(
                    "{:.1}% succeeded < {:.1}%",
                    round.success_rate * 100.0,
                    share * 100.0
                )
            }),
            StopRule::Plateau => {
                let previous = previous?;
                // Nothing answered twice running is a plateau too.
                let growth = if previous.requests_per_s > 0.0 {
                    round.requests_per_s / previous.requests_per_s - 1.0
                } else if round.requests_per_s > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                };
                (growth < PLATEAU_GROWTH).then(|| {
                    format!(
                        "{:.1} requests/s at {} users against {:.1} at {} ({:+.0}%): more users \
                         no longer bring more answers",
                        round.requests_per_s,
                        round.users,
                        previous.requests_per_s,
                        previous.users,
                        growth * 100.0
                    )
                })
            }
        }
    }
}

impl Figure {
    /// The figure's name and value in `latency`.
    fn of(self, latency: &LatencySummary) -> (&'static str, f64) {
        match self {
            Figure::P50 => ("p50", latency.p50),
            Figure::P90 => ("p90", latency.p90),
            Figure::P99 => ("p99", latency.p99),
            Figure::P999 => ("p99.9", latency.p999),
            Figure::Max => ("max", latency.max),
            Figure::Mean => ("mean", latency.mean),
        }
    }
}

/// Where a ramp with `--until` stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BreakingPoint {
    /// The users of the round that broke a rule; None when none did.
    pub broken_at: Option<usize>,
    /// The rule it broke, with the figures.
    pub reason: Option<String>,
    /// The users of the last round before it (the last round when none broke a rule); None
    /// when the first round broke one.
    pub last_good: Option<usize>,
}

impl BreakingPoint {
    /// The sentence of the summary.
    pub(crate) fn sentence(&self) -> String {
        match (self.broken_at, &self.reason, self.last_good) {
            (Some(users), Some(reason), Some(good)) => {
                format!("ramp: stopped at {users} users ({reason}); last good level: {good} users")
            }
            (Some(users), Some(reason), None) => format!(
                "ramp: the first round, {users} users, already broke the rule ({reason}); start \
                 lower"
            ),
            (_, _, good) => format!(
                "ramp: no rule broke up to {} users",
                good.map_or("the last".into(), |good| good.to_string())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_double_or_step_and_end_at_the_last_count() {
        assert_eq!(ramp(1, 256, None), [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        assert_eq!(ramp(10, 100, None), [10, 20, 40, 80, 100]);
        assert_eq!(ramp(1, 40, Some(10)), [1, 11, 21, 31, 40]);
        assert_eq!(ramp(5, 5, None), [5]);
    }

    #[test]
    fn rules_parse_with_their_timing_figure_and_limit() {
        assert_eq!(
            StopRule::parse("p99>2s"),
            Ok(StopRule::Slower {
                timing: Timing::Total,
                figure: Figure::P99,
                limit: Duration::from_secs(2),
            })
        );
        assert_eq!(
            StopRule::parse(" first_token.p99.9 > 800ms "),
            Ok(StopRule::Slower {
                timing: Timing::FirstToken,
                figure: Figure::P999,
                limit: Duration::from_millis(800),
            })
        );
        assert_eq!(
            StopRule::parse("success<99.5%"),
            Ok(StopRule::SuccessBelow(0.995))
        );
        assert_eq!(StopRule::parse("plateau"), Ok(StopRule::Plateau));
        for (bad, said) in [
            ("p98>1s", "not p98"),
            ("latency.p99>1s", "not latency"),
            ("p99>fast", "no time"),
            ("success<120%", "between 0 and 100"),
            ("p99", "must be FIGURE>TIME"),
        ] {
            let err = StopRule::parse(bad).unwrap_err();
            assert!(err.contains(said), "{bad}: {err}");
        }
    }

    #[test]
    fn the_breaking_point_names_the_last_good_level() {
        let broke = BreakingPoint {
            broken_at: Some(64),
            reason: Some("total p99 2400.0 ms > 2000.0 ms".into()),
            last_good: Some(32),
        };
        assert_eq!(
            broke.sentence(),
            "ramp: stopped at 64 users (total p99 2400.0 ms > 2000.0 ms); last good level: 32 users"
        );
        let held = BreakingPoint {
            broken_at: None,
            reason: None,
            last_good: Some(256),
        };
        assert_eq!(held.sentence(), "ramp: no rule broke up to 256 users");
    }
}
