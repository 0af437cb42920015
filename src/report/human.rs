//! The short summary printed at the end of every load, and printing it without a panic when
//! standard output is closed.

use std::fmt::Write;

use super::Report;
use crate::figures::count;

/// Prints `text` (a summary) to standard output without panicking as `print!` does: a reader
/// that went away (`loader … | head -0`) is no error, the rows are loaded and the report file is
/// still to be written; any other failure is said in one line on stderr.
pub(crate) fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let written = std::io::Write::write_all(&mut out, text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut out));
    if let Err(err) = written {
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("loader: warning: cannot print the summary to standard output: {err}");
        }
    }
}

/// The final summary, a few aligned lines.
pub(crate) fn summary(report: &Report) -> String {
    let mut out = String::new();
    let latency = &report.batch_latency_ms;
    let process = &report.process;
    let _ = writeln!(
        out,
        "loader {}: {} — {} rows in {:.2} s",
        report.mode,
        report.outcome,
        count(report.rows_loaded),
        report.elapsed_s
    );
    let _ = writeln!(
        out,
        "  rate      {} rows/s, {:.1} MB/s over {} workers",
        count(report.rows_per_s as u64),
        report.mb_per_s,
        report.workers.len()
    );
    let _ = writeln!(
        out,
        "  batches   {}, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        count(report.batches),
        latency.p50,
        latency.p99,
        latency.max
    );
    let _ = writeln!(
        out,
        "  problems  {} retries, {} errors, {} rows rejected",
        report.retries.values().sum::<u64>(),
        report.errors.values().sum::<u64>(),
        count(report.rows_rejected),
    );
    if report.rows_skipped_by_server > 0 {
        let _ = writeln!(
            out,
            "  stored    sent {}, stored {}: the server dropped {} (a trigger or rule)",
            count(report.rows_sent),
            count(report.rows_loaded),
            count(report.rows_skipped_by_server),
        );
    }
    if let Some(file) = &report.reject_file {
        let kinds: Vec<String> = report
            .rejects
            .iter()
            .map(|(kind, rows)| format!("{kind} {}", count(*rows)))
            .collect();
        let _ = writeln!(out, "  rejects   {} in {file}", kinds.join(", "));
    }
    match report.rows_disagreeing_with_sample {
        Some(0) if report.rows_loaded > 0 => {
            let _ = writeln!(
                out,
                "  sample    every row fit the types sniffed from the sample"
            );
        }
        Some(1) => {
            let _ = writeln!(
                out,
                "  sample    1 row disagreed with the types sniffed from the sample (a reject)"
            );
        }
        Some(rows) if rows > 1 => {
            let _ = writeln!(
                out,
                "  sample    {} rows disagreed with the types sniffed from the sample (among the \
                 rejects)",
                count(rows)
            );
        }
        _ => {}
    }
    for line in &report.stage_lines {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(resumed) = &report.resumed {
        let _ = writeln!(
            out,
            "  resumed   skipped {} batches ({} rows, {} rejected) committed by the earlier attempt",
            count(resumed.skipped_batches),
            count(resumed.skipped_rows),
            count(resumed.skipped_rejected)
        );
    }
    let _ = writeln!(
        out,
        "  process   {:.2} s user + {:.2} s system CPU, peak RSS {:.1} MB, {} threads, {} / {} context switches (voluntary / involuntary)",
        process.user_cpu_s,
        process.system_cpu_s,
        process.peak_rss_mb,
        process.threads,
        count(process.voluntary_context_switches.max(0) as u64),
        count(process.involuntary_context_switches.max(0) as u64),
    );
    if let Some(server) = &report.server_time {
        let shares = &server.shares;
        let percent = |share: f64| format!("{:.0} %", share * 100.0);
        let mut line = format!(
            "  server    backends on CPU {}, waiting for loader {}, for commits {}, locks {}, I/O {}",
            percent(shares.cpu),
            percent(shares.client),
            percent(shares.commit),
            percent(shares.lock),
            percent(shares.io),
        );
        if let (Some(bytes), Some(syncs)) = (server.wal_bytes, server.wal_syncs) {
            let rows = report.rows_loaded.max(1) as f64;
            let _ = write!(
                line,
                "; WAL {:.0} bytes per row, {:.2} flushes per 1,000 rows",
                bytes as f64 / rows,
                syncs as f64 * 1000.0 / rows
            );
        }
        if let Some(checkpoints) = server.checkpoints {
            let _ = write!(line, ", {checkpoints} checkpoints");
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(server) = &report.clickhouse {
        let mut line = format!(
            "  server    running loader's inserts {:.0} % of the workers' time ({:.1} at once on average)",
            server.executing_share * 100.0,
            server.mean_running
        );
        if let (Some(inserts), Some(rows)) = (server.inserts, server.written_rows) {
            let _ = write!(
                line,
                "; {} inserts logged, {} rows",
                count(inserts),
                count(rows)
            );
        }
        let _ = write!(
            line,
            "; {} delayed, {} refused for too many parts, {} merges",
            count(server.delayed_inserts),
            count(server.rejected_inserts),
            count(server.merges)
        );
        if let Some(parts) = server.active_parts {
            let _ = write!(line, ", {} active parts", count(parts));
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(pool) = &report.elasticsearch {
        let mut line = format!(
            "  server    write thread pool: {} rejected, {} completed, queue at most {} ({} nodes)",
            count(pool.rejected),
            count(pool.completed),
            count(pool.peak_queue),
            pool.nodes
        );
        if let (Some(total), Some(time), Some(throttled)) =
            (pool.index_total, pool.index_time_s, pool.throttle_time_s)
        {
            let _ = write!(
                line,
                "; {} documents indexed in {time:.2} s, throttled {throttled:.2} s",
                count(total)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(verdict) = &report.verdict {
        let _ = writeln!(out, "  bound by  {}", verdict.line());
    }
    if !report.hosts.is_empty() {
        let hosts: Vec<String> = report
            .hosts
            .iter()
            .map(|host| format!("{} {} rows", host.host, count(host.rows)))
            .collect();
        let _ = writeln!(out, "  hosts     {}", hosts.join(", "));
    }
    if let Some(moved) = &report.moved {
        let _ = writeln!(
            out,
            "  in doubt  {} batches sent again to another host after a failed COMMIT: {} rows on \
             two hosts (counted twice), {} batches unverified",
            count(moved.moved_batches),
            count(moved.duplicated_rows),
            moved.unverified.len()
        );
    }
    if let Some(target) = report.config.get("target").and_then(|t| t.as_str()) {
        let _ = writeln!(out, "  target    {target}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
