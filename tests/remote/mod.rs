//! `loader copy https://…/file.csv[.gz]`: a URL input streamed from a test server that drops the
//! connection mid-file; the download resumes with a `Range` request from the last byte handed out,
//! and every row lands once on a real PostgreSQL; a load of a URL killed mid-way resumes by its
//! `--run-id` as a file's does.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{
    count_or_zero, read_report, scratch, wait_until, wait_with_limit, Loader, Pg,
};

/// A one-file HTTP/1.1 server on 127.0.0.1: answers `GET` with the body (a `Range: bytes=N-`
/// request with 206 and the rest), and cuts the connection after `cut_after` bytes on each of its
/// first answers. Records the ranges asked for.
struct FlakyServer {
    port: u16,
    ranges: Arc<Mutex<Vec<Option<u64>>>>,
    _thread: JoinHandle<()>,
}

impl FlakyServer {
    fn start(body: Vec<u8>, cuts: Vec<usize>) -> FlakyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ranges);
        let thread = std::thread::spawn(move || {
            let mut cuts = cuts.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut from = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(range) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        from = range.trim().trim_end_matches('-').parse::<u64>().ok();
                    }
                }
                seen.lock().unwrap().push(from);
                let start = from.unwrap_or(0) as usize;
                let rest = &body[start..];
                let head = match from {
                    Some(_) => format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: \
                         bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
                        rest.len(),
                        body.len() - 1,
                        body.len()
                    ),
                    None => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        rest.len()
                    ),
                };
                let _ = stream.write_all(head.as_bytes());
                let sent = cuts.next().map_or(rest.len(), |cut| cut.min(rest.len()));
                let _ = stream.write_all(&rest[..sent]);
                // Dropping the stream closes the connection, mid-body when cut.
            }
        });
        FlakyServer {
            port,
            ranges,
            _thread: thread,
        }
    }
}

#[test]
fn a_url_dropped_twice_mid_file_resumes_with_range_and_loads_every_row_once() {
    let pg = Pg::start();
    let dir = scratch();
    let rows = 200_000u64;
    let mut csv = String::from("id,name,at\n");
    for i in 0..rows {
        let _ = writeln!(csv, "{i},\"name, {i}\",2026-01-01T00:00:{:02}Z", i % 60);
    }
    let body = csv.into_bytes();
    // The first answer (the sniffer's sample, read in full) is whole; the load's first two
    // answers are cut mid-file, mid-record.
    let server = FlakyServer::start(body.clone(), vec![usize::MAX, 1_000_003, 2_000_017]);
    let url = format!("http://127.0.0.1:{}/data/items.csv", server.port);
    let report_path = dir.path().join("r.json");
    Loader::new()
        .args([
            "copy",
            &url,
            "--create",
            "--table",
            "items",
            "--threads",
            "2",
        ])
        .args([
            "--batch",
            "10000",
            "--quiet",
            "--target",
            &pg.url(),
            "--report",
        ])
        .arg_path(&report_path)
        .run()
        .assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM items"), rows as i64);
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT id) FROM items"),
        rows as i64
    );
    assert_eq!(
        pg.scalar("SELECT sum(id) FROM items"),
        (rows * (rows - 1) / 2) as i64
    );
    assert_eq!(
        pg.text("SELECT name FROM items WHERE id = 123456"),
        "name, 123456"
    );
    assert_eq!(read_report(&report_path)["rows_loaded"], rows);
    let ranges = server.ranges.lock().unwrap().clone();
    // The sample, the load's first request, then one resumption from each cut.
    assert_eq!(
        ranges,
        [None, None, Some(1_000_003), Some(3_000_020)],
        "{ranges:?}"
    );
}

#[test]
fn a_url_load_killed_mid_way_resumes_by_run_id_with_every_row_once() {
    let pg = Pg::start();
    let rows = 1_000_000u64;
    let mut csv = String::from("id,name\n");
    for i in 0..rows {
        let _ = writeln!(csv, "{i},row {i}");
    }
    let server = FlakyServer::start(csv.into_bytes(), Vec::new());
    let url = format!("http://127.0.0.1:{}/items.csv", server.port);
    pg.execute("CREATE TABLE items (id bigint, name text)");
    let copy = |extra: &[&str]| {
        Loader::new()
            .args([
                "copy",
                &url,
                "--table",
                "items",
                "--threads",
                "2",
                "--batch",
                "1000",
            ])
            .args(["--quiet", "--run-id", "url-1", "--target", &pg.url()])
            .args(extra)
    };
    let child = copy(&["--commit-every", "4"]).spawn();
    wait_until(Duration::from_secs(60), "a tenth of the rows", || {
        count_or_zero(&pg, "items") > 100_000
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9 loader");
    let _ = wait_with_limit(child, Duration::from_secs(10));
    let after_crash = pg.scalar("SELECT count(*) FROM items");
    assert!(
        after_crash < rows as i64,
        "the kill came too late to test anything"
    );

    copy(&["--resume"]).run().assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM items"), rows as i64);
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT id) FROM items"),
        rows as i64
    );
}
