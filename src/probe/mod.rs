//! `loader probe URL`: concurrent blocking HTTP users, one OS thread and one keep-alive
//! connection each, measure time to headers, time to first byte, total time and stalls in
//! streamed answers, and tell whether the server handles requests concurrently or one at a time.
//!
//! A probe runs one round per `--users` count ([`round`]), after a lone-user baseline when the
//! first round is not a lone user itself; each round is judged against that baseline
//! ([`verdict`]). The summary is printed, and `--report` writes every figure as JSON ([`report`]).

mod client;
mod config;
mod events;
mod ramp;
mod report;
mod round;
mod tally;
mod verdict;
mod wire;

use crate::engine::StopSignal;
use crate::report::human::print_stdout;
use crate::report::{EXIT_FATAL, EXIT_INTERRUPTED, EXIT_REJECTS};

pub(crate) use client::RequestTemplate;
pub(crate) use config::{ProbeConfig, Stop, MAX_USERS};
pub(crate) use events::TokenRule;
pub(crate) use ramp::{ramp, StopRule};
pub(crate) use verdict::Kind;
pub(crate) use wire::Endpoint;

use ramp::BreakingPoint;
use report::{ProbeReport, RoundReport};
use round::{Progress, RoundPlan};

/// Runs `loader probe` and returns its exit code: 0 when every request succeeded and no round
/// found the server serializing requests, 1 when some failed or one did, 3 when the first
/// connection was refused or not taken (nothing is measured then), when user threads could not
/// be started or failed (the rounds before are still reported) or the report could not be
/// written, 130 when interrupted.
pub(crate) fn run(config: &ProbeConfig, signal: &StopSignal) -> u8 {
    let mut probe = ProbeReport::new(config);
    if !config.quiet {
        eprintln!("{}", probe.headline());
    }
    let plan = |users| RoundPlan {
        users,
        stop: config.stop,
        rate: config.rate,
        timeout: config.endpoint.timeout,
    };
    let progress = Progress {
        every: config.progress_every,
        quiet: config.quiet,
    };
    let round = |plan| round::run(plan, &config.request, &config.endpoint, progress, signal);
    // A first round of one user serves as the baseline, unless --rate adds client delay to it.
    let first_round_is_baseline = config.users[0] == 1 && config.rate.is_none();
    let mut baseline = None;
    let mut failure = config.endpoint.check_reachable().err();
    if config.baseline > 0 && !first_round_is_baseline && failure.is_none() {
        let lone = RoundPlan {
            users: 1,
            stop: Stop::Requests(config.baseline),
            rate: None,
            ..plan(1)
        };
        match round(lone) {
            Ok(lone) => baseline = Some(RoundReport::baseline_of(&lone)),
            Err(err) => failure = Some(err.to_string()),
        }
    }
    for &users in &config.users {
        if signal.is_stopping() || failure.is_some() {
            break;
        }
        let measured = match round(plan(users)) {
            Ok(measured) => measured,
            Err(err) => {
                failure = Some(err.to_string());
                break;
            }
        };
        if first_round_is_baseline && baseline.is_none() && config.baseline > 0 {
            baseline = Some(RoundReport::baseline_of(&measured));
        }
        let lone_user = baseline.flatten();
        let judged = RoundReport::new(&measured, lone_user.as_ref());
        if !config.quiet {
            print_stdout(&format!("{}\n", judged.summary()));
        }
        let previous = probe.rounds.last().map(RoundReport::ramp_figures);
        let figures = judged.ramp_figures();
        let broken = config
            .until
            .iter()
            .find_map(|rule| rule.broken_by(&figures, previous.as_ref()));
        if let Some(reason) = broken {
            probe.breaking_point = Some(BreakingPoint {
                broken_at: Some(judged.users),
                reason: Some(reason),
                last_good: probe.rounds.last().map(|round| round.users),
            });
            probe.rounds.push(judged);
            break;
        }
        probe.rounds.push(judged);
    }
    // A ramp cut short by Ctrl-C or a failure did not reach its last level: it says nothing.
    let ramp_ran_out = failure.is_none() && !signal.is_stopping();
    if !config.until.is_empty() && probe.breaking_point.is_none() && ramp_ran_out {
        probe.breaking_point = Some(BreakingPoint {
            broken_at: None,
            reason: None,
            last_good: probe.rounds.last().map(|round| round.users),
        });
    }
    probe.finish(baseline.flatten(), signal.is_interrupted());
    if !config.quiet {
        print_stdout(&format!("{}\n", probe.summary()));
    }
    for path in &config.report {
        if let Err(err) = probe.write_to(path) {
            eprintln!(
                "loader: error: cannot write the report {}: {err}",
                path.display()
            );
            return EXIT_FATAL;
        }
    }
    if let Some(message) = failure {
        eprintln!("loader: error: {message}");
        EXIT_FATAL
    } else if probe.interrupted {
        EXIT_INTERRUPTED
    } else if probe.all_succeeded() && probe.verdict != Some(Kind::Blocking) {
        0
    } else {
        EXIT_REJECTS
    }
}
