//! Test support: a builder that runs the real `loader` binary, and a throwaway PostgreSQL cluster
//! (the same `loader::pg::local` module the `local` target uses) with a query helper.

pub mod clickhouse;
pub mod docs;
pub mod protocol;
pub mod proxy;
pub mod stream;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use loader::pg::local::{LocalPostgres, Setup};

/// A throwaway cluster for one test, stopped when dropped.
pub struct Pg {
    pub cluster: LocalPostgres,
    /// How [`Pg::client`] connects.
    client_dsn: String,
}

impl Pg {
    pub fn start() -> Pg {
        let cluster = LocalPostgres::start().expect("start a throwaway PostgreSQL");
        Pg {
            client_dsn: cluster.url(),
            cluster,
        }
    }

    /// A cluster with more settings and files; the test client connects through the Unix
    /// socket, which a `pg_hba.conf` refusing plain TCP still lets in.
    pub fn start_with(setup: Setup) -> Pg {
        let cluster = LocalPostgres::start_with(setup).expect("start a throwaway PostgreSQL");
        Pg {
            client_dsn: format!(
                "host={} port={} user=postgres dbname=postgres",
                cluster.socket_dir().display(),
                cluster.port()
            ),
            cluster,
        }
    }

    pub fn url(&self) -> String {
        self.cluster.url()
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.client_dsn, postgres::NoTls)
            .expect("connect to the test cluster")
    }

    /// Runs a query that returns one bigint (cast in SQL as needed).
    pub fn scalar(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }

    /// Runs a query that returns one text value.
    pub fn text(&self, sql: &str) -> String {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }

    pub fn execute(&self, sql: &str) {
        self.client().batch_execute(sql).expect(sql);
    }
}

/// Builds one `loader` invocation.
/// The working directory of every loader the tests run: one scratch directory for the test
/// process, left in the system's temporary directory when it ends.
fn working_directory() -> &'static std::path::Path {
    static DIRECTORY: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIRECTORY
        .get_or_init(|| {
            tempfile::Builder::new()
                .prefix("loader-tests-")
                .tempdir()
                .expect("a scratch working directory")
        })
        .path()
}

pub struct Loader {
    command: Command,
}

impl Loader {
    pub fn new() -> Loader {
        let mut command = Command::new(env!("CARGO_BIN_EXE_loader"));
        // Tests choose their target explicitly; nothing leaks in from the environment.
        for name in [
            "DATABASE_URL",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
            "PGSSLMODE",
            "PGSSLROOTCERT",
        ] {
            command.env_remove(name);
        }
        // A default reject file (rejects-RUN.ndjson) lands in the working directory: never the
        // repository's.
        command.current_dir(working_directory());
        Loader { command }
    }

    pub fn args<I, S>(mut self, args: I) -> Loader
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Loader {
        self.command.env(name, value);
        self
    }

    pub fn arg(mut self, arg: &str) -> Loader {
        self.command.arg(arg);
        self
    }

    pub fn arg_path(mut self, path: &std::path::Path) -> Loader {
        self.command.arg(path);
        self
    }

    /// Adds `prefix` followed by `path` as one argument (as in `file:PATH`).
    pub fn arg_path_prefixed(mut self, prefix: &str, path: &std::path::Path) -> Loader {
        let mut arg = std::ffi::OsString::from(prefix);
        arg.push(path);
        self.command.arg(arg);
        self
    }

    /// Runs to completion, failing the test if it takes longer than `limit`.
    pub fn run_within(mut self, limit: Duration) -> Run {
        let started = Instant::now();
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loader");
        let output = wait_with_limit(child, limit);
        Run {
            output,
            elapsed: started.elapsed(),
        }
    }

    pub fn run(self) -> Run {
        self.run_within(Duration::from_secs(120))
    }

    /// Runs to completion with `input` on standard input.
    pub fn run_with_stdin(self, input: Vec<u8>) -> Run {
        self.run_piped(Stdio::piped(), |child| {
            let mut stdin = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&input);
            })
        })
    }

    /// Runs to completion with standard output a pipe whose read end is closed before the binary
    /// writes to it, as in `loader … | head -0`.
    pub fn run_with_stdout_closed(self) -> Run {
        self.run_piped(Stdio::null(), |child| {
            drop(child.stdout.take());
            std::thread::spawn(|| {})
        })
    }

    /// Runs to completion with `stdin`, stdout and stderr piped; `prepare` acts on the started
    /// child before the wait, and the thread it returns is joined after it.
    fn run_piped(
        mut self,
        stdin: Stdio,
        prepare: impl FnOnce(&mut Child) -> std::thread::JoinHandle<()>,
    ) -> Run {
        let started = Instant::now();
        let mut child = self
            .command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loader");
        let helper = prepare(&mut child);
        let output = wait_with_limit(child, Duration::from_secs(120));
        helper.join().expect("the stdin writer");
        Run {
            output,
            elapsed: started.elapsed(),
        }
    }

    /// Starts without waiting, for tests that signal the process.
    pub fn spawn(self) -> Child {
        self.spawn_with_stdin(Stdio::null())
    }

    /// Starts without waiting, standard input a pipe the test holds open and never writes to
    /// (`child.stdin`): input that has not arrived yet.
    pub fn spawn_with_silent_stdin(self) -> Child {
        self.spawn_with_stdin(Stdio::piped())
    }

    fn spawn_with_stdin(mut self, stdin: Stdio) -> Child {
        self.command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loader")
    }
}

/// Waits for `child`, killing it and failing the test after `limit`, or when its stderr shows a
/// panic: no run of the binary may panic, whatever it was given.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("poll loader").is_some() {
            let output = child.wait_with_output().expect("collect loader output");
            assert_no_panic(&output);
            return output;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect loader output");
            panic!(
                "loader did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fails the test when the binary's stderr shows a panic (a Rust panic message says
/// "panicked at").
pub fn assert_no_panic(output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked at"),
        "loader panicked (exit {:?}):\n{stderr}",
        output.status.code()
    );
}

/// A finished run.
pub struct Run {
    pub output: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output
            .status
            .code()
            .expect("loader exited normally, not by a signal")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts exit code 0, showing the output otherwise.
    pub fn assert_success(&self) -> &Run {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Polls `condition` every 50 ms until it holds, failing the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rows in a table, or 0 while it does not exist yet or the server is away.
pub fn count_or_zero(pg: &Pg, table: &str) -> i64 {
    postgres::Client::connect(&pg.client_dsn, postgres::NoTls)
        .and_then(|mut client| client.query_one(&format!("SELECT count(*) FROM {table}"), &[]))
        .map_or(0, |row| row.get(0))
}

/// Waits up to `limit` for a loader started with [`Loader::spawn`] and asserts it succeeded,
/// showing its stderr otherwise.
pub fn wait_for_success(child: Child, limit: Duration) {
    assert_succeeded(&wait_with_limit(child, limit));
}

/// Asserts that a finished loader exited with 0, showing its stderr otherwise.
pub fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Once `table` holds more than `rows` rows, stops PostgreSQL the hard way (`pg_ctl stop -m
/// immediate`), waits 2 s and starts it again: an outage in the middle of a load.
pub fn outage_after(pg: &Pg, table: &str, rows: i64) {
    wait_until(Duration::from_secs(60), "rows before the outage", || {
        count_or_zero(pg, table) > rows
    });
    pg.cluster
        .kill()
        .expect("stop PostgreSQL with -m immediate");
    std::thread::sleep(Duration::from_secs(2));
    pg.cluster.restart().expect("start PostgreSQL again");
}

/// Asserts that a load through an outage ended well with every `readings` id in `0..rows` exactly
/// once, its report agreeing, and the outage visible as retries.
pub fn assert_loaded_through_outage(pg: &Pg, output: &Output, report_path: &Path, rows: i64) {
    assert_succeeded(output);
    let report = read_report(report_path);
    assert_eq!(report["rows_loaded"], rows, "{report}");
    assert_every_id_once(pg, rows);
    assert!(
        report["retries"].as_object().is_some_and(|r| !r.is_empty()),
        "the outage must show as retries: {report}"
    );
}

/// Asserts that `readings` holds exactly `rows` rows, all with distinct ids.
pub fn assert_every_id_once(pg: &Pg, rows: i64) {
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), rows);
    assert_eq!(pg.scalar("SELECT count(DISTINCT id) FROM readings"), rows);
}

/// A scratch directory for report files and the like.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a scratch directory")
}

/// Reads a JSON report.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read the report");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// `n` as the summary writes it: `10,000`.
pub fn figure(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
