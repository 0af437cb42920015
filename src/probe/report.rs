//! What a probe tells: each round's figures and verdict, the sweep table, the process's own cost,
//! as aligned text for people and as JSON for `--report`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::config::{join, ProbeConfig, Stop};
use super::ramp::{self, BreakingPoint};
use super::round::{users, Round};
use super::verdict::{judge, shape, Baseline, Kind, RoundFigures, Shape, Verdict};
use crate::figures::count;
use crate::process::ProcessCost;
use crate::report::{svg_probe, ProbePicture, ProbeRoundPoint};
use crate::stats::LatencySummary;

/// The whole probe, as `--report` writes it.
#[derive(Debug, Serialize)]
pub(crate) struct ProbeReport {
    pub mode: &'static str,
    /// The URL, any password replaced.
    pub url: String,
    pub settings: Settings,
    /// What a lone user saw; the verdicts compare with it.
    pub baseline: Option<Baseline>,
    pub rounds: Vec<RoundReport>,
    /// The worst any round found: `blocking` when one found the server serializing requests,
    /// else `capped` when one found it serving only some at once, `concurrent` when the rounds
    /// that could tell all found it concurrent, null when none could tell.
    pub verdict: Option<Kind>,
    /// How the first byte grew with the users over three or more rounds, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_growth: Option<Shape>,
    /// With `--until`: where the rounds stopped, and the last good level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaking_point: Option<BreakingPoint>,
    pub interrupted: bool,
    pub process: ProcessCost,
}

/// The probe's settings. Header values are left out: they often carry credentials.
#[derive(Debug, Serialize)]
pub(crate) struct Settings {
    pub method: String,
    pub users: Vec<usize>,
    pub requests: Option<u64>,
    pub duration_s: Option<f64>,
    pub rate: Option<f64>,
    pub timeout_s: f64,
    pub connect_timeout_s: f64,
    pub header_names: Vec<String>,
    pub body_bytes: usize,
    pub baseline_requests: u64,
}

/// One round's figures.
#[derive(Debug, Serialize)]
pub(crate) struct RoundReport {
    pub users: usize,
    /// `closed` (back to back) or `open` (planned start times at `offered_rate`).
    pub model: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<u64>,
    pub sent: u64,
    /// Requests that got a whole answer, whatever its status.
    pub answered: u64,
    /// Answers with a status below 400.
    pub succeeded: u64,
    /// Requests that got no whole answer (see `errors`).
    pub failed: u64,
    /// Planned requests never sent because every user was still busy.
    pub unsent: u64,
    /// succeeded / (sent + unsent).
    pub success_rate: f64,
    pub elapsed_s: f64,
    /// Answers per second.
    pub requests_per_s: f64,
    pub bytes: u64,
    pub status_codes: BTreeMap<u16, u64>,
    pub errors: BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_examples: BTreeMap<&'static str, String>,
    pub timings_ms: Timings,
    /// Time during which every user was waiting for the first byte of an answer at once.
    pub all_waiting_s: f64,
    pub all_waiting_share: f64,
    pub longest_all_waiting_ms: f64,
    pub threads: u64,
    pub interrupted: bool,
    /// Tokens in streamed answers.
    pub tokens: u64,
    /// Tokens after the first over the time from the first to the last, over the answers with
    /// tokens: the rate at which one user sees its answer grow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s_per_user: Option<f64>,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// (seconds since the round's start, total ms) of a sample of its answers, for the picture.
    #[serde(skip)]
    pub latencies: Vec<(f32, f32)>,
}

/// Percentiles of each timing, in ms. In the open model they count from the planned start.
#[derive(Debug, Serialize)]
pub(crate) struct Timings {
    pub headers: LatencySummary,
    pub first_byte: LatencySummary,
    pub total: LatencySummary,
    /// Per request, the longest pause between two body reads.
    pub largest_gap: LatencySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_delay: Option<LatencySummary>,
    /// Streamed answers (server-sent events, NDJSON): the first event, any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event: Option<LatencySummary>,
    /// The first event that carried a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token: Option<LatencySummary>,
    /// Every pause between two tokens of an answer, over the round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_gap: Option<LatencySummary>,
    /// Per answer of two or more tokens, its longest pause between two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub largest_token_gap: Option<LatencySummary>,
}

impl RoundReport {
    pub(crate) fn new(round: &Round, baseline: Option<&Baseline>) -> RoundReport {
        let tally = &round.tally;
        let elapsed_s = round.elapsed.as_secs_f64();
        let per_second = |value: u64| {
            if elapsed_s > 0.0 {
                value as f64 / elapsed_s
            } else {
                0.0
            }
        };
        let first_byte = tally.first_byte.summary();
        let first_token = tally.first_token.summary();
        let lone_first_token = baseline.map(|lone| lone.first_token_ms);
        let on_tokens = tally.answered > 0
            && first_token.count == tally.answered
            && lone_first_token.is_none_or(|lone| lone.is_some());
        let (judged_on, waited, lone) = if on_tokens {
            let lone = baseline.map(|lone| Baseline {
                first_byte_ms: lone.first_token_ms.unwrap_or(lone.first_byte_ms),
                ..*lone
            });
            ("first token", &first_token, lone)
        } else {
            ("first byte", &first_byte, baseline.copied())
        };
        let verdict = judge(
            &RoundFigures {
                users: round.plan.users,
                answered: tally.answered,
                answered_per_s: per_second(tally.answered),
                mean_first_byte_ms: waited.mean,
                max_first_byte_ms: waited.max,
                judged_on,
            },
            lone.as_ref(),
        );
        let streamed = |latency: &crate::stats::Latency| {
            let summary = latency.summary();
            (summary.count > 0).then_some(summary)
        };
        let token_span_s = tally.token_span.as_secs_f64();
        let answers_with_tokens = first_token.count;
        let attempts = tally.sent + tally.unsent;
        RoundReport {
            users: round.plan.users,
            model: if round.plan.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            offered_rate: round.plan.rate,
            planned: round.planned,
            sent: tally.sent,
            answered: tally.answered,
            succeeded: tally.succeeded,
            failed: tally.sent - tally.answered,
            unsent: tally.unsent,
            success_rate: if attempts > 0 {
                tally.succeeded as f64 / attempts as f64
            } else {
                0.0
            },
            elapsed_s,
            requests_per_s: per_second(tally.answered),
            bytes: tally.bytes,
            status_codes: tally.status.clone(),
            errors: tally.errors.clone(),
            error_examples: tally.error_examples.clone(),
            timings_ms: Timings {
                headers: tally.headers.summary(),
                first_byte,
                total: tally.total.summary(),
                largest_gap: tally.largest_gap.summary(),
                client_delay: round.plan.rate.map(|_| tally.client_delay.summary()),
                first_event: streamed(&tally.first_event),
                first_token: streamed(&tally.first_token),
                token_gap: streamed(&tally.token_gap),
                largest_token_gap: streamed(&tally.largest_token_gap),
            },
            all_waiting_s: round.all_waiting.as_secs_f64(),
            all_waiting_share: if elapsed_s > 0.0 {
                round.all_waiting.as_secs_f64() / elapsed_s
            } else {
                0.0
            },
            longest_all_waiting_ms: round.longest_all_waiting.as_secs_f64() * 1000.0,
            threads: round.peak_threads,
            interrupted: round.interrupted,
            tokens: tally.tokens,
            tokens_per_s_per_user: (token_span_s > 0.0)
                .then(|| tally.tokens.saturating_sub(answers_with_tokens) as f64 / token_span_s),
            verdict,
            latencies: tally.samples.points.clone(),
        }
    }

    /// What the `--until` rules weigh of this round.
    pub(crate) fn ramp_figures(&self) -> ramp::RoundFigures<'_> {
        ramp::RoundFigures {
            users: self.users,
            success_rate: self.success_rate,
            requests_per_s: self.requests_per_s,
            total: &self.timings_ms.total,
            first_byte: &self.timings_ms.first_byte,
            first_token: self.timings_ms.first_token.as_ref(),
        }
    }

    /// The lone user's medians, when it got any answer.
    pub(crate) fn baseline_of(round: &Round) -> Option<Baseline> {
        let tally = &round.tally;
        let first_token = tally.first_token.summary();
        (tally.answered > 0).then(|| Baseline {
            requests: tally.answered,
            first_byte_ms: tally.first_byte.summary().p50,
            first_token_ms: (first_token.count == tally.answered).then_some(first_token.p50),
            total_ms: tally.total.summary().p50,
        })
    }

    /// A few aligned lines about the round.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        let statuses: Vec<String> = self
            .status_codes
            .iter()
            .map(|(status, n)| format!("{status} ×{}", count(*n)))
            .collect();
        let _ = writeln!(
            out,
            "{}: {} answered in {:.2} s, {:.1}/s · {:.1}% succeeded · {}",
            users(self.users),
            count(self.answered),
            self.elapsed_s,
            self.requests_per_s,
            self.success_rate * 100.0,
            if statuses.is_empty() {
                "no answers".to_string()
            } else {
                statuses.join(", ")
            },
        );
        let _ = writeln!(
            out,
            "  {:<13}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
            "", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        let timings = &self.timings_ms;
        let mut rows = vec![
            ("headers", &timings.headers),
            ("first byte", &timings.first_byte),
            ("total", &timings.total),
            ("largest gap", &timings.largest_gap),
        ];
        let streamed = [
            ("first event", &timings.first_event),
            ("first token", &timings.first_token),
            ("token gap", &timings.token_gap),
            ("largest tgap", &timings.largest_token_gap),
            ("client delay", &timings.client_delay),
        ];
        for (name, latency) in streamed {
            if let Some(latency) = latency {
                rows.push((name, latency));
            }
        }
        for (name, latency) in rows {
            let _ = writeln!(
                out,
                "  {name:<13}{}{}{}{}{}{}",
                ms(latency.p50),
                ms(latency.p90),
                ms(latency.p99),
                ms(latency.p999),
                ms(latency.max),
                ms(latency.mean)
            );
        }
        if let Some(rate) = self.tokens_per_s_per_user {
            let _ = writeln!(
                out,
                "  tokens: {} in all, {rate:.1}/s per user while streaming",
                count(self.tokens)
            );
        }
        if self.unsent > 0 {
            let _ = writeln!(
                out,
                "  unsent: {} planned requests (every user was still busy --timeout after the \
                 round's end)",
                count(self.unsent),
            );
        }
        for (kind, n) in &self.errors {
            let example = self.error_examples.get(kind).map_or("", String::as_str);
            let _ = writeln!(out, "  error {kind}: {} (e.g. {example})", count(*n));
        }
        let _ = writeln!(
            out,
            "  every user waiting for a first byte: {:.1}% of the round (longest {:.1} ms)",
            self.all_waiting_share * 100.0,
            self.longest_all_waiting_ms
        );
        let _ = write!(
            out,
            "  verdict: {} — {}",
            self.verdict.verdict.map_or("not judged", Kind::sentence),
            self.verdict.reason
        );
        out
    }
}

/// `12.345` → `  12.35 ms`, right-aligned in 11 columns.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:>8.2} ms")
    } else {
        format!("{value:>8.1} ms")
    }
}

impl ProbeReport {
    pub(crate) fn new(config: &ProbeConfig) -> ProbeReport {
        let (requests, duration_s) = match config.stop {
            Stop::Requests(requests) => (Some(requests), None),
            Stop::Duration(duration) => (None, Some(duration.as_secs_f64())),
        };
        ProbeReport {
            mode: "probe",
            url: config.url.clone(),
            settings: Settings {
                method: config.request.method.to_string(),
                users: config.users.clone(),
                requests,
                duration_s,
                rate: config.rate,
                timeout_s: config.endpoint.timeout.as_secs_f64(),
                connect_timeout_s: config.endpoint.connect_timeout.as_secs_f64(),
                header_names: config
                    .request
                    .headers
                    .iter()
                    .map(|(name, _)| name.to_string())
                    .collect(),
                body_bytes: config.request.body.len(),
                baseline_requests: config.baseline,
            },
            baseline: None,
            rounds: Vec::new(),
            verdict: None,
            first_byte_growth: None,
            breaking_point: None,
            interrupted: false,
            process: ProcessCost::default(),
        }
    }

    /// The line printed before the first round.
    pub(crate) fn headline(&self) -> String {
        let settings = &self.settings;
        let length = match (settings.requests, settings.duration_s) {
            (Some(requests), _) => format!("{} requests per round", count(requests)),
            (None, Some(seconds)) => format!("{seconds} s per round"),
            (None, None) => String::new(),
        };
        let model = match settings.rate {
            Some(rate) => format!("open model at {rate} requests/s"),
            None => "closed model (back to back)".into(),
        };
        format!(
            "probe: {} {} · users {} · {length} · {model}",
            settings.method,
            self.url,
            join(&settings.users),
        )
    }

    /// Settles the overall verdict and measures the process's cost.
    pub(crate) fn finish(&mut self, baseline: Option<Baseline>, interrupted: bool) {
        self.baseline = baseline;
        self.interrupted = interrupted;
        self.verdict = self
            .rounds
            .iter()
            .filter_map(|round| round.verdict.verdict)
            .max();
        let judged: Vec<_> = self
            .rounds
            .iter()
            .filter(|round| round.verdict.verdict.is_some())
            .collect();
        let waits: Vec<_> = judged
            .iter()
            .map(|round| (round.users, round.verdict.mean_first_byte_ms))
            .collect();
        // The rounds' waits and the lone user's must be of one kind: first bytes or first tokens.
        let on_tokens = judged
            .iter()
            .all(|round| round.verdict.judged_on == "first token");
        let on_bytes = judged
            .iter()
            .all(|round| round.verdict.judged_on == "first byte");
        self.first_byte_growth = baseline.and_then(|baseline| match (on_tokens, on_bytes) {
            (_, true) => shape(&waits, baseline.first_byte_ms),
            (true, false) => shape(&waits, baseline.first_token_ms?),
            (false, false) => None,
        });
        let peak_threads = self.rounds.iter().map(|round| round.threads).max();
        self.process = ProcessCost::measure(peak_threads.unwrap_or(0));
    }

    /// Requests were sent, and every planned one was answered with a status below 400, in
    /// every round but the one that broke an `--until` rule: its failures are what it found.
    pub(crate) fn all_succeeded(&self) -> bool {
        let judged = match self
            .breaking_point
            .as_ref()
            .and_then(|point| point.broken_at)
        {
            Some(_) => &self.rounds[..self.rounds.len().saturating_sub(1)],
            None => &self.rounds[..],
        };
        // A ramp whose first round broke its rule found no good level.
        !judged.is_empty()
            && judged
                .iter()
                .all(|round| round.sent > 0 && round.succeeded == round.sent + round.unsent)
    }

    /// The closing lines: the sweep table, the verdict, the process's cost.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        if self.rounds.len() > 1 {
            let _ = writeln!(
                out,
                "{:>6} {:>12} {:>14} {:>14} {:>9}  verdict",
                "users", "requests/s", "mean TTFB", "max TTFB", "success"
            );
            for round in &self.rounds {
                let _ = writeln!(
                    out,
                    "{:>6} {:>12.1} {:>14} {:>14} {:>8.1}%  {}",
                    round.users,
                    round.requests_per_s,
                    ms(round.verdict.mean_first_byte_ms),
                    ms(round.verdict.max_first_byte_ms),
                    round.success_rate * 100.0,
                    round.verdict.verdict.map_or("not judged", Kind::name)
                );
            }
        }
        if let Some(baseline) = &self.baseline {
            let _ = writeln!(
                out,
                "baseline: a lone user, {} requests: first byte {:.2} ms, total {:.2} ms (medians)",
                baseline.requests, baseline.first_byte_ms, baseline.total_ms
            );
        }
        let _ = writeln!(
            out,
            "verdict: {}",
            self.verdict
                .map_or("not judged (see the rounds)", Kind::sentence)
        );
        if let Some(shape) = &self.first_byte_growth {
            let _ = writeln!(out, "growth: {} — {}", shape.growth, shape.reason);
        }
        if let Some(point) = &self.breaking_point {
            let _ = writeln!(out, "{}", point.sentence());
        }
        let process = &self.process;
        let _ = write!(
            out,
            "process: {:.2} s user + {:.2} s system CPU, peak RSS {:.1} MB, {} threads",
            process.user_cpu_s, process.system_cpu_s, process.peak_rss_mb, process.threads
        );
        if self.interrupted {
            out.push_str("\ninterrupted: the rounds above are what was measured until then");
        }
        out
    }

    /// Writes the report to `path`: an SVG picture for `.svg`, else pretty JSON.
    pub(crate) fn write_to(&self, path: &Path) -> io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        let svg = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("svg"));
        if svg {
            out.write_all(svg_probe(&self.picture())?.as_bytes())?;
        } else {
            serde_json::to_writer_pretty(&mut out, self)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// The figures of the picture: each round's wait (its first token when every round was
    /// judged on tokens), requests/s and effective concurrency, and its sampled answers placed
    /// after the rounds before it.
    fn picture(&self) -> ProbePicture {
        let on_tokens = !self.rounds.is_empty()
            && self
                .rounds
                .iter()
                .all(|round| round.timings_ms.first_token.is_some());
        let mut start = 0.0f32;
        let rounds = self
            .rounds
            .iter()
            .map(|round| {
                let timings = &round.timings_ms;
                let wait = match (&timings.first_token, on_tokens) {
                    (Some(first_token), true) => first_token,
                    _ => &timings.first_byte,
                };
                let latencies = round
                    .latencies
                    .iter()
                    .map(|&(at, ms)| (start + at, ms))
                    .collect();
                start += round.elapsed_s as f32;
                ProbeRoundPoint {
                    users: round.users,
                    wait_p50_ms: wait.p50,
                    wait_p99_ms: wait.p99,
                    requests_per_s: round.requests_per_s,
                    effective_concurrency: round.verdict.effective_concurrency,
                    latencies,
                }
            })
            .collect();
        ProbePicture {
            title: format!("loader probe {} {}", self.settings.method, self.url),
            subtitle: format!(
                "verdict: {}",
                self.verdict.map_or("not judged", Kind::sentence)
            ),
            waited_for: if on_tokens {
                "first token"
            } else {
                "first byte"
            },
            rounds,
        }
    }
}
