//! Target selection: turns `--target` (repeated, or a comma list of URLs), `DATABASE_URL` or the
//! libpq variables into a [`Target`], and renders every target with secrets redacted.

use std::fmt;
use std::path::PathBuf;

mod http;

pub(crate) use http::{HttpProtocol, HttpTarget};

use crate::conninfo::redact;
use crate::pg::PgTarget;
use crate::usage::{ConfigError, EnvLookup};

/// Where rows go.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A throwaway PostgreSQL started from the machine's own binaries.
    Local,
    /// Discard rows: measures the generator alone.
    Null,
    /// Write rows to standard output.
    Stdout,
    /// Write rows to a file.
    File(PathBuf),
    /// A PostgreSQL server (or anything that speaks its wire protocol).
    Postgres(PgTarget),
    /// CrateDB, Elasticsearch, OpenSearch, ClickHouse or an NDJSON endpoint over HTTP.
    Http(HttpTarget),
}

const LIBPQ_VARS: [&str; 4] = ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER"];

impl Target {
    /// Resolves `--target` (repeated, or a comma list of URLs: the hosts of one target), else
    /// `DATABASE_URL`, else the libpq `PG*` variables, else `local`.
    pub(crate) fn resolve(args: &[String], env: EnvLookup<'_>) -> Result<Target, ConfigError> {
        let urls: Vec<&str> = args.iter().flat_map(|arg| split_url_list(arg)).collect();
        if let Some((first, rest)) = urls.split_first() {
            let mut target = Target::parse(first, env)?;
            for text in rest {
                let invalid = |reason: String| ConfigError::Target {
                    target: redact(text),
                    reason,
                };
                match (&mut target, Target::parse(text, env)?) {
                    (Target::Http(http), Target::Http(other)) => http
                        .add_hosts(other)
                        .map_err(|err| invalid(err.to_string()))?,
                    (Target::Postgres(_), Target::Postgres(_)) => {
                        return Err(invalid(
                            "name the hosts of one PostgreSQL target in one URL, as in \
                             postgres://h1:5432,h2:5432/db"
                                .into(),
                        ))
                    }
                    _ => {
                        return Err(invalid(
                            "several targets must be the hosts of one HTTP or PostgreSQL target"
                                .into(),
                        ))
                    }
                }
            }
            return target.with_distinct_hosts(&redact(&args.join(" ")));
        }
        if let Some(url) = env("DATABASE_URL") {
            return PgTarget::parse(&url, env).map(Target::Postgres);
        }
        if LIBPQ_VARS.iter().any(|name| env(name).is_some()) {
            return PgTarget::parse("", env).map(Target::Postgres);
        }
        Ok(Target::Local)
    }

    /// Refuses a target that names one host twice: rows per host and the settlement of batches
    /// moved between hosts tell hosts apart by name.
    fn with_distinct_hosts(self, text: &str) -> Result<Target, ConfigError> {
        let names: Vec<String> = match &self {
            Target::Postgres(pg) => (0..pg.config().get_hosts().len())
                .map(|i| pg.host_name(i))
                .collect(),
            Target::Http(http) => http.hosts().to_vec(),
            _ => Vec::new(),
        };
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(ConfigError::Target {
                    target: text.to_string(),
                    reason: format!(
                        "names the host {name} twice; give each host once (workers spread over \
                         the hosts evenly)"
                    ),
                });
            }
        }
        Ok(self)
    }

    /// Parses one `--target` value.
    pub(crate) fn parse(text: &str, env: EnvLookup<'_>) -> Result<Target, ConfigError> {
        let text = text.trim();
        match text {
            "local" => return Ok(Target::Local),
            "null" => return Ok(Target::Null),
            "-" => return Ok(Target::Stdout),
            _ => {}
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(ConfigError::Target {
                    target: text.into(),
                    reason: "file: needs a path, as in file:rows.csv".into(),
                });
            }
            return Ok(Target::File(PathBuf::from(path)));
        }
        if let Some(http) = HttpTarget::parse(text) {
            return http.map(Target::Http);
        }
        let scheme = text.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("postgres" | "postgresql") => PgTarget::parse(text, env).map(Target::Postgres),
            None if text.contains('=') => PgTarget::parse(text, env).map(Target::Postgres),
            _ => Err(ConfigError::Target {
                target: redact(text),
                reason: "expected postgres://…, a key=value DSN, crate+http(s)://…, \
                         es+http(s)://…, opensearch+http(s)://…, clickhouse+http(s)://…, \
                         http(s)://…, local, null, - or file:PATH"
                    .into(),
            }),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local => f.write_str("local"),
            Target::Null => f.write_str("null"),
            Target::Stdout => f.write_str("-"),
            Target::File(path) => write!(f, "file:{}", path.display()),
            Target::Postgres(pg) => pg.fmt(f),
            Target::Http(http) => http.fmt(f),
        }
    }
}

/// Splits `a://x,b://y` into its URLs; a comma not followed by a URL (`postgres://h1,h2/db`, a
/// key=value DSN) stays inside its URL.
fn split_url_list(text: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in text.match_indices(',') {
        let next = &text[comma + 1..];
        // RFC 3986: a scheme is a letter, then letters, digits, `+`, `-` or `.`.
        let starts_url = next.split_once("://").is_some_and(|(scheme, _)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        if starts_url {
            urls.push(&text[start..comma]);
            start = comma + 1;
        }
    }
    urls.push(&text[start..]);
    urls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::tls::SslMode;

    use std::path::Path;

    use std::time::Duration;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn keywords_and_files() {
        assert!(matches!(Target::parse("local", &no_env), Ok(Target::Local)));
        assert!(matches!(Target::parse("null", &no_env), Ok(Target::Null)));
        assert!(matches!(Target::parse("-", &no_env), Ok(Target::Stdout)));
        assert!(
            matches!(Target::parse("file:/tmp/x.csv", &no_env), Ok(Target::File(p)) if p == Path::new("/tmp/x.csv"))
        );
        assert!(Target::parse("file:", &no_env).is_err());
        assert!(Target::parse("nonsense", &no_env).is_err());
        assert!(matches!(
            Target::parse("crate+http://h:4200", &no_env),
            Ok(Target::Http(_))
        ));
    }

    #[test]
    fn url_and_key_value_dsns_display_without_password() {
        let target = Target::parse("postgres://bob:s3cret@db.example:6543/app", &no_env).unwrap();
        assert_eq!(target.to_string(), "postgres://bob@db.example:6543/app");
        let target =
            Target::parse("host=h port=7 user=u password=s3cret dbname=d", &no_env).unwrap();
        assert_eq!(target.to_string(), "postgres://u@h:7/d");
    }

    /// Found by the `target` fuzz target: the driver cut this password at its first `@` and took
    /// the rest for the host, which the target's display then showed.
    #[test]
    fn a_url_password_holding_an_at_sign_must_be_percent_encoded() {
        let text = "postgres://u:Ħ@ĦßĦĦÞÆÆ@b,h/db";
        let message = Target::parse(text, &no_env).unwrap_err().to_string();
        assert!(message.contains("percent-encoded (%40)"), "{message}");
        assert!(!message.contains(['Ħ', 'ß', 'Þ', 'Æ']), "{message}");
        let encoded = "postgres://u:Ħ%40ĦßĦĦÞÆÆ@b,h/db";
        let Ok(Target::Postgres(pg)) = Target::parse(encoded, &no_env) else {
            panic!("an encoded `@` is fine")
        };
        assert_eq!(pg.to_string(), "postgres://u@b:5432,h:5432/db");
        assert_eq!(pg.config().get_password(), Some("Ħ@ĦßĦĦÞÆÆ".as_bytes()));
        // An `@` the driver would read as the end of a user that is not there is refused too;
        // one in the query after a user is read right and allowed.
        for misread in [
            "postgres://h/db?password=s@cret",
            "postgres:///db?user=al@corp",
        ] {
            assert!(Target::parse(misread, &no_env).is_err(), "{misread}");
        }
        let Ok(Target::Postgres(pg)) =
            Target::parse("postgres://u:p@h/db?application_name=me@box", &no_env)
        else {
            panic!("an `@` in the query after the user's is fine")
        };
        assert_eq!(pg.config().get_application_name(), Some("me@box"));
    }

    #[test]
    fn repeated_targets_and_url_lists_are_the_hosts_of_one_target() {
        let resolve = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(ToString::to_string).collect();
            Target::resolve(&args, &no_env)
        };
        let both = "crate+http://h1:4200 crate+http://h2:4200,h3:4200";
        for args in [
            &both.split(' ').collect::<Vec<_>>()[..],
            &["crate+http://h1:4200,crate+http://h2:4200,h3:4200"],
        ] {
            let Ok(Target::Http(http)) = resolve(args) else {
                panic!("one HTTP target from {args:?}")
            };
            assert_eq!(http.hosts(), ["h1:4200", "h2:4200", "h3:4200"]);
        }
        let Ok(Target::Postgres(pg)) = resolve(&["postgres://u@h1,h2:7/db"]) else {
            panic!("one PostgreSQL target")
        };
        assert_eq!(pg.split_hosts().len(), 2);
        let Ok(Target::Http(http)) = resolve(&["http://c:8080/in?tags=a,b&cb=http://x"]) else {
            panic!("a comma in the query is not a second URL")
        };
        assert_eq!(http.hosts(), ["c:8080"]);
        let message = |args: &[&str]| resolve(args).unwrap_err().to_string();
        assert!(message(&["postgres://h1:5432,h1:5432/db"]).contains("twice"));
        assert!(message(&["crate+http://h1", "crate+http://h1"]).contains("twice"));
        assert!(message(&["host=a,b,c port=1,2"]).contains("3 hosts but 2 ports"));
        assert!(message(&["postgres://h1/db", "postgres://h2/db"]).contains("in one URL"));
        assert!(message(&["crate+http://h1", "postgres://h2/db"]).contains("several targets"));
        assert!(message(&["crate+http://h1", "es+http://h2"]).contains("more than its host"));
    }

    #[test]
    fn a_multi_host_url_splits_into_one_target_per_host() {
        let Target::Postgres(target) = Target::parse(
            "postgres://bob:pw@h1:5432,h2:6543/app?connect_timeout=3&application_name=x",
            &no_env,
        )
        .unwrap() else {
            panic!("a PostgreSQL target")
        };
        assert_eq!(target.to_string(), "postgres://bob@h1:5432,h2:6543/app");
        let hosts = target.split_hosts();
        let shown: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["postgres://bob@h1:5432/app", "postgres://bob@h2:6543/app"]
        );
        let second = hosts[1].config();
        assert_eq!(second.get_password(), Some(&b"pw"[..]));
        assert_eq!(second.get_application_name(), Some("x"));
        assert_eq!(second.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(hosts[1].host_name(0), "h2:6543");
    }

    #[test]
    fn libpq_variables_fill_the_gaps() {
        let env = |name: &str| match name {
            "PGHOST" => Some("pg.internal".to_string()),
            "PGPORT" => Some("5433".to_string()),
            "PGUSER" => Some("loader".to_string()),
            "PGDATABASE" => Some("metrics".to_string()),
            "PGPASSWORD" => Some("pw".to_string()),
            _ => None,
        };
        let Target::Postgres(pg) = Target::resolve(&[], &env).unwrap() else {
            panic!("PG* variables must select a postgres target")
        };
        assert_eq!(pg.to_string(), "postgres://loader@pg.internal:5433/metrics");
        assert_eq!(pg.config().get_password(), Some(&b"pw"[..]));
        let Target::Postgres(pg) = Target::resolve(&["postgres://a@b/c".into()], &env).unwrap()
        else {
            panic!("a URL is a postgres target")
        };
        assert_eq!(pg.to_string(), "postgres://a@b:5433/c");
    }

    #[test]
    fn database_url_wins_over_libpq_and_local_is_the_default() {
        let env = |name: &str| (name == "DATABASE_URL").then(|| "postgres://x@y/z".to_string());
        assert_eq!(
            Target::resolve(&[], &env).unwrap().to_string(),
            "postgres://x@y:5432/z"
        );
        assert!(matches!(Target::resolve(&[], &no_env), Ok(Target::Local)));
    }

    #[test]
    fn sslmode_is_shown_and_kept_per_host_and_the_password_is_not() {
        let pg = |text: &str, env: EnvLookup<'_>| match Target::parse(text, env).unwrap() {
            Target::Postgres(pg) => pg,
            other => panic!("{other} is not PostgreSQL"),
        };
        let target = pg(
            "postgres://bob:s3cret@h1,h2/app?sslmode=require&application_name=x",
            &no_env,
        );
        assert_eq!(
            target.to_string(),
            "postgres://bob@h1:5432,h2:5432/app?sslmode=require"
        );
        assert_eq!(target.tls().mode(), SslMode::Require);
        assert_eq!(target.config().get_password(), Some(&b"s3cret"[..]));
        assert_eq!(target.config().get_application_name(), Some("x"));
        for host in target.split_hosts() {
            assert!(host.to_string().ends_with("/app?sslmode=require"), "{host}");
            assert_eq!(
                host.config().get_ssl_mode(),
                postgres::config::SslMode::Require
            );
        }
        let target = pg(
            "host=h user=u password='s3 cret' sslmode=verify-full dbname=d",
            &no_env,
        );
        assert_eq!(
            target.to_string(),
            "postgres://u@h:5432/d?sslmode=verify-full"
        );
        assert_eq!(target.config().get_password(), Some(&b"s3 cret"[..]));

        // The default is prefer (not shown); PGSSLMODE applies when the text names no sslmode.
        let plain = pg("postgres://u@h/d", &no_env);
        assert_eq!(plain.tls().mode(), SslMode::Prefer);
        assert_eq!(plain.to_string(), "postgres://u@h:5432/d");
        let env = |name: &str| (name == "PGSSLMODE").then(|| "disable".to_string());
        assert_eq!(pg("postgres://u@h/d", &env).tls().mode(), SslMode::Disable);
        assert_eq!(
            pg("postgres://u@h/d?sslmode=require", &env).tls().mode(),
            SslMode::Require
        );
        assert_eq!(
            pg("host=h sslmode=verify-full", &env).tls().mode(),
            SslMode::VerifyFull
        );
    }

    #[test]
    fn a_bad_sslmode_or_sslrootcert_is_one_line_naming_it_without_the_password() {
        let message =
            |text: &str, env: EnvLookup<'_>| Target::parse(text, env).unwrap_err().to_string();
        let bad = message("postgres://u:s3cret@h/d?sslmode=verify_full", &no_env);
        assert_eq!(
            bad,
            "target `postgres://u:***@h/d?sslmode=verify_full`: sslmode `verify_full` is not \
             one of disable, prefer, require, verify-ca or verify-full"
        );
        let env = |name: &str| (name == "PGSSLMODE").then(|| "allow".to_string());
        assert!(message("host=h password=s3cret", &env).ends_with(
            ": PGSSLMODE `allow` is not one of disable, prefer, require, verify-ca or verify-full"
        ));
        let unreadable = message(
            "host=h password=s3cret sslmode=verify-ca sslrootcert=/nonexistent/ca.pem",
            &no_env,
        );
        assert!(
            unreadable.contains("cannot read sslrootcert /nonexistent/ca.pem"),
            "{unreadable}"
        );
        let env = |name: &str| (name == "PGSSLROOTCERT").then(|| "/nonexistent/root.crt".into());
        let unreadable = message("postgres://u:s3cret@h/d?sslmode=require", &env);
        assert!(
            unreadable.contains("cannot read sslrootcert /nonexistent/root.crt"),
            "{unreadable}"
        );
        for text in [bad, unreadable] {
            assert!(!text.contains("s3cret") && !text.contains('\n'), "{text}");
        }
    }
}
