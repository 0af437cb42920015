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
//! quick answers completes few requests at once without anyone waiting.

use serde::Serialize;

/// Growth of the mean time to first byte, in ms, below which nobody is kept waiting.
pub(crate) const MIN_GROWTH_MS: f64 = 5.0;

/// Effective concurrency below which the server is taken to serve one request at a time.
pub(crate) const MAX_SERIAL_CONCURRENCY: f64 = 1.5;

/// What a lone user saw: the yardstick of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Baseline {
    /// Answered requests it is made of.
    pub requests: u64,
    /// Median time to first byte.
    pub first_byte_ms: f64,
    /// Median time per request.
    pub total_ms: f64,
}

/// The two answers the probe gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Concurrent,
    Blocking,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Concurrent => "concurrent",
            Kind::Blocking => "blocking",
        }
    }

    pub(crate) fn sentence(self) -> &'static str {
        match self {
            Kind::Concurrent => "requests are handled concurrently",
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
}

/// The verdict on one round, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Verdict {
    /// None when the round cannot tell (one user, no baseline, nothing answered).
    pub verdict: Option<Kind>,
    pub reason: String,
    pub mean_first_byte_ms: f64,
    pub max_first_byte_ms: f64,
    /// max / mean time to first byte: near 1 when every request waited alike.
    pub max_over_mean_first_byte: f64,
    /// Mean time to first byte minus the lone user's, per user beyond the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_growth_ms_per_user: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_concurrency: Option<f64>,
}

/// Judges a round against the baseline.
pub(crate) fn judge(round: &RoundFigures, baseline: Option<&Baseline>) -> Verdict {
    let mut verdict = Verdict {
        verdict: None,
        reason: String::new(),
        mean_first_byte_ms: round.mean_first_byte_ms,
        max_first_byte_ms: round.max_first_byte_ms,
        max_over_mean_first_byte: if round.mean_first_byte_ms > 0.0 {
            round.max_first_byte_ms / round.mean_first_byte_ms
        } else {
            0.0
        },
        first_byte_growth_ms_per_user: None,
        effective_concurrency: None,
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
    let kind = if growth >= MIN_GROWTH_MS && concurrency < MAX_SERIAL_CONCURRENCY {
        Kind::Blocking
    } else {
        Kind::Concurrent
    };
    verdict.first_byte_growth_ms_per_user = Some(growth / (round.users - 1) as f64);
    verdict.effective_concurrency = Some(concurrency);
    verdict.verdict = Some(kind);
    verdict.reason = format!(
        "mean time to first byte {:.1} ms against {:.1} ms for a lone user ({:+.1} ms), max {:.1} \
         ms; {:.1} requests/s × {:.1} ms per lone request = {concurrency:.1} served at once",
        round.mean_first_byte_ms,
        baseline.first_byte_ms,
        growth,
        round.max_first_byte_ms,
        round.answered_per_s,
        baseline.total_ms,
    );
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONE: Baseline = Baseline {
        requests: 10,
        first_byte_ms: 1.0,
        total_ms: 200.0,
    };

    fn round(users: usize, answered_per_s: f64, mean: f64, max: f64) -> RoundFigures {
        RoundFigures {
            users,
            answered: 100,
            answered_per_s,
            mean_first_byte_ms: mean,
            max_first_byte_ms: max,
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
    fn some_rounds_cannot_tell() {
        assert_eq!(judge(&round(1, 5.0, 1.0, 1.0), Some(&LONE)).verdict, None);
        assert_eq!(judge(&round(10, 5.0, 900.0, 1800.0), None).verdict, None);
        let mut silent = round(10, 0.0, 0.0, 0.0);
        silent.answered = 0;
        assert_eq!(judge(&silent, Some(&LONE)).verdict, None);
    }
}
