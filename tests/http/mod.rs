//! HTTP targets end to end: a real ClickHouse the test starts, and local stand-ins answering as
//! CrateDB and Elasticsearch do, partial failures, throttling and overload included.
//! Every load is checked by counting what the target stored, against the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::support::clickhouse::ClickHouse;
use crate::support::protocol::{ProtocolServer, Seen};
use crate::support::proxy::Proxy;
use crate::support::{read_report, scratch, Loader};

/// Rows of one generated load, over two workers.
const ROWS: u64 = 20_000;

fn gen_into(target: &str, extra: &[&str]) -> (crate::support::Run, Value) {
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args([
            "--rows",
            &ROWS.to_string(),
            "--threads",
            "2",
            "--batch",
            "500",
            "--quiet",
        ])
        .args([
            "--retry-for",
            "30s",
            "--max-retries",
            "50",
            "--target",
            target,
        ])
        .args(extra)
        .arg("--reject-file")
        .arg_path(&dir.path().join("rejects.ndjson"))
        .arg("--report")
        .arg_path(&report_path)
        .run();
    let report = read_report(&report_path);
    (run, report)
}

#[test]
fn clickhouse_stores_a_million_generated_rows_and_rejects_bad_copy_rows_with_its_message() {
    let clickhouse = ClickHouse::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    Loader::new()
        .args([
            "--rows",
            "1000000",
            "--threads",
            "2",
            "--batch",
            "10000",
            "--create",
        ])
        .args(["--quiet", "--target", &clickhouse.url(), "--report"])
        .arg_path(&report_path)
        .run()
        .assert_success();
    assert_eq!(clickhouse.scalar("SELECT count() FROM readings"), 1_000_000);
    assert_eq!(
        clickhouse.scalar("SELECT uniqExact(id) FROM readings"),
        1_000_000
    );
    assert_eq!(read_report(&report_path)["rows_loaded"], 1_000_000);
    // 2026-01-01T00:00:00Z, whatever the server's time zone.
    assert_eq!(
        clickhouse.scalar("SELECT toUnixTimestamp(min(ts)) FROM readings"),
        1_767_225_600
    );

    let csv = dir.path().join("items.csv");
    std::fs::write(&csv, "id,name,score\n1,a,10\n2,b,not a number\n3,c,30\n").unwrap();
    clickhouse
        .query("CREATE TABLE items (id Int64, name String, score Int32) ENGINE = MergeTree ORDER BY id")
        .unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let run = Loader::new()
        .arg("copy")
        .arg_path(&csv)
        .args([
            "--header",
            "--table",
            "items",
            "--quiet",
            "--target",
            &clickhouse.url(),
        ])
        .arg("--reject-file")
        .arg_path(&rejects)
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(clickhouse.scalar("SELECT count() FROM items"), 2);
    let reject: Value =
        serde_json::from_str(std::fs::read_to_string(&rejects).unwrap().trim()).unwrap();
    assert_eq!(reject["line"], 3);
    assert!(
        reject["error"].as_str().unwrap().contains("Code: 27"),
        "{reject}"
    );

    // A missing table is one clear permanent error.
    let run = Loader::new()
        .args([
            "--rows",
            "10",
            "--table",
            "nowhere",
            "--target",
            &clickhouse.url(),
        ])
        .run();
    assert_eq!(run.code(), 3);
    assert!(run.stderr().contains("--create"), "{}", run.stderr());
}

/// A CrateDB stand-in: rows whose status is `fail` get `rowcount: -2`; the first requests are
/// throttled (4290); an INSERT into `missing` is an unknown table (4041).
struct FakeCrate {
    stored: BTreeSet<i64>,
    failed: BTreeSet<i64>,
    throttled: u32,
}

fn crate_answer(state: &mut FakeCrate, seen: &Seen) -> (u16, String) {
    let request: Value = serde_json::from_slice(&seen.body).expect("a JSON body");
    let stmt = request["stmt"].as_str().unwrap_or("");
    if stmt.contains("\"missing\"") {
        return (
            404,
            json!({"error": {"message": "RelationUnknown[missing]", "code": 4041}}).to_string(),
        );
    }
    let Some(rows) = request["bulk_args"].as_array() else {
        return (200, json!({"cols": [], "rowcount": 1}).to_string());
    };
    if state.throttled < 3 {
        state.throttled += 1;
        return (
            429,
            json!({"error": {"message": "too many requests", "code": 4290}}).to_string(),
        );
    }
    let results: Vec<Value> = rows
        .iter()
        .map(|row| {
            let id = row[0].as_i64().expect("an id");
            if row[6] == "fail" {
                state.failed.insert(id);
                json!({"rowcount": -2, "error": {"code": 4000, "message": "status fail refused"}})
            } else {
                state.stored.insert(id);
                json!({"rowcount": 1})
            }
        })
        .collect();
    (
        200,
        json!({"cols": [], "duration": 1.0, "results": results}).to_string(),
    )
}

#[test]
fn cratedb_rejects_failed_rows_retries_throttling_and_names_a_missing_table() {
    let state = Arc::new(Mutex::new(FakeCrate {
        stored: BTreeSet::new(),
        failed: BTreeSet::new(),
        throttled: 0,
    }));
    let server_state = Arc::clone(&state);
    let server =
        ProtocolServer::start(move |seen| crate_answer(&mut server_state.lock().unwrap(), seen));
    let target = format!("crate+http://127.0.0.1:{}", server.port);
    let (run, report) = gen_into(&target, &["--create"]);
    assert_eq!(run.code(), 1, "rows were rejected: {}", run.stderr());
    let state = state.lock().unwrap();
    assert_eq!(state.stored.len() + state.failed.len(), ROWS as usize);
    assert!(!state.failed.is_empty());
    assert_eq!(report["rows_loaded"], state.stored.len());
    assert_eq!(report["rows_rejected"], state.failed.len());
    assert_eq!(report["retries"]["throttled"], 3, "{report}");
    drop(state);

    let run = Loader::new()
        .args(["--rows", "10", "--table", "missing", "--target", &target])
        .run();
    assert_eq!(run.code(), 3);
    assert!(run.stderr().contains("does not exist") && run.stderr().contains("--create"));
    assert_eq!(
        run.stderr().matches("loader: error:").count(),
        1,
        "{}",
        run.stderr()
    );
}

/// A CrateDB stand-in for a table whose primary key is `id`: a row whose key is stored already is
/// refused with DuplicateKeyException (rowcount -2, code 4091), as CrateDB does.
fn keyed_crate_answer(stored: &mut BTreeSet<i64>, seen: &Seen) -> (u16, String) {
    let request: Value = serde_json::from_slice(&seen.body).expect("a JSON body");
    let Some(rows) = request["bulk_args"].as_array() else {
        return (200, json!({"cols": [], "rowcount": 1}).to_string());
    };
    let results: Vec<Value> = rows
        .iter()
        .map(|row| {
            if stored.insert(row[0].as_i64().expect("an id")) {
                json!({"rowcount": 1})
            } else {
                json!({"rowcount": -2, "error": {"code": 4091, "message":
                    "DuplicateKeyException[A document with the same primary key exists already]"}})
            }
        })
        .collect();
    (200, json!({"cols": [], "results": results}).to_string())
}

#[test]
fn cratedb_with_a_primary_key_counts_a_batch_whose_answer_was_lost_once() {
    let stored = Arc::new(Mutex::new(BTreeSet::new()));
    let server_stored = Arc::clone(&stored);
    let server = ProtocolServer::start(move |seen| {
        keyed_crate_answer(&mut server_stored.lock().unwrap(), seen)
    });
    // The first three connections lose the answer to a request the server stored.
    let proxy = Proxy::dropping_answers(server.port, 3);
    let (run, report) = gen_into(&format!("crate+http://127.0.0.1:{}", proxy.port), &[]);
    assert_eq!(proxy.cut(), 3);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(stored.lock().unwrap().len(), ROWS as usize);
    assert_eq!(report["rows_loaded"], ROWS, "counted once: {report}");
    assert_eq!(report["rows_rejected"], 0, "{report}");
    assert_eq!(report["retries"]["connection"], 3, "{report}");

    // A key that is there already on a first attempt is the data's duplicate: rejected.
    let dir = scratch();
    let rejects = dir.path().join("rejects.ndjson");
    let run = Loader::new()
        .args(["--rows", "10", "--quiet", "--target"])
        .arg(&format!("crate+http://127.0.0.1:{}", server.port))
        .arg("--reject-file")
        .arg_path(&rejects)
        .arg("--report")
        .arg_path(&dir.path().join("r.json"))
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let report = read_report(&dir.path().join("r.json"));
    assert_eq!(report["rows_loaded"], 0, "{report}");
    assert_eq!(report["rows_rejected"], 10, "{report}");
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap().lines().count(),
        10
    );
    assert_eq!(stored.lock().unwrap().len(), ROWS as usize);
}

/// An Elasticsearch stand-in: documents whose status is `fail` get item status 400; every third
/// document is refused with 429 the first time it is seen; every fifth request is a whole-request
/// 503 or 429.
struct FakeElastic {
    stored: BTreeMap<String, Value>,
    refused: BTreeSet<String>,
    throttled_once: BTreeSet<String>,
    requests: u32,
    item_retries: u32,
    /// Documents sent again after they were stored or refused: only 429 items may come back.
    resent: u32,
}

/// The documents of a `_bulk` body, as `_id` and source, every line checked to end with `\n`.
fn bulk_documents(seen: &Seen) -> Vec<(String, Value)> {
    let text = String::from_utf8(seen.body.clone()).expect("UTF-8 NDJSON");
    assert!(text.ends_with('\n'), "every line ends with a line feed");
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|pair| {
            let action: Value = serde_json::from_str(pair[0]).unwrap();
            let id = action["index"]["_id"].as_str().unwrap().to_string();
            (id, serde_json::from_str(pair[1]).unwrap())
        })
        .collect()
}

fn bulk_answer(state: &mut FakeElastic, seen: &Seen) -> (u16, String) {
    if seen.method == "PUT" {
        return (200, json!({"acknowledged": true}).to_string());
    }
    state.requests += 1;
    if state.requests % 5 == 0 {
        let status = if state.requests % 10 == 0 { 503 } else { 429 };
        return (status, json!({"error": "overloaded"}).to_string());
    }
    let mut items = Vec::new();
    let mut errors = false;
    for (id, source) in bulk_documents(seen) {
        let number: u64 = id.parse().unwrap();
        if state.stored.contains_key(&id) || state.refused.contains(&id) {
            state.resent += 1;
        }
        let status = if source["status"] == "fail" {
            state.refused.insert(id.clone());
            400
        } else if number % 3 == 0 && state.throttled_once.insert(id.clone()) {
            state.item_retries += 1;
            429
        } else {
            state.stored.insert(id.clone(), source);
            201
        };
        errors |= status != 201;
        let item = if status == 201 {
            json!({"index": {"_id": id, "status": 201}})
        } else if status == 429 {
            json!({"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}})
        } else {
            json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "status fail refused"}}})
        };
        items.push(item);
    }
    (
        200,
        json!({"took": 1, "errors": errors, "items": items}).to_string(),
    )
}

#[test]
fn bulk_resends_only_throttled_items_rejects_bad_ones_and_survives_overload() {
    let state = Arc::new(Mutex::new(FakeElastic {
        stored: BTreeMap::new(),
        refused: BTreeSet::new(),
        throttled_once: BTreeSet::new(),
        requests: 0,
        item_retries: 0,
        resent: 0,
    }));
    let server_state = Arc::clone(&state);
    let server =
        ProtocolServer::start(move |seen| bulk_answer(&mut server_state.lock().unwrap(), seen));
    let (run, report) = gen_into(
        &format!("es+http://127.0.0.1:{}", server.port),
        &["--create"],
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let state = state.lock().unwrap();
    assert_eq!(state.stored.len() + state.refused.len(), ROWS as usize);
    assert_eq!(report["rows_loaded"], state.stored.len(), "{report}");
    assert_eq!(report["rows_rejected"], state.refused.len());
    assert_eq!(report["rejects"]["item"], state.refused.len());
    assert!(state.item_retries > 0 && state.requests > 10);
    assert_eq!(
        state.resent, 0,
        "stored and refused documents are never resent"
    );
    let retries = &report["retries"];
    assert!(retries["item_throttled"].as_u64().unwrap() > 0, "{report}");
    assert!(
        retries["throttled"].as_u64().unwrap() > 0 && retries["unavailable"].as_u64().unwrap() > 0
    );
}

#[test]
fn too_large_requests_stop_with_advice_and_passwords_never_show() {
    let server = ProtocolServer::start(|_| (413, "request entity too large".into()));
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--rows", "100", "--target"])
        .arg(&format!(
            "es+http://elastic:s3cr3t-pw@127.0.0.1:{}",
            server.port
        ))
        .arg("--report")
        .arg_path(&report_path)
        .run();
    assert_eq!(run.code(), 3);
    assert!(run.stderr().contains("--batch"), "{}", run.stderr());
    let everything = format!(
        "{}{}{}",
        run.stdout(),
        run.stderr(),
        std::fs::read_to_string(&report_path).unwrap()
    );
    assert!(
        everything.contains("elastic@127.0.0.1"),
        "the user is shown: {everything}"
    );
    assert!(
        !everything.contains("s3cr3t-pw"),
        "the password leaked: {everything}"
    );
}

#[test]
fn answers_lost_on_dropped_connections_are_resent_and_counted_once() {
    let stored = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
    let server_stored = Arc::clone(&stored);
    let server = ProtocolServer::start(move |seen| {
        let mut items = Vec::new();
        for (id, _) in bulk_documents(seen) {
            *server_stored.lock().unwrap().entry(id).or_default() += 1;
            items.push(json!({"index": {"status": 201}}));
        }
        (200, json!({"errors": false, "items": items}).to_string())
    });
    let proxy = Proxy::dropping_answers(server.port, 3);
    let (run, report) = gen_into(&format!("es+http://127.0.0.1:{}", proxy.port), &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(proxy.cut(), 3);
    let stored = stored.lock().unwrap();
    assert_eq!(stored.len(), ROWS as usize, "every document, once by _id");
    assert!(
        stored.values().any(|&times| times > 1),
        "the lost answers' documents came again"
    );
    assert_eq!(report["rows_loaded"], ROWS, "counted once: {report}");
    // The server watch's connection may be one of the three: its lost answer is its warning,
    // not a retry of a batch (else the stand-in's 404 for the node stats is).
    let stderr = run.stderr();
    let watch_cut = !stderr.contains("answered HTTP 404");
    assert!(
        stderr.contains("loader: warning: the server's time is not sampled: "),
        "{stderr}"
    );
    assert_eq!(
        report["retries"]["connection"],
        3 - u64::from(watch_cut),
        "{report}"
    );
}

#[test]
fn https_is_verified_by_default_and_trusts_a_given_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("a self-signed certificate");
    let certificate = certified.cert.pem();
    let server =
        ProtocolServer::start_https(&certificate, &certified.signing_key.serialize_pem(), |_| {
            (200, "{}".into())
        });
    let dir = scratch();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &certificate).unwrap();
    let target = format!("https://127.0.0.1:{}/ingest", server.port);
    let load = |extra: &[&str]| {
        Loader::new()
            .args(["--rows", "1000", "--quiet", "--target", &target])
            .args(extra)
            .run()
    };
    let refused = load(&[]);
    assert_eq!(
        refused.code(),
        3,
        "an unknown CA is refused: {}",
        refused.stderr()
    );
    assert!(
        refused.stderr().contains("--ca-file"),
        "{}",
        refused.stderr()
    );
    let ca = ca_file.display().to_string();
    load(&["--ca-file", &ca]).assert_success();
    load(&["--insecure"]).assert_success();
}

#[test]
fn gzip_bodies_arrive_whole_at_a_plain_ndjson_endpoint() {
    let lines = Arc::new(Mutex::new(Vec::<Value>::new()));
    let server_lines = Arc::clone(&lines);
    let server = ProtocolServer::start(move |seen| {
        let mut text = String::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(&seen.body[..])
            .read_to_string(&mut text)
            .expect("a gzip body");
        let mut lines = server_lines.lock().unwrap();
        lines.extend(
            text.lines()
                .map(|line| serde_json::from_str::<Value>(line).unwrap()),
        );
        (204, String::new())
    });
    let (run, report) = gen_into(
        &format!("http://127.0.0.1:{}/ingest", server.port),
        &["--gzip"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let lines = lines.lock().unwrap();
    let ids: BTreeSet<i64> = lines
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect();
    assert_eq!((lines.len(), ids.len()), (ROWS as usize, ROWS as usize));
    assert_eq!(report["rows_loaded"], ROWS);
}

#[test]
fn rows_stored_before_a_batch_gives_up_are_counted_and_redirects_are_refused() {
    // Even ids are stored; odd ids are refused for now, every time.
    let stored = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let server_stored = Arc::clone(&stored);
    let server = ProtocolServer::start(move |seen| {
        let mut items = Vec::new();
        for (id, _) in bulk_documents(seen) {
            if id.parse::<u64>().unwrap() % 2 == 0 {
                server_stored.lock().unwrap().insert(id);
                items.push(json!({"index": {"status": 201}}));
            } else {
                items.push(json!({"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "full"}}}));
            }
        }
        (200, json!({"errors": true, "items": items}).to_string())
    });
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args([
            "--rows",
            "1000",
            "--batch",
            "100",
            "--threads",
            "1",
            "--max-retries",
            "2",
        ])
        .args([
            "--quiet",
            "--target",
            &format!("es+http://127.0.0.1:{}", server.port),
        ])
        .arg("--report")
        .arg_path(&report_path)
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let report = read_report(&report_path);
    assert_eq!(
        report["rows_loaded"],
        stored.lock().unwrap().len(),
        "{report}"
    );
    assert_eq!(
        report["rows_loaded"], 50,
        "the stored half of the first batch: {report}"
    );

    let redirecting = ProtocolServer::start(|_| (302, String::new()));
    let run = Loader::new()
        .args(["--rows", "100", "--quiet", "--target"])
        .arg(&format!("http://127.0.0.1:{}/ingest", redirecting.port))
        .run();
    assert_eq!(run.code(), 3);
    assert!(run.stderr().contains("redirects"), "{}", run.stderr());
}
