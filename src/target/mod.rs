//! Target selection: turns `--target` (or the environment) into a [`Target`], fills PostgreSQL
//! connection settings from the libpq variables, and renders every target with secrets redacted.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

mod http;

pub use http::{HttpProtocol, HttpTarget};

use crate::config::ConfigError;

/// Where rows go.
#[derive(Debug, Clone)]
pub enum Target {
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

/// A PostgreSQL connection configuration with a display form that never shows the password.
#[derive(Clone)]
pub struct PgTarget {
    /// Boxed: the driver's config is large and targets are moved around by value.
    config: Box<postgres::Config>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({self})")
    }
}

/// Reads one environment variable; injected so that resolution is testable.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`EnvLookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

const LIBPQ_VARS: [&str; 4] = ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER"];

impl Target {
    /// Resolves `--target`, else `DATABASE_URL`, else the libpq `PG*` variables, else `local`.
    pub fn resolve(arg: Option<&str>, env: EnvLookup<'_>) -> Result<Target, ConfigError> {
        if let Some(text) = arg {
            return Target::parse(text, env);
        }
        if let Some(url) = env("DATABASE_URL") {
            return PgTarget::parse(&url, env).map(Target::Postgres);
        }
        if LIBPQ_VARS.iter().any(|name| env(name).is_some()) {
            return PgTarget::parse("", env).map(Target::Postgres);
        }
        Ok(Target::Local)
    }

    /// Parses one `--target` value.
    pub fn parse(text: &str, env: EnvLookup<'_>) -> Result<Target, ConfigError> {
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

impl PgTarget {
    /// Parses a `postgres://` URL or a key=value DSN, then fills what it leaves out from the
    /// libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD) as libpq would.
    pub fn parse(text: &str, env: EnvLookup<'_>) -> Result<PgTarget, ConfigError> {
        let pgport = env("PGPORT");
        let text_with_port = match &pgport {
            Some(port) => url_with_default_port(text, port),
            None => text.to_string(),
        };
        let mut config =
            postgres::Config::from_str(&text_with_port).map_err(|err| ConfigError::Target {
                target: redact(text),
                reason: format!("not a valid PostgreSQL connection string: {err}"),
            })?;
        if config.get_hosts().is_empty() {
            let hosts = env("PGHOST").unwrap_or_else(|| "localhost".into());
            for host in hosts.split(',') {
                config.host(host);
            }
        }
        if config.get_ports().is_empty() {
            if let Some(port) = pgport {
                let port = port.parse::<u16>().map_err(|_| ConfigError::Target {
                    target: redact(text),
                    reason: format!("PGPORT `{port}` is not a port number"),
                })?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            if let Some(dbname) = env("PGDATABASE") {
                config.dbname(&dbname);
            }
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("loader");
        }
        Ok(PgTarget {
            config: Box::new(config),
        })
    }

    /// Wraps a configuration built in code (the local cluster's).
    pub fn from_config(config: postgres::Config) -> PgTarget {
        PgTarget {
            config: Box::new(config),
        }
    }

    /// The connection settings, password included: hand them to the driver, never print them.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The connection settings, for filling in resolved addresses and timeouts.
    pub fn config_mut(&mut self) -> &mut postgres::Config {
        &mut self.config
    }

    /// The user name the connection authenticates as.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }
}

impl fmt::Display for PgTarget {
    /// `postgres://user@host:port/db`, never with the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        write!(f, "postgres://{}@", config.get_user().unwrap_or("postgres"))?;
        let ports = config.get_ports();
        for (i, host) in config.get_hosts().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match host {
                postgres::config::Host::Tcp(name) => f.write_str(name)?,
                postgres::config::Host::Unix(path) => write!(f, "[{}]", path.display())?,
            }
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            write!(f, ":{port}")?;
        }
        write!(f, "/{}", config.get_dbname().unwrap_or(self.user()))
    }
}

/// Adds `:port` to every host of a `postgres://` URL that names hosts but no port, so that PGPORT
/// applies as in libpq (the driver would otherwise fill in 5432). Other texts are returned as-is.
fn url_with_default_port(text: &str, port: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let names_port = |host: &str| {
        host.rsplit_once(']')
            .map_or(host, |(_, after)| after)
            .contains(':')
    };
    if hosts.is_empty() || hosts.split(',').any(names_port) || tail.contains("port=") {
        return text.to_string();
    }
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|host| format!("{host}:{port}"))
        .collect();
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    format!("{scheme}://{userinfo}{}{tail}", hosts.join(","))
}

/// Removes passwords from a target string: the userinfo password of a URL and `password=…` of a
/// key=value DSN. Used on anything that echoes what the user typed.
pub fn redact(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://") {
        // The userinfo ends at the last `@`: a password may itself hold `/`, `?`, `#` or `@`.
        // Cutting there may hide more than the password in odd URLs, never less.
        if let Some((userinfo, after)) = rest.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                return redact_query_password(&format!("{scheme}://{user}:***@{after}"));
            }
        }
        return redact_query_password(text);
    }
    redact_key_value_password(text)
}

pub(crate) fn redact_query_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("password=") {
        let value_start = start + "password=".len();
        let value_end = rest[value_start..]
            .find('&')
            .map_or(rest.len(), |i| value_start + i);
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

fn redact_key_value_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("password") {
        let after_key = rest[start + "password".len()..].trim_start();
        let Some(value) = after_key.strip_prefix('=') else {
            out.push_str(&rest[..start + "password".len()]);
            rest = &rest[start + "password".len()..];
            continue;
        };
        out.push_str(&rest[..start]);
        out.push_str("password=***");
        let value = value.trim_start();
        let value_len = match value.strip_prefix('\'') {
            Some(quoted) => quoted_value_len(quoted).map_or(value.len(), |len| len + 1),
            None => value.find(char::is_whitespace).unwrap_or(value.len()),
        };
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

/// The length of a single-quoted DSN value after its opening quote, through the closing quote
/// (backslash escapes honoured), or `None` when it is not closed.
fn quoted_value_len(quoted: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        let Target::Postgres(pg) = Target::resolve(None, &env).unwrap() else {
            panic!("PG* variables must select a postgres target")
        };
        assert_eq!(pg.to_string(), "postgres://loader@pg.internal:5433/metrics");
        assert_eq!(pg.config().get_password(), Some(&b"pw"[..]));
        let Target::Postgres(pg) = Target::resolve(Some("postgres://a@b/c"), &env).unwrap() else {
            panic!("a URL is a postgres target")
        };
        assert_eq!(pg.to_string(), "postgres://a@b:5433/c");
    }

    #[test]
    fn database_url_wins_over_libpq_and_local_is_the_default() {
        let env = |name: &str| (name == "DATABASE_URL").then(|| "postgres://x@y/z".to_string());
        assert_eq!(
            Target::resolve(None, &env).unwrap().to_string(),
            "postgres://x@y:5432/z"
        );
        assert!(matches!(Target::resolve(None, &no_env), Ok(Target::Local)));
    }

    #[test]
    fn redaction_covers_urls_and_key_values() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?password=pw&x=1"),
            "postgres://u@h/db?password=***&x=1"
        );
        assert_eq!(
            redact("host=h password=pw user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("host=h password = 'p w' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://u:pa/ss#x@h:bad/db"),
            "postgres://u:***@h:bad/db"
        );
        assert_eq!(
            redact("host=h password='a\\'b c' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(redact("password='unclosed secret"), "password=***");
    }
}
