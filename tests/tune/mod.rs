//! `loader tune` against a real PostgreSQL: every setting of a small grid tried into the scratch
//! table, the knee's command printed, the scratch table and its ledger rows gone after, the user's
//! table untouched; flags the search sets refused.

use std::time::Duration;

use crate::support::{read_report, scratch, Loader, Pg};

#[test]
fn tune_tries_every_setting_and_leaves_only_the_command() {
    let pg = Pg::start();
    pg.execute(
        "CREATE TABLE readings (id bigint PRIMARY KEY, ts timestamptz, sensor_id int, \
         location text, temperature double precision, humidity double precision, status text); \
         INSERT INTO readings (id) SELECT generate_series(1, 5)",
    );
    let dir = scratch();
    let report_path = dir.path().join("tune.json");
    let run = Loader::new()
        .args([
            "tune",
            "--budget",
            "8s",
            "--try-threads",
            "1,2",
            "--try-batch",
            "1000",
        ])
        .args([
            "--try-commit-every",
            "1,10",
            "--target",
            &pg.url(),
            "--report",
        ])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(60));
    run.assert_success();
    let stdout = run.stdout();
    let report = read_report(&report_path);
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4, "{report}");
    let tried: Vec<(u64, u64)> = trials
        .iter()
        .map(|t| {
            (
                t["threads"].as_u64().unwrap(),
                t["commit_every"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(tried, [(1, 1), (1, 10), (2, 1), (2, 10)]);
    for trial in trials {
        assert!(trial["rows_per_s"].as_f64().unwrap() > 1000.0, "{trial}");
        assert!(trial["bound_by"].as_str().is_some(), "{trial}");
    }
    let knee = &trials[report["knee"].as_u64().unwrap() as usize];
    let command = report["command"].as_str().unwrap();
    assert!(
        command.ends_with(&format!(
            "--table readings --threads {} --batch 1000 --commit-every {}",
            knee["threads"], knee["commit_every"]
        )),
        "{command}"
    );
    assert!(stdout.contains(command), "{stdout}");
    assert!(stdout.contains("← "), "{stdout}");
    assert_eq!(
        pg.text("SELECT coalesce(to_regclass('loader_tune_scratch')::text, 'gone')"),
        "gone"
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM loader_ledger WHERE target_table = 'loader_tune_scratch'"),
        0
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 5);
}

#[test]
fn tune_refuses_the_flags_it_sets_and_a_budget_too_short() {
    let cases: [(&[&str], &str); 4] = [
        (&["--threads", "4"], "--try-threads"),
        (&["--rows", "1000"], "--budget"),
        (&["--budget", "3s"], "raise --budget or try fewer values"),
        (&["--target", "null"], "tune measures PostgreSQL targets"),
    ];
    for (args, says) in cases {
        let run = Loader::new().arg("tune").args(args).run();
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
        assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
    }
}
