//! A PostgreSQL target: [`PgTarget`], a `postgres://` URL or a key=value DSN filled from the
//! libpq variables as libpq would, with the TLS settings libpq knows and the driver does not
//! (`sslmode`, `sslrootcert`) taken out first, split into one target per host, and displayed
//! without its password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::tls::{PgTls, SslMode};
use crate::conninfo::{dsn_pair, percent_decode, redact};
use crate::usage::{ConfigError, EnvLookup};

/// A PostgreSQL connection configuration with a display form that never shows the password.
#[derive(Clone)]
pub(crate) struct PgTarget {
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
    pub(crate) fn parse(text: &str, env: EnvLookup<'_>) -> Result<PgTarget, ConfigError> {
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
    pub(crate) fn from_config(config: postgres::Config) -> PgTarget {
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
    pub(crate) fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The connection settings, for filling in resolved addresses and timeouts.
    pub(crate) fn config_mut(&mut self) -> &mut postgres::Config {
        &mut self.config
    }

    /// How connections use TLS.
    pub(crate) fn tls(&self) -> &PgTls {
        &self.tls
    }

    /// The user name the connection authenticates as.
    pub(crate) fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    /// One target per host it names, in order, each with that host's port (and address, once
    /// resolved) and every other setting of this one.
    pub(crate) fn split_hosts(&self) -> Vec<PgTarget> {
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
    pub(crate) fn host_name(&self, i: usize) -> String {
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
                !self.keep(&percent_decode(key), percent_decode(value))
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
        PgTls::new(mode, root_cert.map(PathBuf::from)).map_err(|err| err.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
