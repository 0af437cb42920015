//! What every ureq agent of `loader` shares, the HTTP sinks' and the probe users': the TLS
//! settings (built-in roots, a `--ca-file`, or `--insecure`), and a host resolved once.
//!
//! ureq's default resolver starts a thread for every request whenever a timeout is set, even for
//! an IP address and on a kept-alive connection. [`ResolvedHost`] looks the host up once, when the
//! agent is made, and answers from that afterwards (so a DNS change during a run is not followed).
//! With a proxy from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) the proxy resolves
//! the target, and ureq's own resolver is used.

use std::net::ToSocketAddrs;
use std::path::Path;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Proxy};

/// The TLS settings of an agent: the built-in roots, or the CA certificates of `ca_file`; no
/// verification at all with `insecure`.
pub fn tls_config(ca_file: Option<&Path>, insecure: bool) -> Result<TlsConfig, String> {
    let mut tls = TlsConfig::builder().disable_verification(insecure);
    if let Some(path) = ca_file {
        let certificates: Vec<_> = crate::pem::read_certificates(path, "--ca-file")?
            .iter()
            .map(|certificate| Certificate::from_der(certificate).to_owned())
            .collect();
        tls = tls.root_certs(RootCerts::new_with_certs(&certificates));
    }
    Ok(tls.build())
}

/// The addresses of one `host:port`, looked up once.
#[derive(Debug, Clone)]
pub struct ResolvedHost {
    host_and_port: String,
    /// None when a proxy from the environment resolves the host.
    addresses: Option<ResolvedSocketAddrs>,
}

impl ResolvedHost {
    /// Looks up the host of `uri` (its port, or the scheme's), unless a proxy will.
    pub fn resolve(uri: &Uri) -> Result<ResolvedHost, String> {
        let host_and_port = host_and_port(uri)
            .ok_or_else(|| format!("{uri} has no host, or no port and no http(s) scheme"))?;
        if Proxy::try_from_env().is_some() {
            return Ok(ResolvedHost {
                host_and_port,
                addresses: None,
            });
        }
        let found = host_and_port
            .to_socket_addrs()
            .map_err(|err| format!("cannot resolve {host_and_port}: {err}"))?;
        let mut addresses = DefaultResolver::default().empty();
        for address in found {
            if addresses.try_push(address).is_err() {
                break;
            }
        }
        if addresses.is_empty() {
            return Err(format!("{host_and_port} resolves to no address"));
        }
        Ok(ResolvedHost {
            host_and_port,
            addresses: Some(addresses),
        })
    }

    /// An agent with `config` that connects to these addresses.
    pub fn agent(&self, config: Config) -> Agent {
        Agent::with_parts(config, DefaultConnector::default(), self.clone())
    }
}

impl Resolver for ResolvedHost {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match &self.addresses {
            Some(addresses) if host_and_port(uri).as_ref() == Some(&self.host_and_port) => {
                Ok(addresses.clone())
            }
            _ => DefaultResolver::default().resolve(uri, config, timeout),
        }
    }
}

/// `host:port` of `uri`, the port defaulting to the scheme's.
fn host_and_port(uri: &Uri) -> Option<String> {
    let port = uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(format!("{}:{port}", uri.host()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_once_and_answers_for_its_host_only() {
        let uri: Uri = "http://127.0.0.1:8123/x?y=1".parse().unwrap();
        let host = ResolvedHost::resolve(&uri).unwrap();
        assert_eq!(host.host_and_port, "127.0.0.1:8123");
        assert_eq!(host.addresses.map(|found| found.len()), Some(1));
        let https: Uri = "https://[::1]/".parse().unwrap();
        assert_eq!(
            ResolvedHost::resolve(&https).unwrap().host_and_port,
            "[::1]:443"
        );
        let relative: Uri = "/path".parse().unwrap();
        assert!(ResolvedHost::resolve(&relative).is_err());
    }
}
