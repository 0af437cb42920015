//! gen mode on the user's own tables: rows generated from the PostgreSQL catalog (types, keys,
//! foreign keys, CHECKs, enums, domains), a spec file over it or alone, determinism over
//! threads, batches and shards, a resume after kill -9, `--explain`, and the bad-spec lines.

mod catalogs;

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{
    count_or_zero, read_report, scratch, wait_until, wait_with_limit, Loader, Pg,
};

/// A table with the types a PostgreSQL user commonly has, a composite key and simple CHECKs.
const WIDE_DDL: &str = "CREATE TYPE mood AS ENUM ('calm', 'busy', 'stormy', 'quiet'); \
     CREATE DOMAIN percent AS smallint CHECK (VALUE >= 0 AND VALUE <= 100); \
     CREATE TABLE wide ( \
       region int NOT NULL, \
       serial_no bigint NOT NULL, \
       token uuid UNIQUE NOT NULL, \
       mood mood NOT NULL, \
       total numeric(10,2) CHECK (total >= 0), \
       code varchar(8) NOT NULL CHECK (code <> ''), \
       placed_at timestamptz NOT NULL, \
       attrs jsonb, \
       small smallint CHECK (small BETWEEN -5 AND 5), \
       ratio real, \
       score double precision CHECK (score < 10), \
       active boolean, \
       note text CHECK (length(note) <= 20), \
       grade char(2), \
       born date, \
       seen timestamp, \
       at_time time, \
       spent interval, \
       blob bytea, \
       addr inet, \
       tags text[], \
       counts int[], \
       share percent, \
       kind text CHECK (kind IN ('a', 'b', 'c')), \
       made timestamptz DEFAULT now(), \
       row_no bigint GENERATED ALWAYS AS IDENTITY, \
       PRIMARY KEY (region, serial_no))";

fn gen(pg: &Pg, table: &str) -> Loader {
    Loader::new().args(["--target", &pg.url(), "--table", table, "--quiet"])
}

#[test]
fn a_wide_table_is_filled_from_its_catalog_with_every_constraint_holding() {
    let pg = Pg::start();
    pg.execute(WIDE_DDL);
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    gen(&pg, "wide")
        .args([
            "--rows",
            "1000000",
            "--threads",
            "2",
            "--batch",
            "10000",
            "--report",
        ])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(600))
        .assert_success();
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 1_000_000, "{report}");
    assert_eq!(pg.scalar("SELECT count(*) FROM wide"), 1_000_000);
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT (region, serial_no)) FROM wide"),
        1_000_000
    );
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT token) FROM wide"),
        1_000_000
    );
    assert_eq!(pg.scalar("SELECT count(DISTINCT mood) FROM wide"), 4);
    assert_eq!(pg.scalar("SELECT count(DISTINCT kind) FROM wide"), 3);
    for (what, sql) in [
        ("total below 0", "total < 0"),
        ("code too long or empty", "length(code) > 8 OR code = ''"),
        ("small out of range", "small NOT BETWEEN -5 AND 5"),
        ("score at or above 10", "score >= 10"),
        ("note too long", "length(note) > 20"),
        ("share out of the domain", "share NOT BETWEEN 0 AND 100"),
        (
            "left to the server but empty",
            "made IS NULL OR row_no IS NULL",
        ),
        (
            "NOT NULL columns empty",
            "placed_at IS NULL OR mood IS NULL",
        ),
        ("attrs not an object", "jsonb_typeof(attrs) <> 'object'"),
        ("tags not one-dimensional", "array_ndims(tags) > 1"),
    ] {
        assert_eq!(
            pg.scalar(&format!("SELECT count(*) FROM wide WHERE {sql}")),
            0,
            "{what}"
        );
    }
    assert!(pg.scalar("SELECT count(DISTINCT grade) FROM wide") > 100);
}

#[test]
fn orders_draw_their_customers_from_the_customers_loaded_before() {
    let pg = Pg::start();
    pg.execute(
        "CREATE TABLE customers (customer_id bigint PRIMARY KEY, name text NOT NULL, \
           email varchar(40) UNIQUE); \
         CREATE TABLE orders (order_id bigint PRIMARY KEY, \
           customer_id bigint NOT NULL REFERENCES customers, total numeric(10,2) CHECK (total >= 0), \
           placed_at timestamptz NOT NULL)",
    );
    let refused = gen(&pg, "orders").args(["--rows", "10"]).run();
    assert_eq!(refused.code(), 2, "{}", refused.stderr());
    assert_eq!(refused.stderr().lines().count(), 1, "{}", refused.stderr());
    assert!(
        refused
            .stderr()
            .contains("holds no rows; load customers first"),
        "{}",
        refused.stderr()
    );
    gen(&pg, "customers")
        .args(["--rows", "10000"])
        .run()
        .assert_success();
    gen(&pg, "orders")
        .args(["--rows", "1000000", "--threads", "2", "--batch", "10000"])
        .run_within(Duration::from_secs(600))
        .assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM customers"), 10_000);
    assert_eq!(pg.scalar("SELECT count(*) FROM orders"), 1_000_000);
    assert_eq!(
        pg.scalar(
            "SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) \
             WHERE c.customer_id IS NULL"
        ),
        0
    );
    assert!(pg.scalar("SELECT count(DISTINCT customer_id) FROM orders") > 9_900);
}

#[test]
fn the_same_seed_gives_the_same_rows_over_threads_batches_and_shards() {
    let pg = Pg::start();
    let ddl = |name: &str| {
        format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, sku text UNIQUE, price numeric(8,2), \
             at timestamptz, note text, flags boolean[], doc json)"
        )
    };
    pg.execute(&format!("{}; {}", ddl("one"), ddl("two")));
    let dir = scratch();
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "[[column]]\nname = \"sku\"\ngen = \"template\"\ntemplate = \"SKU-{:06}\"\n\
         [[column]]\nname = \"price\"\ngen = \"normal\"\nmean = 50\nstddev = 10\nmin = 0\nnulls = 0.1\n",
    )
    .unwrap();
    let spec_arg = spec.to_str().unwrap();
    gen(&pg, "one")
        .args([
            "--rows",
            "100000",
            "--threads",
            "1",
            "--batch",
            "777",
            "--seed",
            "9",
        ])
        .args(["--spec", spec_arg])
        .run()
        .assert_success();
    for shard in ["0/2", "1/2"] {
        gen(&pg, "two")
            .args([
                "--rows",
                "100000",
                "--threads",
                "4",
                "--batch",
                "10000",
                "--seed",
                "9",
            ])
            .args(["--spec", spec_arg, "--shard", shard])
            .run()
            .assert_success();
    }
    let digest = |table: &str| {
        pg.text(&format!(
            "SELECT count(*)::text || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM {table} t"
        ))
    };
    assert!(digest("one").starts_with("100000 "));
    assert_eq!(digest("one"), digest("two"));
    assert_eq!(
        pg.text("SELECT sku FROM one ORDER BY id LIMIT 1"),
        "SKU-000001"
    );
}

#[test]
fn a_killed_load_into_a_users_table_resumes_with_every_key_once() {
    let pg = Pg::start();
    pg.execute(
        "CREATE TABLE events (event_id bigint PRIMARY KEY, kind text NOT NULL, \
         payload jsonb, at timestamptz NOT NULL)",
    );
    let load = || {
        gen(&pg, "events").args([
            "--rows",
            "2000000",
            "--threads",
            "2",
            "--batch",
            "1000",
            "--run-id",
            "ev1",
        ])
    };
    let child = load().spawn();
    wait_until(Duration::from_secs(120), "some rows", || {
        count_or_zero(&pg, "events") > 100_000
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9 loader");
    let _ = wait_with_limit(child, Duration::from_secs(10));
    let after_crash = pg.scalar("SELECT count(*) FROM events");
    assert!(after_crash < 2_000_000, "the kill came too late");
    load()
        .arg("--resume")
        .run_within(Duration::from_secs(600))
        .assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM events"), 2_000_000);
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT event_id) FROM events"),
        2_000_000
    );
    assert_eq!(pg.scalar("SELECT min(event_id) FROM events"), 1);
    assert_eq!(pg.scalar("SELECT max(event_id) FROM events"), 2_000_000);
}

#[test]
fn a_spec_describes_a_whole_table_for_an_ndjson_file_with_its_distributions() {
    let dir = scratch();
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, DISTRIBUTIONS_SPEC).unwrap();
    let out = dir.path().join("rows.ndjson");
    Loader::new()
        .args([
            "--rows",
            "100000",
            "--quiet",
            "--spec",
            spec.to_str().unwrap(),
        ])
        .arg_path_prefixed("--target=file:", &out)
        .run()
        .assert_success();
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 100_000);
    assert_distributions(
        rows.iter().map(|row| {
            (
                row["score"].as_f64(),
                row["tier"].as_str().map(str::to_string),
            )
        }),
        0.25,
    );
    let ids: std::collections::BTreeSet<i64> =
        rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 100_000);
    assert!(rows[0]["sku"].as_str().unwrap().starts_with("SKU-"));
    assert!(rows
        .iter()
        .all(|r| r["meta"]["color"].is_string() && r["tags"].is_array()));
}

/// A spec with a normal, a null share and weighted choices, as the tolerance checks read them.
const DISTRIBUTIONS_SPEC: &str = r#"
[[column]]
name = "id"
type = "bigint"
gen = "sequence"

[[column]]
name = "sku"
type = "text"
gen = "template"
template = "SKU-{:06}"

[[column]]
name = "score"
type = "double precision"
gen = "normal"
mean = 100
stddev = 15
nulls = 0.25

[[column]]
name = "tier"
type = "text"
gen = "choice"
values = ["gold", "silver", "bronze"]
weights = [1, 3, 6]

[[column]]
name = "meta"
type = "json"
gen = "object"
fields = [
  { name = "color", gen = "choice", values = ["red", "blue"] },
  { name = "size", gen = "uniform", min = 1, max = 5 },
]

[[column]]
name = "tags"
type = "text[]"
gen = "array"
min = 0
max = 3
element = { gen = "words", min = 1, max = 1 }
"#;

/// The normal's mean, the share of NULLs and the choice's weights, within tolerance.
fn assert_distributions(
    rows: impl Iterator<Item = (Option<f64>, Option<String>)>,
    null_share: f64,
) {
    let (mut nulls, mut sum, mut n, mut tiers) = (0, 0.0, 0, std::collections::BTreeMap::new());
    let mut total = 0;
    for (score, tier) in rows {
        total += 1;
        match score {
            Some(score) => {
                sum += score;
                n += 1;
            }
            None => nulls += 1,
        }
        *tiers.entry(tier.unwrap()).or_insert(0) += 1;
    }
    let share = |count: i32| f64::from(count) / f64::from(total);
    assert!(
        (sum / f64::from(n) - 100.0).abs() < 0.5,
        "mean {}",
        sum / f64::from(n)
    );
    assert!(
        (share(nulls) - null_share).abs() < 0.01,
        "nulls {}",
        share(nulls)
    );
    for (tier, expected) in [("gold", 0.1), ("silver", 0.3), ("bronze", 0.6)] {
        assert!(
            (share(tiers[tier]) - expected).abs() < 0.01,
            "{tier}: {tiers:?}"
        );
    }
}

#[test]
fn a_spec_creates_and_fills_a_clickhouse_table_with_its_distributions() {
    let clickhouse = crate::support::clickhouse::ClickHouse::start();
    let dir = scratch();
    let spec = dir.path().join("spec.toml");
    // The whole spec: --create makes `score` Nullable and `tags` an Array.
    std::fs::write(&spec, DISTRIBUTIONS_SPEC).unwrap();
    Loader::new()
        .args(["--rows", "100000", "--quiet", "--create", "--table", "dist"])
        .args([
            "--spec",
            spec.to_str().unwrap(),
            "--target",
            &clickhouse.url(),
        ])
        .run()
        .assert_success();
    assert_eq!(clickhouse.scalar("SELECT count() FROM dist"), 100_000);
    assert_eq!(clickhouse.scalar("SELECT uniqExact(id) FROM dist"), 100_000);
    let rows = clickhouse
        .query("SELECT score, tier FROM dist FORMAT TSV")
        .unwrap();
    assert_distributions(
        rows.lines().map(|line| {
            let (score, tier) = line.split_once('\t').unwrap();
            (score.parse().ok(), Some(tier.to_string()))
        }),
        0.25,
    );
}

#[test]
fn explain_shows_each_columns_type_generator_and_why() {
    let pg = Pg::start();
    pg.execute(WIDE_DDL);
    let run = gen(&pg, "wide").arg("--explain").run();
    run.assert_success();
    let out = run.stdout();
    for expected in [
        "wide: 24 columns generated (catalog)",
        "mood ",
        "enum: 4 labels",
        "key: unique by row id",
        "CHECK … IN: 3 values",
        "row_no",
        "left out: filled by the server",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert_eq!(
        pg.scalar("SELECT count(*) FROM wide"),
        0,
        "explain loads nothing"
    );
}

#[test]
fn bad_specs_stop_with_one_line_and_exit_2() {
    let pg = Pg::start();
    pg.execute("CREATE TABLE items (id bigint PRIMARY KEY, sku text UNIQUE, qty int)");
    let dir = scratch();
    for (spec, expected) in [
        (
            "name = \"nope\"\ngen = \"uuid\"",
            "`nope` is not a column of table items",
        ),
        (
            "name = \"qty\"\ngen = \"gaussian\"",
            "unknown generator `gaussian`",
        ),
        (
            "name = \"qty\"\ngen = \"uniform\"\nmin = 10\nmax = 1",
            "min 10 is greater than max 1",
        ),
        (
            "name = \"sku\"\ngen = \"template\"\ntemplate = \"SKU\"",
            "cannot be unique",
        ),
        ("name = \"qty\"\ngen = \"uuid\"", "cannot hold"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, format!("[[column]]\n{spec}\n")).unwrap();
        let run = gen(&pg, "items")
            .args(["--rows", "10", "--spec", path.to_str().unwrap()])
            .run();
        assert_eq!(run.code(), 2, "{spec}: {}", run.stderr());
        assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
        assert!(
            run.stderr().contains(expected),
            "{expected}: {}",
            run.stderr()
        );
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM items"), 0);
}

/// docs/GENERATE.md's worked example, run as written: its schema, its three specs, the loads in
/// order, and the start refused when orders come first.
#[test]
fn the_worked_example_of_the_generate_guide_loads_in_order() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/GENERATE.md"),
    )
    .unwrap();
    let example = &guide[guide.find("## A worked example").unwrap()..];
    let block = |fence: &str, nth: usize| {
        let start = example.match_indices(fence).nth(nth).unwrap().0 + fence.len();
        example[start..][..example[start..].find("```").unwrap()].to_string()
    };
    let pg = Pg::start();
    pg.execute(&block("```sql\n", 0));
    let dir = scratch();
    let spec = |name: &str, nth: usize| {
        let path = dir.path().join(name);
        std::fs::write(&path, block("```toml\n", nth)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (customers, products, orders) = (
        spec("customers.toml", 0),
        spec("products.toml", 1),
        spec("orders.toml", 2),
    );
    let first = gen(&pg, "orders")
        .args(["--rows", "10", "--spec", &orders])
        .run();
    assert_eq!(first.code(), 2);
    assert!(
        first.stderr().contains(
            "references customers(customer_id), which holds no rows; load customers first"
        ),
        "{}",
        first.stderr()
    );
    for (table, rows, spec) in [
        ("customers", "10000", &customers),
        ("products", "5000", &products),
        ("orders", "200000", &orders),
    ] {
        gen(&pg, table)
            .args([
                "--rows",
                rows,
                "--threads",
                "2",
                "--batch",
                "10000",
                "--spec",
                spec,
            ])
            .run_within(Duration::from_secs(300))
            .assert_success();
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM orders"), 200_000);
    assert_eq!(
        pg.scalar(
            "SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) \
             LEFT JOIN products p USING (product_id) WHERE c.customer_id IS NULL \
             OR p.product_id IS NULL"
        ),
        0
    );
    assert_eq!(pg.scalar("SELECT count(DISTINCT status) FROM orders"), 4);
    assert_eq!(
        pg.text("SELECT email FROM customers ORDER BY customer_id LIMIT 1"),
        "customer1@example.com"
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM customers WHERE created_at IS NULL"),
        0
    );
    let notes = pg.scalar("SELECT count(note) FROM orders");
    assert!(
        (30_000..50_000).contains(&notes),
        "a fifth of the notes: {notes}"
    );
}

#[test]
fn numerics_load_the_same_values_by_binary_and_text_copy() {
    let pg = Pg::start();
    let ddl = |name: &str| {
        format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, price numeric(12,3), \
             neg numeric(6,2) CHECK (neg < 0), big numeric(18,0), small numeric(5,5))"
        )
    };
    pg.execute(&format!("{}; {}", ddl("by_binary"), ddl("by_text")));
    for (table, method) in [("by_binary", "copy-binary"), ("by_text", "copy-text")] {
        gen(&pg, table)
            .args(["--rows", "50000", "--method", method, "--seed", "4"])
            .run()
            .assert_success();
    }
    let digest = |table: &str| {
        pg.text(&format!(
            "SELECT count(*)::text || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM {table} t"
        ))
    };
    assert!(digest("by_binary").starts_with("50000 "));
    assert_eq!(digest("by_binary"), digest("by_text"));
    assert_eq!(
        pg.scalar("SELECT count(*) FROM by_binary WHERE neg >= 0 OR small >= 1"),
        0
    );
}

#[test]
fn a_clickhouse_table_is_filled_from_system_columns_in_its_own_types() {
    let clickhouse = crate::support::clickhouse::ClickHouse::start();
    clickhouse
        .query(
            "CREATE TABLE visits (id Int64, site String, ms Float64, at DateTime, day Date, \
             kind Enum8('view' = 1, 'click' = 2, 'buy' = 3), referrer Nullable(String), \
             hits UInt16, note String DEFAULT 'none') ENGINE = MergeTree ORDER BY id",
        )
        .unwrap();
    let explain = Loader::new()
        .args([
            "--target",
            &clickhouse.url(),
            "--table",
            "visits",
            "--explain",
        ])
        .run();
    explain.assert_success();
    assert!(
        explain
            .stdout()
            .contains("visits: 8 columns generated (catalog)"),
        "{}",
        explain.stdout()
    );
    assert!(
        explain.stdout().contains("enum: 3 labels"),
        "{}",
        explain.stdout()
    );
    Loader::new()
        .args([
            "--target",
            &clickhouse.url(),
            "--table",
            "visits",
            "--rows",
            "100000",
            "--quiet",
        ])
        .run()
        .assert_success();
    assert_eq!(clickhouse.scalar("SELECT count() FROM visits"), 100_000);
    assert_eq!(clickhouse.scalar("SELECT uniqExact(kind) FROM visits"), 3);
    assert_eq!(
        clickhouse.scalar("SELECT countIf(note != 'none') FROM visits"),
        0
    );
    assert_eq!(
        clickhouse.scalar("SELECT countIf(site = '') FROM visits"),
        0
    );
    assert!(clickhouse.scalar("SELECT uniqExact(day) FROM visits") > 1000);
}
