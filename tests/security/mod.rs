//! Security end to end: table names that need quoting (and names that try SQL injection) stay
//! names, and a password given in a URL, a file or the environment appears in no byte of what
//! loader writes: standard output, standard error, the report in each format, the reject file.

use std::path::Path;

use crate::support::{scratch, Loader, Pg};

const PASSWORD: &str = "oyster-lantern-9137";

/// A cluster where the role `app` must give [`PASSWORD`] (scram-sha-256) and may create tables.
fn cluster_with_password() -> Pg {
    let pg = Pg::start();
    pg.execute(&format!(
        "CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'; GRANT CREATE ON SCHEMA public TO app"
    ));
    std::fs::write(
        pg.cluster.data_dir().join("pg_hba.conf"),
        "host all app 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\nlocal all all trust\n",
    )
    .unwrap();
    pg.execute("SELECT pg_reload_conf()");
    pg
}

/// Every byte of every file in `dir`, as text.
fn files_in(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

/// `name` as a quoted SQL identifier, written here independently of loader's own quoting.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[test]
fn table_names_that_need_quoting_load_and_injections_stay_names() {
    let pg = Pg::start();
    pg.execute(
        "CREATE SCHEMA \"Sensor Data\"; CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)",
    );
    let names = [
        "Sensor Data.Readings \"2026\" Q1",
        "readings; DROP TABLE victim; --",
        "x\" (id) VALUES (1); DROP TABLE victim; --",
    ];
    for table in names {
        let run = Loader::new()
            .args(["--rows", "10000", "--threads", "2", "--batch", "1000"])
            .args(["--create", "--table", table, "--target", &pg.url()])
            .run();
        run.assert_success();
        let (schema, name) = table.split_once('.').unwrap_or(("public", table));
        let count = format!(
            "SELECT count(DISTINCT id) FROM {}.{}",
            quoted(schema),
            quoted(name)
        );
        assert_eq!(pg.scalar(&count), 10_000, "{table}");
        for method in ["copy-binary", "copy-text", "insert"] {
            let copy = Loader::new()
                .args(["copy", "--header", "--method", method, "--table", table])
                .args(["--target", &pg.url()])
                .run_with_stdin(b"id,sensor_id\n20000,7\n".to_vec());
            copy.assert_success();
        }
        assert_eq!(pg.scalar(&count), 10_001, "{table} after copy");
    }
    assert_eq!(
        pg.scalar("SELECT count(*) FROM victim"),
        1,
        "the victim table survives"
    );
}

#[test]
fn no_byte_written_holds_the_password_from_a_url_a_file_or_the_environment() {
    let pg = cluster_with_password();
    let port = pg.cluster.port();
    let dir = scratch();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    pg.execute("CREATE TABLE readings (id bigint, sensor_id int); GRANT ALL ON readings TO app");
    let csv = b"id,sensor_id\n1,10\n2,not-a-number\n3,30\n".to_vec();
    let with_password = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/postgres");
    let without = format!("postgres://app@127.0.0.1:{port}/postgres");
    let wrong = format!("postgres://app:{PASSWORD}-wrong@127.0.0.1:{port}/postgres");

    // (name, target, password file, PGPASSWORD, report format, exit code)
    let runs = [
        ("url", &with_password, None, None, "json", 1),
        ("file", &without, Some(&password_file), None, "csv", 1),
        ("env", &without, None, Some(PASSWORD), "md", 1),
        ("wrong", &wrong, None, None, "json", 3),
    ];
    let mut loaded = 0;
    for (name, url, file, env, format, expected_code) in runs {
        let out = dir.path().join(name);
        std::fs::create_dir(&out).unwrap();
        let mut loader = Loader::new()
            .args([
                "copy",
                "--header",
                "--table",
                "readings",
                "--target",
                url.as_str(),
            ])
            .arg("--reject-file")
            .arg_path(&out.join("rejects.ndjson"))
            .arg("--report")
            .arg_path(&out.join(format!("report.{format}")));
        if let Some(file) = file {
            loader = loader.arg("--password-file").arg_path(file);
        }
        if let Some(password) = env {
            loader = loader.env("PGPASSWORD", password);
        }
        let run = loader.run_with_stdin(csv.clone());
        assert_eq!(run.code(), expected_code, "{name}: {}", run.stderr());
        if expected_code == 1 {
            loaded += 2;
            assert!(
                out.join("rejects.ndjson").is_file(),
                "{name}: a reject file"
            );
        }
        let everything = format!("{}{}{}", run.stdout(), run.stderr(), files_in(&out));
        assert!(
            everything.contains("app@127.0.0.1"),
            "{name}: the target is named: {everything}"
        );
        assert!(
            !everything.contains(PASSWORD),
            "{name}: the password leaked: {everything}"
        );
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), loaded);
}
