//! TLS to PostgreSQL, end to end: a throwaway cluster with `ssl=on`, a server certificate for
//! `localhost` (a DNS name only, no IP address) signed by a CA made here, and a `pg_hba.conf`
//! that takes TLS connections over TCP and rejects plain ones, so nothing loads without TLS.
//! Every sslmode is driven through the real binary and checked by counting on the server.

use std::path::PathBuf;
use std::time::Duration;

use loader::pg::local::Setup;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::support::{scratch, Loader, Pg, Run};

const ROWS: i64 = 10_000;

/// A TLS-only cluster, and the PEM file of the CA that signed its certificate.
struct TlsCluster {
    pg: Pg,
    ca_file: PathBuf,
    _dir: TempDir,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let (ca, issuer) = certificate_authority("loader test CA");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &issuer).unwrap();
        let hba = "local all all trust\n\
                   hostssl all app 127.0.0.1/32 scram-sha-256\n\
                   hostssl all all 127.0.0.1/32 trust\n\
                   hostssl all all ::1/128 trust\n\
                   hostnossl all all all reject\n";
        let pg = Pg::start_with(Setup {
            settings: [
                "ssl=on",
                "ssl_cert_file=server.crt",
                "ssl_key_file=server.key",
                // `localhost` may resolve to ::1 first.
                "listen_addresses=127.0.0.1,::1",
            ]
            .map(String::from)
            .to_vec(),
            files: vec![
                ("server.crt".into(), certificate.pem().into_bytes()),
                ("server.key".into(), key.serialize_pem().into_bytes()),
                ("pg_hba.conf".into(), hba.as_bytes().to_vec()),
            ],
        });
        let dir = scratch();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        TlsCluster {
            pg,
            ca_file,
            _dir: dir,
        }
    }

    /// A target on `host` with this query (sslmode, sslrootcert, …) after it.
    fn url(&self, host: &str, query: &str) -> String {
        let port = self.pg.cluster.port();
        format!("postgres://postgres@{host}:{port}/postgres{query}")
    }

    fn ca(&self) -> String {
        self.ca_file.display().to_string()
    }

    /// `loader gen` of ROWS rows into `table` at `target`.
    fn load(&self, target: &str, table: &str) -> Run {
        load(Loader::new(), target, table)
    }

    /// Asserts that `table` holds ids 0..ROWS, each once.
    fn assert_loaded(&self, table: &str) {
        let count = |what: &str| self.pg.scalar(&format!("SELECT {what} FROM {table}"));
        assert_eq!(count("count(*)"), ROWS, "{table}");
        assert_eq!(count("count(DISTINCT id)"), ROWS, "{table}");
    }

    /// Asserts that no load created `table`.
    fn assert_absent(&self, table: &str) {
        assert_eq!(
            self.pg.scalar(&format!(
                "SELECT count(*) FROM pg_class WHERE relname = '{table}'"
            )),
            0,
            "{table} must not exist"
        );
    }
}

/// A self-signed CA: its certificate as PEM, and the issuer that signs with it.
fn certificate_authority(name: &str) -> (String, CertifiedIssuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    (issuer.pem(), issuer)
}

fn load(loader: Loader, target: &str, table: &str) -> Run {
    loader
        .args([
            "gen",
            "--rows",
            "10000",
            "--threads",
            "2",
            "--batch",
            "1000",
        ])
        .args(["--create", "--quiet", "--table", table, "--target", target])
        .run_within(Duration::from_secs(60))
}

/// Asserts a permanent failure (exit 3) reported at once, not after the retry budget, with
/// `expected` in its message.
fn assert_fails_at_once(run: &Run, expected: &str) {
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(
        run.elapsed < Duration::from_secs(10),
        "a TLS failure is not retried: took {:?}\n{stderr}",
        run.elapsed
    );
    assert!(
        !stderr.contains("retry") && !stderr.contains("gave up"),
        "{stderr}"
    );
}

#[test]
fn require_loads_every_row_and_checks_the_chain_when_given_a_root_certificate() {
    let cluster = TlsCluster::start();
    cluster
        .load(
            &cluster.url("127.0.0.1", "?sslmode=require"),
            "plain_require",
        )
        .assert_success();
    cluster.assert_loaded("plain_require");

    // As in libpq, require with sslrootcert verifies the chain (not the name) like verify-ca.
    let query = format!("?sslmode=require&sslrootcert={}", cluster.ca());
    cluster
        .load(&cluster.url("127.0.0.1", &query), "require_ca")
        .assert_success();
    cluster.assert_loaded("require_ca");
    let dir = scratch();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, certificate_authority("another CA").0).unwrap();
    let query = format!("?sslmode=require&sslrootcert={}", other_ca.display());
    let refused = cluster.load(&cluster.url("127.0.0.1", &query), "require_other_ca");
    assert_fails_at_once(&refused, "certificate is not trusted");
    assert!(
        refused.stderr().contains("other-ca.pem"),
        "{}",
        refused.stderr()
    );
    cluster.assert_absent("require_other_ca");
}

#[test]
fn scram_over_tls_binds_the_channel() {
    let cluster = TlsCluster::start();
    cluster.pg.execute(
        "CREATE ROLE app LOGIN PASSWORD 'right-horse-battery'; \
         GRANT CREATE ON SCHEMA public TO app",
    );
    // channel_binding=require fails the login unless SCRAM-SHA-256-PLUS is used over the TLS
    // connection, which needs the server certificate's hash from the TLS layer.
    let port = cluster.pg.cluster.port();
    let target = format!(
        "postgres://app:right-horse-battery@127.0.0.1:{port}/postgres\
         ?sslmode=require&channel_binding=require"
    );
    let run = cluster.load(&target, "bound");
    run.assert_success();
    assert!(!run.stderr().contains("right-horse-battery"));
    cluster.assert_loaded("bound");
}

#[test]
fn verify_full_with_the_ca_loads_every_row_by_host_name() {
    let cluster = TlsCluster::start();
    let query = format!("?sslmode=verify-full&sslrootcert={}", cluster.ca());
    let run = cluster.load(&cluster.url("localhost", &query), "readings");
    run.assert_success();
    cluster.assert_loaded("readings");
    // The host is resolved once (hostaddr), and the name is still what the certificate is
    // checked against: the same with the address given explicitly.
    let dsn = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres \
         sslmode=verify-full sslrootcert='{}'",
        cluster.pg.cluster.port(),
        cluster.ca()
    );
    cluster.load(&dsn, "by_address").assert_success();
    cluster.assert_loaded("by_address");
}

#[test]
fn verify_full_without_the_ca_fails_at_once_naming_the_certificate() {
    let cluster = TlsCluster::start();
    let run = cluster.load(
        &cluster.url("localhost", "?sslmode=verify-full"),
        "readings",
    );
    assert_fails_at_once(&run, "certificate is not trusted");
    assert!(run.stderr().contains("sslrootcert"), "{}", run.stderr());
    cluster.assert_absent("readings");
}

#[test]
fn verify_full_refuses_a_host_the_certificate_does_not_name_and_verify_ca_takes_it() {
    let cluster = TlsCluster::start();
    let query = format!("?sslmode=verify-full&sslrootcert={}", cluster.ca());
    let run = cluster.load(&cluster.url("127.0.0.1", &query), "by_ip");
    assert_fails_at_once(&run, "not valid for name");
    assert!(
        run.stderr().contains("sslmode=verify-ca"),
        "{}",
        run.stderr()
    );
    cluster.assert_absent("by_ip");

    let query = format!("?sslmode=verify-ca&sslrootcert={}", cluster.ca());
    cluster
        .load(&cluster.url("127.0.0.1", &query), "verify_ca")
        .assert_success();
    cluster.assert_loaded("verify_ca");
}

#[test]
fn disable_is_refused_by_a_tls_only_server_and_the_default_prefers_tls() {
    let cluster = TlsCluster::start();
    let run = cluster.load(&cluster.url("127.0.0.1", "?sslmode=disable"), "plain");
    assert_fails_at_once(&run, "no encryption");
    assert!(run.stderr().contains("sslmode=disable"), "{}", run.stderr());
    cluster.assert_absent("plain");

    // No sslmode is prefer: TLS, since the server offers it (and takes nothing else).
    cluster
        .load(&cluster.url("127.0.0.1", ""), "preferred")
        .assert_success();
    cluster.assert_loaded("preferred");
}

#[test]
fn pgsslmode_and_pgsslrootcert_apply_when_the_target_names_neither() {
    let cluster = TlsCluster::start();
    let loader = Loader::new()
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &cluster.ca());
    load(loader, &cluster.url("localhost", ""), "readings").assert_success();
    cluster.assert_loaded("readings");
    // They are the strict ones: without the CA the same load is refused.
    let loader = Loader::new().env("PGSSLMODE", "verify-full");
    let run = load(loader, &cluster.url("localhost", ""), "unverified");
    assert_fails_at_once(&run, "certificate is not trusted");
}

#[test]
fn require_fails_at_once_against_a_server_without_tls() {
    let pg = Pg::start();
    let target = format!("{}?sslmode=require", pg.url());
    let run = load(Loader::new(), &target, "readings");
    assert_fails_at_once(&run, "does not offer TLS");
}

#[test]
fn a_bad_sslmode_or_sslrootcert_is_a_one_line_usage_error() {
    for (target, expected) in [
        (
            "postgres://app:s3cret@127.0.0.1:1/db?sslmode=verify_full",
            "sslmode `verify_full` is not one of disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "host=127.0.0.1 password=s3cret sslmode=verify-ca sslrootcert=/nonexistent/ca.pem",
            "cannot read sslrootcert /nonexistent/ca.pem",
        ),
        (
            "postgres://app:s3cret@127.0.0.1:1/db?sslmode=verify-ca",
            "sslmode=verify-ca needs sslrootcert=PATH",
        ),
    ] {
        let run = load(Loader::new(), target, "readings");
        let stderr = run.stderr();
        assert_eq!(run.code(), 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}
