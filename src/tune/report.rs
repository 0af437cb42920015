//! What `loader tune` prints and writes: the table of settings tried (the best and the knee
//! marked) and the command to run, as text, JSON, Markdown or an SVG bar chart of rows/s.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::Search;
use crate::figures::count;
use crate::report::svg_bars;

/// The extensions `--report` takes for a search.
pub(crate) const EXTENSIONS: [&str; 3] = ["json", "md", "svg"];

/// The settings tried, one line each, then the command the knee recommends.
pub(crate) fn table(search: &Search) -> String {
    let mut out = format!(
        "loader tune: {} settings, {:.0} s each\n\n  {:>7}  {:>6}  {:>12}  {:>12}  {:>9}  {:>9}  bound by\n",
        search.trials.len(),
        search.trial_s,
        "threads",
        "batch",
        "commit every",
        "rows/s",
        "p99 ms",
        "CPU cores"
    );
    for (i, trial) in search.trials.iter().enumerate() {
        let mark = match (i == search.best, i == search.knee) {
            (true, true) => "best, knee",
            (true, false) => "best",
            (false, true) => "knee",
            (false, false) => "",
        };
        out.push_str(&format!(
            "  {:>7}  {:>6}  {:>12}  {:>12}  {:>9.1}  {:>9.2}  {}{}\n",
            trial.threads,
            trial.batch,
            trial.commit_every,
            count(trial.rows_per_s as u64),
            trial.p99_ms,
            trial.cpu_cores,
            trial.bound_by.as_deref().unwrap_or("-"),
            if mark.is_empty() {
                String::new()
            } else {
                format!("  ← {mark}")
            }
        ));
    }
    if !search.command.is_empty() {
        out.push_str(&format!(
            "\nThe knee, the cheapest setting within 5 % of the best:\n  {}\n",
            search.command
        ));
    }
    out
}

/// Writes the search to `path`: Markdown for `.md`, an SVG chart for `.svg`, JSON for `.json`.
pub(crate) fn write_to(search: &Search, path: &Path) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    match path.extension().and_then(|e| e.to_str()) {
        Some("md") => {
            writeln!(
                out,
                "# loader tune\n\n| threads | batch | commit every | rows/s | p99 ms | CPU cores | bound by |\n|---|---|---|---|---|---|---|"
            )?;
            for trial in &search.trials {
                writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.1} | {:.2} | {} |",
                    trial.threads,
                    trial.batch,
                    trial.commit_every,
                    trial.rows_per_s,
                    trial.p99_ms,
                    trial.cpu_cores,
                    trial.bound_by.as_deref().unwrap_or("-").replace('|', "\\|")
                )?;
            }
            writeln!(out, "\n`{}`", search.command)?;
        }
        Some("svg") => {
            let bars: Vec<(String, f64)> = search
                .trials
                .iter()
                .map(|t| {
                    (
                        format!("{}×{}/{}", t.threads, t.batch, t.commit_every),
                        t.rows_per_s,
                    )
                })
                .collect();
            let title = format!(
                "loader tune: rows/s by threads × batch / commit every (knee: {})",
                bars.get(search.knee).map_or("-", |bar| bar.0.as_str())
            );
            out.write_all(svg_bars(&title, &bars, search.knee)?.as_bytes())?;
        }
        _ => {
            serde_json::to_writer_pretty(&mut out, search)?;
            writeln!(out)?;
        }
    }
    out.flush()
}
