//! A rate limit shared by threads: slots handed out in order, `1 / rate` apart per unit (a request
//! in ingest mode, a row in gen mode). A slot nobody took in time is not banked, so the rate is
//! never exceeded, even after a pause.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Waits for a slot are slept in slices this long, so that Ctrl-C is noticed.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Units per second over every thread that shares it.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub(crate) fn new(per_second: f64) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(None),
        }
    }

    /// Takes the next slot, `units` long, and sleeps until it starts; false when `stopping` said
    /// to give up first.
    pub(crate) fn wait(&self, units: u32, stopping: impl Fn() -> bool) -> bool {
        let slot = {
            let mut next = self.next.lock();
            let now = Instant::now();
            let slot = next.map_or(now, |next| next.max(now));
            *next = Some(slot + self.interval * units);
            slot
        };
        while let Some(left) = slot.checked_duration_since(Instant::now()) {
            if stopping() {
                return false;
            }
            std::thread::sleep(left.min(WAIT_SLICE));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_and_none_is_banked() {
        let rate = RateLimit::new(100.0);
        let started = Instant::now();
        for _ in 0..11 {
            assert!(rate.wait(1, || false));
        }
        let spent = started.elapsed();
        assert!(spent >= Duration::from_millis(100), "{spent:?}");
        std::thread::sleep(Duration::from_millis(50));
        let resumed = Instant::now();
        assert!(rate.wait(1, || false));
        assert!(rate.wait(1, || false));
        assert!(
            !rate.wait(1, || true),
            "a stop ends the wait for a later slot"
        );
        // After a pause the first slot is at once and the next one interval later, not at once.
        assert!(resumed.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn a_slot_lasts_as_many_intervals_as_its_units() {
        let rate = RateLimit::new(1000.0);
        let started = Instant::now();
        assert!(rate.wait(50, || false), "the first slot starts at once");
        assert!(rate.wait(50, || false));
        let spent = started.elapsed();
        assert!(spent >= Duration::from_millis(50), "{spent:?}");
    }
}
