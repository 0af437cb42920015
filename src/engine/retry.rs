//! Retries of transient failures: exponential backoff with full jitter, bounded by a number of
//! attempts and by a total time: from about 100 ms, doubling, capped at 10 s a pause, so that a
//! restarting server is waited for and a dead one is given up on in bounded time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::failure::Failure;

/// Pauses are slept in slices this long, so that giving up is noticed quickly.
const PAUSE_SLICE: Duration = Duration::from_millis(50);

/// How long and how often a failing operation is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Total time from the first failure after which no retry starts.
    pub max_elapsed: Duration,
    /// The first backoff's ceiling.
    pub base: Duration,
    /// No backoff is longer than this.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 10,
            max_elapsed: Duration::from_secs(60),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry `attempt` (0-based): uniform in `[0, min(cap, base × 2^attempt)]`.
    pub(crate) fn backoff(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        ceiling.mul_f64(rng.f64())
    }

    /// Runs `operation` until it succeeds, fails permanently, or the budget is spent. Each retry is
    /// announced to `on_retry` with the error and the pause about to be taken. Once `give_up` is
    /// set the loop returns the last error instead of pausing or retrying again.
    pub(crate) fn run<T>(
        &self,
        give_up: Option<&AtomicBool>,
        mut operation: impl FnMut() -> Result<T, Failure>,
        mut on_retry: impl FnMut(&Failure, Duration),
    ) -> Result<T, Failure> {
        let mut rng = fastrand::Rng::new();
        let mut first_failure: Option<Instant> = None;
        let mut attempt = 0;
        loop {
            let err = match operation() {
                Ok(value) => return Ok(value),
                Err(err @ Failure::Permanent { .. }) => return Err(err),
                Err(err) => err,
            };
            let since = *first_failure.get_or_insert_with(Instant::now);
            let pause = match &err {
                // A server's Retry-After, however large, cannot outlast the retry budget.
                Failure::RetryAfter { after, .. } => self
                    .backoff(attempt, &mut rng)
                    .max((*after).min(self.max_elapsed)),
                _ => self.backoff(attempt, &mut rng),
            };
            let spent = since.elapsed();
            if attempt >= self.max_retries || spent.saturating_add(pause) > self.max_elapsed {
                return Err(Failure::Permanent {
                    kind: err.kind(),
                    message: format!(
                        "{err} (gave up after {attempt} retries in {:.1}s; raise --max-retries or \
                         --retry-for to wait longer)",
                        spent.as_secs_f64()
                    ),
                });
            }
            let given_up = || give_up.is_some_and(|flag| flag.load(Ordering::Relaxed));
            if given_up() {
                return Err(err);
            }
            on_retry(&err, pause);
            let resume_at = Instant::now() + pause;
            while let Some(left) = resume_at.checked_duration_since(Instant::now()) {
                if given_up() {
                    return Err(err);
                }
                std::thread::sleep(left.min(PAUSE_SLICE));
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Failure {
        Failure::Transient {
            kind: "connection",
            message: "refused".into(),
        }
    }

    #[test]
    fn a_retry_after_answer_is_waited_for() {
        let mut failures = 1;
        let mut pauses = Vec::new();
        let result = RetryPolicy::default().run(
            None,
            || {
                if failures > 0 {
                    failures -= 1;
                    return Err(Failure::RetryAfter {
                        kind: "throttled",
                        message: "429".into(),
                        after: Duration::from_millis(300),
                    });
                }
                Ok(())
            },
            |_, pause| pauses.push(pause),
        );
        assert!(result.is_ok());
        assert_eq!(pauses.len(), 1);
        assert!(pauses[0] >= Duration::from_millis(300), "{pauses:?}");
    }

    #[test]
    fn backoff_is_full_jitter_under_a_growing_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(1);
        for attempt in 0..40 {
            let ceiling = (policy.base * 2u32.saturating_pow(attempt.min(20))).min(policy.cap);
            let pauses: Vec<Duration> = (0..200)
                .map(|_| policy.backoff(attempt, &mut rng))
                .collect();
            assert!(pauses.iter().all(|pause| *pause <= ceiling));
            // Full jitter spreads pauses over the whole range below the ceiling.
            assert!(
                pauses.iter().any(|pause| *pause < ceiling / 4),
                "attempt {attempt}"
            );
            assert!(
                pauses.iter().any(|pause| *pause > ceiling * 3 / 4),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn retries_until_success() {
        let policy = RetryPolicy {
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let mut retries = 0;
        let result = policy.run(
            None,
            || {
                calls += 1;
                if calls < 4 {
                    Err(transient())
                } else {
                    Ok(calls)
                }
            },
            |_, _| retries += 1,
        );
        assert_eq!(result.unwrap(), 4);
        assert_eq!(retries, 3);
    }

    #[test]
    fn gives_up_after_the_budget_and_says_so() {
        let policy = RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let err = policy
            .run::<()>(
                None,
                || {
                    calls += 1;
                    Err(transient())
                },
                |_, _| {},
            )
            .unwrap_err();
        assert_eq!(calls, 3);
        assert!(matches!(err, Failure::Permanent { .. }));
        assert!(err.to_string().contains("gave up after 2 retries"), "{err}");
    }

    #[test]
    fn giving_up_cuts_a_pause_short() {
        let policy = RetryPolicy {
            base: Duration::from_secs(60),
            cap: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let give_up = AtomicBool::new(false);
        let started = Instant::now();
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                give_up.store(true, Ordering::Relaxed);
            });
            // Attempt 0's pause could be up to a minute; fail once, then give up.
            policy.run::<()>(Some(&give_up), || Err(transient()), |_, _| {})
        });
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let mut calls = 0;
        let err = RetryPolicy::default().run::<()>(
            None,
            || {
                calls += 1;
                Err(Failure::Permanent {
                    kind: "auth",
                    message: "bad password".into(),
                })
            },
            |_, _| {},
        );
        assert!(err.is_err());
        assert_eq!(calls, 1);
    }
}
