//! The Prometheus endpoint (`--metrics-addr`) end to end: scraped while a load into the real
//! PostgreSQL runs, it parses as Prometheus text, and after the load (`--metrics-linger`) its
//! totals equal the final report's.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use prometheus_parse::{Scrape, Value};

use crate::support::{read_report, scratch, wait_with_limit, Loader, Pg};

/// Scrapes `url`, or None while nothing answers there yet.
fn scrape(url: &str) -> Option<Scrape> {
    let mut response = ureq::get(url).call().ok()?;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["Content-Type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.body_mut().read_to_string().unwrap();
    // Every sample belongs to a family with a TYPE line.
    let typed: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|family| typed.contains(family))
            .unwrap_or(name);
        assert!(typed.contains(&family), "no TYPE for `{line}`");
    }
    Some(Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text"))
}

/// The unlabelled value of counter or gauge `name`.
fn value(scrape: &Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .find(|sample| sample.metric == name && sample.labels.is_empty())
        .map(|sample| match sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => value,
            _ => panic!("{name} is not a counter"),
        })
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Per-worker values of counter `name`, by worker label.
fn per_worker(scrape: &Scrape, name: &str) -> HashMap<String, f64> {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .map(|sample| match sample.value {
            Value::Counter(value) => (sample.labels.get("worker").unwrap().to_owned(), value),
            _ => panic!("{name} is not a counter"),
        })
        .collect()
}

/// The `+Inf` bucket of the unlabelled histogram `name`.
fn histogram_count(scrape: &Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name && sample.labels.get("worker").is_none())
        .find_map(|sample| match &sample.value {
            Value::Histogram(buckets) => buckets.last().map(|bucket| bucket.count),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no histogram {name}"))
}

#[test]
fn metrics_scraped_during_a_load_parse_and_end_equal_to_the_report() {
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let child = Loader::new()
        .args([
            "--rows",
            "3000000",
            "--threads",
            "3",
            "--batch",
            "1000",
            "--create",
            "--quiet",
        ])
        .args([
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--metrics-linger",
            "60s",
        ])
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .spawn();

    // During the load: rows arrive, and never more than were asked for.
    let started = Instant::now();
    let during = loop {
        if let Some(scrape) = scrape(&url) {
            if value(&scrape, "loader_rows_total") > 0.0 && !report_path.exists() {
                break scrape;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no rows seen at {url}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(value(&during, "loader_workers"), 3.0);
    assert!(value(&during, "loader_rows_total") < 3_000_000.0);

    // After it, while the endpoint lingers: the totals are the report's.
    while !report_path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the load did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let report = read_report(&report_path);
    let after = scrape(&url).expect("the endpoint lingers after the load");
    let rows = report["rows_loaded"].as_u64().unwrap();
    let batches = report["batches"].as_u64().unwrap();
    assert_eq!(rows, 3_000_000);
    assert_eq!(value(&after, "loader_rows_total"), rows as f64);
    assert_eq!(value(&after, "loader_batches_total"), batches as f64);
    assert_eq!(value(&after, "loader_errors_total"), 0.0);
    assert_eq!(
        histogram_count(&after, "loader_batch_latency_seconds"),
        batches as f64
    );
    let workers = per_worker(&after, "loader_worker_rows_total");
    assert_eq!(workers.len(), 3);
    assert_eq!(workers.values().sum::<f64>(), rows as f64);
    for worker in report["workers"].as_array().unwrap() {
        let label = worker["worker"].to_string();
        assert_eq!(
            workers[&label],
            worker["rows"].as_f64().unwrap(),
            "worker {label}"
        );
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), rows as i64);

    // Ctrl-C cuts the linger short; the load's exit code stands.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = wait_with_limit(child, Duration::from_secs(10));
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_metrics_address_in_use_or_malformed_is_one_line_and_exit_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    for (value, expected) in [
        (address.as_str(), "cannot listen on"),
        ("localhost", "must be IP:PORT"),
    ] {
        let run = Loader::new()
            .args(["--target", "null", "--rows", "10", "--metrics-addr", value])
            .run();
        assert_eq!(run.code(), 2, "{value}: {}", run.stderr());
        let stderr = run.stderr();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{value}: {stderr}");
    }
}
