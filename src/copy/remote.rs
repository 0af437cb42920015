//! URL inputs: a file streamed over HTTP(S) with ureq as one `Read`. A connection that drops, or
//! a body that ends before its length, is resumed with a `Range` request from the last byte handed
//! out, after a backoff (the load's retry policy), so the reader above never sees the break; a
//! server that ignores `Range` answers from the start, and the bytes already handed out are
//! skipped.

use std::io::{self, Read};
use std::time::Duration;

use ureq::http::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use ureq::Agent;

use crate::engine::RetryPolicy;
use crate::http_client::{agent_config, is_retryable_status};

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one request may take from start to end of its body: a long download.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why a request or a read failed, and whether another request can help.
enum Failed {
    /// A dropped connection, a timeout, HTTP 408/429/5xx, a body cut short.
    Retryable(io::Error),
    /// Any other answer.
    Permanent(io::Error),
}

/// One URL read from start to end across as many requests as its connections need.
pub(crate) struct UrlReader {
    agent: Agent,
    url: String,
    retry: RetryPolicy,
    rng: fastrand::Rng,
    /// Bytes handed out so far: where a resumed request starts.
    offset: u64,
    /// The whole body's length, when the server says it.
    length: Option<u64>,
    body: Option<ureq::BodyReader<'static>>,
    /// Failed attempts in a row.
    failures: u32,
    /// `--quiet`: resumptions are not announced.
    retry_quietly: bool,
}

impl UrlReader {
    pub(crate) fn new(url: &str, retry: RetryPolicy, quiet: bool) -> UrlReader {
        let config = agent_config(CONNECT_TIMEOUT, REQUEST_TIMEOUT).build();
        UrlReader {
            agent: Agent::new_with_config(config),
            url: url.to_string(),
            retry,
            rng: fastrand::Rng::new(),
            offset: 0,
            length: None,
            body: None,
            failures: 0,
            retry_quietly: quiet,
        }
    }

    /// Sends the request for the bytes from `offset` on.
    fn request(&mut self) -> Result<(), Failed> {
        let mut request = self.agent.get(&self.url);
        if self.offset > 0 {
            request = request.header(RANGE, format!("bytes={}-", self.offset));
        }
        let response = request
            .call()
            .map_err(|err| Failed::Retryable(io::Error::other(format!("{}: {err}", self.url))))?;
        let status = response.status().as_u16();
        if is_retryable_status(status) {
            return Err(Failed::Retryable(io::Error::other(format!(
                "{} answered HTTP {status}",
                self.url
            ))));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let skip = match status {
            206 if self.offset > 0 => {
                // `bytes FIRST-LAST/TOTAL`: the part must start where the last one stopped.
                let range = header(CONTENT_RANGE).unwrap_or_default();
                let first = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|first| first.parse::<u64>().ok());
                if first != Some(self.offset) {
                    return Err(Failed::Permanent(io::Error::other(format!(
                        "{} answered a resumed request with the range `{range}`, not bytes from \
                         {}",
                        self.url, self.offset
                    ))));
                }
                let total = range.rsplit('/').next().and_then(|t| t.parse().ok());
                self.length = self.length.or(total);
                0
            }
            200 => {
                let length: Option<u64> = header(CONTENT_LENGTH).and_then(|l| l.parse().ok());
                self.length = self.length.or(length);
                self.offset
            }
            _ => {
                return Err(Failed::Permanent(io::Error::other(format!(
                    "{} answered HTTP {status}; check the URL",
                    self.url
                ))))
            }
        };
        let mut body = response.into_body().into_reader();
        // A server that ignores `Range` sends the whole body again: skip what was handed out.
        let skipped =
            io::copy(&mut (&mut body).take(skip), &mut io::sink()).map_err(Failed::Retryable)?;
        if skipped < skip {
            return Err(Failed::Retryable(io::Error::other(format!(
                "{} ended before byte {skip} on a resumed request",
                self.url
            ))));
        }
        self.body = Some(body);
        Ok(())
    }

    /// After a failure: sleeps the backoff and returns, or returns the failure when it cannot be
    /// retried or the retries are spent.
    fn after_failure(&mut self, failed: Failed) -> io::Result<()> {
        self.body = None;
        let err = match failed {
            Failed::Permanent(err) => return Err(err),
            Failed::Retryable(err) if self.failures >= self.retry.max_retries => return Err(err),
            Failed::Retryable(err) => err,
        };
        if !self.retry_quietly {
            eprintln!("loader: {err}; resuming from byte {}", self.offset);
        }
        std::thread::sleep(self.retry.backoff(self.failures, &mut self.rng));
        self.failures += 1;
        Ok(())
    }
}

impl Read for UrlReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.body.is_none() {
                if let Err(err) = self.request() {
                    self.after_failure(err)?;
                    continue;
                }
            }
            let body = self.body.as_mut().expect("a body after a request");
            match body.read(out) {
                Ok(0) if out.is_empty() => return Ok(0),
                Ok(0) if self.length.is_some_and(|length| self.offset < length) => {
                    let err =
                        io::Error::other(format!("{} ended at byte {}", self.url, self.offset));
                    self.after_failure(Failed::Retryable(err))?;
                }
                Ok(read) => {
                    self.offset += read as u64;
                    if read > 0 {
                        self.failures = 0;
                    }
                    return Ok(read);
                }
                Err(err) => self.after_failure(Failed::Retryable(err))?,
            }
        }
    }
}
