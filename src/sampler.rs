//! The thread that watches the target's server while the workers load: started once they have
//! connected (so that its own connection never takes one of theirs), it runs one watch (a
//! PostgreSQL `pg_stat_activity` sampler, ClickHouse's `system.processes`, Elasticsearch's node
//! stats) until the load ends and hands back its figures. A server that cannot be watched is said
//! in one warning line, and the load goes on without the figures.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// How often a watch samples the server: often enough for a 2 s load to give 20 samples, rarely
/// enough that the one short query each costs is lost in the load.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The end of the load, as a watch waits for it: its pause between samples ends as soon as the
/// load does, so that a finished load does not wait out a sampling interval.
pub(crate) struct Stop {
    /// Disconnected when the load ends: nothing is ever sent.
    ended: Receiver<()>,
}

impl Stop {
    /// Waits `pause`, or less if the load ends first; whether it has ended.
    fn ended_within(&self, pause: Duration) -> bool {
        matches!(
            self.ended.recv_timeout(pause),
            Err(RecvTimeoutError::Disconnected)
        )
    }
}

/// A watch running on a thread of its own until [`Sampler::finish`].
pub(crate) struct Sampler<T> {
    /// Dropped to end the watch.
    end: Sender<()>,
    thread: Option<JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> Sampler<T> {
    /// Runs `watch` on a thread of its own; it is to return once the load ends ([`Stop`]).
    pub(crate) fn start(
        watch: impl FnOnce(&Stop) -> Result<T, String> + Send + 'static,
    ) -> Sampler<T> {
        let (end, ended) = crossbeam_channel::bounded(0);
        let stop = Stop { ended };
        let thread = std::thread::Builder::new()
            .name("loader-sampler".into())
            .spawn(move || {
                let watched = watch(&stop);
                if let Err(reason) = &watched {
                    eprintln!("loader: warning: the server's time is not sampled: {reason}");
                }
                watched.ok()
            });
        if let Err(err) = &thread {
            eprintln!("loader: warning: the server's time is not sampled: no thread: {err}");
        }
        Sampler {
            end,
            thread: thread.ok(),
        }
    }

    /// Stops the watch (at once, even in its pause between samples); its figures, unless the
    /// server could not be watched.
    pub(crate) fn finish(self) -> Option<T> {
        drop(self.end);
        self.thread?.join().ok().flatten()
    }
}

/// Calls `sample` every [`SAMPLE_EVERY`] until the load ends; the first failure ends it.
pub(crate) fn sample_until<E>(
    stop: &Stop,
    mut sample: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    loop {
        sample()?;
        if stop.ended_within(SAMPLE_EVERY) {
            return Ok(());
        }
    }
}
