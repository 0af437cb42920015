//! gen mode on the catalogs of HTTP targets: a CrateDB table from its `information_schema`, an
//! Elasticsearch index from its `_mapping` (both stand-ins answering the catalog and recording
//! what was loaded), and a ClickHouse table that `--create` makes from a spec with NULLs and an
//! array.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::support::protocol::ProtocolServer;
use crate::support::{scratch, Loader};

/// The `information_schema.columns` rows of the CrateDB stand-in's table `t`: column_name,
/// data_type, is_nullable, column_default, generation_expression, character_maximum_length.
fn cratedb_columns() -> Value {
    json!([
        ["id", "bigint", false, null, null, null],
        ["name", "text", false, null, null, null],
        ["code", "character varying", true, null, null, 8],
        ["small", "byte", true, null, null, null],
        ["ratio", "real", true, null, null, null],
        ["score", "double precision", true, null, null, null],
        ["active", "boolean", true, null, null, null],
        ["at", "timestamp with time zone", false, null, null, null],
        [
            "naive",
            "timestamp without time zone",
            true,
            null,
            null,
            null
        ],
        ["addr", "ip", true, null, null, null],
        ["attrs", "object", true, null, null, null],
        ["attrs['n']", "integer", true, null, null, null],
        ["tags", "text_array", true, null, null, null],
        [
            "made",
            "timestamp with time zone",
            true,
            "CURRENT_TIMESTAMP",
            null,
            null
        ],
        ["twice", "bigint", true, null, "id * 2", null],
        ["spot", "geo_point", true, null, null, null],
    ])
}

/// A CrateDB stand-in for table `t`: answers the two catalog queries and stores every row of
/// every bulk insert, with the statement's column list.
fn cratedb(inserted: Arc<Mutex<(Vec<String>, Vec<Value>)>>) -> ProtocolServer {
    ProtocolServer::start(move |seen| {
        let request: Value = serde_json::from_slice(&seen.body).expect("a JSON body");
        let stmt = request["stmt"].as_str().unwrap_or_default();
        if stmt.contains("information_schema.columns") {
            assert_eq!(request["args"], json!(["doc", "t"]), "{stmt}");
            return (
                200,
                json!({"cols": [], "rows": cratedb_columns()}).to_string(),
            );
        }
        if stmt.contains("key_column_usage") {
            return (
                200,
                json!({"cols": ["column_name"], "rows": [["id"]]}).to_string(),
            );
        }
        let Some(rows) = request["bulk_args"].as_array() else {
            return (
                400,
                json!({"error": {"message": stmt, "code": 4000}}).to_string(),
            );
        };
        let mut inserted = inserted.lock().unwrap();
        let columns =
            &stmt[stmt.find("\" (").expect("a column list") + 3..stmt.find(") VALUES").unwrap()];
        inserted.0 = columns
            .split(", ")
            .map(|c| c.trim_matches('"').to_string())
            .collect();
        inserted.1.extend(rows.iter().cloned());
        let results: Vec<Value> = rows.iter().map(|_| json!({"rowcount": 1})).collect();
        (200, json!({"cols": [], "results": results}).to_string())
    })
}

#[test]
fn a_cratedb_table_is_filled_from_its_information_schema_in_its_types() {
    let inserted = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let server = cratedb(Arc::clone(&inserted));
    let target = format!("crate+http://127.0.0.1:{}", server.port);
    let explain = Loader::new()
        .args(["--target", &target, "--table", "t", "--explain"])
        .run();
    explain.assert_success();
    let out = explain.stdout();
    for expected in [
        "t: 12 columns generated (catalog)",
        "key: unique by row id",
        "byte",
        "uniform -128..=127",
        "JSON object {n}",
        "text_array",
        "made    left out: filled by the server",
        "spot    left out: geo_point: a type gen does not make (NULL)",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert!(
        inserted.lock().unwrap().1.is_empty(),
        "explain loads nothing"
    );

    let run = Loader::new()
        .args(["--target", &target, "--table", "t", "--rows", "1000"])
        .args(["--threads", "2", "--batch", "100"])
        .run();
    run.assert_success();
    assert!(
        run.stderr()
            .contains("column `spot` of t is left out: geo_point: a type gen does not make"),
        "{}",
        run.stderr()
    );
    let (columns, rows) = &*inserted.lock().unwrap();
    assert_eq!(
        columns,
        &[
            "id", "name", "code", "small", "ratio", "score", "active", "at", "naive", "addr",
            "attrs", "tags"
        ]
    );
    assert_eq!(rows.len(), 1000);
    let at = |row: &Value, name: &str| row[columns.iter().position(|c| c == name).unwrap()].clone();
    let ids: BTreeSet<i64> = rows
        .iter()
        .map(|row| at(row, "id").as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=1000).collect::<BTreeSet<i64>>(), "every key once");
    for row in rows {
        assert!(!at(row, "name").as_str().unwrap().is_empty(), "{row}");
        assert!(
            at(row, "code").as_str().unwrap().chars().count() <= 8,
            "{row}"
        );
        assert!(
            (-128..=127).contains(&at(row, "small").as_i64().unwrap()),
            "{row}"
        );
        assert!(
            at(row, "ratio").is_f64() && at(row, "score").is_number(),
            "{row}"
        );
        assert!(at(row, "active").is_boolean(), "{row}");
        let stamp = at(row, "at");
        let stamp = stamp.as_str().unwrap();
        assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{row}");
        let naive = at(row, "naive");
        assert!(!naive.as_str().unwrap().ends_with('Z'), "{row}");
        assert!(
            at(row, "addr").as_str().unwrap().starts_with("10."),
            "{row}"
        );
        let attrs = at(row, "attrs");
        let attrs = attrs.as_object().unwrap();
        assert!(attrs.len() == 1 && attrs["n"].is_i64(), "{row}");
        let tags = at(row, "tags");
        let tags = tags.as_array().unwrap();
        assert!(
            tags.len() <= 4 && tags.iter().all(Value::is_string),
            "{row}"
        );
    }
}

/// The mapping of the Elasticsearch stand-in's index `idx`.
fn mapping() -> Value {
    json!({"idx": {"mappings": {"properties": {
        "name": {"type": "keyword"},
        "body": {"type": "text"},
        "count": {"type": "long"},
        "level": {"type": "byte"},
        "ratio": {"type": "half_float"},
        "ok": {"type": "boolean"},
        "at": {"type": "date"},
        "day": {"type": "date", "format": "yyyy-MM-dd"},
        "from": {"type": "ip"},
        "user": {"properties": {"id": {"type": "integer"}, "where": {"type": "geo_point"}}},
        "items": {"type": "nested", "properties": {"sku": {"type": "keyword"}}},
        "named": {"type": "alias", "path": "name"},
        "spot": {"type": "geo_point"},
    }}}})
}

/// An Elasticsearch stand-in: `GET /idx/_mapping` answers [`mapping`] (another index: 404), and
/// every `_bulk` document is stored with its `_id`.
fn elastic(stored: Arc<Mutex<Vec<(String, Value)>>>) -> ProtocolServer {
    ProtocolServer::start(move |seen| {
        if seen.method == "GET" {
            if seen.url.starts_with("/idx/_mapping") {
                return (200, mapping().to_string());
            }
            return (
                404,
                json!({"error": {"type": "index_not_found_exception"}, "status": 404}).to_string(),
            );
        }
        assert!(seen.url.starts_with("/_bulk"), "{}", seen.url);
        let text = String::from_utf8_lossy(&seen.body).into_owned();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut stored = stored.lock().unwrap();
        let mut items = Vec::new();
        for pair in lines.chunks(2) {
            let id = pair[0]["index"]["_id"]
                .as_str()
                .expect("an _id")
                .to_string();
            stored.push((id, pair[1].clone()));
            items.push(json!({"index": {"status": 201}}));
        }
        (200, json!({"errors": false, "items": items}).to_string())
    })
}

#[test]
fn an_elastic_index_is_filled_from_its_mapping_and_a_missing_one_asks_for_a_spec() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let server = elastic(Arc::clone(&stored));
    let target = format!("es+http://127.0.0.1:{}", server.port);
    let explain = Loader::new()
        .args(["--target", &target, "--table", "idx", "--explain"])
        .run();
    explain.assert_success();
    let out = explain.stdout();
    for expected in [
        "idx: 10 columns generated (catalog)",
        "keyword",
        "half_float",
        "uniform -128..=127",
        "JSON object {id}",
        "JSON object {sku}",
        "named  left out: filled by the server",
        "day    left out: date (format yyyy-MM-dd): a type gen does not make (NULL)",
        "spot   left out: geo_point: a type gen does not make (NULL)",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert!(stored.lock().unwrap().is_empty(), "explain loads nothing");
    // OpenSearch answers the same mapping the same way.
    let opensearch = Loader::new()
        .args(["--table", "idx", "--explain", "--target"])
        .arg(&format!("opensearch+http://127.0.0.1:{}", server.port))
        .run();
    opensearch.assert_success();
    assert_eq!(opensearch.stdout(), out);

    Loader::new()
        .args([
            "--target", &target, "--table", "idx", "--rows", "1000", "--quiet",
        ])
        .args(["--threads", "2", "--batch", "100"])
        .run()
        .assert_success();
    let stored = stored.lock().unwrap();
    assert_eq!(stored.len(), 1000);
    let ids: BTreeSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 1000, "every document's _id once");
    let expected: BTreeSet<&str> = [
        "name", "body", "count", "level", "ratio", "ok", "at", "from", "user", "items",
    ]
    .into();
    for (_, document) in stored.iter() {
        let fields: BTreeSet<&str> = document
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(fields, expected, "{document}");
        assert!(
            document["name"].is_string() && document["body"].is_string(),
            "{document}"
        );
        assert!(
            document["count"].is_i64() && document["ratio"].is_f64(),
            "{document}"
        );
        assert!(
            (-128..=127).contains(&document["level"].as_i64().unwrap()),
            "{document}"
        );
        assert!(document["ok"].is_boolean(), "{document}");
        assert!(
            document["at"].as_str().unwrap().ends_with('Z'),
            "{document}"
        );
        assert!(
            document["from"].as_str().unwrap().starts_with("10."),
            "{document}"
        );
        let user = document["user"].as_object().unwrap();
        assert!(user.len() == 1 && user["id"].is_i64(), "{document}");
        assert!(document["items"]["sku"].is_string(), "{document}");
    }
    drop(stored);

    let run = Loader::new()
        .args(["--target", &target, "--table", "nope", "--rows", "10"])
        .run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("index nope") && run.stderr().contains("--spec"),
        "{}",
        run.stderr()
    );
}

/// A spec with a column of NULLs and an array column, for ClickHouse's `--create`.
const NULLS_AND_ARRAY_SPEC: &str = r#"
[[column]]
name = "id"
type = "bigint"
gen = "sequence"

[[column]]
name = "score"
type = "double precision"
gen = "normal"
mean = 100
stddev = 15
nulls = 0.25

[[column]]
name = "tags"
type = "text[]"
gen = "array"
min = 0
max = 3
element = { gen = "words", min = 1, max = 1 }
"#;

#[test]
fn clickhouse_create_makes_nullable_and_array_columns_from_a_spec() {
    let clickhouse = crate::support::clickhouse::ClickHouse::start();
    let dir = scratch();
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, NULLS_AND_ARRAY_SPEC).unwrap();
    let load = |target: &str| {
        Loader::new()
            .args([
                "--rows", "10000", "--quiet", "--create", "--table", "shaped",
            ])
            .args([
                "--seed",
                "7",
                "--spec",
                spec.to_str().unwrap(),
                "--target",
                target,
            ])
            .run()
            .assert_success();
    };
    load(&clickhouse.url());
    // The same seed gives the same rows: a file of them tells the exact NULLs and elements.
    let file = dir.path().join("rows.ndjson");
    load(&format!("file:{}", file.display()));
    let rows: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nulls = rows.iter().filter(|r| r["score"].is_null()).count() as i64;
    let elements: usize = rows
        .iter()
        .map(|r| r["tags"].as_array().unwrap().len())
        .sum();
    assert!((2000..3000).contains(&nulls), "{nulls}");

    let types = clickhouse
        .query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() \
             AND table = 'shaped' FORMAT TSV",
        )
        .unwrap();
    assert_eq!(
        types,
        "id\tInt64\nscore\tNullable(Float64)\ntags\tArray(String)"
    );
    assert_eq!(clickhouse.scalar("SELECT count() FROM shaped"), 10_000);
    assert_eq!(
        clickhouse.scalar("SELECT uniqExact(id) FROM shaped"),
        10_000
    );
    assert_eq!(
        clickhouse.scalar("SELECT countIf(isNull(score)) FROM shaped"),
        nulls
    );
    assert_eq!(
        clickhouse.scalar("SELECT sum(length(tags)) FROM shaped"),
        elements as i64
    );

    // NULLs on an array column are refused before anything is created.
    std::fs::write(
        &spec,
        NULLS_AND_ARRAY_SPEC.replace("max = 3\n", "max = 3\nnulls = 0.1\n"),
    )
    .unwrap();
    let run = Loader::new()
        .args(["--rows", "10", "--create", "--table", "refused"])
        .args([
            "--spec",
            spec.to_str().unwrap(),
            "--target",
            &clickhouse.url(),
        ])
        .run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("`tags`") && run.stderr().contains("cannot be NULL"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        clickhouse.scalar("SELECT count() FROM system.tables WHERE name = 'refused'"),
        0
    );
}
