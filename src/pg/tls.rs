//! TLS to PostgreSQL with libpq's `sslmode` semantics, on rustls with the ring provider that ureq
//! already compiles in, through `tokio-postgres-rustls` (which also gives SCRAM its channel
//! binding). A target's [`PgTls`] is built once, when the target is parsed on main; every
//! connection of every worker shares its `ClientConfig` through an `Arc`.
//!
//! | sslmode | TLS | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | none |
//! | `require` | always | none; with `sslrootcert`, the chain as under `verify-ca` (as libpq) |
//! | `verify-ca` | always | the chain, against `sslrootcert` or the built-in (webpki) roots |
//! | `verify-full` | always | the chain, and the target's host name (not its resolved address) |
//!
//! The handshake's signatures are verified in every mode, so the server holds the key of the
//! certificate it shows; without a chain check, that certificate may still be anyone's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::{CancelToken, Client, NoTls};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgTarget;
use crate::pem::PemError;
use crate::tls::ChainOnly;

/// libpq's `sslmode` (all but `allow`, which the driver cannot do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The accepted values, for messages.
    pub(crate) const ACCEPTED: &'static str = "disable, prefer, require, verify-ca or verify-full";

    /// The mode `text` names, as libpq spells it.
    pub(crate) fn parse(text: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|mode| mode.as_str() == text)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a target's TLS settings cannot be used: one line naming the setting or the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    #[error("cannot set up TLS: {0}")]
    Protocols(rustls::Error),
    #[error(
        "sslmode=verify-ca needs sslrootcert=PATH, the CA the server's certificate must chain to \
         (without it any public CA would do and no host name is checked); use verify-full to rely \
         on the built-in roots"
    )]
    VerifyCaWithoutRoot,
    #[error(transparent)]
    RootCertFile(#[from] PemError),
    #[error("sslrootcert {} holds a certificate that cannot be used: {err}", path.display())]
    UnusableRootCert { path: PathBuf, err: rustls::Error },
}

/// How one target uses TLS: its mode, its root certificate file, and (unless disabled) the
/// connector built from them once, which every connection clones (an `Arc` inside).
#[derive(Clone)]
pub(crate) struct PgTls {
    mode: SslMode,
    root_cert: Option<PathBuf>,
    connector: Option<MakeRustlsConnect>,
}

impl PgTls {
    /// Reads `root_cert` (when the mode uses it) and builds the connector; the error is one line
    /// naming the file.
    pub(crate) fn new(mode: SslMode, root_cert: Option<PathBuf>) -> Result<PgTls, TlsSetupError> {
        let connector = match mode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(client_config(
                mode,
                root_cert.as_deref(),
            )?)),
        };
        Ok(PgTls {
            mode,
            root_cert,
            connector,
        })
    }

    /// Plain TCP: the throwaway local cluster, which serves no TLS.
    pub(crate) fn disabled() -> PgTls {
        PgTls {
            mode: SslMode::Disable,
            root_cert: None,
            connector: None,
        }
    }

    pub(crate) fn mode(&self) -> SslMode {
        self.mode
    }

    /// What the driver itself decides: whether to ask for TLS, and whether a server that says no
    /// is refused. The certificate checks of the stricter modes are the connector's.
    pub(crate) fn driver_mode(&self) -> postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        }
    }

    /// Opens one connection with `config`, whose `ssl_mode` is [`PgTls::driver_mode`].
    pub(crate) fn connect(&self, config: &postgres::Config) -> Result<Client, postgres::Error> {
        match &self.connector {
            Some(connector) => config.connect(connector.clone()),
            None => config.connect(NoTls),
        }
    }

    /// Asks the server to cancel what the connection of `token` runs, over a new connection that
    /// uses TLS as the first did.
    pub(crate) fn cancel(&self, token: &CancelToken) -> Result<(), postgres::Error> {
        match &self.connector {
            Some(connector) => token.cancel_query(connector.clone()),
            None => token.cancel_query(NoTls),
        }
    }
}

/// The rustls settings of `mode`: the standard verifier for verify-full, [`ChainOnly`] for the
/// rest. Built on the ring provider explicitly, so nothing depends on a process-wide default.
fn client_config(mode: SslMode, root_cert: Option<&Path>) -> Result<ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Protocols)?;
    let builder = match (mode, root_cert) {
        // As libpq: a chain to any public CA, with no name checked, would vouch for anyone.
        (SslMode::VerifyCa, None) => return Err(TlsSetupError::VerifyCaWithoutRoot),
        (SslMode::VerifyFull, _) => builder.with_root_certificates(roots(root_cert)?),
        (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly {
                roots: Some(Arc::new(roots(root_cert)?)),
                algorithms,
            })),
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly {
                roots: None,
                algorithms,
            })),
    };
    Ok(builder.with_no_client_auth())
}

/// The CA certificates of `root_cert`, else the built-in (webpki, Mozilla's) roots.
fn roots(root_cert: Option<&Path>) -> Result<RootCertStore, TlsSetupError> {
    let Some(path) = root_cert else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut roots = RootCertStore::empty();
    for certificate in crate::pem::read_certificates(path, "sslrootcert")? {
        roots
            .add(certificate)
            .map_err(|err| TlsSetupError::UnusableRootCert {
                path: path.to_path_buf(),
                err,
            })?;
    }
    Ok(roots)
}

/// A failed TLS setup worded with its fix, or None when `err` is something else. Every such
/// failure is permanent: a refused certificate or a server without TLS stays so on a retry.
pub(super) fn failure(err: &postgres::Error, target: &PgTarget) -> Option<String> {
    let Some(refused) = rustls_cause(err) else {
        // The driver's words when the server answers the TLS request with no.
        let no_tls = std::error::Error::source(err)
            .is_some_and(|cause| cause.to_string() == "server does not support TLS");
        return no_tls.then(|| {
            format!(
                "{target} does not offer TLS, which sslmode={} requires; turn ssl on at the \
                 server, or use sslmode=prefer",
                target.tls().mode
            )
        });
    };
    let fix = match refused {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            match &target.tls().root_cert {
                Some(path) => format!(
                    "the server's certificate is not trusted: no CA in sslrootcert {} signed \
                     it; give the CA that did",
                    path.display()
                ),
                None => "the server's certificate is not trusted by the built-in roots; give its \
                         CA with sslrootcert=PATH (or PGSSLROOTCERT)"
                    .into(),
            }
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => match target.tls().root_cert {
            Some(_) => format!(
                "{refused}; connect by a host name the certificate holds, or use sslmode=verify-ca"
            ),
            None => format!("{refused}; connect by a host name the certificate holds"),
        },
        rustls::Error::InvalidCertificate(_) => {
            format!("the server's certificate was refused: {refused}")
        }
        _ => refused.to_string(),
    };
    Some(format!("TLS with {target} failed: {fix}"))
}

/// The rustls error in `err`'s causes: tokio-rustls hands it up inside an `io::Error`.
fn rustls_cause(err: &postgres::Error) -> Option<&rustls::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if let Some(refused) = cause
            .downcast_ref::<rustls::Error>()
            .or_else(|| inner.and_then(|inner| inner.downcast_ref::<rustls::Error>()))
        {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_spells_them() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse(mode.as_str()), Some(mode));
            assert!(SslMode::ACCEPTED.contains(mode.as_str()));
        }
        for text in ["allow", "VERIFY-FULL", "verify_full", ""] {
            assert_eq!(SslMode::parse(text), None, "{text}");
        }
        assert_eq!(SslMode::default(), SslMode::Prefer);
    }

    #[test]
    fn the_driver_asks_for_tls_unless_disabled_and_insists_above_prefer() {
        use postgres::config::SslMode as Driver;
        let driver = |mode| PgTls::new(mode, None).unwrap().driver_mode();
        assert_eq!(driver(SslMode::Disable), Driver::Disable);
        assert_eq!(driver(SslMode::Prefer), Driver::Prefer);
        for mode in [SslMode::Require, SslMode::VerifyFull] {
            assert_eq!(driver(mode), Driver::Require);
        }
        let refused = PgTls::new(SslMode::VerifyCa, None)
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("verify-ca needs sslrootcert"), "{refused}");
        assert!(PgTls::new(SslMode::Disable, None)
            .unwrap()
            .connector
            .is_none());
    }

    #[test]
    fn a_root_certificate_is_read_when_the_mode_uses_it() {
        let missing = Some(PathBuf::from("/nonexistent/ca.pem"));
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            let Err(message) = PgTls::new(mode, missing.clone()).map_err(|e| e.to_string()) else {
                panic!("{mode} must read sslrootcert")
            };
            assert!(
                message.starts_with("cannot read sslrootcert /nonexistent/ca.pem"),
                "{message}"
            );
        }
        for mode in [SslMode::Disable, SslMode::Prefer] {
            assert!(PgTls::new(mode, missing.clone()).is_ok(), "{mode}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let Err(message) = PgTls::new(SslMode::VerifyFull, Some(path)).map_err(|e| e.to_string())
        else {
            panic!("three bytes are no certificate")
        };
        assert!(message.contains("cannot be used"), "{message}");
    }
}
