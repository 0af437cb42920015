//! A throwaway ClickHouse server for one test: Debian's `clickhouse-server` started from a minimal
//! config (HTTP and TCP ports free on 127.0.0.1, data in a scratch directory, the `default` user
//! without a password, its queries logged in `system.query_log`), as the `clickhouse` user when the tests run as root, killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server.
const SERVER: &str = "/usr/sbin/clickhouse-server";

pub struct ClickHouse {
    child: Child,
    pub http_port: u16,
    dir: tempfile::TempDir,
}

/// Two distinct free ports: both are held while the second is chosen.
fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("a free port");
    let (first, second) = (bind(), bind());
    let port = |listener: &TcpListener| listener.local_addr().expect("a bound port").port();
    (port(&first), port(&second))
}

/// Starts tried before a test gives up: a port taken by another test's server between its choice
/// and the server's bind makes the server exit, and the next start picks other ports.
const STARTS: u32 = 3;

impl ClickHouse {
    pub fn start() -> ClickHouse {
        assert!(
            PathBuf::from(SERVER).exists(),
            "{SERVER} is missing: install it with `apt-get install -y clickhouse-server` (.ci/run does)"
        );
        let mut failures = Vec::new();
        for _ in 0..STARTS {
            match ClickHouse::try_start() {
                Ok(server) => return server,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("clickhouse-server did not start: {}", failures.join("; "));
    }

    fn try_start() -> Result<ClickHouse, String> {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let (http_port, tcp_port) = free_ports();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::write(
            root.join("config.xml"),
            format!(
                "<?xml version=\"1.0\"?><yandex>\
                 <logger><level>warning</level><console>true</console></logger>\
                 <http_port>{http_port}</http_port><tcp_port>{tcp_port}</tcp_port>\
                 <listen_host>127.0.0.1</listen_host>\
                 <path>{0}/data/</path><tmp_path>{0}/tmp/</tmp_path>\
                 <users_config>users.xml</users_config>\
                 <default_profile>default</default_profile>\
                 <default_database>default</default_database>\
                 <mark_cache_size>268435456</mark_cache_size>\
                 <query_log><database>system</database><table>query_log</table>\
                 <flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>\
                 </yandex>",
                root.display()
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("users.xml"),
            "<?xml version=\"1.0\"?><yandex><profiles><default><log_queries>1</log_queries></default></profiles>\
             <users><default><password></password><networks><ip>127.0.0.1</ip></networks>\
             <profile>default</profile><quota>default</quota></default></users>\
             <quotas><default></default></quotas></yandex>",
        )
        .unwrap();
        let as_root = nix::unistd::Uid::effective().is_root();
        let mut command = if as_root {
            let status = Command::new("chown")
                .args(["-R", "clickhouse:clickhouse"])
                .arg(root)
                .status()
                .expect("chown the scratch directory");
            assert!(status.success());
            let mut command = Command::new("runuser");
            command.args(["-u", "clickhouse", "--", SERVER]);
            command
        } else {
            Command::new(SERVER)
        };
        let child = command
            .arg(format!(
                "--config-file={}",
                root.join("config.xml").display()
            ))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server");
        let mut server = ClickHouse {
            child,
            http_port,
            dir,
        };
        let started = Instant::now();
        while server.query("SELECT 1").is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "it exited ({status}) with ports {http_port} and {tcp_port}"
                ));
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "clickhouse-server did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("clickhouse+http://127.0.0.1:{}", self.http_port)
    }

    /// Runs `sql` and returns the answer's text, or the error's.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let mut answer = ureq::post(format!("http://127.0.0.1:{}/", self.http_port))
            .config()
            .http_status_as_error(false)
            .build()
            .send(sql)
            .map_err(|err| err.to_string())?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .read_to_string()
            .map_err(|err| err.to_string())?;
        if status == 200 {
            Ok(text.trim().to_string())
        } else {
            Err(text)
        }
    }

    /// Runs a query that returns one number.
    pub fn scalar(&self, sql: &str) -> i64 {
        let text = self.query(sql).unwrap_or_else(|err| panic!("{sql}: {err}"));
        text.parse()
            .unwrap_or_else(|_| panic!("{sql}: not a number: {text}"))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        // As root the server is runuser's child: stop it by its unique config path.
        let config = self.dir.path().join("config.xml");
        let _ = Command::new("pkill")
            .args(["-9", "-f", "--"])
            .arg(format!("config-file={}", config.display()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
