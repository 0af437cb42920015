//! The fetch side of ingest: the lister (a URL file, stdin, or listing pages) and the fetcher
//! threads, each with its own ureq agent, under one shared rate limit. Every request (listing
//! pages and retries included) waits for its slot; transient failures (refused or reset
//! connections, timeouts, 408, 429, 5xx) are retried with backoff and full jitter, at least as
//! long as a `Retry-After` asks. A document that cannot be had (404, not JSON, no id or text,
//! retries spent) is rejected with its reason; the others go on.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::{Map, Value};
use ureq::http::Uri;
use ureq::Agent;
use url::{ParseError, Url};

use super::config::{DocumentList, Fields};
use super::{Document, Item, Pipeline};
use crate::failure::Failure;
use crate::http_client::{
    agent_config, is_retryable_status, transport_failure, Answer, ResolvedHost,
};
use crate::ledger::LoadedDocuments;
use crate::reject::Reject;
use crate::reject::RowOrigin;

/// The largest document (or listing page) read.
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;
/// Buffers of a fetcher's connection each way (ureq's default is 128 KiB).
const CONNECTION_BUFFER_BYTES: usize = 32 * 1024;

/// Why the lister cannot go on: the list cannot be read, or a listing page makes no sense. The
/// load stops with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListError {
    #[error("cannot read {input}: {err}")]
    Read { input: String, err: io::Error },
    #[error("{url}: {err}")]
    FirstPage { url: String, err: ParseError },
    #[error("the listing comes back to {url}; check --next")]
    Loop { url: String },
    #[error("cannot read the listing page: {0}")]
    Page(Failure),
    #[error("the listing page {url} is not JSON: {err}")]
    NotJson { url: String, err: serde_json::Error },
    #[error("the listing page {url} has no array of items at {pointer}; give --items")]
    NoItems { url: String, pointer: String },
    #[error("{url}: item {index} `{link}`: {err}")]
    ItemLink {
        url: String,
        index: usize,
        link: String,
        err: ParseError,
    },
    #[error(
        "the listing page {url} has item {index} that is neither a URL nor a document: {item}"
    )]
    NotAnItem {
        url: String,
        index: usize,
        item: Value,
    },
    #[error("{url}: next page `{link}`: {err}")]
    NextLink {
        url: String,
        link: String,
        err: ParseError,
    },
    #[error("the listing page {url} has a next page that is not a URL: {next}")]
    NextNotALink { url: String, next: Value },
}

/// A document to fetch, or one a listing page gave whole.
pub(crate) enum Listed {
    Url(String),
    Inline { source: String, document: Value },
}

/// A listed document and its place in the list.
pub(crate) struct Job {
    pub ordinal: u64,
    pub listed: Listed,
}

/// One thread's HTTP client: its agent is made for the host of the first URL it fetches (looked
/// up once; other hosts go through ureq's resolver).
pub(crate) struct Fetcher {
    agent: Option<Agent>,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Fetcher {
    pub(crate) fn new(connect_timeout: Duration, timeout: Duration) -> Fetcher {
        Fetcher {
            agent: None,
            connect_timeout,
            timeout,
        }
    }

    fn agent(&mut self, url: &str) -> Result<&Agent, Failure> {
        if self.agent.is_none() {
            let uri: Uri = url.parse().map_err(|err| Failure::Permanent {
                kind: "request",
                message: format!("{url} is not a URL: {err}"),
            })?;
            let host = ResolvedHost::resolve(&uri).map_err(|reason| Failure::Transient {
                kind: "dns",
                message: format!("cannot reach {url}: {reason}"),
            })?;
            let config = agent_config(self.connect_timeout, self.timeout)
                .input_buffer_size(CONNECTION_BUFFER_BYTES)
                .output_buffer_size(CONNECTION_BUFFER_BYTES)
                .build();
            self.agent = Some(host.agent(config));
        }
        Ok(self.agent.as_ref().expect("the agent was just made"))
    }

    /// One GET of `url`: its body on a 2xx answer; a transient error for 408, 429 and 5xx (held
    /// back by a `Retry-After`), a permanent one for the other statuses.
    pub(crate) fn get(&mut self, url: &str) -> Result<Vec<u8>, Failure> {
        let agent = self.agent(url)?;
        let response = agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(|err| transport_failure(url, &err))?;
        let answer = Answer::read(response, MAX_DOCUMENT_BYTES).map_err(|err| match err {
            ureq::Error::BodyExceedsLimit(_) => Failure::Permanent {
                kind: "too_large",
                message: format!("{url} is larger than {} MiB", MAX_DOCUMENT_BYTES >> 20),
            },
            err => transport_failure(url, &err),
        })?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let message = format!(
            "{url} answered HTTP {}: {}",
            answer.status,
            answer.excerpt()
        );
        Err(status_error(&answer, message))
    }
}

impl Pipeline {
    /// GETs `url` under the rate limit, retrying transient failures by `--max-retries` and
    /// `--retry-for`.
    fn fetch(&self, fetcher: &mut Fetcher, url: &str) -> Result<Vec<u8>, Failure> {
        let stopping = || self.signal.is_stopping();
        self.retry.run(
            Some(self.signal.stopping_flag()),
            || {
                if let Some(rate) = &self.rate {
                    if !rate.wait(1, stopping) {
                        return Err(Failure::Permanent {
                            kind: "interrupted",
                            message: format!("{url} was not fetched: the load is stopping"),
                        });
                    }
                }
                self.counters.requests.fetch_add(1, Ordering::Relaxed);
                fetcher.get(url)
            },
            |_, _| {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
            },
        )
    }

    /// The lister: sends every listed document (up to `--limit`) to the fetchers, skipping the
    /// URLs an earlier run loaded. A listing page that cannot be read stops the load.
    pub(crate) fn list(
        &self,
        list: &DocumentList,
        limit: Option<u64>,
        loaded: &LoadedDocuments,
        jobs: &Sender<Job>,
    ) -> Result<(), ListError> {
        let mut lister = Lister {
            pipeline: self,
            loaded,
            jobs,
            ordinal: 0,
            limit: limit.unwrap_or(u64::MAX),
        };
        match list {
            DocumentList::Urls(input) => {
                let unreadable = |err| ListError::Read {
                    input: input.name(),
                    err,
                };
                let reader = BufReader::new(input.open().map_err(unreadable)?);
                for line in reader.lines() {
                    let line = line.map_err(unreadable)?;
                    let url = line.trim();
                    if url.is_empty() || url.starts_with('#') {
                        continue;
                    }
                    if !lister.send(Listed::Url(url.to_string())) {
                        break;
                    }
                }
                Ok(())
            }
            DocumentList::Listing { url, items, next } => {
                lister.pages(url, items.as_deref(), next.as_deref())
            }
        }
    }

    /// A fetcher thread: fetches the listed documents and takes their fields out, until the
    /// list ends or the load stops.
    pub(crate) fn fetch_documents(
        &self,
        fields: &Fields,
        jobs: &Receiver<Job>,
        documents: &Sender<Item<Document>>,
        connect_timeout: Duration,
    ) {
        let mut fetcher = Fetcher::new(connect_timeout, self.fetch_timeout);
        for job in jobs {
            if self.signal.is_stopping() {
                return;
            }
            let (source, body) = match job.listed {
                Listed::Url(url) => match self.fetch(&mut fetcher, &url) {
                    Ok(body) => (url, serde_json::from_slice::<Value>(&body)),
                    // Interrupted: the document is neither loaded nor rejected; a rerun takes it.
                    Err(_) if self.signal.is_stopping() => return,
                    Err(err) => {
                        let reject = document_reject(&url, "fetch", err.to_string());
                        if documents.send(Err(reject)).is_err() {
                            return;
                        }
                        continue;
                    }
                },
                Listed::Inline { source, document } => (source, Ok(document)),
            };
            let item = match body {
                Ok(value) => take_document(value, fields, &source, job.ordinal),
                Err(err) => Err(document_reject(
                    &source,
                    "document",
                    format!("the answer is not JSON: {err}"),
                )),
            };
            if item.is_ok() {
                self.counters.fetched.fetch_add(1, Ordering::Relaxed);
            }
            if documents.send(item).is_err() {
                return;
            }
        }
    }
}

/// The lister's place in the list.
struct Lister<'a> {
    pipeline: &'a Pipeline,
    loaded: &'a LoadedDocuments,
    jobs: &'a Sender<Job>,
    ordinal: u64,
    limit: u64,
}

impl Lister<'_> {
    /// Sends one listed document on, unless an earlier run loaded it; false once the list
    /// should end (`--limit` reached, the fetchers gone, the load stopping).
    fn send(&mut self, listed: Listed) -> bool {
        if self.ordinal >= self.limit || self.pipeline.signal.is_stopping() {
            return false;
        }
        let ordinal = self.ordinal;
        self.ordinal += 1;
        self.pipeline
            .counters
            .listed
            .fetch_add(1, Ordering::Relaxed);
        if let Listed::Url(url) = &listed {
            if self.loaded.has_source(url) {
                self.pipeline
                    .counters
                    .skipped
                    .fetch_add(1, Ordering::Relaxed);
                return self.ordinal < self.limit;
            }
        }
        self.jobs.send(Job { ordinal, listed }).is_ok() && self.ordinal < self.limit
    }

    /// Walks the listing pages from `first`, following `next`.
    fn pages(
        &mut self,
        first: &str,
        items: Option<&str>,
        next: Option<&str>,
    ) -> Result<(), ListError> {
        let mut fetcher = Fetcher::new(self.pipeline.connect_timeout, self.pipeline.fetch_timeout);
        let mut page_url = Url::parse(first).map_err(|err| ListError::FirstPage {
            url: first.to_string(),
            err,
        })?;
        let mut seen = HashSet::new();
        loop {
            if !seen.insert(page_url.to_string()) {
                return Err(ListError::Loop {
                    url: page_url.to_string(),
                });
            }
            let body = match self.pipeline.fetch(&mut fetcher, page_url.as_str()) {
                Ok(body) => body,
                Err(_) if self.pipeline.signal.is_stopping() => return Ok(()),
                Err(err) => return Err(ListError::Page(err)),
            };
            self.pipeline.counters.pages.fetch_add(1, Ordering::Relaxed);
            let page: Value = match serde_json::from_slice(&body) {
                Ok(page) => page,
                Err(err) => {
                    return Err(ListError::NotJson {
                        url: page_url.to_string(),
                        err,
                    })
                }
            };
            let found = match items {
                Some(pointer) => page.pointer(pointer),
                None if page.is_array() => Some(&page),
                None => page.pointer("/items"),
            };
            let Some(Value::Array(found)) = found else {
                return Err(ListError::NoItems {
                    url: page_url.to_string(),
                    pointer: items.unwrap_or("/items").to_string(),
                });
            };
            for (index, item) in found.iter().enumerate() {
                let listed = match item {
                    Value::String(link) => Listed::Url(
                        page_url
                            .join(link)
                            .map_err(|err| ListError::ItemLink {
                                url: page_url.to_string(),
                                index,
                                link: link.clone(),
                                err,
                            })?
                            .to_string(),
                    ),
                    Value::Object(_) => Listed::Inline {
                        source: format!("{page_url}#{index}"),
                        document: item.clone(),
                    },
                    other => {
                        return Err(ListError::NotAnItem {
                            url: page_url.to_string(),
                            index,
                            item: other.clone(),
                        })
                    }
                };
                if !self.send(listed) {
                    return Ok(());
                }
            }
            let link = next.and_then(|pointer| page.pointer(pointer));
            match link {
                None | Some(Value::Null) => return Ok(()),
                Some(Value::String(link)) if link.is_empty() => return Ok(()),
                Some(Value::String(link)) => {
                    page_url = page_url.join(link).map_err(|err| ListError::NextLink {
                        url: page_url.to_string(),
                        link: link.clone(),
                        err,
                    })?;
                }
                Some(other) => {
                    return Err(ListError::NextNotALink {
                        url: page_url.to_string(),
                        next: other.clone(),
                    })
                }
            }
        }
    }
}

/// The error a non-2xx answer means for a source request (a document, a page, an embedding):
/// the statuses [`is_retryable_status`] names are worth retrying (after the answer's
/// `Retry-After`, when it named one); the other statuses are not.
pub(crate) fn status_error(answer: &Answer, message: String) -> Failure {
    match (is_retryable_status(answer.status), answer.retry_after) {
        (true, Some(after)) => Failure::RetryAfter {
            kind: "throttled",
            message,
            after,
        },
        (true, None) => Failure::Transient {
            kind: "unavailable",
            message,
        },
        _ => Failure::Permanent {
            kind: "status",
            message,
        },
    }
}

/// A rejected document, for the reject file.
pub(crate) fn document_reject(source: &str, kind: &'static str, error: String) -> Reject {
    Reject {
        origin: RowOrigin {
            source: source.to_string(),
            line: 0,
            record: String::new(),
        },
        kind,
        error,
    }
}

/// Takes a document's id, text and meta fields out of its JSON.
fn take_document(mut value: Value, fields: &Fields, source: &str, ordinal: u64) -> Item<Document> {
    let reject = |error: String| document_reject(source, "document", error);
    let id = match value.pointer(&fields.id) {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => {
            return Err(reject(format!(
                "no id at {} (a string or a number)",
                fields.id
            )))
        }
    };
    if id.is_empty() || id.contains('\0') {
        return Err(reject(format!(
            "the id at {} is empty or holds a NUL",
            fields.id
        )));
    }
    let meta = (!fields.meta.is_empty()).then(|| {
        let kept: Map<String, Value> = fields
            .meta
            .iter()
            .map(|pointer| {
                let value = value.pointer(pointer).cloned().unwrap_or(Value::Null);
                (pointer[1..].to_string(), value)
            })
            .collect();
        Value::Object(kept).to_string()
    });
    let text = match value.pointer_mut(&fields.text).map(Value::take) {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) if parts.iter().all(Value::is_string) => {
            let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            parts.join("\n\n")
        }
        _ => {
            return Err(reject(format!(
                "no text at {} (a string or an array of strings)",
                fields.text
            )))
        }
    };
    Ok(Document {
        ordinal,
        id,
        source: source.to_string(),
        text,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(meta: &[&str]) -> Fields {
        Fields {
            id: "/id".into(),
            text: "/body/text".into(),
            meta: meta.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn a_document_gives_its_id_text_and_meta() {
        let value = json!({"id": 7, "title": "T", "body": {"text": ["a", "b"]}});
        let document = take_document(value, &fields(&["/title", "/missing"]), "u", 3)
            .unwrap_or_else(|_| panic!("a document"));
        assert_eq!(document.id, "7");
        assert_eq!(document.text, "a\n\nb");
        assert_eq!(
            document.meta.as_deref(),
            Some(r#"{"missing":null,"title":"T"}"#)
        );
        assert_eq!(document.ordinal, 3);
    }

    #[test]
    fn a_document_without_id_or_text_is_rejected_with_the_pointer() {
        let error = |value: Value| match take_document(value, &fields(&[]), "u", 0) {
            Err(reject) => reject.error,
            Ok(_) => panic!("accepted"),
        };
        assert!(error(json!({"body": {"text": "x"}})).contains("no id at /id"));
        assert!(error(json!({"id": "a", "body": {}})).contains("no text at /body/text"));
        assert!(error(json!({"id": "a", "body": {"text": [1]}})).contains("no text"));
        assert!(error(json!({"id": "", "body": {"text": "x"}})).contains("empty"));
    }
}
