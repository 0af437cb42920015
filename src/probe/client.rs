//! One probe user: the request encoded once, sent over the user's own kept-alive connection
//! ([`wire`](super::wire)), and the timing of one exchange — time to the response headers, to
//! the first body byte, to the last byte, and the longest pause between two body reads (a
//! stalled stream).

use std::io;
use std::time::{Duration, Instant};

use base64::Engine;
use ureq::http::{HeaderName, HeaderValue, Method, Uri};

use super::events::{EventParser, Framing, Seen, TokenRule};
use super::wire::{Connection, Endpoint, WireError};
use crate::conninfo::percent_decode;
use crate::stats::Latency;

/// The request every user sends, validated once and encoded once.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
    /// Which events of a streamed answer carry a token.
    pub token_rule: TokenRule,
    /// The request as it goes on the wire: request line, headers and body.
    encoded: Vec<u8>,
}

impl RequestTemplate {
    /// The request with `Host`, and unless given `User-Agent`, `Accept`, `Content-Length` and
    /// (from a `user:password@` in the URL) Basic `Authorization`.
    pub(crate) fn new(
        method: Method,
        uri: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Vec<u8>,
        token_rule: TokenRule,
    ) -> RequestTemplate {
        let given = |name: &str| headers.iter().any(|(given, _)| given == name);
        let mut encoded = Vec::with_capacity(256 + body.len());
        let target = uri.path_and_query().map_or("/", |target| target.as_str());
        encoded.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n").as_bytes());
        if !given("host") {
            let authority = uri.authority().map_or("", |authority| authority.as_str());
            // The user:password@ of the URL is no part of the Host header.
            let host = authority.rsplit('@').next().unwrap_or(authority);
            encoded.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
        }
        if !given("user-agent") {
            let agent = concat!("User-Agent: loader/", env!("CARGO_PKG_VERSION"), "\r\n");
            encoded.extend_from_slice(agent.as_bytes());
        }
        if !given("accept") {
            encoded.extend_from_slice(b"Accept: */*\r\n");
        }
        if let Some((credentials, _)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) {
            if !given("authorization") {
                let encoded_credentials =
                    base64::engine::general_purpose::STANDARD.encode(percent_decode(credentials));
                encoded.extend_from_slice(
                    format!("Authorization: Basic {encoded_credentials}\r\n").as_bytes(),
                );
            }
        }
        for (name, value) in &headers {
            encoded.extend_from_slice(name.as_str().as_bytes());
            encoded.extend_from_slice(b": ");
            encoded.extend_from_slice(value.as_bytes());
            encoded.extend_from_slice(b"\r\n");
        }
        let sends_body =
            !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH);
        if sends_body && !given("content-length") && !given("transfer-encoding") {
            encoded.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        encoded.extend_from_slice(b"\r\n");
        encoded.extend_from_slice(&body);
        RequestTemplate {
            method,
            headers,
            body,
            token_rule,
            encoded,
        }
    }
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
    /// A streamed answer (server-sent events, NDJSON): its first event, any.
    pub first_event: Option<Duration>,
    /// A streamed answer's first event that carried a token.
    pub first_token: Option<Duration>,
    pub tokens: u32,
    /// From the first token to the last.
    pub token_span: Duration,
    /// The longest pause between two tokens, with two or more.
    pub largest_token_gap: Option<Duration>,
}

/// The events and tokens of one streamed answer as they arrive.
#[derive(Debug, Default)]
struct StreamTiming {
    first_event: Option<Duration>,
    first_token: Option<Duration>,
    last_token: Duration,
    tokens: u32,
    largest_token_gap: Option<Duration>,
}

impl StreamTiming {
    /// `seen` arrived `now` after the request was sent; each gap between tokens goes to `gaps`
    /// (tokens that came in one read are zero apart).
    fn saw(&mut self, seen: Seen, now: Duration, gaps: &mut Latency) {
        if seen.events > 0 && self.first_event.is_none() {
            self.first_event = Some(now);
        }
        for _ in 0..seen.tokens {
            if self.first_token.is_none() {
                self.first_token = Some(now);
            } else {
                let gap = now - self.last_token;
                gaps.record(gap);
                self.largest_token_gap = self.largest_token_gap.max(Some(gap));
            }
            self.last_token = now;
            self.tokens += 1;
        }
    }
}

/// A request that got no complete answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailedExchange {
    /// `timeout`, `refused`, `reset`, `connect`, `dns`, `tls`, `protocol` or `io`.
    pub kind: &'static str,
    pub message: String,
}

/// One user: its connection, kept alive between requests while the server allows, and a parser
/// for each kind of event stream.
pub(crate) struct User<'a> {
    connection: Connection<'a>,
    template: &'a RequestTemplate,
    server_sent_events: EventParser,
    ndjson: EventParser,
}

impl<'a> User<'a> {
    pub(crate) fn new(template: &'a RequestTemplate, endpoint: &'a Endpoint) -> User<'a> {
        User {
            connection: Connection::new(endpoint),
            template,
            server_sent_events: EventParser::new(Framing::Sse, template.token_rule.clone()),
            ndjson: EventParser::new(Framing::Ndjson, template.token_rule.clone()),
        }
    }

    /// Sends the request once and reads the answer to its end; the gaps between the tokens of a
    /// streamed answer go to `token_gaps`. `on_first_byte` runs exactly once: when the first body
    /// byte arrives, when the answer ends without a body, or when the exchange fails.
    pub(crate) fn exchange(
        &mut self,
        on_first_byte: &mut dyn FnMut(),
        token_gaps: &mut Latency,
    ) -> Result<Exchange, FailedExchange> {
        let mut first_byte_seen = Some(on_first_byte);
        let result = self.timed_exchange(&mut first_byte_seen, token_gaps);
        if let Some(callback) = first_byte_seen.take() {
            callback();
        }
        result.map_err(|err| failure(&err))
    }

    fn timed_exchange(
        &mut self,
        first_byte_seen: &mut Option<&mut dyn FnMut()>,
        token_gaps: &mut Latency,
    ) -> Result<Exchange, WireError> {
        let User {
            connection,
            template,
            server_sent_events,
            ndjson,
        } = self;
        let sent = Instant::now();
        let method = &template.method;
        // RFC 9110's idempotent methods: sent again after a kept-alive connection went stale.
        let idempotent = matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        let head = connection.send(&template.encoded, *method == Method::HEAD, idempotent, sent)?;
        let headers = sent.elapsed();
        let mut events = match head.events {
            Some(Framing::Sse) => Some(server_sent_events),
            Some(Framing::Ndjson) => Some(ndjson),
            None => None,
        };
        if let Some(parser) = events.as_deref_mut() {
            parser.reset();
        }
        let mut stream = StreamTiming::default();
        let mut first_byte = None;
        let mut last_read = headers;
        let mut largest_gap = Duration::ZERO;
        let mut bytes = 0u64;
        connection.read_body(&head, &mut |piece| {
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
            bytes += piece.len() as u64;
            if let Some(parser) = events.as_deref_mut() {
                stream.saw(parser.feed(piece), now, token_gaps);
            }
        })?;
        let total = sent.elapsed();
        if let Some(parser) = events {
            stream.saw(parser.finish(), total, token_gaps);
        }
        Ok(Exchange {
            status: head.status,
            headers,
            first_byte: first_byte.unwrap_or(total),
            total,
            largest_gap,
            bytes,
            first_event: stream.first_event,
            first_token: stream.first_token,
            tokens: stream.tokens,
            token_span: stream
                .first_token
                .map_or(Duration::ZERO, |first| stream.last_token - first),
            largest_token_gap: stream.largest_token_gap,
        })
    }
}

/// What a failed exchange means for the report.
fn failure(err: &WireError) -> FailedExchange {
    let (kind, message) = match err {
        WireError::Connect(err) => {
            let failed = io_failure(err);
            let kind = if failed.kind == "io" {
                "connect"
            } else {
                failed.kind
            };
            (kind, format!("cannot connect: {err}"))
        }
        WireError::Io(err) => match tls_refusal(err) {
            Some(refused) => ("tls", crate::tls::refused_in_words("the server", refused)),
            None => return io_failure(err),
        },
        WireError::Timeout => ("timeout", "no whole answer within --timeout".to_string()),
        WireError::Closed => (
            "reset",
            "the server closed the connection before the answer was whole".to_string(),
        ),
        WireError::Protocol(what) => ("protocol", (*what).to_string()),
    };
    FailedExchange { kind, message }
}

/// The refused handshake an I/O error carries, if it does (rustls reports it as invalid data).
fn tls_refusal(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref().and_then(|inner| inner.downcast_ref())
}

/// What an I/O error means.
fn io_failure(err: &io::Error) -> FailedExchange {
    let kind = match err.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => "reset",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout",
        io::ErrorKind::InvalidData => "protocol",
        _ => "io",
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
        let refused = WireError::Connect(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(failure(&refused).kind, "refused");
        assert_eq!(failure(&WireError::Timeout).kind, "timeout");
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let tls = failure(&WireError::Io(tls));
        assert_eq!(tls.kind, "tls");
        assert!(tls.message.contains("--ca-file"), "{}", tls.message);
    }

    #[test]
    fn the_request_is_encoded_once_with_host_length_and_credentials() {
        let request = RequestTemplate::new(
            Method::POST,
            "http://us%40er:p%3Ass@127.0.0.1:8080/v1/chat?x=1"
                .parse()
                .unwrap(),
            vec![(
                HeaderName::from_static("x-trace"),
                HeaderValue::from_static("a b"),
            )],
            b"{}".to_vec(),
            TokenRule::OpenAi,
        );
        let text = String::from_utf8(request.encoded.clone()).unwrap();
        let credentials = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(
            text,
            format!(
                "POST /v1/chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: loader/{}\r\n\
                 Accept: */*\r\nAuthorization: Basic {credentials}\r\nx-trace: a b\r\n\
                 Content-Length: 2\r\n\r\n{{}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        let get = RequestTemplate::new(
            Method::GET,
            "https://example.com".parse().unwrap(),
            vec![(
                HeaderName::from_static("accept"),
                HeaderValue::from_static("text/event-stream"),
            )],
            Vec::new(),
            TokenRule::OpenAi,
        );
        assert_eq!(
            String::from_utf8(get.encoded).unwrap(),
            format!(
                "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: loader/{}\r\n\
                 accept: text/event-stream\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
