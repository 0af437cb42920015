//! `loader ingest` end to end: a local document API (support/docs.rs) whose documents are a pure
//! function of their number, so each test computes the chunks the documented rule must give, and
//! the real PostgreSQL or ClickHouse as the target. Every test counts on the target.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::clickhouse::ClickHouse;
use crate::support::docs::{self, Behaviour, DocServer, PARAGRAPH_CHARS};
use crate::support::{read_report, scratch, wait_until, wait_with_limit, Loader, Pg};

const CHUNK_SIZE: usize = 1000;
const OVERLAP: usize = 100;

/// The chunks document N gives by the documented rule (size 1000, overlap 100): a paragraph of
/// 798 characters and its blank line fit a chunk with the 100 characters of overlap before it,
/// so every paragraph ends one chunk; a wall of n characters without whitespace is cut hard, in
/// 1 + ceil((n - 1000) / 900) chunks.
fn expected_chunks(n: u64) -> u64 {
    const { assert!(PARAGRAPH_CHARS + 2 + OVERLAP <= CHUNK_SIZE && PARAGRAPH_CHARS > CHUNK_SIZE / 2) };
    if docs::is_wall(n) {
        let chars = docs::wall_chars(n);
        if chars <= CHUNK_SIZE {
            1
        } else {
            1 + (chars - CHUNK_SIZE).div_ceil(CHUNK_SIZE - OVERLAP) as u64
        }
    } else {
        docs::paragraphs(n) as u64
    }
}

/// A file listing the URLs of documents `0..documents`.
fn url_file(dir: &Path, server: &DocServer, documents: u64) -> std::path::PathBuf {
    let path = dir.join("urls.txt");
    let lines: Vec<String> = (0..documents)
        .map(|n| server.url(&format!("/docs/{n}")))
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the URL file");
    path
}

fn ingest(pg: &Pg) -> Loader {
    Loader::new()
        .arg("ingest")
        .args(["--target", &pg.url(), "--create", "--text", "/body/text"])
}

/// Asserts `chunks` holds exactly the chunks of these documents, each once, numbered from 0.
fn assert_chunks_of(pg: &Pg, documents: impl Iterator<Item = u64> + Clone) {
    let expected: u64 = documents.clone().map(expected_chunks).sum();
    assert_eq!(pg.scalar("SELECT count(*) FROM chunks"), expected as i64);
    assert_eq!(
        pg.scalar("SELECT count(*) FROM (SELECT DISTINCT doc_id, chunk_index FROM chunks) c"),
        expected as i64,
        "a chunk is there twice"
    );
    assert_eq!(
        pg.scalar(
            "SELECT count(*) FROM (SELECT doc_id FROM chunks GROUP BY doc_id \
             HAVING max(chunk_index) + 1 <> count(*) OR min(chunk_index) <> 0) gaps"
        ),
        0,
        "a document is missing a chunk"
    );
    let ids: Vec<String> = documents.map(|n| format!("'doc-{n}'")).collect();
    assert_eq!(
        pg.scalar(&format!(
            "SELECT count(DISTINCT doc_id) FROM chunks WHERE doc_id IN ({})",
            ids.join(",")
        )),
        ids.len() as i64
    );
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT doc_id) FROM chunks"),
        ids.len() as i64
    );
}

/// Document N's chunks, in order, reassembled without their overlaps.
fn reassembled(pg: &Pg, n: u64) -> String {
    let rows = pg
        .client()
        .query(
            "SELECT text FROM chunks WHERE doc_id = $1 ORDER BY chunk_index",
            &[&format!("doc-{n}")],
        )
        .expect("read the chunks");
    let mut text = String::new();
    for (i, row) in rows.iter().enumerate() {
        let chunk: String = row.get(0);
        let skip = if i == 0 { 0 } else { OVERLAP };
        text.extend(chunk.chars().skip(skip));
    }
    text
}

#[test]
fn two_thousand_documents_give_the_chunks_the_rule_says_each_once_and_a_rerun_skips_them() {
    let pg = Pg::start();
    let server = DocServer::start(Behaviour::default(), 0);
    let dir = scratch();
    let urls = url_file(dir.path(), &server, 2000);
    let report_path = dir.path().join("r.json");
    ingest(&pg)
        .args([
            "--fetchers",
            "8",
            "--threads",
            "2",
            "--meta",
            "/title",
            "--quiet",
        ])
        .arg_path(&urls)
        .arg("--report")
        .arg_path(&report_path)
        .run()
        .assert_success();

    assert_chunks_of(&pg, 0..2000);
    for n in [1, 10, 11, 1999] {
        assert_eq!(
            reassembled(&pg, n),
            docs::text(n, &Behaviour::default()),
            "doc-{n}"
        );
    }
    assert_eq!(
        pg.scalar(
            "SELECT count(*) FROM chunks WHERE meta->>'title' <> 'Title ' || substr(doc_id, 5)"
        ),
        0
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM loader_documents"), 2000);
    let expected: u64 = (0..2000).map(expected_chunks).sum();
    assert_eq!(
        pg.scalar("SELECT sum(chunks)::bigint FROM loader_documents"),
        expected as i64
    );
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], expected, "{report}");
    assert_eq!(report["stages"]["documents"]["loaded"], 2000);
    assert_eq!(report["stages"]["chunks"]["made"], expected);
    assert_eq!(report["stages"]["requests"]["fetches"], 2000);

    // The same command again: every document was loaded, so nothing is fetched.
    let requests = server.requests();
    ingest(&pg)
        .args(["--quiet", "--meta", "/title", "--report"])
        .arg_path(&report_path)
        .arg_path(&urls)
        .run()
        .assert_success();
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 0, "{report}");
    assert_eq!(report["stages"]["documents"]["skipped"], 2000);
    assert_eq!(server.requests(), requests);
    assert_chunks_of(&pg, 0..2000);
}

#[test]
fn a_listing_with_throttling_errors_and_missing_documents_loads_each_document_once_embedded() {
    let pg = Pg::start();
    let server = DocServer::start(
        Behaviour {
            documents: 400,
            // 10% of requests: 1 in 20 answers 429 with Retry-After, 1 in 20 a 500.
            throttled_per_20: 1,
            failed_per_20: 1,
            missing: true,
            ..Behaviour::default()
        },
        0,
    );
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let rejects = dir.path().join("rejects.ndjson");
    let run = ingest(&pg)
        .args(["--listing", &server.url("/list?page=0"), "--next", "/next"])
        .args([
            "--embed-url",
            &server.url("/v1/embeddings"),
            "--embed-batch",
            "16",
        ])
        .args(["--fetchers", "8", "--quiet", "--max-retries", "20"])
        .arg("--reject-file")
        .arg_path(&rejects)
        .arg("--report")
        .arg_path(&report_path)
        .run();
    // The missing documents are rejected: exit code 1, everything else loaded.
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let missing: Vec<u64> = (0..400).filter(|n| n % 97 == 5).collect();
    assert_eq!(missing.len(), 5);
    assert_chunks_of(&pg, (0..400).filter(|n| n % 97 != 5));
    assert_eq!(
        pg.scalar("SELECT count(*) FROM chunks WHERE embedding[1] <> char_length(text)"),
        0
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM chunks WHERE array_length(embedding, 1) <> 4"),
        0
    );
    let rejected = std::fs::read_to_string(&rejects).expect("read the reject file");
    assert_eq!(rejected.lines().count(), missing.len(), "{rejected}");
    assert!(rejected.contains("HTTP 404"), "{rejected}");
    let report = read_report(&report_path);
    assert_eq!(report["stages"]["documents"]["rejected"], missing.len());
    assert!(
        report["stages"]["requests"]["retries"].as_u64() > Some(10),
        "{report}"
    );
    assert_eq!(report["stages"]["requests"]["listing_pages"], 4);
    assert!(
        server
            .embed_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[test]
fn the_rate_limit_holds_fifty_requests_a_second() {
    let server = DocServer::start(Behaviour::default(), 0);
    let dir = scratch();
    let urls = url_file(dir.path(), &server, 2000);
    let child = Loader::new()
        .args(["ingest", "--target", "null", "--text", "/body/text"])
        .args(["--rate", "50", "--fetchers", "8", "--quiet"])
        .arg_path(&urls)
        .spawn();
    let first = || server.arrivals.lock().unwrap().first().copied();
    wait_until(Duration::from_secs(20), "the first request", || {
        first().is_some()
    });
    let start = first().expect("a first request");
    while start.elapsed() < Duration::from_millis(10_300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let output = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(130));
    let window = Duration::from_secs(10);
    let in_window = server
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|at| at.duration_since(start) < window)
        .count();
    assert!(
        (475..=525).contains(&in_window),
        "{in_window} requests in 10 s at --rate 50"
    );
}

#[test]
fn killed_mid_run_the_rerun_completes_with_no_duplicates_and_honours_the_limit() {
    let pg = Pg::start();
    let server = DocServer::start(
        Behaviour {
            delay: Duration::from_millis(5),
            ..Behaviour::default()
        },
        0,
    );
    let dir = scratch();
    let urls = url_file(dir.path(), &server, 1000);
    let command = || {
        ingest(&pg)
            .args([
                "--limit",
                "600",
                "--fetchers",
                "4",
                "--batch",
                "100",
                "--quiet",
            ])
            .arg_path(&urls)
    };
    let child = command().spawn();
    let started = Instant::now();
    wait_until(Duration::from_secs(60), "documents loaded", || {
        crate::support::count_or_zero(&pg, "loader_documents") >= 100
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("send SIGKILL");
    let _ = wait_with_limit(child, Duration::from_secs(10));
    let loaded_before = pg.scalar("SELECT count(*) FROM loader_documents");
    assert!(
        loaded_before < 600,
        "the kill came too late ({loaded_before} documents in {:?})",
        started.elapsed()
    );

    let report_path = dir.path().join("r.json");
    command()
        .arg("--report")
        .arg_path(&report_path)
        .run()
        .assert_success();
    assert_chunks_of(&pg, 0..600);
    assert_eq!(pg.scalar("SELECT count(*) FROM loader_documents"), 600);
    let report = read_report(&report_path);
    assert_eq!(
        report["stages"]["documents"]["skipped"].as_i64(),
        Some(loaded_before),
        "{report}"
    );
    assert_eq!(
        report["stages"]["documents"]["loaded"].as_i64(),
        Some(600 - loaded_before)
    );
}

#[test]
fn clickhouse_gets_embedded_chunks_and_the_state_file_resumes() {
    let clickhouse = ClickHouse::start();
    let server = DocServer::start(Behaviour::default(), 0);
    let dir = scratch();
    let urls = url_file(dir.path(), &server, 200);
    let state = dir.path().join("state.ndjson");
    let run = |limit: &str| {
        Loader::new()
            .args([
                "ingest",
                "--target",
                &clickhouse.url(),
                "--create",
                "--quiet",
            ])
            .args(["--text", "/body/text", "--meta", "/title", "--limit", limit])
            .args(["--embed-url", &server.url("/v1/embeddings")])
            .arg("--state-file")
            .arg_path(&state)
            .arg_path(&urls)
            .run()
            .assert_success();
    };
    run("50");
    run("200");
    let expected: u64 = (0..200).map(expected_chunks).sum();
    assert_eq!(
        clickhouse.scalar("SELECT count() FROM chunks"),
        expected as i64
    );
    assert_eq!(
        clickhouse.scalar("SELECT uniqExact(doc_id, chunk_index) FROM chunks"),
        expected as i64
    );
    assert_eq!(
        clickhouse.scalar("SELECT countIf(embedding[1] != lengthUTF8(text)) FROM chunks"),
        0
    );
    let recorded = std::fs::read_to_string(&state).expect("read the state file");
    assert_eq!(recorded.lines().count(), 200);
}

#[test]
fn twenty_thousand_documents_of_100_kb_stay_under_200_mb() {
    let server = DocServer::start(
        Behaviour {
            document_bytes: Some(100_000),
            ..Behaviour::default()
        },
        0,
    );
    let dir = scratch();
    let urls = url_file(dir.path(), &server, 20_000);
    let report_path = dir.path().join("r.json");
    Loader::new()
        .args([
            "ingest",
            "--target",
            "null",
            "--text",
            "/body/text",
            "--quiet",
        ])
        .arg("--report")
        .arg_path(&report_path)
        .arg_path(&urls)
        .run_within(Duration::from_secs(300))
        .assert_success();
    let report = read_report(&report_path);
    assert_eq!(report["stages"]["documents"]["loaded"], 20_000, "{report}");
    let peak = report["process"]["peak_rss_mb"].as_f64().expect("peak RSS");
    println!("ingest of 20,000 documents of 100 KB: peak RSS {peak:.1} MB");
    assert!(peak < 200.0, "peak RSS {peak} MB");
    // Every chunk of every document reached the target.
    assert_eq!(report["rows_loaded"], report["stages"]["chunks"]["made"]);
    assert!(
        report["rows_loaded"].as_u64() > Some(20_000 * 100),
        "{report}"
    );
}
