//! The mistakes a newcomer makes in the first hour, each ending fast with its cause and the fix:
//! a wrong port, TLS against a plain server, an untrusted certificate, a missing password, a
//! header line without `--header`, a file with another field count than the table, a flag of
//! another mode, and copy waiting on a terminal.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::protocol::{ndjson_endpoint_at, ProtocolServer, StoredIds};
use crate::support::{read_report, scratch, Loader, Pg};

/// A loopback port where nothing listens.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The lines of `stderr` that say `error`.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains("error"))
        .collect()
}

#[test]
fn a_refused_first_connection_stops_at_once_naming_host_and_port() {
    let port = free_port();
    for target in [
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        format!("es+http://127.0.0.1:{port}"),
    ] {
        let run = Loader::new()
            .args(["--rows", "10", "--target", &target])
            .run_within(Duration::from_secs(10));
        let stderr = run.stderr();
        assert_eq!(run.code(), 3, "{target}: {stderr}");
        assert!(
            run.elapsed < Duration::from_secs(2),
            "{target}: {:?}",
            run.elapsed
        );
        assert!(
            stderr.contains(&format!(
                "nothing listens on 127.0.0.1:{port} (connection refused): check the target's \
                 host and port, or give --wait-for-target TIME"
            )),
            "{target}: {stderr}"
        );
        assert!(!stderr.contains("retrying"), "{target}: {stderr}");
    }
}

#[test]
fn a_host_name_that_does_not_resolve_stops_at_once() {
    for target in [
        "es+http://no-such-host.invalid:9200",
        "postgres://postgres@no-such-host.invalid/postgres",
    ] {
        let run = Loader::new()
            .args(["--rows", "10", "--target", target])
            .run_within(Duration::from_secs(20));
        let stderr = run.stderr();
        assert_eq!(run.code(), 3, "{target}: {stderr}");
        assert!(
            run.elapsed < Duration::from_secs(2),
            "{target}: {:?}",
            run.elapsed
        );
        assert!(stderr.contains("no-such-host.invalid"), "{stderr}");
        assert!(stderr.contains("resolve"), "{stderr}");
        assert!(!stderr.contains("retrying"), "{target}: {stderr}");
    }
}

#[test]
fn wait_for_target_waits_for_a_server_that_starts_later() {
    let port = free_port();
    let stored: StoredIds = Arc::default();
    let server_stored = Arc::clone(&stored);
    let server = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        ndjson_endpoint_at(port, server_stored, || None)
    });
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args([
            "--rows",
            "5000",
            "--batch",
            "1000",
            "--wait-for-target",
            "20s",
        ])
        // The wait, not the batches' retry budget, covers a server that is not up yet.
        .args(["--max-retries", "1"])
        .args([
            "--target",
            &format!("http://127.0.0.1:{port}/ingest"),
            "--report",
        ])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(30));
    let _server: ProtocolServer = server.join().unwrap();
    run.assert_success();
    assert!(run.stderr().contains("retrying"), "{}", run.stderr());
    let stored = stored.lock().unwrap();
    assert_eq!(stored.len(), 5000);
    assert!(stored.values().all(|times| *times == 1));
    assert_eq!(read_report(&report_path)["rows_loaded"], 5000);

    // Waiting is bounded by its own time.
    let run = Loader::new()
        .args(["--rows", "10", "--wait-for-target", "2s"])
        .args([
            "--target",
            &format!("postgres://postgres@127.0.0.1:{}/x", free_port()),
        ])
        .run_within(Duration::from_secs(20));
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.elapsed < Duration::from_secs(4), "{:?}", run.elapsed);
    assert!(run.stderr().contains("retrying"), "{}", run.stderr());
    assert!(
        run.stderr().contains("nothing listens on"),
        "{}",
        run.stderr()
    );
}

/// A plain HTTP server that answers anything, a TLS hello included, with a 400 and closes.
fn plain_http_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut hello = [0u8; 512];
            let _ = std::io::Read::read(&mut stream, &mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

#[test]
fn https_against_a_plain_http_port_says_so_at_once() {
    let port = plain_http_port();
    let run = Loader::new()
        .args(["--rows", "10", "--target"])
        .arg(&format!("es+https://127.0.0.1:{port}"))
        .run_within(Duration::from_secs(10));
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert!(run.elapsed < Duration::from_secs(2), "{:?}", run.elapsed);
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{} does not speak TLS on this port (it answered in plain text); use the \
             http:// form of the target",
            port
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("InvalidContentType"), "{stderr}");
}

/// A self-signed certificate for 127.0.0.1 made as a CA (CA:TRUE), as `openssl req -x509`
/// makes them: its PEM and its key's.
fn self_signed_ca() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), key.serialize_pem())
}

#[test]
fn certificate_problems_are_worded_with_the_flag_that_fixes_them() {
    let leaf = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let server =
        ProtocolServer::start_https(&leaf.cert.pem(), &leaf.signing_key.serialize_pem(), |_| {
            (200, "{}".into())
        });
    let url = format!("https://127.0.0.1:{}/ingest", server.port);
    let run = Loader::new()
        .args(["--rows", "10", "--target", &url])
        .run_within(Duration::from_secs(10));
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert!(run.elapsed < Duration::from_secs(2), "{:?}", run.elapsed);
    assert!(
        stderr.contains("is signed by no authority it trusts (a private CA, or self-signed)")
            && stderr.contains("--ca-file FILE")
            && stderr.contains("--insecure"),
        "{stderr}"
    );

    // The probe says the same in its summary.
    let probe = Loader::new()
        .args([
            "probe",
            &url,
            "--users",
            "1",
            "--requests",
            "3",
            "--baseline",
            "0",
        ])
        .run_within(Duration::from_secs(20));
    let said = format!("{}{}", probe.stdout(), probe.stderr());
    assert_ne!(probe.code(), 0, "{said}");
    assert!(
        said.contains("signed by no authority it trusts") && said.contains("--ca-file FILE"),
        "{said}"
    );

    // A self-signed certificate made as a CA cannot be trusted as a server's own: said so.
    let (ca_pem, ca_key) = self_signed_ca();
    let server = ProtocolServer::start_https(&ca_pem, &ca_key, |_| (200, "{}".into()));
    let dir = scratch();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let run = Loader::new()
        .args(["--rows", "10", "--ca-file"])
        .arg_path(&ca_file)
        .args(["--target", &format!("https://127.0.0.1:{}/x", server.port)])
        .run_within(Duration::from_secs(10));
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert!(
        stderr.contains("is a CA certificate (CA:TRUE) presented as the server's own")
            && stderr.contains("--insecure"),
        "{stderr}"
    );

    // The probe's own client trusts that very certificate when it is given, and any with
    // --insecure: every request answered.
    let probe_with = |flags: &[&str]| {
        let dir = scratch();
        let report = dir.path().join("probe.json");
        let run = Loader::new()
            .args(["probe", &format!("https://127.0.0.1:{}/x", server.port)])
            .args([
                "--users",
                "2",
                "--requests",
                "6",
                "--baseline",
                "0",
                "--quiet",
            ])
            .args(flags)
            .arg("--report")
            .arg_path(&report)
            .run_within(Duration::from_secs(20));
        assert_eq!(run.code(), 0, "{flags:?}: {}", run.stderr());
        crate::support::read_report(&report)["rounds"][0]["succeeded"].clone()
    };
    let ca_file = ca_file.to_str().unwrap();
    assert_eq!(probe_with(&["--ca-file", ca_file]), 6);
    assert_eq!(probe_with(&["--insecure"]), 6);
    // A file whose only certificate is no certificate at all trusts nothing, not everything.
    let unusable = dir.path().join("unusable.pem");
    std::fs::write(
        &unusable,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let refused = Loader::new()
        .args(["probe", &format!("https://127.0.0.1:{}/x", server.port)])
        .args(["--users", "1", "--requests", "2", "--baseline", "0"])
        .arg("--ca-file")
        .arg_path(&unusable)
        .run_within(Duration::from_secs(20));
    let said = format!("{}{}", refused.stdout(), refused.stderr());
    assert_eq!(refused.code(), 1, "{said}");
    assert!(said.contains("error tls: 2"), "{said}");
}

#[test]
fn a_password_the_server_asks_for_is_a_usage_error_naming_where_to_give_it() {
    let pg = Pg::start();
    pg.execute("CREATE ROLE app LOGIN PASSWORD 'secret'");
    std::fs::write(
        pg.cluster.data_dir().join("pg_hba.conf"),
        "host all app 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\nlocal all all trust\n",
    )
    .unwrap();
    pg.execute("SELECT pg_reload_conf()");
    let run = Loader::new()
        .args(["--rows", "10", "--target"])
        .arg(&format!(
            "postgres://app@127.0.0.1:{}/postgres",
            pg.cluster.port()
        ))
        .run_within(Duration::from_secs(20));
    let stderr = run.stderr();
    assert_eq!(run.code(), 2, "{stderr}");
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "asks for a password and none was given; set PGPASSWORD, give --password-file FILE"
        ),
        "{stderr}"
    );
    assert!(
        run.stdout().is_empty(),
        "no summary of zeros: {}",
        run.stdout()
    );
}

/// Loads `csv` into `t (id bigint, name text)` and returns the run and the rows on the target.
fn copy_into_two_columns(csv: &str, extra: &[&str]) -> (crate::support::Run, i64) {
    copy_into_two_columns_from(csv, extra, Through::File)
}

/// Where [`copy_into_two_columns_from`] reads its records.
#[derive(Clone, Copy, PartialEq)]
enum Through {
    File,
    Stdin,
    /// A named pipe, which is not sniffed (a sample read from it would be lost to the load).
    NamedPipe,
}

/// Copies `csv` into a new two-column table, from a file, standard input or a named pipe;
/// returns the run and the rows the table holds.
fn copy_into_two_columns_from(
    csv: &str,
    extra: &[&str],
    through: Through,
) -> (crate::support::Run, i64) {
    let pg = Pg::start();
    pg.execute("CREATE TABLE t (id bigint, name text)");
    let dir = scratch();
    let file = dir.path().join("data.csv");
    std::fs::write(&file, csv).unwrap();
    let pipe = dir.path().join("piped.csv");
    let loader = Loader::new().arg("copy");
    let loader = match through {
        Through::File => loader.arg_path(&file),
        Through::Stdin => loader.arg("-"),
        Through::NamedPipe => {
            let made = std::process::Command::new("mkfifo").arg(&pipe).status();
            assert!(made.is_ok_and(|status| status.success()), "mkfifo");
            let (writer_end, csv) = (pipe.clone(), csv.to_string());
            // Opening blocks until loader opens the pipe to read; a write cut short by a load
            // that stopped early is expected.
            std::thread::spawn(move || {
                if let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(writer_end) {
                    let _ = std::io::Write::write_all(&mut writer, csv.as_bytes());
                }
            });
            loader.arg_path(&pipe)
        }
    };
    let loader = loader
        .args([
            "--table",
            "t",
            "--quiet",
            "--threads",
            "4",
            "--batch",
            "1000",
        ])
        .args(["--target", &pg.url()])
        .args(extra);
    let run = if through == Through::Stdin {
        loader.run_with_stdin(csv.as_bytes().to_vec())
    } else {
        loader.run_within(Duration::from_secs(30))
    };
    let loaded = pg.scalar("SELECT count(*) FROM t");
    (run, loaded)
}

#[test]
fn a_header_line_without_header_is_named_with_the_fix() {
    let mut csv = String::from("id,name\n");
    for i in 0..100_000 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    // A named pipe is not sniffed: the first batch finds the header line and stops the load.
    let (run, loaded) = copy_into_two_columns_from(&csv, &[], Through::NamedPipe);
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    assert!(
        stderr.contains(
            "piped.csv: line 1 (id,name) names columns rather than holding values; add --header"
        ),
        "{stderr}"
    );
    assert_eq!(loaded, 0);

    // The sample of a file or of standard input shows the header; --header says so.
    for through in [Through::File, Through::Stdin] {
        for flags in [&[][..], &["--header"]] {
            let (run, loaded) = copy_into_two_columns_from(&csv, flags, through);
            run.assert_success();
            assert_eq!(loaded, 100_000, "{flags:?}");
        }
    }
}

#[test]
fn another_field_count_than_the_table_is_named_with_the_fix() {
    let csv: String = (0..2000).map(|i| format!("{i},a,b,c,d,e,f\n")).collect();
    let (run, loaded) = copy_into_two_columns(&csv, &[]);
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert!(
        stderr.contains("data.csv: its records have 7 fields, the table has 2 (id, name); name the columns the fields go to with --columns"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("extra data after last expected column"),
        "{stderr}"
    );
    assert_eq!(loaded, 0);
}

#[test]
fn rows_given_to_copy_points_at_limit_in_one_line() {
    let run = Loader::new()
        .args(["copy", "--rows", "5", "x.csv"])
        .run_within(Duration::from_secs(5));
    assert_eq!(run.code(), 2);
    assert!(run.elapsed < Duration::from_secs(2));
    assert_eq!(
        run.stderr(),
        "loader: error: unexpected argument '--rows' found; copy reads its inputs to the end; to \
         load only the first N records use --limit N; see loader copy --help\n"
    );
}

#[test]
fn copy_reading_a_terminal_says_how_to_end_it() {
    // `script` gives the loader a terminal as its standard input; ^D on it ends the input.
    let loader = env!("CARGO_BIN_EXE_loader");
    let started = Instant::now();
    let mut script = Command::new("script")
        .args([
            "-qec",
            &format!("{loader} copy --columns a,b --target -"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut keyboard = script.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    keyboard.write_all(b"7,x\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    keyboard.write_all(b"\x04").unwrap();
    let output = crate::support::wait_with_limit(script, Duration::from_secs(20));
    drop(keyboard);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("loader: reading standard input (Ctrl-D ends it)"),
        "{said}"
    );
    assert!(said.contains("completed — 1 rows"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(0), "{said}");
}

#[test]
fn stderr_that_is_no_terminal_gets_plain_progress_lines_with_share_and_time_left() {
    let run = Loader::new()
        .args(["--rows", "3000000", "--threads", "1", "--batch", "1000"])
        .args([
            "--rate",
            "1000000",
            "--progress-every",
            "500ms",
            "--target",
            "null",
        ])
        .run_within(Duration::from_secs(30));
    run.assert_success();
    let stderr = run.stderr();
    let line = stderr
        .lines()
        .find(|line| line.contains("/3,000,000 rows"))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.contains('%') && line.contains("eta 00:00:0"), "{line}");
    assert!(
        line.contains("rows/s") && line.contains("rejected 0"),
        "{line}"
    );
}
