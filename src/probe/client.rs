//! One probe user's side of the wire: a ureq agent with one keep-alive connection, and the timing
//! of one exchange — time to the response headers, to the first body byte, to the last byte, and
//! the longest pause between two body reads (a stalled stream).

use std::io::{self, Read};
use std::time::{Duration, Instant};

use ureq::http::{HeaderName, HeaderValue, Method, Request, Uri};
use ureq::tls::TlsConfig;
use ureq::Agent;

use crate::http_client::{agent_config, tls_problem, ResolvedHost};

/// The request every user sends, validated once.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    pub method: Method,
    pub uri: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

/// How a user's agent connects.
#[derive(Debug, Clone)]
pub(crate) struct AgentOptions {
    /// The URL's host, resolved once.
    pub host: ResolvedHost,
    pub connect_timeout: Duration,
    /// Longest time one exchange may take, from connecting to the last byte.
    pub timeout: Duration,
    pub tls: TlsConfig,
}

/// The timings of one answered request, each from the moment the request was sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exchange {
    pub status: u16,
    pub headers: Duration,
    /// The first body byte, or the end of the answer when it has no body.
    pub first_byte: Duration,
    pub total: Duration,
    /// The longest pause between two reads that returned body bytes.
    pub largest_gap: Duration,
    pub bytes: u64,
}

/// A request that got no complete answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailedExchange {
    /// `timeout`, `refused`, `reset`, `connect`, `dns`, `tls`, `protocol` or `io`.
    pub kind: &'static str,
    pub message: String,
}

/// One user: an agent whose single connection is kept alive between requests.
pub(crate) struct User<'a> {
    agent: Agent,
    template: &'a RequestTemplate,
    buffer: Vec<u8>,
}

/// Each way's buffer of a user's connection.
const CONNECTION_BUFFER_BYTES: usize = 32 * 1024;

/// Bytes asked for per body read: a streamed answer's chunks come back one read each.
const READ_BUFFER_BYTES: usize = 16 * 1024;

impl<'a> User<'a> {
    pub(crate) fn new(template: &'a RequestTemplate, options: &AgentOptions) -> User<'a> {
        let config = agent_config(options.connect_timeout, options.timeout)
            // A probe measures the URL it was given, not where it redirects to.
            .max_redirects(0)
            // -X PURGE, PROPFIND and the like are sent as given.
            .allow_non_standard_methods(true)
            // ureq's 128 KiB buffers each way, times hundreds of users, would be most of the
            // probe's memory; the answer's headers must fit in the input buffer.
            .input_buffer_size(CONNECTION_BUFFER_BYTES)
            .max_response_header_size(CONNECTION_BUFFER_BYTES)
            .output_buffer_size(CONNECTION_BUFFER_BYTES)
            .tls_config(options.tls.clone())
            .build();
        User {
            agent: options.host.agent(config),
            template,
            buffer: vec![0; READ_BUFFER_BYTES],
        }
    }

    /// Sends the request once and reads the answer to its end. `on_first_byte` runs exactly
    /// once: when the first body byte arrives, when the answer ends without a body, or when the
    /// exchange fails.
    pub(crate) fn exchange(
        &mut self,
        on_first_byte: &mut dyn FnMut(),
    ) -> Result<Exchange, FailedExchange> {
        let mut first_byte_seen = Some(on_first_byte);
        let result = self.timed_exchange(&mut first_byte_seen);
        if let Some(callback) = first_byte_seen.take() {
            callback();
        }
        result
    }

    fn timed_exchange(
        &mut self,
        first_byte_seen: &mut Option<&mut dyn FnMut()>,
    ) -> Result<Exchange, FailedExchange> {
        let template = self.template;
        let mut request = Request::builder()
            .method(template.method.clone())
            .uri(template.uri.clone());
        for (name, value) in &template.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(template.body.as_slice())
            .map_err(|err| FailedExchange {
                kind: "protocol",
                message: err.to_string(),
            })?;
        let sent = Instant::now();
        let mut response = self.agent.run(request).map_err(failure)?;
        let headers = sent.elapsed();
        let status = response.status().as_u16();
        let mut reader = response.body_mut().as_reader();
        let mut first_byte = None;
        let mut last_read = headers;
        let mut largest_gap = Duration::ZERO;
        let mut bytes = 0u64;
        loop {
            let read = match reader.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io_failure(&err)),
            };
            let now = sent.elapsed();
            if first_byte.is_none() {
                first_byte = Some(now);
                if let Some(callback) = first_byte_seen.take() {
                    callback();
                }
            } else {
                largest_gap = largest_gap.max(now - last_read);
            }
            last_read = now;
            bytes += read as u64;
        }
        let total = sent.elapsed();
        Ok(Exchange {
            status,
            headers,
            first_byte: first_byte.unwrap_or(total),
            total,
            largest_gap,
            bytes,
        })
    }
}

/// What a ureq error means for the report.
fn failure(err: ureq::Error) -> FailedExchange {
    if let Some(message) = tls_problem("the server", &err) {
        return FailedExchange {
            kind: "tls",
            message,
        };
    }
    let kind = match &err {
        ureq::Error::Io(io) => return io_failure(io),
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::HostNotFound => "dns",
        ureq::Error::ConnectionFailed => "connect",
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => "tls",
        _ => "protocol",
    };
    FailedExchange {
        kind,
        message: err.to_string(),
    }
}

/// What an I/O error (possibly a ureq error carried through the body reader) means.
fn io_failure(err: &io::Error) -> FailedExchange {
    let kind = match err.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => "reset",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout",
        io::ErrorKind::InvalidData if err.to_string().contains("certificate") => "tls",
        io::ErrorKind::InvalidData => "protocol",
        _ => match err.get_ref().and_then(|inner| inner.downcast_ref()) {
            Some(ureq::Error::Timeout(_)) => "timeout",
            Some(ureq::Error::Protocol(_)) => "protocol",
            Some(ureq::Error::Tls(_) | ureq::Error::Rustls(_)) => "tls",
            _ => "io",
        },
    };
    FailedExchange {
        kind,
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_grouped_by_what_happened() {
        let kind = |kind| io_failure(&io::Error::from(kind)).kind;
        assert_eq!(kind(io::ErrorKind::ConnectionRefused), "refused");
        assert_eq!(kind(io::ErrorKind::ConnectionReset), "reset");
        assert_eq!(kind(io::ErrorKind::UnexpectedEof), "reset");
        assert_eq!(kind(io::ErrorKind::TimedOut), "timeout");
        let carried = io::Error::other(ureq::Error::Timeout(ureq::Timeout::Global));
        assert_eq!(io_failure(&carried).kind, "timeout");
        assert_eq!(failure(ureq::Error::HostNotFound).kind, "dns");
    }
}
