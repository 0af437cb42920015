//! `loader probe`'s flags into a [`ProbeConfig`]: the request every user sends, the rounds to
//! run, and how each round ends.

use ureq::http::{HeaderName, HeaderValue, Method, Uri};

use super::{check_report_path, positive, progress_interval, A_CENTURY, A_DAY};
use crate::cli::ProbeArgs;
use crate::conninfo::redact;
use rustls::pki_types::ServerName;

use crate::http_client::resolve_directly;
use crate::probe::{
    ramp, Endpoint, ProbeConfig, RequestTemplate, Stop, StopRule, TokenRule, MAX_USERS,
};
use crate::tls::{https_client_config, HttpsSetupError};
use crate::usage::{invalid, ConfigError};

/// Requests per round when neither --requests nor --duration is given.
const DEFAULT_REQUESTS: u64 = 200;

/// The slowest and fastest `--rate`, in requests per second.
const RATE_RANGE: (f64, f64) = (0.001, 10_000_000.0);

/// The most requests one open-model round may plan.
const MAX_PLANNED: f64 = 1e9;

impl ProbeConfig {
    pub(crate) fn from_args(args: &ProbeArgs) -> Result<ProbeConfig, ConfigError> {
        let url = redact(&args.url);
        let uri: Uri = args
            .url
            .parse()
            .map_err(|err| invalid("url", &url, format!("is not a URL: {err}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid(
                "url",
                &url,
                "must be an http:// or https:// URL with a host",
            ));
        }
        let users = user_counts(&args.users, args.step)?;
        let until = args
            .until
            .iter()
            .map(|rule| StopRule::parse(rule).map_err(|reason| invalid("until", rule, reason)))
            .collect::<Result<Vec<_>, _>>()?;
        let stop = match (args.requests, args.duration) {
            (Some(0), _) => return Err(invalid("requests", 0, "must be at least 1")),
            (Some(requests), _) => Stop::Requests(requests),
            (None, Some(duration)) => Stop::Duration(positive("duration", duration, A_CENTURY)?),
            (None, None) => Stop::Requests(DEFAULT_REQUESTS),
        };
        let largest = users.iter().copied().max().unwrap_or(1);
        if let Stop::Requests(requests) = stop {
            if requests < largest as u64 {
                return Err(invalid(
                    "requests",
                    requests,
                    format!("must be at least the largest --users count ({largest})"),
                ));
            }
        }
        if let Some(rate) = args.rate {
            if !(rate >= RATE_RANGE.0 && rate <= RATE_RANGE.1) {
                return Err(invalid(
                    "rate",
                    rate,
                    "must be between 0.001 and 10,000,000 requests per second",
                ));
            }
            let planned = match stop {
                Stop::Requests(requests) => requests as f64,
                Stop::Duration(duration) => duration.as_secs_f64() * rate,
            };
            if planned > MAX_PLANNED {
                return Err(ConfigError::Conflict(format!(
                    "--rate {rate} plans {planned:.0} requests per round; at most 1,000,000,000"
                )));
            }
        }
        let mut method = Method::from_bytes(args.method.as_bytes())
            .map_err(|_| invalid("method", &args.method, "is not an HTTP method"))?;
        let mut headers = args
            .headers
            .iter()
            .map(|header| parse_header(header))
            .collect::<Result<Vec<_>, _>>()?;
        let body = match (&args.openai_chat, args.body.as_deref()) {
            (Some(model), _) => {
                let prompt = text_or_file("prompt", args.prompt.as_deref().unwrap_or_default())?;
                let prompt = String::from_utf8(prompt)
                    .map_err(|_| invalid("prompt", "@FILE", "is not UTF-8 text"))?;
                if args.method != "GET" && method != Method::POST {
                    return Err(ConfigError::Conflict(
                        "--openai-chat sends a POST; leave -X out".into(),
                    ));
                }
                method = Method::POST;
                for (name, value) in [
                    ("content-type", "application/json"),
                    ("accept", "text/event-stream"),
                ] {
                    if !headers.iter().any(|(given, _)| given == name) {
                        headers.push((
                            HeaderName::from_static(name),
                            HeaderValue::from_static(value),
                        ));
                    }
                }
                serde_json::to_vec(&serde_json::json!({
                    "model": model,
                    "messages": [{"role": "user", "content": prompt}],
                    "stream": true,
                }))
                .unwrap_or_default()
            }
            (None, Some(text)) => text_or_file("body", text)?,
            (None, None) => Vec::new(),
        };
        let token_rule = match &args.token {
            None => TokenRule::OpenAi,
            Some(pointer) if pointer.is_empty() || pointer.starts_with('/') => {
                TokenRule::Pointer(pointer.clone())
            }
            Some(pointer) => {
                return Err(invalid(
                    "token",
                    pointer,
                    "must be a JSON pointer such as /choices/0/text (starting with /)",
                ))
            }
        };
        let addresses = resolve_directly(&uri).map_err(|reason| invalid("url", &url, reason))?;
        let tls = match uri.scheme_str() {
            Some("https") => {
                let host = uri.host().unwrap_or_default();
                // http's Uri keeps the brackets of an IPv6 address.
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string()).map_err(|err| {
                    invalid("url", &url, format!("has no usable host name: {err}"))
                })?;
                let config = https_client_config(args.tls.ca_file.as_deref(), args.tls.insecure)
                    .map_err(|err| match err {
                        HttpsSetupError::CaFile(err) => ConfigError::Certificates(err),
                        err => ConfigError::Conflict(err.to_string()),
                    })?;
                Some((config, name))
            }
            _ => None,
        };
        let endpoint = Endpoint {
            addresses,
            tls,
            connect_timeout: positive("connect-timeout", args.connect_timeout, A_DAY)?,
            timeout: positive("timeout", args.timeout, A_DAY)?,
        };
        for path in &args.report {
            if !matches!(extension(path).as_deref(), Some("json" | "svg")) {
                return Err(invalid(
                    "report",
                    path.display(),
                    "must end in .json or .svg (the extension chooses the format)",
                ));
            }
            check_report_path(path)?;
        }
        Ok(ProbeConfig {
            request: RequestTemplate::new(method, uri, headers, body, token_rule),
            url,
            users,
            until,
            stop,
            rate: args.rate,
            endpoint,
            baseline: args.baseline,
            report: args.report.clone(),
            progress_every: progress_interval(args.progress.progress_every)?,
            quiet: args.progress.quiet,
        })
    }
}

/// The extension of `path`, in lower case.
fn extension(path: &std::path::Path) -> Option<String> {
    Some(path.extension()?.to_str()?.to_ascii_lowercase())
}

/// The user counts of `--users`: each `N` as it is, each `A..B` a ramp (doubling, or by `step`).
fn user_counts(pieces: &[String], step: Option<usize>) -> Result<Vec<usize>, ConfigError> {
    let given = pieces.join(",");
    let bad = |reason: String| invalid("users", &given, reason);
    let count = |text: &str| {
        text.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=MAX_USERS).contains(&n))
            .ok_or_else(|| bad(format!("each count must be between 1 and {MAX_USERS}")))
    };
    if step == Some(0) {
        return Err(invalid("step", 0, "must be at least 1"));
    }
    let mut users = Vec::new();
    for piece in pieces {
        match piece.split_once("..") {
            Some((from, to)) => {
                let (from, to) = (count(from)?, count(to)?);
                if from > to {
                    return Err(bad(format!("a ramp runs upwards: {to}..{from}")));
                }
                users.extend(ramp(from, to, step));
            }
            None => users.push(count(piece)?),
        }
    }
    if users.is_empty() {
        return Err(bad(format!("each count must be between 1 and {MAX_USERS}")));
    }
    Ok(users)
}

/// `TEXT` → its bytes, `@FILE` → the file's.
fn text_or_file(flag: &'static str, text: &str) -> Result<Vec<u8>, ConfigError> {
    match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read(path).map_err(|err| invalid(flag, text, format!("cannot be read: {err}")))
        }
        None => Ok(text.as_bytes().to_vec()),
    }
}

/// `Name: value` → a header; the value keeps its inner spaces.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let bad = |reason: &str| invalid("header", text, reason.to_string());
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("must be `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("has a name that is not a valid header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| bad("has a value with characters a header cannot hold"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> Result<ProbeConfig, String> {
        let cli = Cli::try_parse_from(["loader", "probe"].iter().chain(args))
            .map_err(|err| err.to_string())?;
        let Some(Command::Probe(args)) = cli.command else {
            panic!("not a probe command");
        };
        ProbeConfig::from_args(&args).map_err(|err| err.to_string())
    }

    #[test]
    fn accepts_a_sweep_headers_and_a_rate() {
        let config = config(&[
            "http://127.0.0.1:8080/x?q=1",
            "--users",
            "1,10,20",
            "--rate",
            "100",
            "-d",
            "10s",
            "-H",
            "Authorization: Bearer a b",
            "-X",
            "POST",
            "--body",
            "{}",
        ])
        .unwrap();
        assert_eq!(config.users, [1, 10, 20]);
        assert_eq!(config.stop, Stop::Duration(Duration::from_secs(10)));
        assert_eq!(config.rate, Some(100.0));
        assert_eq!(config.request.method, Method::POST);
        assert_eq!(config.request.headers[0].1, "Bearer a b");
        assert_eq!(config.request.body, b"{}");
        assert_eq!(
            config_defaults().stop,
            Stop::Requests(DEFAULT_REQUESTS),
            "without --requests or --duration"
        );
    }

    #[test]
    fn ramps_expand_and_rules_parse() {
        let ramp = config(&[
            "http://127.0.0.1:1/",
            "-u",
            "1..8,20",
            "--until",
            "p99>2s,plateau",
        ]);
        let ramp = ramp.unwrap();
        assert_eq!(ramp.users, [1, 2, 4, 8, 20]);
        assert_eq!(ramp.until.len(), 2);
        let stepped = config(&["http://127.0.0.1:1/", "-u", "1..40", "--step", "10"]).unwrap();
        assert_eq!(stepped.users, [1, 11, 21, 31, 40]);
    }

    fn config_defaults() -> ProbeConfig {
        config(&["https://127.0.0.1/"]).unwrap()
    }

    #[test]
    fn refuses_bad_values_with_one_line() {
        for (args, expected) in [
            (vec!["not a url"], "--url not a url: is not a URL"),
            (vec!["ftp://host/"], "must be an http:// or https:// URL"),
            (vec!["/path"], "must be an http:// or https:// URL"),
            (vec!["http://127.0.0.1:1/", "--users", "0"], "--users 0"),
            (vec!["http://127.0.0.1:1/", "--rate", "0"], "--rate 0"),
            (vec!["http://127.0.0.1:1/", "--rate", "NaN"], "--rate NaN"),
            (vec!["http://127.0.0.1:1/", "-n", "0"], "--requests 0"),
            (vec!["http://127.0.0.1:1/", "-d", "0s"], "--duration 0s"),
            (
                vec!["http://127.0.0.1:1/", "-H", "NoColon"],
                "must be `Name: value`",
            ),
            (
                vec!["http://127.0.0.1:1/", "-H", "Bad Name: x"],
                "not a valid header",
            ),
            (
                vec!["http://127.0.0.1:1/", "-X", "GE T"],
                "not an HTTP method",
            ),
            (
                vec!["http://127.0.0.1:1/", "--body", "@/no/such/file"],
                "cannot be read",
            ),
            (
                vec!["http://127.0.0.1:1/", "--timeout", "0s"],
                "--timeout 0s",
            ),
            (
                vec!["http://no-such-host.invalid/"],
                "cannot resolve no-such-host.invalid:80",
            ),
            (
                vec!["http://127.0.0.1:1/", "--timeout", "100years"],
                "at most 24h",
            ),
            (
                vec!["http://127.0.0.1:1/", "--rate", "1e-9"],
                "between 0.001",
            ),
            (
                vec!["http://127.0.0.1:1/", "--rate", "1e5", "-d", "1000h"],
                "at most 1,000,000,000",
            ),
            (
                vec!["http://127.0.0.1:1/", "-u", "1,50", "-n", "40"],
                "largest --users count (50)",
            ),
            (
                vec!["http://127.0.0.1:1/", "-u", "8..2"],
                "a ramp runs upwards",
            ),
            (
                vec!["http://127.0.0.1:1/", "-u", "1..20000"],
                "between 1 and 10000",
            ),
            (vec!["http://127.0.0.1:1/", "--step", "0"], "--step 0"),
            (
                vec!["http://127.0.0.1:1/", "--until", "p98>1s"],
                "--until p98>1s: knows the figures",
            ),
            (
                vec!["http://127.0.0.1:1/", "--token", "a.b"],
                "must be a JSON pointer",
            ),
            (
                vec![
                    "http://127.0.0.1:1/",
                    "--openai-chat",
                    "m",
                    "--prompt",
                    "@/no/file",
                ],
                "--prompt @/no/file: cannot be read",
            ),
        ] {
            let err = config(&args).err().unwrap_or_default();
            assert!(err.contains(expected), "{args:?}: {err}");
            assert!(!err.trim_end().contains('\n'), "{args:?}: {err}");
        }
    }

    #[test]
    fn reports_never_show_the_password_of_the_url() {
        let config = config(&["http://user:secret@127.0.0.1:1/"]).unwrap();
        assert!(!config.url.contains("secret"), "{}", config.url);
    }
}
