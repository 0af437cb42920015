//! The process's own cost, from getrusage(2) and /proc: CPU seconds, context switches, peak RSS
//! (of this program image: /proc's `VmHWM`) and threads — what a blocking-versus-async comparison
//! needs.

use nix::sys::resource::{getrusage, UsageWho};
use serde::Serialize;

/// Resources the process used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct ProcessCost {
    pub user_cpu_s: f64,
    pub system_cpu_s: f64,
    pub peak_rss_mb: f64,
    pub voluntary_context_switches: i64,
    pub involuntary_context_switches: i64,
    /// The most threads seen while the workers ran.
    pub threads: u64,
}

impl ProcessCost {
    /// Reads the process's usage; `peak_threads` comes from the engine's samples.
    pub(crate) fn measure(peak_threads: u64) -> ProcessCost {
        let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
            return ProcessCost {
                threads: peak_threads,
                ..ProcessCost::default()
            };
        };
        let seconds = |time: nix::sys::time::TimeVal| {
            time.tv_sec() as f64 + time.tv_usec() as f64 / 1_000_000.0
        };
        ProcessCost {
            user_cpu_s: seconds(usage.user_time()),
            system_cpu_s: seconds(usage.system_time()),
            // Linux reports both in KiB.
            peak_rss_mb: peak_rss_kib().unwrap_or(usage.max_rss()) as f64 / 1024.0,
            voluntary_context_switches: usage.voluntary_context_switches(),
            involuntary_context_switches: usage.involuntary_context_switches(),
            threads: peak_threads.max(threads_now()),
        }
    }
}

/// The peak resident set of this program image, in KiB: `VmHWM` in /proc/self/status. Not
/// getrusage's `ru_maxrss`, which keeps the peak of the image before `exec`: started by a process
/// that holds 400 MB (a test harness, `cargo run`, a script), loader would report those 400 MB as
/// its own.
fn peak_rss_kib() -> Option<i64> {
    status_field("VmHWM:")?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// A field of /proc/self/status, after its name.
fn status_field(name: &str) -> Option<String> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(name).map(str::to_owned))
}

/// The number of threads the process has now (0 where /proc is not available).
pub(crate) fn threads_now() -> u64 {
    status_field("Threads:")
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_this_process() {
        let cost = ProcessCost::measure(0);
        assert!(cost.peak_rss_mb > 1.0, "{cost:?}");
        assert!(cost.threads >= 1, "{cost:?}");
    }
}
