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
    #[error("target `{target}`: {reason}")]
    Target { target: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    Input { path: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    /// A `--ca-file` that cannot be used.
    #[error(transparent)]
    Certificates(#[from] PemError),
}

/// `--FLAG VALUE: REASON`.
pub(crate) fn invalid(
    flag: &'static str,
    value: impl fmt::Display,
    reason: impl fmt::Display,
) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Reads one environment variable; injected so that resolution is testable.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`EnvLookup`].
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
