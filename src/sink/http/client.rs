//! The HTTP sinks' connection to a target: one ureq agent (one keep-alive connection) with the
//! target's base URL, Basic authentication and optional gzip bodies; answers read whole under a
//! size limit; and what a whole-request HTTP status means.

use std::io::Write as _;

use base64::Engine as _;
use ureq::Agent;

use crate::failure::{Failure, UNRESOLVED};
use crate::http_client::{
    agent_config, answer_excerpt, is_retryable_status, tls_config, transport_failure, user_agent,
    Answer, HttpOptions, ResolvedHost,
};
use crate::target::HttpTarget;

/// The largest answer read: `_bulk` answers for big batches run to many megabytes.
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// One worker's (or the setup's) connection to the target.
pub(crate) struct HttpClient {
    agent: Agent,
    base_url: String,
    /// The target URL's query, passed on with every write request.
    query: Option<String>,
    authorization: Option<String>,
    gzip: bool,
    pub(crate) target: String,
}

impl HttpClient {
    /// A client for the first host of `target` ([`HttpTarget::single_host`] picks another).
    pub(crate) fn new(target: &HttpTarget, options: &HttpOptions) -> Result<HttpClient, Failure> {
        let tls = tls_config(options.ca_file.as_deref(), options.insecure).map_err(|err| {
            Failure::Permanent {
                kind: "tls",
                message: err.to_string(),
            }
        })?;
        let uri = target
            .base_url(0)
            .parse()
            .map_err(|err| Failure::Permanent {
                kind: "request",
                message: format!("{target} is not a URL: {err}"),
            })?;
        let host = ResolvedHost::resolve(&uri).map_err(|reason| Failure::Transient {
            kind: UNRESOLVED,
            message: format!(
                "cannot reach {target}: {reason}; check the target's host name, or give \
                 --wait-for-target TIME for a name that is still to be registered"
            ),
        })?;
        let config = agent_config(options.connect_timeout, options.timeout)
            // A redirected POST would be followed as a GET without its body.
            .max_redirects(0)
            .tls_config(tls)
            .build();
        let authorization = target.user.as_ref().map(|user| {
            let credentials = format!("{user}:{}", target.password().unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        });
        Ok(HttpClient {
            agent: host.agent(config),
            base_url: target.base_url(0),
            query: target.query.clone(),
            authorization,
            gzip: options.gzip,
            target: target.to_string(),
        })
    }

    /// Sends `body` with `method` to the base URL followed by `path`.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base_url);
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", content_type)
            .header("User-Agent", user_agent());
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        let payload = if self.gzip && !body.is_empty() {
            request = request.header("Content-Encoding", "gzip");
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            encoder
                .write_all(body)
                .and_then(|()| encoder.finish())
                .map_err(|err| self.failure(&ureq::Error::Io(err)))?
        } else {
            body.to_vec()
        };
        let request = request.body(payload).map_err(|err| Failure::Permanent {
            kind: "request",
            message: format!("cannot build a request to {}: {err}", self.target),
        })?;
        let response = self.agent.run(request).map_err(|err| self.failure(&err))?;
        Answer::read(response, MAX_RESPONSE_BYTES).map_err(|err| self.failure(&err))
    }

    fn failure(&self, err: &ureq::Error) -> Failure {
        transport_failure(&self.target, err)
    }
}

/// The whole-request failure an HTTP status means, with the start of the answer as its cause.
/// Retried by [`is_retryable_status`].
pub(crate) fn status_failure(target: &str, status: u16, body: &[u8]) -> Failure {
    let text = answer_excerpt(body);
    match status {
        _ if is_retryable_status(status) => Failure::Transient {
            kind: match status {
                429 => "throttled",
                500 => "server_error",
                _ => "unavailable",
            },
            message: format!("{target} answered HTTP {status}: {text}"),
        },
        300..=399 => Failure::Permanent {
            kind: "redirect",
            message: format!(
                "{target} redirects elsewhere (HTTP {status}); give the final URL as the target"
            ),
        },
        413 => Failure::Permanent {
            kind: "too_large",
            message: format!("{target} refused a request as too large (HTTP 413); lower --batch"),
        },
        401 | 403 => Failure::Permanent {
            kind: "authentication",
            message: format!(
                "{target} refused the credentials (HTTP {status}): {text}; check the user and \
                 the password (in the URL, --password-file or LOADER_PASSWORD)"
            ),
        },
        _ => Failure::Permanent {
            kind: "server",
            message: format!("{target} answered HTTP {status}: {text}"),
        },
    }
}

/// `?query` of the target URL, or nothing.
pub(crate) fn query_suffix(client: &HttpClient) -> String {
    client
        .query
        .as_ref()
        .map_or(String::new(), |query| format!("?{query}"))
}

/// Percent-encodes a URL query value.
pub(crate) fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
