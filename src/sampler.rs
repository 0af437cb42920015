//! The thread that watches the target's server while the workers load: started once they have
//! connected (so that its own connection never takes one of theirs), it runs one watch (a
//! PostgreSQL `pg_stat_activity` sampler, ClickHouse's `system.processes`, Elasticsearch's node
//! stats) until the load ends and hands back its figures. A server that cannot be watched is said
//! in one warning line, and the load goes on without the figures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a watch samples the server: often enough for a 2 s load to give 20 samples, rarely
/// enough that the one short query each costs is lost in the load.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A watch running on a thread of its own until [`Sampler::finish`].
pub(crate) struct Sampler<T> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> Sampler<T> {
    /// Runs `watch` on a thread of its own; it is to return once the flag it is given is set.
    pub(crate) fn start(
        watch: impl FnOnce(&AtomicBool) -> Result<T, String> + Send + 'static,
    ) -> Sampler<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("loader-sampler".into())
            .spawn(move || {
                let watched = watch(&stopped);
                if let Err(reason) = &watched {
                    eprintln!("loader: warning: the server's time is not sampled: {reason}");
                }
                watched.ok()
            });
        if let Err(err) = &thread {
            eprintln!("loader: warning: the server's time is not sampled: no thread: {err}");
        }
        Sampler {
            stop,
            thread: thread.ok(),
        }
    }

    /// Stops the watch; its figures, unless the server could not be watched.
    pub(crate) fn finish(self) -> Option<T> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread?.join().ok().flatten()
    }
}

/// Calls `sample` every [`SAMPLE_EVERY`] until `stop` is set; the first failure ends it.
pub(crate) fn sample_until<E>(
    stop: &AtomicBool,
    mut sample: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    while !stop.load(Ordering::Relaxed) {
        sample()?;
        std::thread::sleep(SAMPLE_EVERY);
    }
    Ok(())
}
