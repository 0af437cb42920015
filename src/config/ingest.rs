//! `loader ingest`'s flags into an [`IngestConfig`]: where the documents are listed, which of
//! their fields to take, how fast to fetch, how to chunk and embed, and where loaded documents are
//! remembered.

use std::path::PathBuf;

use super::{default_threads, positive, rate, A_DAY, MAX_THREADS};
use crate::cli::IngestArgs;
use crate::copy::Input;
use crate::ingest::{Chunker, DocumentList, EmbedConfig, Fields, IngestConfig, DEFAULT_TABLE};
use crate::ledger::fnv1a;
use crate::run::{Documents, LoadConfig};
use crate::sql::TableName;
use crate::target::Target;
use crate::usage::EnvLookup;
use crate::usage::{invalid, ConfigError};

/// The most fetcher or embedder threads accepted.
const MAX_FETCHERS: usize = 4096;
/// The fastest `--rate` accepted: a million requests a second.
const MAX_RATE: f64 = 1e6;
/// The most chunks in one embedding request.
const MAX_EMBED_BATCH: usize = 2048;

impl IngestConfig {
    /// Validates `loader ingest` arguments, reading the environment through `env`.
    pub(crate) fn from_args(
        args: &IngestArgs,
        env: EnvLookup<'_>,
    ) -> Result<IngestConfig, ConfigError> {
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
        let fetchers = thread_count("fetchers", args.fetchers, MAX_FETCHERS)?;
        let chunkers = thread_count(
            "chunkers",
            args.chunkers.unwrap_or_else(default_threads),
            MAX_THREADS,
        )?;
        let chunker = Chunker::new(args.chunk_size, args.overlap, args.chunk_by)
            .map_err(|reason| invalid("chunk-size", args.chunk_size, reason))?;
        if args.limit == Some(0) {
            return Err(invalid("limit", 0, "must be at least 1"));
        }
        Ok(IngestConfig {
            list: document_list(args)?,
            fields: fields(args)?,
            fetchers,
            rate: rate(args.rate, MAX_RATE, "requests")?,
            fetch_timeout: positive("fetch-timeout", args.fetch_timeout, A_DAY)?,
            chunker,
            chunkers,
            embed: embed_config(args, env)?,
            limit: args.limit,
            documents: if args.no_resume {
                Documents::Fresh
            } else {
                Documents::Resume
            },
            state_file: state_file(&load, args)?,
            load,
        })
    }
}

/// `--listing` with `--items`/`--next`, or the file (or stdin) of URLs.
fn document_list(args: &IngestArgs) -> Result<DocumentList, ConfigError> {
    Ok(match (&args.listing, &args.urls) {
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
    })
}

/// `--id`, `--text` and `--meta`: JSON pointers into each document.
fn fields(args: &IngestArgs) -> Result<Fields, ConfigError> {
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
    Ok(fields)
}

/// A thread or batch count: from 1 to `most`.
fn thread_count(flag: &'static str, value: usize, most: usize) -> Result<usize, ConfigError> {
    if value == 0 || value > most {
        return Err(invalid(
            flag,
            value,
            format!("must be between 1 and {most}"),
        ));
    }
    Ok(value)
}

/// The embedding stage, when `--embed-url` is given; the key comes from LOADER_EMBED_KEY.
fn embed_config(args: &IngestArgs, env: EnvLookup<'_>) -> Result<Option<EmbedConfig>, ConfigError> {
    let Some(url) = &args.embed_url else {
        return Ok(None);
    };
    Ok(Some(EmbedConfig {
        url: http_url("embed-url", url)?,
        model: args.embed_model.clone(),
        batch: thread_count("embed-batch", args.embed_batch, MAX_EMBED_BATCH)?,
        threads: thread_count("embedders", args.embedders, MAX_FETCHERS)?,
        key: env("LOADER_EMBED_KEY").filter(|key| !key.is_empty()),
    }))
}

/// Where an HTTP target records the loaded documents: `--state-file`, or a name from the table and
/// a hash of the target.
fn state_file(load: &LoadConfig, args: &IngestArgs) -> Result<Option<PathBuf>, ConfigError> {
    match (&load.target, &args.state_file) {
        (Target::Http(_), Some(path)) => Ok(Some(path.clone())),
        (Target::Http(_), None) => Ok(Some(PathBuf::from(format!(
            "ingest-{}-{:08x}.state.ndjson",
            load.table,
            fnv1a(load.target.to_string().as_bytes()) as u32
        )))),
        (_, Some(_)) => Err(ConfigError::Conflict(
            "--state-file applies to HTTP targets only: PostgreSQL records the loaded documents \
             in its loader_documents table, and the file and null targets record nothing"
                .into(),
        )),
        (_, None) => Ok(None),
    }
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
