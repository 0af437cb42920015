//! Command-line surface: the clap-derive argument types, and nothing else.
//!
//! These types only parse; [`crate::config`] validates them into the `Config` the engine uses, so
//! workers never see a clap type. A bare `loader …` is `loader gen …`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::copy::{Encoding, InputFormat};
use crate::ingest::ChunkBy;
use crate::pg::Method;
use crate::sink::stream::OutputFormat;

/// `0.1.0 (commit 0123456789ab, built 2026-12-04)`: the version, the commit and the build date.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LOADER_COMMIT"),
    ", built ",
    env!("LOADER_BUILD_DATE"),
    ")"
);

/// Thread-per-core, synchronous bulk loader and load probe.
#[derive(Debug, Parser)]
#[command(
    name = "loader",
    version = VERSION,
    about,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// With no subcommand, `loader` runs `gen`.
    #[command(flatten)]
    pub gen: GenArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate `readings` rows on every worker and load them (the default mode).
    Gen(GenArgs),
    /// Load CSV, TSV or NDJSON files (plain or .gz) or stdin, or Parquet files, rejecting bad
    /// rows.
    Copy(CopyArgs),
    /// Fetch JSON documents over HTTP (rate-limited, retried), cut their text into chunks,
    /// optionally embed them, and load the chunks; a rerun skips the documents already loaded.
    Ingest(IngestArgs),
    /// Measure an HTTP server with concurrent blocking users: latency, time to first byte,
    /// stalls, and whether it serializes requests.
    Probe(ProbeArgs),
    /// Finds the fastest --threads, --batch and --commit-every for a PostgreSQL target: a short
    /// gen load per setting into a scratch copy of the table (dropped after), then the table of
    /// settings tried, the knee and the command to run.
    Tune(TuneArgs),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, or write every page into a directory.
    Man {
        /// Write loader.1 and one page per subcommand (loader-copy.1, …) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Options of `loader tune`: gen's (the target, the table, TLS, retries; not the ones it tries)
/// and the search's.
#[derive(Debug, Args)]
pub(crate) struct TuneArgs {
    #[command(flatten)]
    pub gen: GenArgs,

    /// The whole search's time, split evenly over the settings tried (each at least 2 s).
    #[arg(long, value_name = "TIME", default_value = "60s")]
    pub budget: humantime::Duration,

    /// Thread counts to try.
    #[arg(
        long,
        value_name = "N,N…",
        value_delimiter = ',',
        default_value = "1,2,4,8,16"
    )]
    pub try_threads: Vec<usize>,

    /// Batch sizes to try (rows).
    #[arg(
        long,
        value_name = "N,N…",
        value_delimiter = ',',
        default_value = "1000,10000"
    )]
    pub try_batch: Vec<usize>,

    /// Batches per transaction to try.
    #[arg(
        long,
        value_name = "N,N…",
        value_delimiter = ',',
        default_value = "1,10"
    )]
    pub try_commit_every: Vec<usize>,
}

/// Options of `loader probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// The URL every user requests (http:// or https://).
    #[arg(value_name = "URL")]
    pub url: String,

    /// Concurrent users, one OS thread and one keep-alive connection each; a list such as
    /// 1,10,20,50 runs one round per count, and A..B a ramp from A to B users (doubling, or by
    /// --step).
    #[arg(
        short,
        long,
        value_name = "N[,N...]|A..B",
        value_delimiter = ',',
        default_value = "10"
    )]
    pub users: Vec<String>,

    /// The users a ramp (--users A..B) adds per round [default: it doubles them].
    #[arg(long, value_name = "N")]
    pub step: Option<usize>,

    /// End the rounds after the first where a rule holds, and name the last good level:
    /// p99>2s (a total-time figure: p50, p90, p99, p99.9, max, mean), first_byte.p99>500ms,
    /// first_token.p90>1s, success<99%, plateau (requests/s grew less than 10%).
    #[arg(long, value_name = "RULE[,RULE...]", value_delimiter = ',')]
    pub until: Vec<String>,

    /// Requests per round over all users [default: 200 unless --duration is given].
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_count, conflicts_with = "duration")]
    pub requests: Option<u64>,

    /// Length of each round (e.g. 10s, 1m; at most 100years).
    #[arg(short, long, value_name = "TIME")]
    pub duration: Option<humantime::Duration>,

    /// Offered load in requests per second over all users. Requests start at planned times
    /// (open model) and their latency counts from the planned time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// HTTP method.
    #[arg(short = 'X', long, value_name = "METHOD", default_value = "GET")]
    pub method: String,

    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Request body: the text itself, or @FILE for a file's contents.
    #[arg(long, value_name = "TEXT|@FILE", conflicts_with = "openai_chat")]
    pub body: Option<String>,

    /// Stream a chat completion from an OpenAI-compatible server: POST with `"stream": true`,
    /// MODEL and --prompt (the URL is the endpoint, e.g. http://host:8000/v1/chat/completions).
    #[arg(long, value_name = "MODEL", requires = "prompt")]
    pub openai_chat: Option<String>,

    /// With --openai-chat: the user message, the text itself or @FILE.
    #[arg(long, value_name = "TEXT|@FILE", requires = "openai_chat")]
    pub prompt: Option<String>,

    /// In a streamed answer (text/event-stream, NDJSON), the event that carries a token is one
    /// whose JSON has a non-empty value at this JSON pointer (e.g. /choices/0/text) [default: an
    /// OpenAI-compatible choices[0].delta.content or choices[0].text, or Ollama's
    /// message.content or response].
    #[arg(long, value_name = "POINTER")]
    pub token: Option<String>,

    /// Longest time one request may take, answer included; a slower one counts as a timeout (at
    /// most 24h).
    #[arg(long, value_name = "TIME", default_value = "30s")]
    pub timeout: humantime::Duration,

    /// Time allowed to open one connection (at most 24h).
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub connect_timeout: humantime::Duration,

    /// Requests a lone user sends before the rounds, to measure the baseline the verdict compares
    /// against (0: no verdict). Not sent when the first round has one user.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub baseline: u64,

    /// Write the results of every round to FILE: .json for every figure, .svg for a picture;
    /// repeat it for both.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,

    #[command(flatten)]
    pub progress: ProgressArgs,

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// How progress is shown.
#[derive(Debug, Args)]
pub(crate) struct ProgressArgs {
    /// Interval of the live progress lines (50ms to 24h).
    #[arg(long, value_name = "TIME", default_value = "1s")]
    pub progress_every: humantime::Duration,

    /// Print nothing but errors (the report file is still written).
    #[arg(short, long)]
    pub quiet: bool,
}

/// How HTTPS servers are trusted.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// HTTPS: trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// HTTPS: do not verify the server's certificate (only for tests and lab setups).
    #[arg(long)]
    pub insecure: bool,
}

/// Options of `loader copy`.
#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// Input files or http(s):// URLs, `-` for standard input [default: -]. A `.gz` input is
    /// decompressed. Parquet is read from files only (it is read by seeking).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Input format [default: by extension (.csv, .tsv/.tab, .ndjson/.jsonl, .parquet), csv for
    /// stdin].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<InputFormat>,

    /// The first record of each input names the columns (CSV, TSV) [default: sniffed].
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,

    /// The first record of each input is data, not a header (CSV, TSV).
    #[arg(long)]
    pub no_header: bool,

    /// Print the sniffed dialect (Parquet: the schema), the inferred CREATE TABLE and the first
    /// parsed rows; load nothing.
    #[arg(long)]
    pub sniff: bool,

    /// Records of the first input sampled for the dialect and the column types.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = parse_count)]
    pub sniff_rows: u64,

    /// The inputs' text encoding [default: sniffed: UTF-8, else Windows-1252].
    #[arg(long, value_enum, value_name = "ENCODING")]
    pub encoding: Option<Encoding>,

    /// Column types that replace the inferred ones, as `col:type,…` (PostgreSQL type names).
    #[arg(long, value_name = "COL:TYPE,…", value_delimiter = ',')]
    pub schema: Vec<String>,

    /// Table columns the fields of each record go to, in order (a,b,c) [default: the header's
    /// names, else every column of the table]. Parquet: the columns loaded, by name [default:
    /// all].
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,

    /// Field separator, one ASCII character [default: `,` for CSV, tab for TSV].
    #[arg(long, value_name = "C")]
    pub delimiter: Option<String>,

    /// CSV quote character, one ASCII character [default: "].
    #[arg(long, value_name = "C")]
    pub quote: Option<String>,

    /// The spelling of NULL [default: an empty unquoted field for CSV, \N for TSV].
    #[arg(long, value_name = "S")]
    pub null_string: Option<String>,

    /// Skip this many lines at the start of each input, before the header (Parquet: rows).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip_lines: u64,

    /// Load at most this many records (Parquet: rows) in all.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub limit: Option<u64>,

    /// The longest record accepted, in bytes (binary units: 64KiB, 16MiB, 1GiB); a longer one,
    /// usually an unbalanced quote, stops the load naming the line it starts on.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_record_size: u64,

    /// The run's name in the ledger: with --resume, continue that run after a crash [default: a
    /// new id, printed in the report].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Skip the batches the ledger shows committed by --run-id (same inputs, same --batch).
    #[arg(long, requires = "run_id")]
    pub resume: bool,

    #[command(flatten, next_help_heading = "Load options")]
    pub load: LoadArgs,
}

/// Options of `loader ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// A file of document URLs, one per line, `-` for standard input [default: -, unless
    /// --listing].
    #[arg(value_name = "URLS", conflicts_with = "listing")]
    pub urls: Option<PathBuf>,

    /// A listing endpoint instead of a URL file: each page's items (--items) are document URLs
    /// or the documents themselves, and --next names the next page.
    #[arg(long, value_name = "URL")]
    pub listing: Option<String>,

    /// JSON pointer to a listing page's items [default: the page when it is an array, else
    /// /items].
    #[arg(long, value_name = "/POINTER", requires = "listing")]
    pub items: Option<String>,

    /// JSON pointer to the next page's URL in a listing page; absent, null or "" on the last
    /// page [default: one page only].
    #[arg(long, value_name = "/POINTER", requires = "listing")]
    pub next: Option<String>,

    /// JSON pointer to a document's id (a string or a number).
    #[arg(long, value_name = "/POINTER", default_value = "/id")]
    pub id: String,

    /// JSON pointer to a document's text: a string, or an array of strings (joined with blank
    /// lines).
    #[arg(long, value_name = "/POINTER", default_value = "/text")]
    pub text: String,

    /// JSON pointers to fields kept with every chunk in `meta`, a JSON object keyed by the
    /// pointer without its leading `/`.
    #[arg(long, value_name = "/A,/B", value_delimiter = ',')]
    pub meta: Vec<String>,

    /// Fetcher threads, each with its own connection.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub fetchers: usize,

    /// Requests per second over all fetchers, listing pages and retries included [default: no
    /// limit].
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Longest time one fetch may take, answer included (at most 24h).
    #[arg(long, value_name = "TIME", default_value = "30s")]
    pub fetch_timeout: humantime::Duration,

    /// Chunk size, in characters (or words with --chunk-by words).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub chunk_size: usize,

    /// What a chunk repeats of the one before it, in the same unit; at most half of
    /// --chunk-size.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub overlap: usize,

    /// The unit of --chunk-size and --overlap.
    #[arg(long, value_enum, value_name = "UNIT", default_value_t = ChunkBy::Chars)]
    pub chunk_by: ChunkBy,

    /// Threads of the chunking pool [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub chunkers: Option<usize>,

    /// An OpenAI-compatible embeddings endpoint (…/v1/embeddings): each chunk is stored with its
    /// vector. A bearer key is read from LOADER_EMBED_KEY.
    #[arg(long, value_name = "URL")]
    pub embed_url: Option<String>,

    /// The model named in embedding requests.
    #[arg(long, value_name = "NAME", default_value = "text-embedding-3-small")]
    pub embed_model: String,

    /// Chunks per embedding request.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub embed_batch: usize,

    /// Threads sending embedding requests.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub embedders: usize,

    /// Take at most this many documents from the list, in order (the ones an earlier run loaded
    /// count too, so a rerun with the same --limit finishes the same set).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub limit: Option<u64>,

    /// Forget which documents earlier runs loaded and load them all again (--truncate also
    /// empties the table).
    #[arg(long)]
    pub no_resume: bool,

    /// HTTP targets: the file recording the documents loaded, for the next run to skip
    /// [default: ingest-TABLE.state.ndjson].
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    #[command(flatten, next_help_heading = "Load options")]
    pub load: LoadArgs,
}

/// Options of `loader gen`.
#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// Total rows over all workers and all shards (accepts 1_000_000, 250k, 2M). Without --rows or
    /// --duration the load runs until Ctrl-C.
    #[arg(long, value_name = "N", value_parser = parse_count, conflicts_with = "duration")]
    pub rows: Option<u64>,

    /// Stop taking new batches after this long (e.g. 30s, 5m; at most 100years).
    #[arg(long, value_name = "TIME")]
    pub duration: Option<humantime::Duration>,

    /// Rows per second over all workers (a batch waits for its share) [default: no limit].
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Seed of the row generator: the same seed gives the same rows.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// Load the K-th of N disjoint slices of the ids (0-based), so N processes never overlap.
    #[arg(long, value_name = "K/N", conflicts_with = "shard_from_env")]
    pub shard: Option<String>,

    /// Take the shard from this environment variable: `K/N`, or `K` with --shards N (as a
    /// Kubernetes Indexed Job's JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "VAR")]
    pub shard_from_env: Option<String>,

    /// With --shard-from-env: the number of shards, N.
    #[arg(long, value_name = "N", requires = "shard_from_env")]
    pub shards: Option<u64>,

    /// Row format for the `-` and `file:` targets [default: by file extension, else csv].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output_format: Option<OutputFormat>,

    /// A spec file (TOML) describing columns by generators: overrides the catalog's choice, or
    /// describes a whole table where there is no catalog (docs/GENERATE.md).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// Print, per column, the type, the generator chosen and why; load nothing.
    #[arg(long)]
    pub explain: bool,

    /// The run's name in the ledger: with --resume, continue that run after a crash [default: a
    /// new id, printed in the report].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Skip the batches the ledger shows committed by --run-id (same seed, --batch and --shard).
    #[arg(long, requires = "run_id")]
    pub resume: bool,

    #[command(flatten, next_help_heading = "Load options")]
    pub load: LoadArgs,
}

/// Options every loading mode shares: where to, how wide, how to report.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Where rows go: postgres://…, a key=value DSN, crate+http://…, es+http://…,
    /// opensearch+http://…, clickhouse+http://…, http://…, local, null, -, file:PATH [default:
    /// DATABASE_URL, else the libpq PG* variables, else local]. Several hosts: postgres://h1,h2/db,
    /// crate+http://h1:4200,h2:4200, or --target repeated; workers spread over them.
    #[arg(short, long, value_name = "TARGET")]
    pub target: Vec<String>,

    /// Worker threads, each with its own connection [default: the number of cores].
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,

    /// Rows per batch (one COPY, one INSERT statement or one request each).
    #[arg(short, long, value_name = "N", value_parser = parse_count, default_value = "1000")]
    pub batch: u64,

    /// PostgreSQL: batches per transaction. One COPY and one COMMIT carry N batches, which are
    /// counted when they commit (gen and copy modes).
    #[arg(long, value_name = "N", value_parser = parse_count, default_value = "1")]
    pub commit_every: u64,

    /// Target table, optionally schema-qualified (schema.table) [default: readings; chunks for
    /// ingest].
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// Create the table if it does not exist.
    #[arg(long)]
    pub create: bool,

    /// Empty the table before loading.
    #[arg(long)]
    pub truncate: bool,

    /// How rows are written to PostgreSQL.
    #[arg(long, value_enum, default_value_t = Method::CopyBinary)]
    pub method: Method,

    /// Do not pin worker i to core i % cores.
    #[arg(long)]
    pub no_pin: bool,

    /// With the local target: leave the throwaway PostgreSQL running after the load.
    #[arg(long)]
    pub keep: bool,

    /// Write the final report to FILE: .json, .csv, .md or .svg; repeat it for several formats.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,

    #[command(flatten)]
    pub progress: ProgressArgs,

    /// Retries after transient errors (of one batch, a connection or the table setup) before the
    /// load stops.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_retries: u32,

    /// Longest time spent retrying one batch, connection or setup before the load stops (at most
    /// 24h).
    #[arg(long, value_name = "TIME", default_value = "60s")]
    pub retry_for: humantime::Duration,

    /// Time allowed to open one connection (at most 24h).
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub connect_timeout: humantime::Duration,

    /// Wait up to TIME for a target that refuses connections (a server still starting); without
    /// it a refused first connection stops the load at once (at most 24h).
    #[arg(long, value_name = "TIME")]
    pub wait_for_target: Option<humantime::Duration>,

    /// Where rejected rows go, one JSON object per line [default: rejects-RUN_ID.ndjson].
    #[arg(long, value_name = "FILE")]
    pub reject_file: Option<PathBuf>,

    /// Stop the load once more than this many rows are rejected.
    #[arg(long, value_name = "N", value_parser = parse_count, default_value = "1000")]
    pub max_rejects: u64,

    /// The user to authenticate as (PostgreSQL, or HTTP Basic) [default: the URL's].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Read the password from this file's first line [default: the URL's, else PGPASSWORD for
    /// PostgreSQL and LOADER_PASSWORD for HTTP].
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// HTTP targets: longest time one request may take, answer included (at most 24h).
    #[arg(long, value_name = "TIME", default_value = "60s")]
    pub timeout: humantime::Duration,

    /// HTTP targets: compress request bodies with gzip.
    #[arg(long)]
    pub gzip: bool,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Serve Prometheus metrics (rows, batches, errors, retries, batch latency; per worker and
    /// total) at http://ADDR/metrics while the load runs, e.g. 127.0.0.1:9184.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,

    /// With --metrics-addr: keep serving the final figures this long after the load ends, for a
    /// last scrape (at most 24h).
    #[arg(
        long,
        value_name = "TIME",
        default_value = "0s",
        requires = "metrics_addr"
    )]
    pub metrics_linger: humantime::Duration,
}

/// Parses a count such as `1000000`, `1_000_000`, `250k` or `2M`.
pub(crate) fn parse_count(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    let (number, scale) = match digits.char_indices().last() {
        Some((i, 'k' | 'K')) => (&digits[..i], 1_000),
        Some((i, 'm' | 'M')) => (&digits[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&digits[..i], 1_000_000_000),
        _ => (digits.as_str(), 1),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a count (examples: 1000, 1_000_000, 250k, 2M)"))
}

/// Parses a size in bytes such as `4096`, `64KiB`, `16MiB` or `1GiB` (K, M and G alone are
/// binary units too).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => 0,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| scale > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a size (examples: 4096, 64KiB, 16MiB, 1GiB)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("3MB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn counts_accept_separators_and_suffixes() {
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("250k"), Ok(250_000));
        assert_eq!(parse_count("2M"), Ok(2_000_000));
        assert_eq!(parse_count("7"), Ok(7));
        assert!(parse_count("").is_err());
        assert!(parse_count("-1").is_err());
        assert!(parse_count("1.5M").is_err());
        assert!(parse_count("99999999999G").is_err());
    }

    #[test]
    fn bare_invocation_is_gen() {
        let cli = Cli::try_parse_from(["loader", "--threads", "4", "--rows", "10"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.gen.load.threads, Some(4));
        let cli = Cli::try_parse_from(["loader", "gen", "--batch", "5"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Gen(ref g)) if g.load.batch == 5));
    }
}
