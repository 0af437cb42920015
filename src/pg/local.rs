//! The `local` target: a throwaway PostgreSQL cluster started from the machine's own binaries on a
//! free loopback port, with durability off (it exists to be loaded and thrown away). The test suite
//! starts its clusters with this same module.
//!
//! initdb refuses to run as root, so as root every server command runs as the `postgres` system
//! user (`runuser -u postgres --`) on a data directory that user owns.
//!
//! Tests that need a particular server ([`Setup`]: TLS on, a stricter `pg_hba.conf`) start it
//! with more settings and files in its data directory.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::PgTarget;

/// Server settings of a throwaway cluster. `fsync=off` makes commits cheap yet still survives a
/// crash of the server (the kernel holds the data), only not a crash of the machine.
/// `synchronous_commit=off` is deliberately absent: it loses acknowledged commits when the server
/// crashes, which would break the exactness the fault tests check.
const SERVER_SETTINGS: &[&str] = &[
    "fsync=off",
    "full_page_writes=off",
    "shared_buffers=256MB",
    "max_wal_size=4GB",
    "max_connections=300",
];

/// What a cluster starts with beyond [`SERVER_SETTINGS`].
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// More server settings, each `name=value` without spaces; a later one wins.
    pub settings: Vec<String>,
    /// Files written into the data directory before the server first starts, by name (a
    /// `pg_hba.conf` replaces initdb's): mode 0600 and owned by the server's user, as PostgreSQL
    /// wants a private key.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Why the local cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "no PostgreSQL server binaries found (looked at `pg_config --bindir` and \
         /usr/lib/postgresql/*/bin); install them with `apt-get install -y postgresql`, or give \
         --target"
    )]
    NoBinaries,
    #[error("running as root needs the `postgres` system user to own the throwaway cluster; install the postgresql package or run loader as another user")]
    NoPostgresUser,
    #[error("{step} failed: {detail}")]
    Command { step: String, detail: String },
    #[error("cannot prepare the cluster directory: {0}")]
    Io(#[from] std::io::Error),
}

/// A running throwaway PostgreSQL cluster. Stop it with [`LocalPostgres::stop`]; dropping it stops
/// it too (a safety net for tests that fail midway), or [`LocalPostgres::keep`] leaves it running.
#[derive(Debug)]
pub struct LocalPostgres {
    bindir: PathBuf,
    dir: Option<TempDir>,
    port: u16,
    as_postgres_user: bool,
    /// [`Setup::settings`], kept for restarts.
    settings: Vec<String>,
}

impl LocalPostgres {
    /// Creates a cluster in a new temporary directory and starts it on a free port.
    pub fn start() -> Result<LocalPostgres, LocalError> {
        LocalPostgres::start_with(Setup::default())
    }

    /// Like [`LocalPostgres::start`], with more settings and files.
    pub fn start_with(setup: Setup) -> Result<LocalPostgres, LocalError> {
        let bindir = find_bindir().ok_or(LocalError::NoBinaries)?;
        let cluster = LocalPostgres::in_new_directory(bindir, setup.settings)?;
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        for (name, contents) in &setup.files {
            cluster.write_private(name, contents)?;
        }
        cluster.start_on_a_free_port()
    }

    /// Starts a streaming standby of this cluster on a free port, with `settings` beyond the
    /// usual ones: a copy made with `pg_basebackup -R`, which connects back for the WAL. For
    /// tests of a primary that waits for its standby (`synchronous_standby_names`).
    pub fn start_standby(&self, settings: Vec<String>) -> Result<LocalPostgres, LocalError> {
        let standby = LocalPostgres::in_new_directory(self.bindir.clone(), settings)?;
        let data = standby.data_dir();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                path_str(&data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        )?;
        standby.start_on_a_free_port()
    }

    /// A cluster not yet started, in a new temporary directory that the server's user owns.
    fn in_new_directory(
        bindir: PathBuf,
        settings: Vec<String>,
    ) -> Result<LocalPostgres, LocalError> {
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new().prefix("loader-pg-").tempdir()?;
        if as_postgres_user {
            let (uid, gid) = postgres_user_ids().ok_or(LocalError::NoPostgresUser)?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        Ok(LocalPostgres {
            bindir,
            dir: Some(dir),
            port: 0,
            as_postgres_user,
            settings,
        })
    }

    /// Starts the server on a free port: one can be taken between probing and binding, so a few
    /// are tried.
    fn start_on_a_free_port(mut self) -> Result<LocalPostgres, LocalError> {
        let mut last_error = None;
        for _ in 0..5 {
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(self),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or(LocalError::NoBinaries))
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres://` URL for the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The connection settings, as a target.
    pub(crate) fn target(&self) -> PgTarget {
        let mut config = postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .application_name("loader");
        PgTarget::from_config(config)
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.root()
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    /// The command that stops the cluster, for people.
    pub(crate) fn stop_command(&self) -> String {
        let pg_ctl = self.bindir.join("pg_ctl");
        let command = format!("{} -D {} stop", pg_ctl.display(), self.data_dir().display());
        if self.as_postgres_user {
            format!("runuser -u postgres -- {command}")
        } else {
            command
        }
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`); for fault tests.
    pub fn kill(&self) -> Result<(), LocalError> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        )
    }

    /// Starts the server again on the same port after [`LocalPostgres::kill`].
    pub fn restart(&self) -> Result<(), LocalError> {
        self.pg_ctl_start()
    }

    /// Stops the server and removes its directory.
    pub fn stop(mut self) -> Result<(), LocalError> {
        self.shut_down()
    }

    /// Leaves the server running and its directory in place; returns the directory.
    pub(crate) fn keep(mut self) -> PathBuf {
        self.dir.take().map(TempDir::keep).unwrap_or_default()
    }

    fn shut_down(&mut self) -> Result<(), LocalError> {
        if self.dir.is_none() {
            return Ok(());
        }
        let data = self.data_dir();
        let stopped = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
        );
        if let Some(dir) = self.dir.take() {
            dir.close()?;
        }
        stopped
    }

    fn root(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), TempDir::path)
    }

    fn pg_ctl_start(&self) -> Result<(), LocalError> {
        let data = self.data_dir();
        let log = self.root().join("server.log");
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            path_str(self.root())
        );
        for setting in SERVER_SETTINGS
            .iter()
            .copied()
            .chain(self.settings.iter().map(String::as_str))
        {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .map_err(|err| match fs::read_to_string(&log) {
            Ok(text) if !text.trim().is_empty() => LocalError::Command {
                step: "starting the local PostgreSQL".into(),
                detail: text.lines().rev().take(3).collect::<Vec<_>>().join(" / "),
            },
            _ => err,
        })
    }

    /// Writes a file into the data directory that only the server's user can read.
    fn write_private(&self, name: &str, contents: &[u8]) -> Result<(), LocalError> {
        let path = self.data_dir().join(name);
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?
            .write_all(contents)?;
        if self.as_postgres_user {
            let (uid, gid) = postgres_user_ids().ok_or(LocalError::NoPostgresUser)?;
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Runs one of the cluster's binaries, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), LocalError> {
        let binary = self.bindir.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        // The server must not share our process group's Ctrl-C; pg_ctl detaches it (setsid).
        let output: Output = command.args(args).current_dir(self.root()).output()?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        Err(LocalError::Command {
            step: format!("{program} {}", args.first().copied().unwrap_or_default()),
            detail: format!("{} {}", stderr.trim(), stdout.trim())
                .trim()
                .to_string(),
        })
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        // Best effort only: callers that care about teardown errors call `stop`.
        let _ = self.shut_down();
    }
}

/// The directory of `initdb`, `pg_ctl` and `postgres`: `pg_config --bindir` when it has them,
/// else the newest /usr/lib/postgresql/*/bin.
pub(crate) fn find_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|dir| has_server(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn postgres_user_ids() -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name("postgres").ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

fn free_port() -> Result<u16, LocalError> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
