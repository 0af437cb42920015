//! The HTTP client every HTTP user of `loader` shares (the sinks, the ingest fetchers and
//! embedders, the probe users): the TLS settings (built-in roots, a `--ca-file`, or `--insecure`),
//! a host resolved once, the agent settings they all start from, answers read to the end under a
//! size limit, and what a transport failure or an HTTP status means for a retry.
//!
//! ureq's default resolver starts a thread for every request whenever a timeout is set, even for
//! an IP address and on a kept-alive connection. [`ResolvedHost`] looks the host up once, when the
//! agent is made, and answers from that afterwards (so a DNS change during a run is not followed).
//! With a proxy from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) the proxy resolves
//! the target, and ureq's own resolver is used.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ureq::config::{Config, ConfigBuilder};
use ureq::http::{HeaderMap, Response, Uri};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body, Proxy};

use crate::failure::Failure;
use crate::pem::PemError;

/// How to talk HTTP: timeouts, compression, TLS.
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub connect_timeout: Duration,
    /// Longest time one request may take, from connecting to the last byte of the answer.
    pub timeout: Duration,
    pub gzip: bool,
    /// Extra CA certificates (PEM) to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate.
    pub insecure: bool,
}

/// The TLS settings of an agent: the built-in roots, or the CA certificates of `ca_file`; no
/// verification at all with `insecure`.
pub(crate) fn tls_config(ca_file: Option<&Path>, insecure: bool) -> Result<TlsConfig, PemError> {
    let mut tls = TlsConfig::builder().disable_verification(insecure);
    if let Some(path) = ca_file {
        let certificates: Vec<_> = crate::pem::read_certificates(path, "--ca-file")?
            .iter()
            .map(|certificate| Certificate::from_der(certificate).to_owned())
            .collect();
        tls = tls.root_certs(RootCerts::new_with_certs(&certificates));
    }
    Ok(tls.build())
}

/// Why a host cannot be looked up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{uri} has no host, or no port and no http(s) scheme")]
    NoHost { uri: Uri },
    #[error("cannot resolve {host_and_port}: {err}")]
    Lookup {
        host_and_port: String,
        err: std::io::Error,
    },
    #[error("{host_and_port} resolves to no address")]
    NoAddress { host_and_port: String },
}

/// The addresses of one `host:port`, looked up once.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedHost {
    host_and_port: String,
    /// None when a proxy from the environment resolves the host.
    addresses: Option<ResolvedSocketAddrs>,
}

impl ResolvedHost {
    /// Looks up the host of `uri` (its port, or the scheme's), unless a proxy will.
    pub(crate) fn resolve(uri: &Uri) -> Result<ResolvedHost, ResolveError> {
        let host_and_port =
            host_and_port(uri).ok_or_else(|| ResolveError::NoHost { uri: uri.clone() })?;
        if Proxy::try_from_env().is_some() {
            return Ok(ResolvedHost {
                host_and_port,
                addresses: None,
            });
        }
        let mut addresses = DefaultResolver::default().empty();
        for address in lookup(&host_and_port)? {
            if addresses.try_push(address).is_err() {
                break;
            }
        }
        Ok(ResolvedHost {
            host_and_port,
            addresses: Some(addresses),
        })
    }

    /// An agent with `config` that connects to these addresses.
    pub(crate) fn agent(&self, config: Config) -> Agent {
        Agent::with_parts(config, DefaultConnector::default(), self.clone())
    }
}

impl Resolver for ResolvedHost {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match &self.addresses {
            Some(addresses) if host_and_port(uri).as_ref() == Some(&self.host_and_port) => {
                Ok(addresses.clone())
            }
            _ => DefaultResolver::default().resolve(uri, config, timeout),
        }
    }
}

/// The addresses of the host of `uri` (its port, or the scheme's), in the resolver's order,
/// looked up directly whatever proxy the environment names.
pub(crate) fn resolve_directly(uri: &Uri) -> Result<Vec<SocketAddr>, ResolveError> {
    let host_and_port =
        host_and_port(uri).ok_or_else(|| ResolveError::NoHost { uri: uri.clone() })?;
    lookup(&host_and_port)
}

/// The addresses of `host_and_port`; at least one.
fn lookup(host_and_port: &str) -> Result<Vec<SocketAddr>, ResolveError> {
    let found: Vec<SocketAddr> = match host_and_port.to_socket_addrs() {
        Ok(found) => found.collect(),
        Err(err) => {
            return Err(ResolveError::Lookup {
                host_and_port: host_and_port.to_string(),
                err,
            })
        }
    };
    if found.is_empty() {
        return Err(ResolveError::NoAddress {
            host_and_port: host_and_port.to_string(),
        });
    }
    Ok(found)
}

/// `host:port` of `uri`, the port defaulting to the scheme's.
fn host_and_port(uri: &Uri) -> Option<String> {
    let port = uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(format!("{}:{port}", uri.host()?))
}

/// The `User-Agent` of the HTTP sinks' requests: loader's version and this process's id, by which
/// a server watch (ClickHouse's `system.processes` and query log) finds the load's own requests
/// among everyone's.
pub(crate) fn user_agent() -> &'static str {
    static AGENT: OnceLock<String> = OnceLock::new();
    AGENT.get_or_init(|| {
        format!(
            "loader/{} (pid {})",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        )
    })
}

/// The settings every agent starts from: both timeouts (ureq has none by default) and statuses
/// answered as answers, not errors. Callers add their buffers, redirects and TLS.
pub(crate) fn agent_config(
    connect_timeout: Duration,
    timeout: Duration,
) -> ConfigBuilder<AgentScope> {
    Agent::config_builder()
        .timeout_connect(Some(connect_timeout))
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
}

/// An answer: its status and body, read to the end so that the connection is reused.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// Reads `response` to the end, at most `limit` bytes of body.
    pub(crate) fn read(mut response: Response<Body>, limit: u64) -> Result<Answer, ureq::Error> {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// `err`, held back until the server's `Retry-After` when it is transient and the answer
    /// named one.
    pub(crate) fn honour_retry_after(&self, err: Failure) -> Failure {
        match (err, self.retry_after) {
            (Failure::Transient { kind, message }, Some(after)) => Failure::RetryAfter {
                kind,
                message,
                after,
            },
            (err, _) => err,
        }
    }

    /// The first line or so of the body, for an error message.
    pub(crate) fn excerpt(&self) -> String {
        answer_excerpt(&self.body)
    }
}

/// Whether an HTTP status is worth retrying: 408, 429, 502, 503 and 504, and 500 too: a plain
/// endpoint's crash or overload says no more than that, and the retry budget bounds it (servers
/// whose 500s carry an error code of their own, ClickHouse and CrateDB, are judged by the code
/// before this rule is asked).
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A failed TLS handshake with `target` in plain words, with the flag that fixes it; none when
/// `err` is no TLS failure.
pub(crate) fn tls_problem(target: &str, err: &ureq::Error) -> Option<String> {
    // rustls reports a failed handshake through the stream, as invalid data that carries it.
    let rustls_error = match err {
        ureq::Error::Rustls(rustls_error) => Some(rustls_error),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref()),
        _ => None,
    };
    match rustls_error {
        Some(refused) => Some(crate::tls::refused_in_words(target, refused)),
        None if matches!(err, ureq::Error::Tls(_) | ureq::Error::TlsRequired) => {
            Some(format!("TLS with {target} failed: {err}"))
        }
        None => None,
    }
}

/// A transport failure of a request to `target`: TLS and malformed URLs are permanent, the rest
/// (refused, reset, timed out) worth retrying.
pub(crate) fn transport_failure(target: &str, err: &ureq::Error) -> Failure {
    if let Some(message) = tls_problem(target, err) {
        return Failure::Permanent {
            kind: "tls",
            message,
        };
    }
    match err {
        ureq::Error::BodyExceedsLimit(limit) => Failure::Permanent {
            kind: "protocol",
            message: format!(
                "{target} answered more than {} MiB; lower --batch",
                limit >> 20
            ),
        },
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => Failure::Permanent {
            kind: "request",
            message: format!("cannot send to {target}: {err}"),
        },
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            let host_and_port = target
                .parse::<Uri>()
                .ok()
                .and_then(|uri| host_and_port(&uri));
            Failure::refused(host_and_port.as_deref().unwrap_or(target))
        }
        ureq::Error::Timeout(_) => Failure::Transient {
            kind: "timeout",
            message: format!("{target} did not answer in time: {err}"),
        },
        _ => Failure::Transient {
            kind: "connection",
            message: format!("connection to {target} failed: {err}"),
        },
    }
}

/// A `Retry-After` header given in seconds (the HTTP-date form is not followed).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("Retry-After")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The first line or so of an answer, for an error message.
pub(crate) fn answer_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_once_and_answers_for_its_host_only() {
        let uri: Uri = "http://127.0.0.1:8123/x?y=1".parse().unwrap();
        let host = ResolvedHost::resolve(&uri).unwrap();
        assert_eq!(host.host_and_port, "127.0.0.1:8123");
        assert_eq!(host.addresses.map(|found| found.len()), Some(1));
        let https: Uri = "https://[::1]/".parse().unwrap();
        assert_eq!(
            ResolvedHost::resolve(&https).unwrap().host_and_port,
            "[::1]:443"
        );
        let relative: Uri = "/path".parse().unwrap();
        assert!(ResolvedHost::resolve(&relative).is_err());
    }
}
