//! Does the server handle requests concurrently, or one at a time? The verdict compares a round
//! with what a lone user saw (the baseline):
//!
//! - *growth*: how much the round's mean time to first byte rose over the lone user's median;
//! - *effective concurrency*: answered requests per second × the lone user's time per request —
//!   how many lone-user requests' worth the server completed at once. A server that serializes
//!   requests stays near 1 however many users wait; one that handles them concurrently scales
//!   with the users.
//!
//! The server serializes requests when the first byte came at least [`MIN_GROWTH_MS`] later than
//! for a lone user *and* the effective concurrency stayed below [`MAX_SERIAL_CONCURRENCY`].
//! Either alone misleads: a busy but concurrent server also delays first bytes, and a server with
//! quick answers completes few requests at once without anyone waiting. It is *capped* when the
//! first bytes came later and the effective concurrency, above one, stayed below
//! [`CAPPED_SHARE`] of the users: it serves about that many at once and queues the rest (a
//! worker or thread pool of that size, or that many busy cores).
//!
//! A streamed answer whose every request brought a token (server-sent events, NDJSON) is judged
//! on its first token instead of its first byte, which is often a metadata event or a keep-alive
//! that a server sends before it starts to work; the figures named `first_byte` then hold first
//! tokens, and `judged_on` says so.
//!
//! Over three or more rounds, [`shape`] tells how the first byte grows with the users: *linear*
//! (every user adds about the same wait: requests queue one behind another, as behind one lock)
//! or *stepwise* (no wait up to some count of users, then waits: a pool of about that size ran
//! out).

use serde::Serialize;

/// Growth of the mean time to first byte, in ms, below which nobody is kept waiting.
pub(crate) const MIN_GROWTH_MS: f64 = 5.0;

/// Effective concurrency below which the server is taken to serve one request at a time.
pub(crate) const MAX_SERIAL_CONCURRENCY: f64 = 1.5;

/// Share of the users below which an effective concurrency, with first bytes delayed, is a cap:
/// a server that keeps up with three quarters of its users at once is merely busy.
pub(crate) const CAPPED_SHARE: f64 = 0.75;

/// How well a line through the lone user's point must fit the rounds' first bytes (R²) for
/// their growth to be called linear.
const LINEAR_FIT: f64 = 0.9;

/// What a lone user saw: the yardstick of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Baseline {
    /// Answered requests it is made of.
    pub requests: u64,
    /// Median time to first byte.
    pub first_byte_ms: f64,
    /// Median time to first token, when every answer of a streamed one brought a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<f64>,
    /// Median time per request.
    pub total_ms: f64,
}

/// The answers the probe gives, from the best to the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Concurrent,
    /// Concurrent up to a count, queued beyond it.
    Capped,
    Blocking,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Concurrent => "concurrent",
            Kind::Capped => "capped",
            Kind::Blocking => "blocking",
        }
    }

    pub(crate) fn sentence(self) -> &'static str {
        match self {
            Kind::Concurrent => "requests are handled concurrently",
            Kind::Capped => "requests are handled concurrently up to a cap, and queue beyond it",
            Kind::Blocking => "the server serializes requests",
        }
    }
}

/// What a round measured that the verdict weighs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RoundFigures {
    pub users: usize,
    pub answered: u64,
    pub answered_per_s: f64,
    pub mean_first_byte_ms: f64,
    pub max_first_byte_ms: f64,
    /// `first byte`, or `first token` when the figures above are first tokens.
    pub judged_on: &'static str,
}

/// The verdict on one round, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Verdict {
    /// None when the round cannot tell (one user, no baseline, nothing answered).
    pub verdict: Option<Kind>,
    pub reason: String,
    pub judged_on: &'static str,
    pub mean_first_byte_ms: f64,
    pub max_first_byte_ms: f64,
    /// max / mean time to first byte: near 1 when every request waited alike.
    pub max_over_mean_first_byte: f64,
    /// Mean time to first byte minus the lone user's, per user beyond the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_growth_ms_per_user: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_concurrency: Option<f64>,
    /// Capped: about how many requests the server serves at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serves_at_most: Option<u64>,
}

/// Judges a round against the baseline.
pub(crate) fn judge(round: &RoundFigures, baseline: Option<&Baseline>) -> Verdict {
    let mut verdict = Verdict {
        verdict: None,
        reason: String::new(),
        judged_on: round.judged_on,
        mean_first_byte_ms: round.mean_first_byte_ms,
        max_first_byte_ms: round.max_first_byte_ms,
        max_over_mean_first_byte: if round.mean_first_byte_ms > 0.0 {
            round.max_first_byte_ms / round.mean_first_byte_ms
        } else {
            0.0
        },
        first_byte_growth_ms_per_user: None,
        effective_concurrency: None,
        serves_at_most: None,
    };
    let baseline = match baseline {
        _ if round.users < 2 => {
            verdict.reason = "one user cannot show whether requests wait for each other".into();
            return verdict;
        }
        _ if round.answered == 0 => {
            verdict.reason = "no request was answered".into();
            return verdict;
        }
        None => {
            verdict.reason = "no lone-user baseline to compare with".into();
            return verdict;
        }
        Some(baseline) => baseline,
    };
    let growth = round.mean_first_byte_ms - baseline.first_byte_ms;
    let concurrency = round.answered_per_s * baseline.total_ms / 1000.0;
    let waited = growth >= MIN_GROWTH_MS;
    let kind = if waited && concurrency < MAX_SERIAL_CONCURRENCY {
        Kind::Blocking
    } else if waited && concurrency < CAPPED_SHARE * round.users as f64 {
        Kind::Capped
    } else {
        Kind::Concurrent
    };
    verdict.first_byte_growth_ms_per_user = Some(growth / (round.users - 1) as f64);
    verdict.effective_concurrency = Some(concurrency);
    verdict.verdict = Some(kind);
    verdict.reason = format!(
        "mean time to {} {:.1} ms against {:.1} ms for a lone user ({:+.1} ms), max {:.1} ms; \
         {:.1} requests/s × {:.1} ms per lone request = {concurrency:.1} served at once",
        round.judged_on,
        round.mean_first_byte_ms,
        baseline.first_byte_ms,
        growth,
        round.max_first_byte_ms,
        round.answered_per_s,
        baseline.total_ms,
    );
    if kind == Kind::Capped {
        let cap = concurrency.round() as u64;
        verdict.serves_at_most = Some(cap);
        verdict.reason.push_str(&format!(
            "; serves at most ≈{cap} at once of {} users: a worker or thread pool of {cap}, or \
             {cap} busy cores?",
            round.users
        ));
    }
    verdict
}

/// How the first byte grows with the users, over three or more judged rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Shape {
    /// `linear` or `stepwise`.
    pub growth: &'static str,
    pub reason: String,
}

/// The shape of the mean first byte's growth over `rounds` (users, mean first byte in ms) against
/// the lone user's first byte; none with fewer than two rounds of two or more users, when nobody
/// waited, or when neither shape fits.
pub(crate) fn shape(rounds: &[(usize, f64)], lone_first_byte_ms: f64) -> Option<Shape> {
    let mut points: Vec<(f64, f64)> = rounds
        .iter()
        .filter(|(users, _)| *users >= 2)
        .map(|&(users, first_byte)| ((users - 1) as f64, first_byte - lone_first_byte_ms))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if points.len() < 2 || points.iter().all(|&(_, growth)| growth < MIN_GROWTH_MS) {
        return None;
    }
    // Stepwise: the rounds up to some count kept the lone user's first byte, those beyond waited.
    let unwaited = points
        .iter()
        .take_while(|&&(_, growth)| growth < MIN_GROWTH_MS)
        .count();
    if unwaited > 0
        && points[unwaited..]
            .iter()
            .all(|&(_, growth)| growth >= MIN_GROWTH_MS)
    {
        let up_to = points[unwaited - 1].0 as usize + 1;
        let beyond = points[unwaited].0 as usize + 1;
        return Some(Shape {
            growth: "stepwise",
            reason: format!(
                "first bytes stay at the lone user's up to {up_to} users and grow from {beyond}: a \
                 pool of {up_to} to {} is exhausted",
                beyond - 1
            ),
        });
    }
    // Linear: growth = slope × (users − 1), a line through the lone user's point.
    let slope = points.iter().map(|(x, y)| x * y).sum::<f64>()
        / points.iter().map(|(x, _)| x * x).sum::<f64>();
    let mean = points.iter().map(|(_, y)| y).sum::<f64>() / points.len() as f64;
    let residual: f64 = points.iter().map(|(x, y)| (y - slope * x).powi(2)).sum();
    let total: f64 = points.iter().map(|(_, y)| (y - mean).powi(2)).sum();
    let fit = if total > 0.0 {
        1.0 - residual / total
    } else {
        0.0
    };
    (fit >= LINEAR_FIT).then(|| Shape {
        growth: "linear",
        reason: format!(
            "every user beyond the first adds ≈{slope:.1} ms to the first byte (R² {fit:.2}): \
             requests queue one behind another, as behind one lock"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONE: Baseline = Baseline {
        requests: 10,
        first_byte_ms: 1.0,
        first_token_ms: None,
        total_ms: 200.0,
    };

    fn round(users: usize, answered_per_s: f64, mean: f64, max: f64) -> RoundFigures {
        RoundFigures {
            users,
            answered: 100,
            answered_per_s,
            mean_first_byte_ms: mean,
            max_first_byte_ms: max,
            judged_on: "first byte",
        }
    }

    #[test]
    fn a_server_behind_one_lock_serializes() {
        // 10 users, 200 ms each, one at a time: 5 answers/s, the k-th user waits k × 200 ms.
        let verdict = judge(&round(10, 5.0, 1000.0, 1800.0), Some(&LONE));
        assert_eq!(verdict.verdict, Some(Kind::Blocking), "{verdict:?}");
        assert!((verdict.effective_concurrency.unwrap() - 1.0).abs() < 1e-9);
        assert!((verdict.first_byte_growth_ms_per_user.unwrap() - 111.0).abs() < 1e-9);
    }

    #[test]
    fn a_concurrent_server_scales_with_the_users() {
        let verdict = judge(&round(10, 49.0, 1.3, 2.5), Some(&LONE));
        assert_eq!(verdict.verdict, Some(Kind::Concurrent), "{verdict:?}");
        assert!(verdict.effective_concurrency.unwrap() > 9.0);
    }

    #[test]
    fn a_busy_concurrent_server_is_not_called_blocking() {
        // First bytes 50 ms later under load, but many requests completed at once.
        let verdict = judge(&round(20, 80.0, 51.0, 90.0), Some(&LONE));
        assert_eq!(verdict.verdict, Some(Kind::Concurrent), "{verdict:?}");
        // Quick answers: few at once, yet nobody waits.
        let quick = Baseline {
            total_ms: 0.2,
            ..LONE
        };
        let verdict = judge(&round(20, 2000.0, 1.5, 4.0), Some(&quick));
        assert_eq!(verdict.verdict, Some(Kind::Concurrent), "{verdict:?}");
    }

    #[test]
    fn a_pool_of_four_behind_sixteen_users_is_capped_at_four() {
        // Four at a time, 200 ms each: 20 answers/s; the rest queue.
        let verdict = judge(&round(16, 20.0, 600.0, 800.0), Some(&LONE));
        assert_eq!(verdict.verdict, Some(Kind::Capped), "{verdict:?}");
        assert_eq!(verdict.serves_at_most, Some(4));
        assert!(
            verdict.reason.contains("at most ≈4 at once"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn first_bytes_grow_linearly_behind_a_lock_and_stepwise_past_a_pool() {
        // One at a time, 200 ms each: the k-th of u users waits (k − 1) × 200 ms, 100 (u − 1) on average.
        let lock: Vec<_> = [2, 4, 8, 16]
            .iter()
            .map(|&u| (u, 1.0 + 100.0 * (u - 1) as f64))
            .collect();
        let linear = shape(&lock, 1.0).unwrap();
        assert_eq!(linear.growth, "linear", "{linear:?}");
        assert!(linear.reason.contains("≈100.0 ms"), "{}", linear.reason);
        // A pool of 4: nobody waits at 2 and 4 users, everybody beyond.
        let pool = [(2, 1.2), (4, 1.5), (8, 101.0), (16, 301.0)];
        let stepwise = shape(&pool, 1.0).unwrap();
        assert_eq!(stepwise.growth, "stepwise", "{stepwise:?}");
        assert!(
            stepwise.reason.contains("up to 4 users"),
            "{}",
            stepwise.reason
        );
        // Nobody waits, or too few rounds: no shape.
        assert_eq!(shape(&[(2, 1.0), (4, 1.1), (8, 1.2)], 1.0), None);
        assert_eq!(shape(&[(1, 1.0), (8, 100.0)], 1.0), None);
        // Waits that follow no line.
        assert_eq!(
            shape(&[(2, 300.0), (4, 10.0), (8, 200.0), (16, 20.0)], 1.0),
            None
        );
    }

    #[test]
    fn some_rounds_cannot_tell() {
        assert_eq!(judge(&round(1, 5.0, 1.0, 1.0), Some(&LONE)).verdict, None);
        assert_eq!(judge(&round(10, 5.0, 900.0, 1800.0), None).verdict, None);
        let mut silent = round(10, 0.0, 0.0, 0.0);
        silent.answered = 0;
        assert_eq!(judge(&silent, Some(&LONE)).verdict, None);
    }
}
