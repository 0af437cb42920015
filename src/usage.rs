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

/// Flags that belong to another mode, with what to use instead: `(mode, flag, advice)`.
const OTHER_MODES_FLAGS: &[(&str, &str, &str)] = &[
    (
        "copy",
        "--rows",
        "copy reads its inputs to the end; to load only the first N records use --limit N",
    ),
    (
        "ingest",
        "--rows",
        "ingest reads every document listed; to load only the first N use --limit N",
    ),
];

/// A clap parse error as one line: clap's first line, its tip (or ours, for a flag of another
/// mode), and where the options are listed: `unexpected argument '--rows' found; copy reads its
/// inputs to the end; to load only the first N records use --limit N; see loader copy --help`.
pub(crate) fn parse_error_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip: "))
        .collect();
    let said = said.join(" ");
    let mut line = said.strip_prefix("error: ").unwrap_or(&said).to_string();
    let command: Vec<&str> = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|word| !word.starts_with(['[', '<', '-']))
                .collect()
        })
        .unwrap_or_default();
    let unknown = err
        .get(clap::error::ContextKind::InvalidArg)
        .map(|arg| arg.to_string());
    let ours = OTHER_MODES_FLAGS
        .iter()
        .find(|(mode, flag, _)| command.get(1) == Some(mode) && unknown.as_deref() == Some(*flag));
    match ours {
        Some((_, _, advice)) => {
            line.push_str("; ");
            line.push_str(advice);
        }
        None => {
            for tip in text
                .lines()
                .filter_map(|line| line.trim().strip_prefix("tip: "))
            {
                line.push_str("; ");
                line.push_str(tip);
            }
        }
    }
    if !command.is_empty() {
        line.push_str(&format!("; see {} --help", command.join(" ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::parse_error_line;
    use crate::cli::Cli;

    fn line(args: &[&str]) -> String {
        let err = Cli::try_parse_from(args).expect_err("a parse error");
        parse_error_line(&err)
    }

    #[test]
    fn parse_errors_are_one_line_with_the_fix() {
        assert_eq!(
            line(&["loader", "copy", "--rows", "5"]),
            "unexpected argument '--rows' found; copy reads its inputs to the end; to load only \
             the first N records use --limit N; see loader copy --help"
        );
        assert_eq!(
            line(&["loader", "--thread", "3"]),
            "unexpected argument '--thread' found; a similar argument exists: '--threads'; see \
             loader --help"
        );
        let missing = line(&["loader", "probe"]);
        assert!(missing.contains("not provided: <URL>"), "{missing}");
        for args in [&["loader", "copy", "--rows", "5"][..], &["loader", "probe"]] {
            assert!(!line(args).contains('\n'));
        }
    }
}
