//! HTTP targets: `crate+http(s)://`, `es+http(s)://`, `opensearch+http(s)://`,
//! `clickhouse+http(s)://` and plain `http(s)://` (NDJSON POST), parsed into an [`HttpTarget`]
//! that keeps the credentials apart from the URL and never displays the password.

use std::fmt;

use crate::conninfo::{percent_decode, redact, redact_query_password};
use crate::usage::ConfigError;

/// Which protocol an HTTP target speaks: CrateDB's `/_sql` with `bulk_args`, the `_bulk` NDJSON
/// of Elasticsearch and OpenSearch, ClickHouse's `INSERT … FORMAT JSONEachRow`, or plain NDJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpProtocol {
    /// CrateDB: `POST /_sql` with `stmt` and `bulk_args`.
    Crate,
    /// Elasticsearch: `POST /_bulk`.
    Elasticsearch,
    /// OpenSearch: `POST /_bulk`.
    OpenSearch,
    /// ClickHouse: `INSERT … FORMAT JSONEachRow` over its HTTP interface.
    ClickHouse,
    /// Any endpoint taking NDJSON in a POST body.
    Ndjson,
}

impl HttpProtocol {
    /// The scheme prefix before `+http(s)` (empty for plain HTTP).
    fn prefix(self) -> &'static str {
        match self {
            HttpProtocol::Crate => "crate+",
            HttpProtocol::Elasticsearch => "es+",
            HttpProtocol::OpenSearch => "opensearch+",
            HttpProtocol::ClickHouse => "clickhouse+",
            HttpProtocol::Ndjson => "",
        }
    }
}

/// An HTTP target: where to send, how, and as whom.
#[derive(Clone)]
pub(crate) struct HttpTarget {
    pub protocol: HttpProtocol,
    /// `http` or `https`.
    transport: String,
    /// `host[:port]` of each host, in the order given.
    hosts: Vec<String>,
    /// The path after the host, without a trailing slash (often empty).
    path: String,
    /// The query string of the target URL, if any (for ClickHouse: `database=…`, settings).
    pub query: Option<String>,
    pub user: Option<String>,
    password: Option<String>,
}

impl fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpTarget({self})")
    }
}

impl HttpTarget {
    /// Parses `scheme://[user[:password]@]host[:port][/path][?query]` for an HTTP scheme; `None`
    /// when the scheme is not an HTTP one.
    pub(crate) fn parse(text: &str) -> Option<Result<HttpTarget, ConfigError>> {
        let (scheme, rest) = text.split_once("://")?;
        let (protocol, transport) = match scheme.split_once('+') {
            Some(("crate", transport)) => (HttpProtocol::Crate, transport),
            Some(("es" | "elasticsearch", transport)) => (HttpProtocol::Elasticsearch, transport),
            Some(("opensearch", transport)) => (HttpProtocol::OpenSearch, transport),
            Some(("clickhouse", transport)) => (HttpProtocol::ClickHouse, transport),
            None => (HttpProtocol::Ndjson, scheme),
            Some(_) => return None,
        };
        if !matches!(transport, "http" | "https") {
            return None;
        }
        let invalid = |reason: &str| ConfigError::Target {
            target: redact(text),
            reason: reason.into(),
        };
        // The authority ends at the first `/`, `?` or `#` (RFC 3986): a user name or password
        // holding one of them must be percent-encoded, or the rest would be taken for the host.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        // An `@` after the authority leaves it unclear where the password ends: refused, so that
        // no part of a password is taken for the host, path or query (and shown with them).
        if rest.contains('@') {
            return Some(Err(invalid(
                "a user name or password holding `/`, `?`, `#` or `@`, or a path or query \
                 holding `@`, must be percent-encoded (%2F, %3F, %23, %40)",
            )));
        }
        let rest = rest.split('#').next().unwrap_or("");
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (rest, None),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        let hosts: Vec<String> = host.split(',').map(str::to_string).collect();
        if hosts
            .iter()
            .any(|host| host.is_empty() || host.contains(char::is_whitespace))
        {
            return Some(Err(invalid(
                "the URL names no host, or an empty one in its list",
            )));
        }
        let (user, password) = match userinfo.map(|info| info.split_once(':').unwrap_or((info, "")))
        {
            Some((user, password)) => (
                Some(percent_decode(user)).filter(|user| !user.is_empty()),
                Some(percent_decode(password)).filter(|password| !password.is_empty()),
            ),
            None => (None, None),
        };
        Some(Ok(HttpTarget {
            protocol,
            transport: transport.to_string(),
            hosts,
            path: path.trim_end_matches('/').to_string(),
            query,
            user,
            password,
        }))
    }

    /// `http(s)://host:port/path` of host `host`, without credentials, query or trailing slash.
    pub(crate) fn base_url(&self, host: usize) -> String {
        format!("{}://{}{}", self.transport, self.hosts[host], self.path)
    }

    /// `host:port` of each host.
    pub(crate) fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// This target with host `host` alone.
    pub(crate) fn single_host(&self, host: usize) -> HttpTarget {
        HttpTarget {
            hosts: vec![self.hosts[host].clone()],
            ..self.clone()
        }
    }

    /// This target without the hosts at `left_out`.
    pub(crate) fn without_hosts(&self, left_out: &[usize]) -> HttpTarget {
        let hosts = self.hosts.iter().enumerate();
        HttpTarget {
            hosts: hosts
                .filter(|(i, _)| !left_out.contains(i))
                .map(|(_, host)| host.clone())
                .collect(),
            ..self.clone()
        }
    }

    /// Adds the hosts of `other`, a target that differs from this one in its hosts only.
    pub(crate) fn add_hosts(&mut self, other: HttpTarget) -> Result<(), DifferentTargets> {
        let same = self.protocol == other.protocol
            && self.transport == other.transport
            && self.path == other.path
            && self.query == other.query
            && self.user == other.user
            && self.password == other.password;
        if !same {
            return Err(DifferentTargets {
                other: other.to_string(),
                target: self.to_string(),
            });
        }
        self.hosts.extend(other.hosts);
        Ok(())
    }

    /// The password, for the Authorization header only: never print it.
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Sets the user and password from `--user`, a password file or the environment, where the URL
    /// gave none.
    pub(crate) fn fill_credentials(&mut self, user: Option<String>, password: Option<String>) {
        if user.is_some() {
            self.user = user;
        }
        if password.is_some() {
            self.password = password;
        }
    }
}

/// Hosts that cannot join a target: the URL they came in differs from the target's in more than
/// its hosts (both as displayed, without their passwords).
#[derive(Debug, thiserror::Error)]
#[error(
    "{other} differs from {target} in more than its host; the hosts of one target take the same \
     scheme, path, query and credentials"
)]
pub(crate) struct DifferentTargets {
    other: String,
    target: String,
}

impl fmt::Display for HttpTarget {
    /// The URL with the user but never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}://", self.protocol.prefix(), self.transport)?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}{}", self.hosts.join(","), self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{}", redact_query_password(query))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> HttpTarget {
        HttpTarget::parse(text).unwrap().unwrap()
    }

    #[test]
    fn schemes_credentials_and_display() {
        let target = parse("clickhouse+http://bob:s%40cret@127.0.0.1:8123/?database=db");
        assert_eq!(target.protocol, HttpProtocol::ClickHouse);
        assert_eq!(target.base_url(0), "http://127.0.0.1:8123");
        assert_eq!(target.query.as_deref(), Some("database=db"));
        assert_eq!(target.user.as_deref(), Some("bob"));
        assert_eq!(target.password(), Some("s@cret"));
        assert_eq!(
            target.to_string(),
            "clickhouse+http://bob@127.0.0.1:8123?database=db"
        );
        assert_eq!(parse("crate+https://h:4200").protocol, HttpProtocol::Crate);
        assert_eq!(parse("es+http://h:9200/").base_url(0), "http://h:9200");
        assert_eq!(
            parse("opensearch+http://h").protocol,
            HttpProtocol::OpenSearch
        );
        assert_eq!(parse("https://h/ingest").protocol, HttpProtocol::Ndjson);
        assert!(HttpTarget::parse("postgres://h/db").is_none());
        assert!(HttpTarget::parse("crate+ftp://h").is_none());
        assert!(HttpTarget::parse("http:///path").unwrap().is_err());
        let encoded = parse("http://u:p%2Fa%40ss@h:1/x%40y?user=u&password=hunter2&password=x");
        assert_eq!(encoded.password(), Some("p/a@ss"));
        assert_eq!(encoded.base_url(0), "http://h:1/x%40y");
        assert_eq!(
            encoded.to_string(),
            "http://u@h:1/x%40y?user=u&password=***&password=***"
        );
        assert!(HttpTarget::parse("crate+http://bob:pa?ss@h:1")
            .unwrap()
            .is_err());
    }

    /// Found by the `target` fuzz target: the authority ended at the first `?` of this password,
    /// so `ĦßßĦĦĦĦ` (its middle) became the host and was shown with the target.
    #[test]
    fn an_at_sign_after_the_authority_is_refused() {
        let text = "opensearch+http://u:Ħßß@ĦßßĦĦĦĦ??@h/db";
        let Some(Err(err)) = HttpTarget::parse(text) else {
            panic!("refused")
        };
        let message = err.to_string();
        assert!(message.contains("%40"), "{message}");
        assert!(!message.contains(['Ħ', 'ß']), "{message}");
        assert!(HttpTarget::parse("http://u:p@h:1/x@y").unwrap().is_err());
    }

    #[test]
    fn several_hosts_in_one_url_or_merged() {
        let mut target = parse("crate+http://u:pw@h1:4200,h2:4200/x");
        assert_eq!(target.hosts(), ["h1:4200", "h2:4200"]);
        assert_eq!(target.base_url(1), "http://h2:4200/x");
        target
            .add_hosts(parse("crate+http://u:pw@h3:4200/x"))
            .unwrap();
        assert_eq!(
            target.to_string(),
            "crate+http://u@h1:4200,h2:4200,h3:4200/x"
        );
        assert!(target.add_hosts(parse("es+http://u:pw@h4:9200/x")).is_err());
        assert!(target
            .add_hosts(parse("crate+http://u:other@h4:4200/x"))
            .is_err());
        assert!(HttpTarget::parse("crate+http://h1:4200,/x")
            .unwrap()
            .is_err());
    }
}
