//! `loader probe` end to end, against streaming servers the tests start: the verdict on a
//! concurrent server, on one behind a global lock and on one with a pool of four, how first
//! bytes grow with the users, time to first byte against time to
//! headers, the open model's rate and its accounting under a slow server, and failures counted
//! rather than crashing.

use std::time::Duration;

use serde_json::Value;

use crate::support::stream::{Body, Script, StreamServer};
use crate::support::{read_report, scratch, Loader, Run};

/// Runs a probe with `args`, returning the run and its JSON report.
fn probe(args: &[&str]) -> (Run, Value) {
    let dir = scratch();
    let report = dir.path().join("probe.json");
    let run = Loader::new()
        .arg("probe")
        .args(args)
        .args(["--progress-every", "200ms", "--report"])
        .arg_path(&report)
        .run();
    assert!(
        report.exists(),
        "no report; exit {}\nstdout: {}\nstderr: {}",
        run.code(),
        run.stdout(),
        run.stderr()
    );
    let value = read_report(&report);
    (run, value)
}

fn ms(round: &Value, timing: &str, figure: &str) -> f64 {
    round["timings_ms"][timing][figure]
        .as_f64()
        .unwrap_or_else(|| panic!("no {timing}.{figure} in {round}"))
}

/// An answer streamed over 200 ms: five chunks, the first at once, then one every 50 ms.
fn two_hundred_ms(at_once: Option<usize>) -> Script {
    Script {
        at_once,
        ..Script::streaming(5, Duration::from_millis(50))
    }
}

#[test]
fn a_concurrent_server_is_judged_concurrent_at_10_and_20_users() {
    let server = StreamServer::start(two_hundred_ms(None));
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "10,20",
        "--requests",
        "40",
        "--baseline",
        "3",
    ]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert_eq!(report["verdict"], "concurrent", "{report}");
    for (round, users) in report["rounds"].as_array().unwrap().iter().zip([10, 20]) {
        assert_eq!(round["users"], users);
        assert_eq!(round["verdict"], "concurrent", "{round}");
        assert_eq!(
            (round["answered"].as_u64(), round["sent"].as_u64()),
            (Some(40), Some(40))
        );
        assert_eq!(round["status_codes"]["200"], 40);
        assert!(ms(round, "first_byte", "max") < 100.0, "{round}");
        assert!(ms(round, "total", "p50") >= 200.0, "{round}");
        assert!(
            round["effective_concurrency"].as_f64().unwrap() > 5.0,
            "{round}"
        );
    }
    // The baseline, then both rounds: the server saw exactly what the probe reports.
    assert_eq!(report["baseline"]["requests"], 3);
    assert_eq!(server.requests(), 3 + 40 + 40);
    let stdout = run.stdout();
    assert!(
        stdout.contains("verdict: requests are handled concurrently"),
        "{stdout}"
    );
    assert!(stdout.contains("mean TTFB"), "the sweep table: {stdout}");
    assert!(
        report["process"]["threads"].as_u64().unwrap() >= 20,
        "{report}"
    );
}

#[test]
fn a_server_behind_one_lock_is_judged_blocking() {
    for users in [10u64, 20] {
        let server = StreamServer::start(two_hundred_ms(Some(1)));
        let count = users.to_string();
        let (run, report) = probe(&[
            &server.url,
            "--users",
            &count,
            "--requests",
            &count,
            "--baseline",
            "2",
        ]);
        assert_eq!(run.code(), 1, "blocking exits 1: {}", run.stderr());
        assert_eq!(report["verdict"], "blocking", "{report}");
        let round = &report["rounds"][0];
        // One request each, one at a time: the last waits for the other users × 200 ms.
        let max = ms(round, "first_byte", "max");
        let expected = (users - 1) as f64 * 200.0;
        assert!(
            max > expected * 0.9 && max < expected * 1.2 + 100.0,
            "{users} users: max first byte {max} ms, expected ≈ {expected} ms"
        );
        assert!(
            round["effective_concurrency"].as_f64().unwrap() < 1.5,
            "{round}"
        );
        assert!(
            run.stdout()
                .contains("verdict: the server serializes requests"),
            "{}",
            run.stdout()
        );
        assert_eq!(server.requests(), 2 + users);
    }
}

#[test]
fn a_pool_of_four_behind_sixteen_users_is_judged_capped_at_four() {
    let server = StreamServer::start(two_hundred_ms(Some(4)));
    let dir = scratch();
    let svg = dir.path().join("probe.svg");
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "2,4,8,16",
        "--requests",
        "32",
        "--baseline",
        "2",
        "--report",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 0, "capped is no failure: {}", run.stderr());
    assert_eq!(report["verdict"], "capped", "{report}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg"), "{picture:.200}");
    for said in [
        "concurrently up to a cap",
        "served at once",
        "time to first byte (ms)",
        "16 users",
    ] {
        assert!(picture.contains(said), "{said} not in the picture");
    }
    // One mark per sampled answer, 32 a round, and one per round on each of the four lines.
    assert!(
        picture.matches("<circle").count() >= 4 * 32,
        "{picture:.300}"
    );
    let rounds = report["rounds"].as_array().unwrap();
    let verdicts: Vec<_> = rounds
        .iter()
        .map(|round| round["verdict"].clone())
        .collect();
    assert_eq!(
        verdicts,
        ["concurrent", "concurrent", "capped", "capped"],
        "{report}"
    );
    assert_eq!(rounds[3]["serves_at_most"], 4, "{}", rounds[3]);
    assert_eq!(
        report["first_byte_growth"]["growth"], "stepwise",
        "{report}"
    );
    let stdout = run.stdout();
    assert!(
        stdout.contains("serves at most ≈4 at once of 16 users")
            && stdout
                .contains("growth: stepwise — first bytes stay at the lone user's up to 4 users"),
        "{stdout}"
    );
}

#[test]
fn a_ramp_stops_at_the_users_whose_mean_breaks_the_rule() {
    // Four at a time, 100 ms each: 8 users take ≈200 ms per answer on average, 16 ≈400 ms (the
    // pool's wake-ups are not first come, first served, so p99 is looser than the mean).
    let server = StreamServer::start(Script {
        at_once: Some(4),
        ..Script::streaming(3, Duration::from_millis(50))
    });
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "1..32",
        "--requests",
        "32",
        "--until",
        "mean>300ms",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let users: Vec<_> = report["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|round| round["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, [1, 2, 4, 8, 16], "{report}");
    let point = &report["breaking_point"];
    assert_eq!(
        (&point["broken_at"], &point["last_good"]),
        (&16.into(), &8.into()),
        "{point}"
    );
    assert!(
        run.stdout()
            .contains("ramp: stopped at 16 users (total mean ")
            && run
                .stdout()
                .contains("> 300.0 ms); last good level: 8 users"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_lock_makes_first_bytes_grow_linearly_with_the_users() {
    // One answer at a time, 40 ms each: the k-th waiting user waits (k − 1) × 40 ms.
    let slow = StreamServer::start(Script {
        at_once: Some(1),
        first_chunk_after: Duration::from_millis(40),
        ..Script::streaming(1, Duration::ZERO)
    });
    let (run, report) = probe(&[
        &slow.url,
        "--users",
        "2,4,8",
        "--requests",
        "24",
        "--baseline",
        "3",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(report["verdict"], "blocking", "{report}");
    assert_eq!(report["first_byte_growth"]["growth"], "linear", "{report}");
}

#[test]
fn a_chat_stream_is_timed_from_its_first_token_not_its_metadata_event() {
    // With the headers a role-only event and a keep-alive; the first token 100 ms later, then one
    // every 20 ms: six tokens.
    let server = StreamServer::start(Script {
        body: Body::OpenAiEvents,
        first_chunk_after: Duration::from_millis(100),
        ..Script::streaming(6, Duration::from_millis(20))
    });
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "2",
        "--requests",
        "10",
        "--baseline",
        "0",
        "--openai-chat",
        "tiny-model",
        "--prompt",
        "Say six words.",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let round = &report["rounds"][0];
    assert_eq!(round["tokens"], 60, "{round}");
    let close_to = |timing: &str, truth: f64| {
        let p50 = ms(round, timing, "p50");
        assert!(
            (p50 - truth).abs() < 2.0,
            "{timing} p50 {p50} ms, truth {truth} ms: {round}"
        );
    };
    close_to("first_byte", 0.0);
    close_to("first_event", 0.0);
    close_to("first_token", 100.0);
    close_to("token_gap", 20.0);
    close_to("largest_token_gap", 20.0);
    // Five tokens after the first, over 100 ms.
    let rate = round["tokens_per_s_per_user"].as_f64().unwrap();
    assert!((rate - 50.0).abs() < 3.0, "{rate} tokens/s: {round}");
    assert_eq!(round["judged_on"], "first token", "{round}");
    let stdout = run.stdout();
    assert!(
        stdout.contains("first token") && stdout.contains("tokens: 60 in all"),
        "{stdout}"
    );
    // The request the shortcut built.
    let request = server.last_request();
    assert!(
        request.starts_with("POST /stream HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("content-type: application/json\r\n")
            && request.contains("accept: text/event-stream\r\n"),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"model": "tiny-model", "stream": true,
            "messages": [{"role": "user", "content": "Say six words."}]})
    );
}

#[test]
fn ndjson_lines_carry_tokens_at_the_pointer_given() {
    let server = StreamServer::start(Script {
        body: Body::OllamaLines,
        first_chunk_after: Duration::from_millis(30),
        ..Script::streaming(4, Duration::from_millis(10))
    });
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "1",
        "--requests",
        "5",
        "--token",
        "/message/content",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let round = &report["rounds"][0];
    // Four content lines each; the closing `done` line has empty content and is no token.
    assert_eq!(round["tokens"], 20, "{round}");
    assert_eq!(round["timings_ms"]["first_event"]["count"], 5, "{round}");
    let first_token = ms(round, "first_token", "p50");
    assert!((first_token - 30.0).abs() < 2.0, "{first_token}: {round}");
    // A pointer that is not one is refused at once.
    let refused = Loader::new()
        .args(["probe", &server.url, "--token", "message.content"])
        .run();
    assert_eq!(refused.code(), 2, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("must be a JSON pointer"),
        "{}",
        refused.stderr()
    );
}

#[test]
fn time_to_first_byte_is_the_first_body_byte_not_the_headers() {
    // Headers at once, the first chunk after 300 ms, two more 150 ms apart.
    let server = StreamServer::start(Script {
        first_chunk_after: Duration::from_millis(300),
        chunks: 3,
        chunk_every: Duration::from_millis(150),
        ..Script::streaming(1, Duration::ZERO)
    });
    let (run, report) = probe(&[&server.url, "--users", "2", "-n", "4", "--baseline", "0"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let round = &report["rounds"][0];
    assert!(ms(round, "headers", "max") < 100.0, "{round}");
    let first_byte = ms(round, "first_byte", "p50");
    assert!((290.0..400.0).contains(&first_byte), "{round}");
    let gap = ms(round, "largest_gap", "p50");
    assert!((140.0..250.0).contains(&gap), "{round}");
    assert!(ms(round, "total", "p50") >= 600.0, "{round}");
    assert_eq!(round["bytes"], 4 * 3 * 6);
    // Without a baseline there is no verdict, and the probe says so.
    assert_eq!(report["verdict"], Value::Null);
}

#[test]
fn rate_100_for_10_seconds_offers_1000_requests() {
    let server = StreamServer::start(Script::streaming(1, Duration::ZERO));
    let dir = scratch();
    let report_path = dir.path().join("rate.json");
    let child = Loader::new()
        .args([
            "probe",
            &server.url,
            "--users",
            "8",
            "--rate",
            "100",
            "--duration",
            "10s",
            "--baseline",
            "0",
            "--quiet",
            "--report",
        ])
        .arg_path(&report_path)
        .spawn();
    // Half-way, the server has seen half the requests: the rate holds during the run, not
    // just on average.
    std::thread::sleep(Duration::from_secs(5));
    let halfway = server.requests();
    let output = crate::support::wait_with_limit(child, Duration::from_secs(30));
    assert!(output.status.success(), "{output:?}");
    assert!(
        // Counted from the process's start, which comes a little before the round's.
        (450..=525).contains(&halfway),
        "{halfway} requests after 5 s"
    );
    let seen = server.requests();
    assert!((950..=1050).contains(&seen), "the server saw {seen}");
    let report = read_report(&report_path);
    let round = &report["rounds"][0];
    assert_eq!(round["model"], "open");
    assert_eq!(
        (round["planned"].as_u64(), round["sent"].as_u64()),
        (Some(1000), Some(seen))
    );
    let elapsed = round["elapsed_s"].as_f64().unwrap();
    assert!((9.9..10.6).contains(&elapsed), "{elapsed} s");
}

#[test]
fn a_slow_server_does_not_lower_the_offered_rate() {
    // 100 ms per answer and 2 users: 20 answers/s can be served, 50/s are offered.
    let server = StreamServer::start(Script {
        first_chunk_after: Duration::from_millis(100),
        ..Script::streaming(1, Duration::ZERO)
    });
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "2",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--baseline",
        "0",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let round = &report["rounds"][0];
    // All 100 planned requests were sent, later and later; none is left out of the figures.
    assert_eq!(
        (round["planned"].as_u64(), round["sent"].as_u64()),
        (Some(100), Some(100))
    );
    assert_eq!(round["unsent"], 0);
    assert_eq!(server.requests(), 100);
    assert!(round["elapsed_s"].as_f64().unwrap() >= 4.5, "{round}");
    // The last request was planned at 2 s and sent near 5 s: its latency counts from 2 s.
    assert!(ms(round, "client_delay", "max") >= 2500.0, "{round}");
    assert!(ms(round, "total", "max") >= 2600.0, "{round}");
    // The median request was planned near 1 s and sent near 2.5 s.
    assert!(ms(round, "total", "p50") >= 1000.0, "{round}");
}

#[test]
fn requests_that_cannot_be_sent_in_time_are_counted_as_unsent() {
    // One user, 300 ms per answer, 20 requests planned over 1 s: about 5 go out before the
    // round gives up (--timeout after its planned end); the rest are unsent, and failures.
    let server = StreamServer::start(Script {
        first_chunk_after: Duration::from_millis(300),
        ..Script::streaming(1, Duration::ZERO)
    });
    let (run, report) = probe(&[
        &server.url,
        "--users",
        "1",
        "--rate",
        "20",
        "-d",
        "1s",
        "--timeout",
        "500ms",
        "--baseline",
        "0",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let round = &report["rounds"][0];
    let (sent, unsent) = (
        round["sent"].as_u64().unwrap(),
        round["unsent"].as_u64().unwrap(),
    );
    assert_eq!(round["planned"], 20);
    assert_eq!(sent + unsent, 20, "{round}");
    assert!(unsent >= 10, "{round}");
    assert_eq!(server.requests(), sent);
    assert_eq!(round["succeeded"], sent);
    let rate = round["success_rate"].as_f64().unwrap();
    assert!((rate - sent as f64 / 20.0).abs() < 1e-9, "{round}");
    assert!(run.stdout().contains("unsent:"), "{}", run.stdout());
}

#[test]
fn failures_are_counted_never_a_crash() {
    // A server too slow for --timeout.
    let slow = StreamServer::start(Script {
        first_chunk_after: Duration::from_secs(3),
        ..Script::streaming(1, Duration::ZERO)
    });
    let (run, report) = probe(&[
        &slow.url,
        "--users",
        "2",
        "-n",
        "4",
        "--timeout",
        "300ms",
        "--baseline",
        "0",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let round = &report["rounds"][0];
    assert_eq!(round["errors"]["timeout"], 4, "{round}");
    assert_eq!(round["success_rate"], 0.0);

    // Nothing listening on port 1 (tcpmux), whatever other tests bind meanwhile: the first
    // connection is refused, and the probe stops at once naming the address.
    let (run, report) = probe(&[
        "http://127.0.0.1:1/",
        "--users",
        "3",
        "-n",
        "30",
        "--baseline",
        "5",
    ]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.elapsed < Duration::from_secs(2), "{:?}", run.elapsed);
    assert!(
        run.stderr().contains(
            "loader: error: nothing listens on 127.0.0.1:1 (connection refused): check the URL's \
             host and port"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(report["rounds"], serde_json::json!([]), "{report}");
    assert_eq!(report["baseline"], Value::Null);

    // 503 on every request: answered, counted by status, not succeeded.
    let unavailable = StreamServer::start(Script {
        status: 503,
        ..Script::streaming(1, Duration::ZERO)
    });
    let (run, report) = probe(&[
        &unavailable.url,
        "--users",
        "4",
        "-n",
        "20",
        "--baseline",
        "2",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let round = &report["rounds"][0];
    assert_eq!(round["status_codes"]["503"], 20, "{round}");
    assert_eq!(
        (round["answered"].as_u64(), round["succeeded"].as_u64()),
        (Some(20), Some(0))
    );
    assert!(run.stdout().contains("503 ×20"), "{}", run.stdout());

    // A malformed URL: one line, exit 2, no report.
    for url in ["http://", "localhost:8080", "http://exa mple.com/"] {
        let run = Loader::new().args(["probe", url]).run();
        assert_eq!(run.code(), 2, "{url}: {}", run.stderr());
        let stderr = run.stderr();
        assert_eq!(stderr.lines().count(), 1, "{url}: {stderr}");
        assert!(
            stderr.starts_with("loader: error: --url"),
            "{url}: {stderr}"
        );
    }
}
