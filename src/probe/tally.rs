//! What the users of a probe round saw: one [`Tally`] per user — counts, statuses, errors, one
//! hdrhistogram per timing, and a [`Samples`] reservoir of points for the picture — merged at the
//! end of the round.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::time::Duration;

use super::client::{Exchange, FailedExchange};
use crate::stats::Latency;

/// Significant digits of the probe's timings: within 1%, and a few KiB per histogram, which
/// matters with five histograms for each of hundreds of users.
const TIMING_DIGITS: u8 = 2;

/// What the users of one round saw, merged.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Requests sent.
    pub sent: u64,
    /// Requests that got a whole answer, whatever its status.
    pub answered: u64,
    /// Answers with a status below 400.
    pub succeeded: u64,
    /// Planned requests never sent: every user was still busy after the round's end.
    pub unsent: u64,
    pub bytes: u64,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<&'static str, u64>,
    /// The first message of each error kind.
    pub error_examples: BTreeMap<&'static str, String>,
    pub headers: Latency,
    pub first_byte: Latency,
    pub total: Latency,
    pub largest_gap: Latency,
    /// Open model: how late each request started against its plan.
    pub client_delay: Latency,
    /// Streamed answers: the first event, and the first event that carried a token.
    pub first_event: Latency,
    pub first_token: Latency,
    /// Every pause between two tokens, and each answer's longest.
    pub token_gap: Latency,
    pub largest_token_gap: Latency,
    pub tokens: u64,
    /// Over the answers with tokens, the time from their first token to their last.
    pub token_span: Duration,
    /// Answered requests for the latency-over-time picture.
    pub samples: Samples,
}

/// Points of a round's latency-over-time picture — (seconds since the round's start, total ms)
/// of answered requests — as a uniform sample of at most its capacity (reservoir sampling): a
/// user's first requests fill it, later ones replace a random point with a falling chance, so
/// recording never allocates and the picture covers the whole round.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    pub points: Vec<(f32, f32)>,
    capacity: usize,
    offered: u64,
    rng: fastrand::Rng,
}

/// Points the picture of one round holds over all its users: enough to show its shape, few
/// enough to keep the SVG small.
const POINTS_PER_ROUND: usize = 1_000;

impl Samples {
    /// A user's sample in a round of `users` (every user keeps as many points, so a slower
    /// user, with fewer requests, is drawn a little more densely).
    pub(super) fn for_user_of(users: usize) -> Samples {
        let capacity = (POINTS_PER_ROUND / users.max(1)).max(8);
        Samples {
            points: Vec::with_capacity(capacity),
            capacity,
            offered: 0,
            rng: fastrand::Rng::new(),
        }
    }

    fn offer(&mut self, point: (f32, f32)) {
        self.offered += 1;
        if self.points.len() < self.capacity {
            self.points.push(point);
        } else if self.capacity > 0 {
            let slot = self.rng.u64(..self.offered);
            if let Some(kept) = self.points.get_mut(slot as usize) {
                *kept = point;
            }
        }
    }
}

impl Default for Tally {
    fn default() -> Tally {
        let timing = || Latency::with_digits(TIMING_DIGITS);
        Tally {
            sent: 0,
            answered: 0,
            succeeded: 0,
            unsent: 0,
            bytes: 0,
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            headers: timing(),
            first_byte: timing(),
            total: timing(),
            largest_gap: timing(),
            client_delay: timing(),
            first_event: timing(),
            first_token: timing(),
            token_gap: timing(),
            largest_token_gap: timing(),
            tokens: 0,
            token_span: Duration::ZERO,
            samples: Samples::default(),
        }
    }
}

impl Tally {
    /// Records one request sent `sent_at` after the round's start; `delay` is how late it
    /// started against its plan (open model).
    pub(super) fn record(
        &mut self,
        outcome: Result<Exchange, FailedExchange>,
        sent_at: Duration,
        delay: Option<Duration>,
    ) {
        self.sent += 1;
        let late = delay.unwrap_or_default();
        if let Some(delay) = delay {
            self.client_delay.record(delay);
        }
        match outcome {
            Ok(exchange) => {
                self.answered += 1;
                if exchange.status < 400 {
                    self.succeeded += 1;
                }
                *self.status.entry(exchange.status).or_default() += 1;
                self.bytes += exchange.bytes;
                self.headers.record(late + exchange.headers);
                self.first_byte.record(late + exchange.first_byte);
                self.total.record(late + exchange.total);
                self.largest_gap.record(exchange.largest_gap);
                if let Some(first_event) = exchange.first_event {
                    self.first_event.record(late + first_event);
                }
                if let Some(first_token) = exchange.first_token {
                    self.first_token.record(late + first_token);
                }
                if let Some(gap) = exchange.largest_token_gap {
                    self.largest_token_gap.record(gap);
                }
                self.tokens += u64::from(exchange.tokens);
                self.token_span += exchange.token_span;
                let total_ms = (late + exchange.total).as_secs_f32() * 1000.0;
                self.samples.offer((sent_at.as_secs_f32(), total_ms));
            }
            Err(failure) => {
                *self.errors.entry(failure.kind).or_default() += 1;
                self.error_examples
                    .entry(failure.kind)
                    .or_insert(failure.message);
            }
        }
    }
}

impl AddAssign<&Tally> for Tally {
    fn add_assign(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.succeeded += other.succeeded;
        self.unsent += other.unsent;
        self.bytes += other.bytes;
        for (status, count) in &other.status {
            *self.status.entry(*status).or_default() += count;
        }
        for (kind, count) in &other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, message) in &other.error_examples {
            self.error_examples
                .entry(kind)
                .or_insert_with(|| message.clone());
        }
        self.headers += &other.headers;
        self.first_byte += &other.first_byte;
        self.total += &other.total;
        self.largest_gap += &other.largest_gap;
        self.client_delay += &other.client_delay;
        self.first_event += &other.first_event;
        self.first_token += &other.first_token;
        self.token_gap += &other.token_gap;
        self.largest_token_gap += &other.largest_token_gap;
        self.tokens += other.tokens;
        self.token_span += other.token_span;
        self.samples.points.extend_from_slice(&other.samples.points);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_counts_kinds_and_timings() {
        let exchange = Exchange {
            status: 200,
            headers: Duration::from_millis(1),
            first_byte: Duration::from_millis(2),
            total: Duration::from_millis(3),
            largest_gap: Duration::ZERO,
            bytes: 10,
            first_event: None,
            first_token: None,
            tokens: 0,
            token_span: Duration::ZERO,
            largest_token_gap: None,
        };
        let mut a = Tally::default();
        a.record(Ok(exchange), Duration::ZERO, Some(Duration::from_millis(5)));
        let mut b = Tally::default();
        b.record(
            Ok(Exchange {
                status: 503,
                ..exchange
            }),
            Duration::ZERO,
            None,
        );
        b.record(
            Err(FailedExchange {
                kind: "refused",
                message: "connection refused".into(),
            }),
            Duration::ZERO,
            None,
        );
        a += &b;
        assert_eq!((a.sent, a.answered, a.succeeded, a.bytes), (3, 2, 1, 20));
        assert_eq!(a.status[&503], 1);
        assert_eq!(a.errors["refused"], 1);
        // The open-model request counts from its planned start: 5 ms late + 3 ms (to 1%).
        assert!((a.total.summary().max - 8.0).abs() < 0.08);
        assert_eq!(a.client_delay.summary().count, 1);
    }
}
