//! `loader probe`'s validated settings: the request every user sends, the rounds to run, and how
//! each round ends (built from the flags, each checked, in `config/probe.rs`).

use std::path::PathBuf;
use std::time::Duration;

use super::client::RequestTemplate;
use super::ramp::StopRule;
use super::wire::Endpoint;

/// The most users one round may have: one OS thread each.
pub(crate) const MAX_USERS: usize = 10_000;

/// How a round ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stop {
    /// After this many requests over all users.
    Requests(u64),
    /// After this long.
    Duration(Duration),
}

/// Settings of `loader probe`.
#[derive(Debug)]
pub(crate) struct ProbeConfig {
    pub request: RequestTemplate,
    /// The URL as reports show it, any password replaced.
    pub url: String,
    /// One round per entry, in order.
    pub users: Vec<usize>,
    /// The rounds end after the first that breaks one of these.
    pub until: Vec<StopRule>,
    pub stop: Stop,
    /// Offered requests per second over all users (open model).
    pub rate: Option<f64>,
    pub endpoint: Endpoint,
    /// Requests of the lone-user baseline; 0 for none.
    pub baseline: u64,
    /// Reports to write: JSON, or an SVG picture, by extension.
    pub report: Vec<PathBuf>,
    pub progress_every: Duration,
    pub quiet: bool,
}

/// `[1, 10, 20]` → `1,10,20`.
pub(crate) fn join(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
