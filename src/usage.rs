//! A flag, file or setting that cannot be used: [`ConfigError`], printed as one line before
//! anything starts, exit code 2. Every layer that parses something the user typed (the target, the
//! table name, the shard) reports it in these words.

use std::fmt;

use crate::pem::PemError;

/// A flag or setting that cannot be used; printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag} {value}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("target `{}`: {reason}", printable(.target))]
    Target { target: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    Input { path: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    /// A `--ca-file` that cannot be used.
    #[error(transparent)]
    Certificates(#[from] PemError),
}

/// `--FLAG VALUE: REASON`, the value's control characters escaped (`\u{1b}`, `\n`) so that what
/// the user typed cannot move the cursor, recolour the terminal or break the one line.
pub(crate) fn invalid(
    flag: &'static str,
    value: impl fmt::Display,
    reason: impl fmt::Display,
) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: printable(&value.to_string()),
        reason: reason.to_string(),
    }
}

/// `text` with its control characters escaped as Rust writes them; the rest as it is.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Reads one environment variable; injected so that resolution is testable.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`EnvLookup`].
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
