//! The validated settings of `loader ingest`: where the documents are listed, which of their
//! fields to take, how fast to fetch, how to chunk and embed, and how loaded documents are
//! remembered. Every flag is checked here, so a bad one gets one line and exit code 2.

use std::path::PathBuf;
use std::time::Duration;

use super::chunk::Chunker;
use crate::cli::IngestArgs;
use crate::config::{invalid, positive, ConfigError, LoadConfig, TableName, MAX_THREADS};
use crate::copy::Input;
use crate::load::Documents;
use crate::target::{EnvLookup, Target};

/// The table ingest loads into when `--table` is not given.
pub const DEFAULT_TABLE: &str = "chunks";
/// The most fetcher or embedder threads accepted.
const MAX_FETCHERS: usize = 4096;
/// The fastest `--rate` accepted: a million requests a second.
const MAX_RATE: f64 = 1e6;
/// The most chunks in one embedding request.
const MAX_EMBED_BATCH: usize = 2048;

/// Where the documents are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentList {
    /// A file (or stdin) of URLs, one per line.
    Urls(Input),
    /// A listing endpoint, page after page.
    Listing {
        url: String,
        /// Pointer to a page's items (`None`: the page itself when it is an array, else `/items`).
        items: Option<String>,
        /// Pointer to the next page's URL (`None`: one page only).
        next: Option<String>,
    },
}

/// Which fields of a document to take, as JSON pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub id: String,
    pub text: String,
    pub meta: Vec<String>,
}

/// The optional embedding stage.
#[derive(Clone)]
pub struct EmbedConfig {
    pub url: String,
    pub model: String,
    /// Chunks per request.
    pub batch: usize,
    pub threads: usize,
    /// The bearer key (LOADER_EMBED_KEY); never displayed.
    pub key: Option<String>,
}

impl std::fmt::Debug for EmbedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("batch", &self.batch)
            .field("threads", &self.threads)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Settings of `loader ingest`.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub load: LoadConfig,
    pub list: DocumentList,
    pub fields: Fields,
    pub fetchers: usize,
    /// Requests per second over all fetchers.
    pub rate: Option<f64>,
    pub fetch_timeout: Duration,
    pub chunker: Chunker,
    pub chunkers: usize,
    pub embed: Option<EmbedConfig>,
    pub limit: Option<u64>,
    /// Whether earlier runs' documents are skipped or forgotten.
    pub documents: Documents,
    /// Where HTTP targets record the loaded documents (PostgreSQL records them in its documents
    /// ledger; the stream targets rewrite their output and record nothing).
    pub state_file: Option<PathBuf>,
}

impl IngestConfig {
    /// Validates `loader ingest` arguments, reading the environment through `env`.
    pub fn from_args(args: &IngestArgs, env: EnvLookup<'_>) -> Result<IngestConfig, ConfigError> {
        let mut load = LoadConfig::from_args(&args.load, env)?;
        if load.commit_every > 1 {
            return Err(ConfigError::Conflict(
                "--commit-every is for gen and copy: ingest commits each batch with its documents \
                 ledger rows"
                    .into(),
            ));
        }
        if args.load.table.is_none() {
            load.table = TableName::parse(DEFAULT_TABLE)?;
        }
        let list = match (&args.listing, &args.urls) {
            (Some(url), _) => DocumentList::Listing {
                url: http_url("listing", url)?,
                items: args
                    .items
                    .as_deref()
                    .map(|p| pointer("items", p))
                    .transpose()?,
                next: args
                    .next
                    .as_deref()
                    .map(|p| pointer("next", p))
                    .transpose()?,
            },
            (None, None) => DocumentList::Urls(Input::Stdin),
            (None, Some(path)) if path.as_os_str() == "-" => DocumentList::Urls(Input::Stdin),
            (None, Some(path)) => {
                if !path.is_file() {
                    return Err(ConfigError::Input {
                        path: path.display().to_string(),
                        reason: "no such file".into(),
                    });
                }
                std::fs::File::open(path).map_err(|err| ConfigError::Input {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?;
                let gzip = path.extension().is_some_and(|e| e == "gz");
                DocumentList::Urls(Input::File {
                    path: path.clone(),
                    gzip,
                })
            }
        };
        let fields = Fields {
            id: pointer("id", &args.id)?,
            text: pointer("text", &args.text)?,
            meta: args
                .meta
                .iter()
                .map(|p| pointer("meta", p))
                .collect::<Result<_, _>>()?,
        };
        if fields.meta.iter().any(|p| p.is_empty()) {
            return Err(invalid(
                "meta",
                "\"\"",
                "name fields such as /title,/author",
            ));
        }
        let threads = |flag: &'static str, value: usize, most: usize| {
            if value == 0 || value > most {
                return Err(invalid(
                    flag,
                    value,
                    format!("must be between 1 and {most}"),
                ));
            }
            Ok(value)
        };
        let fetchers = threads("fetchers", args.fetchers, MAX_FETCHERS)?;
        let chunkers = threads(
            "chunkers",
            args.chunkers.unwrap_or_else(crate::config::default_threads),
            MAX_THREADS,
        )?;
        let rate = crate::config::rate(args.rate, MAX_RATE, "requests")?;
        let fetch_timeout = positive("fetch-timeout", args.fetch_timeout)?;
        let chunker = Chunker::new(args.chunk_size, args.overlap, args.chunk_by)
            .map_err(|reason| invalid("chunk-size", args.chunk_size, reason))?;
        let embed = match &args.embed_url {
            Some(url) => Some(EmbedConfig {
                url: http_url("embed-url", url)?,
                model: args.embed_model.clone(),
                batch: threads("embed-batch", args.embed_batch, MAX_EMBED_BATCH)?,
                threads: threads("embedders", args.embedders, MAX_FETCHERS)?,
                key: env("LOADER_EMBED_KEY").filter(|key| !key.is_empty()),
            }),
            None => None,
        };
        if args.limit == Some(0) {
            return Err(invalid("limit", 0, "must be at least 1"));
        }
        let state_file = match (&load.target, &args.state_file) {
            (Target::Http(_), Some(path)) => Some(path.clone()),
            (Target::Http(_), None) => Some(PathBuf::from(format!(
                "ingest-{}-{:08x}.state.ndjson",
                load.table,
                fnv1a(&load.target.to_string()) as u32
            ))),
            (_, Some(_)) => {
                return Err(ConfigError::Conflict(
                    "--state-file applies to HTTP targets only: PostgreSQL records the loaded \
                     documents in its loader_documents table, and the file and null targets \
                     record nothing"
                        .into(),
                ))
            }
            (_, None) => None,
        };
        Ok(IngestConfig {
            load,
            list,
            fields,
            fetchers,
            rate,
            fetch_timeout,
            chunker,
            chunkers,
            embed,
            limit: args.limit,
            documents: if args.no_resume {
                Documents::Fresh
            } else {
                Documents::Resume
            },
            state_file,
        })
    }

    /// Whether the target keeps a record of the loaded documents (so a rerun skips them).
    pub fn records_documents(&self) -> bool {
        matches!(
            self.load.target,
            Target::Postgres(_) | Target::Local | Target::Http(_)
        )
    }
}

/// FNV-1a: a stable short hash of the target, so that two targets get two state files.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An `http://` or `https://` URL.
fn http_url(flag: &'static str, text: &str) -> Result<String, ConfigError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(text.into()),
        Ok(_) => Err(invalid(flag, text, "must be an http:// or https:// URL")),
        Err(err) => Err(invalid(flag, text, format!("is not a URL: {err}"))),
    }
}

/// A JSON pointer (RFC 6901): empty (the whole value) or starting with `/`.
fn pointer(flag: &'static str, text: &str) -> Result<String, ConfigError> {
    if text.is_empty() || text.starts_with('/') {
        Ok(text.into())
    } else {
        Err(invalid(
            flag,
            text,
            format!("must be a JSON pointer such as /{text}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> Result<IngestConfig, ConfigError> {
        let cli = Cli::try_parse_from(["loader", "ingest"].into_iter().chain(args.iter().copied()))
            .expect("arguments parse");
        let Some(Command::Ingest(args)) = cli.command else {
            panic!("not ingest");
        };
        IngestConfig::from_args(&args, &|_| None)
    }

    #[test]
    fn defaults_read_stdin_into_chunks_and_resume() {
        let config = config(&["--target", "null"]).unwrap();
        assert_eq!(config.list, DocumentList::Urls(Input::Stdin));
        assert_eq!(config.load.table.to_string(), "chunks");
        assert_eq!(config.documents, Documents::Resume);
        assert_eq!(config.state_file, None);
        assert!(!config.records_documents());
    }

    #[test]
    fn bad_flags_are_refused_with_their_reason() {
        let refused = |args: &[&str], words: &str| {
            let message = config(args).unwrap_err().to_string();
            assert!(message.contains(words), "{args:?}: {message}");
        };
        refused(&["--listing", "ftp://x/"], "http:// or https://");
        refused(&["--listing", "not a url"], "is not a URL");
        refused(&["--id", "id"], "JSON pointer such as /id");
        refused(&["--fetchers", "0"], "between 1 and");
        refused(&["--rate", "0"], "between 0.001 and");
        refused(&["--rate", "1e-20"], "between 0.001 and");
        refused(&["--rate", "NaN"], "between 0.001 and");
        refused(&["--chunk-size", "100", "--overlap", "60"], "half");
        refused(&["--limit", "0"], "at least 1");
        refused(&["/no/such/urls.txt"], "no such file");
        refused(
            &["--target", "null", "--state-file", "s.ndjson"],
            "HTTP targets only",
        );
        refused(
            &["--embed-url", "http://x/v1", "--embed-batch", "0"],
            "between 1",
        );
        refused(
            &["--target", "postgres://h/db", "--commit-every", "2"],
            "for gen and copy",
        );
    }

    #[test]
    fn http_targets_get_a_state_file_named_after_the_table() {
        let config = config(&["--target", "es+http://127.0.0.1:9200", "--table", "docs"]).unwrap();
        let name = config.state_file.as_ref().unwrap().display().to_string();
        assert!(
            name.starts_with("ingest-docs-") && name.ends_with(".state.ndjson"),
            "{name}"
        );
        assert!(config.records_documents());
    }
}
