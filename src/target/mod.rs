//! Target selection: turns `--target` (or the environment) into a [`Target`], fills PostgreSQL
//! connection settings from the libpq variables, takes out the TLS settings libpq knows and the
//! driver does not (`sslmode`, `sslrootcert`), and renders every target with secrets redacted.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

mod http;

pub use http::{HttpProtocol, HttpTarget};

use crate::config::ConfigError;
use crate::pg::tls::{PgTls, SslMode};

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
    /// Its `ssl_mode` is always `tls.driver_mode()`.
    tls: PgTls,
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
    /// Resolves `--target` (repeated, or a comma list of URLs: the hosts of one target), else
    /// `DATABASE_URL`, else the libpq `PG*` variables, else `local`.
    pub fn resolve(args: &[String], env: EnvLookup<'_>) -> Result<Target, ConfigError> {
        let urls: Vec<&str> = args.iter().flat_map(|arg| split_url_list(arg)).collect();
        if let Some((first, rest)) = urls.split_first() {
            let mut target = Target::parse(first, env)?;
            for text in rest {
                let invalid = |reason: String| ConfigError::Target {
                    target: redact(text),
                    reason,
                };
                match (&mut target, Target::parse(text, env)?) {
                    (Target::Http(http), Target::Http(other)) => {
                        http.add_hosts(other).map_err(invalid)?
                    }
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

/// Whether the driver would take part of a `postgres://` URL for the host: it ends the user and
/// password at the first `@` anywhere after the scheme, so an `@` in the path or query with no
/// user before it (`/db?user=alice@corp`), or a second `@` in the authority (a password holding
/// one), moves the rest into the host, shown in every message naming the target. An `@` in the
/// path or query after a user's `@` is read correctly and allowed.
fn misread_at_sign(text: &str) -> bool {
    let Some(rest) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
    else {
        return false;
    };
    let Some(at) = rest.find('@') else {
        return false;
    };
    let authority_end = |part: &str| part.find(['/', '?']).unwrap_or(part.len());
    let after = &rest[at + 1..];
    authority_end(rest) < at || after[..authority_end(after)].contains('@')
}

impl PgTarget {
    /// Parses a `postgres://` URL or a key=value DSN, then fills what it leaves out from the
    /// libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE,
    /// PGSSLROOTCERT) as libpq would, and builds its TLS settings.
    pub fn parse(text: &str, env: EnvLookup<'_>) -> Result<PgTarget, ConfigError> {
        let invalid = |reason: String| ConfigError::Target {
            target: redact(text),
            reason,
        };
        if misread_at_sign(text) {
            return Err(invalid(
                "holds an `@` the driver would misread (it ends the user and password at the \
                 first `@`); a user name, password, database or parameter holding `@` must be \
                 percent-encoded (%40)"
                    .into(),
            ));
        }
        let (driver_text, tls_keys) = TlsKeys::take(text);
        let pgport = env("PGPORT");
        let text_with_port = match &pgport {
            Some(port) => url_with_default_port(&driver_text, port),
            None => driver_text,
        };
        let mut config = postgres::Config::from_str(&text_with_port)
            .map_err(|err| invalid(format!("not a valid PostgreSQL connection string: {err}")))?;
        if config.get_hosts().is_empty() {
            let hosts = env("PGHOST").unwrap_or_else(|| "localhost".into());
            for host in hosts.split(',') {
                config.host(host);
            }
        }
        if config.get_ports().is_empty() {
            if let Some(port) = pgport {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid(format!("PGPORT `{port}` is not a port number")))?;
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
        let hosts = config.get_hosts().len();
        let (ports, addresses) = (config.get_ports().len(), config.get_hostaddrs().len());
        if ports > 1 && ports != hosts || addresses > 0 && addresses != hosts {
            return Err(invalid(format!(
                "names {hosts} hosts but {ports} ports and {addresses} hostaddrs; give one \
                 port for all hosts or one per host, and one hostaddr per host or none"
            )));
        }
        Ok(PgTarget::new(
            config,
            tls_keys.into_tls(env).map_err(invalid)?,
        ))
    }

    /// Wraps a configuration built in code (the local cluster's), without TLS.
    pub fn from_config(config: postgres::Config) -> PgTarget {
        PgTarget::new(config, PgTls::disabled())
    }

    fn new(mut config: postgres::Config, tls: PgTls) -> PgTarget {
        config.ssl_mode(tls.driver_mode());
        PgTarget {
            config: Box::new(config),
            tls,
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

    /// How connections use TLS.
    pub fn tls(&self) -> &PgTls {
        &self.tls
    }

    /// The user name the connection authenticates as.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    /// One target per host it names, in order, each with that host's port (and address, once
    /// resolved) and every other setting of this one.
    pub fn split_hosts(&self) -> Vec<PgTarget> {
        let config = &self.config;
        let (hosts, ports, addresses) = (
            config.get_hosts(),
            config.get_ports(),
            config.get_hostaddrs(),
        );
        (0..hosts.len())
            .map(|i| {
                let mut single = postgres::Config::new();
                match &hosts[i] {
                    postgres::config::Host::Tcp(name) => single.host(name),
                    postgres::config::Host::Unix(path) => single.host_path(path),
                };
                if let Some(port) = ports.get(i).or(ports.first()) {
                    single.port(*port);
                }
                if let Some(address) = addresses.get(i) {
                    single.hostaddr(*address);
                }
                if let Some(user) = config.get_user() {
                    single.user(user);
                }
                if let Some(password) = config.get_password() {
                    single.password(password);
                }
                if let Some(dbname) = config.get_dbname() {
                    single.dbname(dbname);
                }
                if let Some(options) = config.get_options() {
                    single.options(options);
                }
                if let Some(name) = config.get_application_name() {
                    single.application_name(name);
                }
                if let Some(timeout) = config.get_connect_timeout() {
                    single.connect_timeout(*timeout);
                }
                if let Some(timeout) = config.get_tcp_user_timeout() {
                    single.tcp_user_timeout(*timeout);
                }
                single
                    .ssl_negotiation(config.get_ssl_negotiation())
                    .channel_binding(config.get_channel_binding())
                    .target_session_attrs(config.get_target_session_attrs())
                    .keepalives(config.get_keepalives())
                    .keepalives_idle(config.get_keepalives_idle());
                if let Some(interval) = config.get_keepalives_interval() {
                    single.keepalives_interval(interval);
                }
                if let Some(retries) = config.get_keepalives_retries() {
                    single.keepalives_retries(retries);
                }
                PgTarget::new(single, self.tls.clone())
            })
            .collect()
    }

    /// `host:port` of host `i` (`[socket dir]:port` for a Unix socket): a host's name in
    /// messages and the report.
    pub fn host_name(&self, i: usize) -> String {
        let config = &self.config;
        let ports = config.get_ports();
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        match &config.get_hosts()[i] {
            postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            postgres::config::Host::Unix(path) => format!("[{}]:{port}", path.display()),
        }
    }
}

impl fmt::Display for PgTarget {
    /// `postgres://user@host:port/db`, never with the password, and `?sslmode=…` when it is not
    /// the default `prefer`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        write!(f, "postgres://{}@", config.get_user().unwrap_or("postgres"))?;
        for i in 0..config.get_hosts().len() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&self.host_name(i))?;
        }
        write!(f, "/{}", config.get_dbname().unwrap_or(self.user()))?;
        match self.tls.mode() {
            SslMode::Prefer => Ok(()),
            mode => write!(f, "?sslmode={mode}"),
        }
    }
}

/// `sslmode` and `sslrootcert` as a connection string gives them. libpq knows them; the driver
/// takes only three sslmodes and refuses unknown keys, so they are taken out before it parses.
#[derive(Debug, Default, PartialEq)]
struct TlsKeys {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl TlsKeys {
    /// Takes the keys out of a URL's query or a key=value DSN; returns the rest of `text`, for
    /// the driver (a part it would refuse is left in, for it to say so).
    fn take(text: &str) -> (String, TlsKeys) {
        let mut keys = TlsKeys::default();
        // The driver's own test: anything else is a key=value DSN.
        let rest = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            keys.take_from_url(text)
        } else {
            keys.take_from_dsn(text)
        };
        (rest, keys)
    }

    /// Keeps `value` when `key` is one of ours (a later one wins, as in libpq); says whether it was.
    fn keep(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            _ => return false,
        };
        *slot = Some(value);
        true
    }

    /// The query starts at the first `?` after the user info, which ends at the first `@` (as
    /// the driver reads it); keys and values are percent-decoded.
    fn take_from_url(&mut self, url: &str) -> String {
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let after_user = after_scheme + url[after_scheme..].find('@').map_or(0, |i| i + 1);
        let Some(query_start) = url[after_user..].find('?').map(|i| after_user + i) else {
            return url.to_string();
        };
        let kept: Vec<&str> = url[query_start + 1..]
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                !self.keep(&http::percent_decode(key), http::percent_decode(value))
            })
            .collect();
        let base = &url[..query_start];
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    }

    /// Pairs are `key = value`, spaces around `=` allowed; values as [`dsn_value`] reads them.
    fn take_from_dsn(&mut self, dsn: &str) -> String {
        let mut kept = Vec::new();
        let mut rest = dsn.trim_start();
        while !rest.is_empty() {
            let Some((pair_len, key, value)) = dsn_pair(rest) else {
                kept.push(rest);
                break;
            };
            if !self.keep(key, value) {
                kept.push(&rest[..pair_len]);
            }
            rest = rest[pair_len..].trim_start();
        }
        kept.join(" ")
    }

    /// Falls back on PGSSLMODE and PGSSLROOTCERT, as libpq does, and builds the TLS settings;
    /// the error names the value and the accepted ones, or the unreadable file.
    fn into_tls(self, env: EnvLookup<'_>) -> Result<PgTls, String> {
        let (source, mode) = match self.sslmode {
            Some(mode) => ("sslmode", Some(mode)),
            None => ("PGSSLMODE", env("PGSSLMODE")),
        };
        let mode = match mode {
            Some(text) => SslMode::parse(&text)
                .ok_or_else(|| format!("{source} `{text}` is not one of {}", SslMode::ACCEPTED))?,
            None => SslMode::default(),
        };
        let root_cert = self.sslrootcert.or_else(|| env("PGSSLROOTCERT"));
        PgTls::new(mode, root_cert.map(PathBuf::from))
    }
}

/// The `key=value` pair at the start of a DSN: its length, its key and its value unescaped;
/// None when it is malformed.
fn dsn_pair(text: &str) -> Option<(usize, &str, String)> {
    let key_len = text
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(text.len());
    let after_equals = text[key_len..].trim_start().strip_prefix('=')?.trim_start();
    let value_start = text.len() - after_equals.len();
    let (value_len, value) = dsn_value(after_equals)?;
    Some((value_start + value_len, &text[..key_len], value))
}

/// The value at the start of `text` in a key=value DSN, as libpq reads it: single-quoted, or a
/// word up to whitespace, with backslash escapes in both. Returns its length in `text` and its
/// unescaped content; None for an unclosed quote.
fn dsn_value(text: &str) -> Option<(usize, String)> {
    let quoted = text.starts_with('\'');
    let mut value = String::new();
    let mut chars = text.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            '\'' if quoted => return Some((i + 1, value)),
            c if c.is_whitespace() && !quoted => return Some((i, value)),
            c => value.push(c),
        }
    }
    (!quoted).then_some((text.len(), value))
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
        let value_len = dsn_value(value).map_or(value.len(), |(len, _)| len);
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(
            redact("host=h password=se\\ cret user=u"),
            "host=h password=*** user=u"
        );
    }

    fn keys(sslmode: Option<&str>, sslrootcert: Option<&str>) -> TlsKeys {
        TlsKeys {
            sslmode: sslmode.map(String::from),
            sslrootcert: sslrootcert.map(String::from),
        }
    }

    #[test]
    fn tls_keys_are_taken_out_of_url_queries() {
        assert_eq!(
            TlsKeys::take(
                "postgres://u:p@h:5/db?application_name=x&sslmode=verify-full\
                 &sslrootcert=%2Ftmp%2Fmy%20ca.pem&connect_timeout=3"
            ),
            (
                "postgres://u:p@h:5/db?application_name=x&connect_timeout=3".to_string(),
                keys(Some("verify-full"), Some("/tmp/my ca.pem"))
            )
        );
        assert_eq!(
            TlsKeys::take("postgres://h/db?sslmode=require&sslmode=disable"),
            ("postgres://h/db".to_string(), keys(Some("disable"), None))
        );
        // A `?` in the password is not the query, which starts after the user info.
        assert_eq!(
            TlsKeys::take("postgres://u:a?b@h/db?sslmode=disable"),
            (
                "postgres://u:a?b@h/db".to_string(),
                keys(Some("disable"), None)
            )
        );
        assert_eq!(
            TlsKeys::take("postgres://h/db"),
            ("postgres://h/db".to_string(), keys(None, None))
        );
    }

    #[test]
    fn tls_keys_are_taken_out_of_key_value_dsns_with_libpq_quoting() {
        assert_eq!(
            TlsKeys::take(
                "host=h sslmode = 'verify-ca' password='a b\\'c' \
                 sslrootcert=/tmp/my\\ ca.pem dbname=d"
            ),
            (
                "host=h password='a b\\'c' dbname=d".to_string(),
                keys(Some("verify-ca"), Some("/tmp/my ca.pem"))
            )
        );
        assert_eq!(
            TlsKeys::take("host=h 'junk' sslmode=require"),
            (
                "host=h 'junk' sslmode=require".to_string(),
                keys(None, None)
            ),
            "a malformed pair and what follows are left for the driver to refuse"
        );
        assert_eq!(
            TlsKeys::take("host=h sslmode='unclosed"),
            ("host=h sslmode='unclosed".to_string(), keys(None, None))
        );
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
