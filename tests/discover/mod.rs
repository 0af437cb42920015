//! What a newcomer finds beyond `--help`: shell completions, the manual pages, a version that
//! names its commit, each mode's own options first, and `--report` files checked before the load
//! and written in every format asked for.

use std::time::Duration;

use crate::support::{read_report, scratch, Loader, Pg};

#[test]
fn bash_completions_are_valid_bash_and_know_every_mode() {
    let run = Loader::new()
        .args(["completions", "bash"])
        .run_within(Duration::from_secs(10));
    run.assert_success();
    let script = run.stdout();
    for word in ["copy", "ingest", "probe", "--wait-for-target", "--limit"] {
        assert!(script.contains(word), "{word} missing");
    }
    let dir = scratch();
    let path = dir.path().join("loader.bash");
    std::fs::write(&path, &script).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish"] {
        let run = Loader::new()
            .args(["completions", shell])
            .run_within(Duration::from_secs(10));
        run.assert_success();
        assert!(run.stdout().contains("wait-for-target"), "{shell}");
    }
    let unknown = Loader::new()
        .args(["completions", "tcsh"])
        .run_within(Duration::from_secs(10));
    assert_eq!(unknown.code(), 2);
}

#[test]
fn man_pages_are_generated_for_every_mode() {
    let run = Loader::new().arg("man").run_within(Duration::from_secs(10));
    run.assert_success();
    let page = run.stdout();
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
    assert!(page.contains(".TH loader 1"), "{page}");
    assert!(page.contains("Thread\\-per\\-core"), "{page}");
    let dir = scratch();
    let pages = dir.path().join("man");
    Loader::new()
        .args(["man", "--dir"])
        .arg_path(&pages)
        .run_within(Duration::from_secs(10))
        .assert_success();
    for name in [
        "loader.1",
        "loader-gen.1",
        "loader-copy.1",
        "loader-ingest.1",
        "loader-probe.1",
    ] {
        let text = std::fs::read_to_string(pages.join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name}: {text}");
    }
    let copy = std::fs::read_to_string(pages.join("loader-copy.1")).unwrap();
    assert!(copy.contains("\\-\\-limit"), "{copy}");
}

#[test]
fn version_names_the_commit_and_build_date() {
    let run = Loader::new()
        .arg("--version")
        .run_within(Duration::from_secs(10));
    run.assert_success();
    let version = run.stdout();
    let rest = version
        .strip_prefix(&format!("loader {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{version}"));
    let (commit, date) = rest
        .trim_end()
        .split_once(", built ")
        .expect("a build date");
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    assert!(
        date.len() == 11 && date.starts_with("20") && date.ends_with(')'),
        "{version}"
    );
}

#[test]
fn each_mode_lists_its_own_options_before_the_shared_ones() {
    let run = Loader::new()
        .args(["copy", "--help"])
        .run_within(Duration::from_secs(10));
    run.assert_success();
    let help = run.stdout();
    let own = help.find("--format").expect("copy's --format");
    let shared_heading = help.find("Load options:").expect("a Load options heading");
    let shared = help.find("--target").expect("the shared --target");
    assert!(own < shared_heading && shared_heading < shared, "{help}");
    let gen = Loader::new()
        .args(["gen", "--help"])
        .run_within(Duration::from_secs(10))
        .stdout();
    assert!(
        gen.find("--rows").unwrap() < gen.find("Load options:").unwrap(),
        "{gen}"
    );
}

#[test]
fn report_paths_are_checked_before_the_load() {
    let dir = scratch();
    for (path, reason) in [
        (
            dir.path().join("r.xml"),
            "must end in .json, .csv, .md or .svg",
        ),
        (dir.path().join("no/such/dir/r.json"), "cannot be written"),
    ] {
        let run = Loader::new()
            .args(["--rows", "1000", "--target", "null", "--report"])
            .arg_path(&path)
            .run_within(Duration::from_secs(10));
        assert_eq!(run.code(), 2, "{}", run.stderr());
        assert!(run.elapsed < Duration::from_secs(2));
        assert!(run.stderr().contains(reason), "{}", run.stderr());
        assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
        assert!(run.stdout().is_empty(), "nothing loaded: {}", run.stdout());
        assert!(!path.exists());
    }
}

#[test]
fn one_load_writes_every_report_asked_for_with_where_and_when() {
    let pg = Pg::start();
    let dir = scratch();
    let paths: Vec<_> = ["r.json", "r.csv", "r.md", "r.svg"]
        .iter()
        .map(|name| dir.path().join(name))
        .collect();
    let mut loader = Loader::new().args([
        "--rows",
        "5000",
        "--create",
        "--quiet",
        "--target",
        &pg.url(),
    ]);
    for path in &paths {
        loader = loader.arg("--report").arg_path(path);
    }
    loader.run_within(Duration::from_secs(60)).assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 5000);
    let report = read_report(&paths[0]);
    assert_eq!(report["rows_loaded"], 5000);
    let server_version = pg.text("SHOW server_version");
    assert_eq!(
        report["server_version"],
        server_version.as_str(),
        "{report}"
    );
    assert!(
        report["started_at"].as_str().unwrap().ends_with('Z'),
        "{report}"
    );
    assert!(!report["host"].as_str().unwrap().is_empty(), "{report}");
    assert!(report["loader_commit"].is_string(), "{report}");
    let csv = std::fs::read_to_string(&paths[1]).unwrap();
    let (names, values) = csv.split_once('\n').unwrap();
    let loaded = names
        .split(',')
        .position(|name| name == "rows_loaded")
        .unwrap();
    assert_eq!(
        values.trim_end().split(',').nth(loaded),
        Some("5000"),
        "{csv}"
    );
    let field = |name: &str| {
        let column = names.split(',').position(|n| n == name).unwrap();
        values
            .trim_end()
            .split(',')
            .nth(column)
            .unwrap()
            .to_string()
    };
    assert_eq!(field("server_version"), server_version, "{csv}");
    assert_eq!(field("started_at"), report["started_at"].as_str().unwrap());
    assert_eq!(field("host"), report["host"].as_str().unwrap());
    let markdown = std::fs::read_to_string(&paths[2]).unwrap();
    assert!(markdown.contains("| rows_loaded | 5000 |"), "{markdown}");
    assert!(
        markdown.contains(&format!("| server_version | {server_version} |")),
        "{markdown}"
    );
    assert!(std::fs::read_to_string(&paths[3]).unwrap().contains("max "));
}
