//! `loader copy`'s flags into a [`CopyConfig`]: the inputs (each checked readable), their format
//! and dialect, the columns, and `--run-id`/`--resume`.

use std::path::PathBuf;

use crate::cli::CopyArgs;
use crate::copy::{CopyConfig, Dialect, Input, InputFormat, SniffSettings};
use crate::rows::SqlType;
use crate::run::LoadConfig;
use crate::target::Target;
use crate::usage::EnvLookup;
use crate::usage::{invalid, ConfigError};

/// The longest `--run-id` accepted.
const MAX_RUN_ID_CHARS: usize = 100;
/// The range of `--max-record-size`: below 1 KiB ordinary records fail, above 1 GiB one record
/// could take the machine's memory.
const MIN_RECORD_BYTES: u64 = 1 << 10;
const MAX_RECORD_BYTES: u64 = 1 << 30;

impl CopyConfig {
    /// Validates `loader copy` arguments; every input must exist and be readable.
    pub(crate) fn from_args(
        args: &CopyArgs,
        env: EnvLookup<'_>,
    ) -> Result<CopyConfig, ConfigError> {
        let load = LoadConfig::from_args(&args.load, env)?;
        let inputs = inputs(&args.files, &load)?;
        let format = match args.format {
            Some(format) => format,
            None => format_of(&inputs)?,
        };
        let dialect = dialect(args, format)?;
        if format == InputFormat::Parquet {
            check_seekable(&inputs)?;
        }
        let columns = match &args.columns {
            Some(names) => Some(column_list(names)?),
            None => None,
        };
        if args.limit == Some(0) {
            return Err(invalid("limit", 0, "must be at least 1"));
        }
        if !(MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&args.max_record_size) {
            return Err(invalid(
                "max-record-size",
                args.max_record_size,
                "must be from 1KiB to 1GiB (a record is held in memory whole)",
            ));
        }
        check_resume(args, &load)?;
        if args.no_header && format == InputFormat::Ndjson {
            return Err(ConfigError::Conflict(
                "--no-header does not apply to ndjson input".into(),
            ));
        }
        let sniff = SniffSettings {
            rows: args.sniff_rows,
            print_only: args.sniff,
            delimiter_given: args.delimiter.is_some(),
            null_given: args.null_string.is_some(),
            header: match (args.header, args.no_header) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            encoding: args.encoding,
            overrides: schema_overrides(&args.schema)?,
        };
        Ok(CopyConfig {
            load,
            inputs,
            dialect,
            header: args.header,
            columns,
            skip_lines: args.skip_lines,
            limit: args.limit,
            max_record_bytes: args.max_record_size as usize,
            run_id: args.run_id.clone(),
            resume: args.resume,
            sniff,
        })
    }
}

/// `--schema col:type,…`: each column once, each type one loader knows.
fn schema_overrides(items: &[String]) -> Result<Vec<(String, SqlType)>, ConfigError> {
    let mut overrides: Vec<(String, SqlType)> = Vec::new();
    for item in items {
        let Some((name, type_name)) = item.rsplit_once(':') else {
            return Err(invalid("schema", item, "must be col:type, e.g. id:bigint"));
        };
        let name = name.trim().to_string();
        if type_name.contains('(') {
            return Err(invalid(
                "schema",
                item,
                "takes a type without parameters (numeric, not numeric(10,2)); for a column \
                 constrained so, create the table first (--sniff prints a CREATE TABLE to start \
                 from) and load into it",
            ));
        }
        let Some(sql_type) = SqlType::from_name(type_name) else {
            return Err(invalid(
                "schema",
                item,
                "names a type loader has none for; use boolean, smallint, integer, bigint, real, \
                 double precision, numeric, text, json, jsonb, date, time, timestamp, \
                 timestamptz, uuid or bytea",
            ));
        };
        if name.is_empty() || overrides.iter().any(|(seen, _)| *seen == name) {
            return Err(invalid(
                "schema",
                item,
                "needs a column name, each given once",
            ));
        }
        overrides.push((name, sql_type));
    }
    Ok(overrides)
}

/// The dialect: `--delimiter`, `--quote` and `--null-string` checked against the format, with
/// PostgreSQL's defaults for what is not given.
fn dialect(args: &CopyArgs, format: InputFormat) -> Result<Dialect, ConfigError> {
    let single_byte = |flag: &'static str, value: &Option<String>| match value.as_deref() {
        None => Ok(None),
        Some(text) if text.len() == 1 && text.is_ascii() && !matches!(text, "\n" | "\r") => {
            Ok(Some(text.as_bytes()[0]))
        }
        Some(text) => Err(invalid(
            flag,
            text,
            "must be one ASCII character, not a line break",
        )),
    };
    let delimiter = single_byte("delimiter", &args.delimiter)?;
    let quote = single_byte("quote", &args.quote)?;
    let not_for = |flag: &'static str, given: bool, formats: &[InputFormat]| {
        if given && formats.contains(&format) {
            Err(ConfigError::Conflict(format!(
                "--{flag} does not apply to {} input",
                format!("{format:?}").to_lowercase()
            )))
        } else {
            Ok(())
        }
    };
    let parquet = InputFormat::Parquet;
    not_for(
        "delimiter",
        delimiter.is_some(),
        &[InputFormat::Ndjson, parquet],
    )?;
    not_for(
        "quote",
        quote.is_some(),
        &[InputFormat::Ndjson, InputFormat::Tsv, parquet],
    )?;
    not_for(
        "null-string",
        args.null_string.is_some(),
        &[InputFormat::Ndjson, parquet],
    )?;
    not_for("header", args.header, &[InputFormat::Ndjson, parquet])?;
    not_for("no-header", args.no_header, &[parquet])?;
    not_for("encoding", args.encoding.is_some(), &[parquet])?;
    let dialect = Dialect::new(format, delimiter, quote, args.null_string.as_deref());
    if format == InputFormat::Csv && dialect.delimiter == dialect.quote {
        return Err(ConfigError::Conflict(
            "--delimiter and --quote must differ".into(),
        ));
    }
    if let Some(null) = &args.null_string {
        if null.contains(['\n', '\r']) {
            return Err(invalid(
                "null-string",
                null.escape_debug(),
                "must not hold a line break",
            ));
        }
    }
    Ok(dialect)
}

/// `--run-id` printable and bounded; `--resume` only on PostgreSQL and never with `--truncate`.
fn check_resume(args: &CopyArgs, load: &LoadConfig) -> Result<(), ConfigError> {
    if let Some(run_id) = &args.run_id {
        if run_id.is_empty()
            || run_id.chars().count() > MAX_RUN_ID_CHARS
            || run_id.chars().any(char::is_control)
        {
            return Err(invalid(
                "run-id",
                run_id.escape_debug(),
                format!("must be 1 to {MAX_RUN_ID_CHARS} printable characters"),
            ));
        }
    }
    if args.resume {
        if load.truncate {
            return Err(ConfigError::Conflict(
                "--resume continues a load; --truncate would empty what it loaded".into(),
            ));
        }
        if !matches!(load.target, Target::Postgres(_)) {
            return Err(ConfigError::Conflict(
                "--resume needs a PostgreSQL target: the ledger of committed batches lives \
                 there"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// The inputs, each checked to be a readable file (stdin at most once).
fn inputs(files: &[PathBuf], load: &LoadConfig) -> Result<Vec<Input>, ConfigError> {
    if files.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    if files.iter().filter(|path| path.as_os_str() == "-").count() > 1 {
        return Err(ConfigError::Conflict(
            "`-` (stdin) can be given only once".into(),
        ));
    }
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return Ok(Input::Stdin);
            }
            if let Some(text) = path
                .to_str()
                .filter(|t| t.starts_with("http://") || t.starts_with("https://"))
            {
                let url = url::Url::parse(text).map_err(|err| ConfigError::Input {
                    path: text.to_string(),
                    reason: format!("is not a URL: {err}"),
                })?;
                let gzip = url.path().ends_with(".gz");
                return Ok(Input::Url {
                    url,
                    gzip,
                    retry: load.retry,
                    quiet: load.quiet,
                });
            }
            let unreadable = |reason: String| ConfigError::Input {
                path: path.display().to_string(),
                reason,
            };
            let metadata = std::fs::metadata(path).map_err(|err| unreadable(err.to_string()))?;
            if metadata.is_dir() {
                return Err(unreadable("is a directory".into()));
            }
            // A regular file is opened to see that it can be read. A FIFO is not: opening it
            // waits for a writer (the load waits for its input where a signal can end it), and a
            // reader that comes and goes could break the writer's pipe.
            if metadata.is_file() {
                std::fs::File::open(path).map_err(|err| unreadable(err.to_string()))?;
            }
            let gzip = path.extension().is_some_and(|ext| ext == "gz");
            Ok(Input::File {
                path: path.clone(),
                gzip,
            })
        })
        .collect()
}

/// Parquet inputs must be regular files: a Parquet file's footer, at its end, says where its
/// columns are, so it is read by seeking, which a pipe, a download or a gzip stream cannot do.
fn check_seekable(inputs: &[Input]) -> Result<(), ConfigError> {
    for input in inputs {
        let reason = match input {
            Input::Stdin => {
                "is standard input, and Parquet is read by seeking (its footer is at \
                             the end); save it to a file first"
            }
            Input::Url { .. } => {
                "is a URL, and Parquet is read by seeking (its footer is at the \
                                  end); download it to a file first"
            }
            Input::File { gzip: true, .. } => {
                "is gzip-compressed, and Parquet is read by \
                                              seeking; decompress it (Parquet compresses its own \
                                              pages)"
            }
            Input::File { path, .. } if !path.is_file() => {
                "is not a regular file, and Parquet \
                                                           is read by seeking; copy it to a \
                                                           file first"
            }
            Input::File { .. } => continue,
        };
        return Err(ConfigError::Input {
            path: input.name(),
            reason: reason.into(),
        });
    }
    Ok(())
}

/// The format the inputs' extensions (under any `.gz`) name; stdin alone is CSV.
fn format_of(inputs: &[Input]) -> Result<InputFormat, ConfigError> {
    let mut formats = inputs.iter().filter_map(|input| {
        let (path, gzip) = match input {
            Input::Stdin => return None,
            Input::Url { url, gzip, .. } => (PathBuf::from(url.path()), *gzip),
            Input::File { path, gzip } => (path.clone(), *gzip),
        };
        let path = if gzip { path.with_extension("") } else { path };
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Some(InputFormat::Csv),
            Some("tsv" | "tab") => Some(InputFormat::Tsv),
            Some("ndjson" | "jsonl") => Some(InputFormat::Ndjson),
            Some("parquet") => Some(InputFormat::Parquet),
            _ => None,
        };
        Some((path, format))
    });
    let mut chosen = None;
    for (path, format) in formats.by_ref() {
        let Some(format) = format else {
            return Err(ConfigError::Conflict(format!(
                "cannot tell the format of {} from its extension; give --format csv|tsv|ndjson|parquet",
                path.display()
            )));
        };
        if chosen.is_some_and(|chosen| chosen != format) {
            return Err(ConfigError::Conflict(
                "the inputs have different formats; load them separately".into(),
            ));
        }
        chosen = Some(format);
    }
    Ok(chosen.unwrap_or(InputFormat::Csv))
}

/// `--columns`: non-empty, distinct names.
fn column_list(names: &[String]) -> Result<Vec<String>, ConfigError> {
    let trimmed: Vec<String> = names.iter().map(|name| name.trim().to_string()).collect();
    for (i, name) in trimmed.iter().enumerate() {
        if name.is_empty() {
            return Err(invalid("columns", names.join(","), "holds an empty name"));
        }
        if trimmed[..i].contains(name) {
            return Err(invalid(
                "columns",
                names.join(","),
                format!("names `{name}` twice"),
            ));
        }
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn copy_config(args: &[&str]) -> Result<CopyConfig, ConfigError> {
        let cli = Cli::try_parse_from(["loader", "copy"].into_iter().chain(args.iter().copied()))
            .expect("arguments parse");
        match &cli.command {
            Some(crate::cli::Command::Copy(copy)) => CopyConfig::from_args(copy, &|name| {
                (name == "DATABASE_URL").then(|| "postgres://u@h/d".into())
            }),
            other => panic!("not copy: {other:?}"),
        }
    }

    #[test]
    fn copy_formats_follow_extensions_and_flags_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"").unwrap();
            path.display().to_string()
        };
        let (csv_gz, tsv, ndjson, xlsx) = (
            file("a.csv.gz"),
            file("b.tsv"),
            file("c.jsonl"),
            file("d.xlsx"),
        );
        let config = copy_config(&[&csv_gz]).unwrap();
        assert_eq!(config.dialect.format, InputFormat::Csv);
        assert!(matches!(config.inputs[0], Input::File { gzip: true, .. }));
        assert_eq!(copy_config(&[&tsv]).unwrap().dialect.null_string, b"\\N");
        assert_eq!(
            copy_config(&[&ndjson]).unwrap().dialect.format,
            InputFormat::Ndjson
        );
        assert_eq!(copy_config(&[]).unwrap().inputs, [Input::Stdin]);
        for args in [
            &[xlsx.as_str()][..],
            &[&csv_gz, &tsv],
            &[&csv_gz, "--delimiter", "ab"],
            &[&csv_gz, "--delimiter", ",", "--quote", ","],
            &[&tsv, "--quote", "'"],
            &[&ndjson, "--header"],
            &[&csv_gz, "--limit", "0"],
            &[&csv_gz, "--columns", "a,,b"],
            &[&csv_gz, "--columns", "a,b,a"],
            &[&csv_gz, "--run-id", "r", "--resume", "--truncate"],
            &[&csv_gz, "--run-id", ""],
            &[&csv_gz, "--schema", "a:bigint,a:text"],
            &[&csv_gz, "--schema", "a:money"],
            &[&csv_gz, "--schema", "a"],
            &[&ndjson, "--no-header"],
            &["-", "-"],
            &[dir.path().to_str().unwrap()],
        ] {
            assert!(copy_config(args).is_err(), "{args:?} must be rejected");
        }
        assert!(
            Cli::try_parse_from(["loader", "copy", "--resume"]).is_err(),
            "--resume needs --run-id"
        );
        let parameters = copy_config(&[&csv_gz, "--schema", "a:numeric(10,2)"]).unwrap_err();
        assert!(
            parameters
                .to_string()
                .contains("takes a type without parameters"),
            "{parameters}"
        );
    }
}
