//! `--metrics-addr`: a Prometheus text endpoint (`GET /metrics`, exposition format 0.0.4) served
//! by one small blocking HTTP server thread while a load runs, so that a fleet of loaders is
//! watched with the tools already watching everything else. It reads the engine's live counter
//! shards: rows, bytes, batches, retries, errors, rejected rows and the batch-latency histogram,
//! per worker and in total. `--metrics-linger` keeps it serving the final figures after the load,
//! for a last scrape.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::engine::{Counters, LatencyBuckets, Snapshot, LATENCY_BUCKETS_S};

/// A counter family: its name after `loader_`, its help text, and its value in a snapshot.
type CounterFamily = (&'static str, &'static str, fn(&Snapshot) -> u64);

/// How often the server thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(100);

/// Why the endpoint cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricsError {
    #[error("cannot listen on {address} for --metrics-addr: {err}")]
    Listen {
        address: SocketAddr,
        err: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("--metrics-addr {address} is not an IP address")]
    NotIp { address: SocketAddr },
    #[error("cannot start the metrics thread: {0}")]
    Thread(std::io::Error),
}

/// A running endpoint; `stop` ends it.
pub(crate) struct MetricsServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `address` and serves `counters` from a thread of its own.
    pub(crate) fn start(
        address: SocketAddr,
        counters: Arc<Counters>,
    ) -> Result<MetricsServer, MetricsError> {
        let server = tiny_http::Server::http(address)
            .map_err(|err| MetricsError::Listen { address, err })?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or(MetricsError::NotIp { address })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("loader-metrics".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || serve(&server, &counters, &stop)
            })
            .map_err(MetricsError::Thread)?;
        Ok(MetricsServer {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens (the port chosen when `--metrics-addr` gave port 0).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving and waits for the thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, counters: &Counters, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(request)) = server.recv_timeout(POLL) else {
            continue;
        };
        let response = if request.url() == "/metrics" || request.url().starts_with("/metrics?") {
            tiny_http::Response::from_string(render(counters)).with_header(
                tiny_http::Header::from_bytes(
                    "Content-Type",
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .expect("a constant header is valid"),
            )
        } else {
            tiny_http::Response::from_string("loader serves /metrics\n").with_status_code(404)
        };
        // A scraper that hung up is its own problem.
        let _ = request.respond(response);
    }
}

/// The counters in Prometheus's text format.
pub(crate) fn render(counters: &Counters) -> String {
    let shards: Vec<(Snapshot, LatencyBuckets)> = counters
        .shards()
        .map(|shard| (shard.snapshot(), shard.latency()))
        .collect();
    let total = counters.snapshot();
    let mut out = String::with_capacity(4096 + shards.len() * 2048);
    let _ = writeln!(
        out,
        "# HELP loader_workers Worker threads of the load.\n# TYPE loader_workers gauge\n\
         loader_workers {}",
        shards.len()
    );
    let counters_of: [CounterFamily; 6] = [
        ("rows", "Rows the target acknowledged.", |s| s.rows),
        ("bytes", "Bytes of acknowledged batches.", |s| s.bytes),
        (
            "batches",
            "Batches the target acknowledged (transactions, with --commit-every).",
            |s| s.batches,
        ),
        ("retries", "Retries after transient errors.", |s| s.retries),
        ("errors", "Errors that ended a worker's load.", |s| s.errors),
        ("rejected", "Rows rejected as bad.", |s| s.rejected),
    ];
    for (name, help, value) in counters_of {
        let _ = writeln!(
            out,
            "# HELP loader_{name}_total {help}\n# TYPE loader_{name}_total counter\n\
             loader_{name}_total {}",
            value(&total)
        );
        let _ = writeln!(
            out,
            "# HELP loader_worker_{name}_total {help} Per worker.\n\
             # TYPE loader_worker_{name}_total counter"
        );
        for (worker, (snapshot, _)) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "loader_worker_{name}_total{{worker=\"{worker}\"}} {}",
                value(snapshot)
            );
        }
    }
    let mut sum = LatencyBuckets {
        counts: vec![0; LATENCY_BUCKETS_S.len() + 1],
        sum_s: 0.0,
    };
    for (_, latency) in &shards {
        for (total, count) in sum.counts.iter_mut().zip(&latency.counts) {
            *total += count;
        }
        sum.sum_s += latency.sum_s;
    }
    let help = "Time to write one batch, retries included, in seconds.";
    let _ = writeln!(
        out,
        "# HELP loader_batch_latency_seconds {help}\n\
         # TYPE loader_batch_latency_seconds histogram"
    );
    histogram(&mut out, "loader_batch_latency_seconds", "", &sum);
    let _ = writeln!(
        out,
        "# HELP loader_worker_batch_latency_seconds {help} Per worker.\n\
         # TYPE loader_worker_batch_latency_seconds histogram"
    );
    for (worker, (_, latency)) in shards.iter().enumerate() {
        let label = format!("worker=\"{worker}\",");
        histogram(
            &mut out,
            "loader_worker_batch_latency_seconds",
            &label,
            latency,
        );
    }
    out
}

/// One histogram's cumulative buckets, sum and count; `labels` ends with a comma when not empty.
fn histogram(out: &mut String, name: &str, labels: &str, latency: &LatencyBuckets) {
    let mut cumulative = 0;
    for (bound, count) in LATENCY_BUCKETS_S.iter().zip(&latency.counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
    }
    let count: u64 = latency.counts.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
    let labels = labels.trim_end_matches(',');
    let braces = |labels: &str| {
        if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        }
    };
    let _ = writeln!(out, "{name}_sum{} {}", braces(labels), latency.sum_s);
    let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_totals_per_worker_series_and_cumulative_buckets() {
        let counters = Counters::new(2);
        counters
            .shard(0)
            .add_batch(1000, 10, Duration::from_millis(3));
        counters
            .shard(1)
            .add_batch(500, 5, Duration::from_millis(30));
        counters.shard(1).add_retry();
        let text = render(&counters);
        for line in [
            "loader_workers 2",
            "loader_rows_total 1500",
            "loader_worker_rows_total{worker=\"1\"} 500",
            "loader_retries_total 1",
            "loader_batch_latency_seconds_bucket{le=\"0.005\"} 1",
            "loader_batch_latency_seconds_bucket{le=\"0.05\"} 2",
            "loader_batch_latency_seconds_bucket{le=\"+Inf\"} 2",
            "loader_batch_latency_seconds_count 2",
            "loader_worker_batch_latency_seconds_count{worker=\"0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
