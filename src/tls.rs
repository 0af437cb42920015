//! The rustls pieces `loader` builds its own TLS connections from (PostgreSQL's `sslmode`s and the
//! probe's lean HTTPS client; the sinks' HTTPS goes through ureq's settings): the ring provider,
//! a verifier that checks the chain but not the name (or nothing but the handshake), a verifier
//! that also takes a certificate the user pinned with `--ca-file`, and a refused handshake in
//! plain words with the flag that fixes it.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::pem::PemError;

/// Why the TLS settings of `--ca-file`/`--insecure` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpsSetupError {
    #[error("cannot set up TLS: {0}")]
    Protocols(rustls::Error),
    #[error(transparent)]
    CaFile(#[from] PemError),
}

/// The rustls settings of an HTTPS client: the built-in (webpki, Mozilla's) roots; or the
/// certificates of `ca_file`, as CAs and as pinned server certificates (so that a self-signed
/// server certificate, CA:TRUE or not, is trusted when given); or, with `insecure`, no
/// certificate check but the handshake's signatures.
pub(crate) fn https_client_config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, HttpsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(HttpsSetupError::Protocols)?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly {
                roots: None,
                algorithms,
            }))
    } else {
        let (roots, pinned) = match ca_file {
            None => (
                RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
                Vec::new(),
            ),
            Some(path) => {
                let certificates = crate::pem::read_certificates(path, "--ca-file")?;
                let mut roots = RootCertStore::empty();
                // A certificate that cannot serve as a trust anchor may still be pinned.
                let _ = roots.add_parsable_certificates(certificates.iter().cloned());
                (roots, certificates)
            }
        };
        let verifier: Arc<dyn ServerCertVerifier> = if roots.is_empty() {
            // No certificate of the file can be a trust anchor: no chain is good, and only a
            // pinned certificate gets through (never "no check at all").
            Arc::new(ChainOnly {
                roots: Some(Arc::new(RootCertStore::empty())),
                algorithms,
            })
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| {
                    HttpsSetupError::Protocols(rustls::Error::General(err.to_string()))
                })?
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrChained { verifier, pinned }))
    };
    Ok(Arc::new(builder.with_no_client_auth()))
}

/// libpq's weaker checks: the chain against `roots` but not the host name (verify-ca, and
/// require with sslrootcert), or no certificate check at all (`roots` None: prefer, require,
/// `--insecure`). The handshake's signatures are verified either way, with the provider's
/// algorithms.
#[derive(Debug)]
pub(crate) struct ChainOnly {
    pub roots: Option<Arc<RootCertStore>>,
    pub algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let certificate = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &certificate,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The standard check (chain and host name), except that a server certificate byte for byte
/// equal to one the user gave is trusted as it is: TLS refuses a self-signed certificate that
/// says CA:TRUE as the server's own even when it is its own trust anchor.
#[derive(Debug)]
struct PinnedOrChained {
    verifier: Arc<dyn ServerCertVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrChained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked = self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match checked {
            Err(_) if self.pinned.iter().any(|pinned| pinned == end_entity) => {
                Ok(ServerCertVerified::assertion())
            }
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// A handshake with `target` that rustls refused, in plain words with the flag that fixes it.
pub(crate) fn refused_in_words(target: &str, refused: &rustls::Error) -> String {
    match refused {
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "{target} does not speak TLS on this port (it answered in plain text); use the \
             http:// form of the target (es+http://, crate+http://, …) instead of https://"
        ),
        rustls::Error::InvalidCertificate(problem) => {
            let (what, fix) = match problem {
                CertificateError::UnknownIssuer => (
                    "is signed by no authority it trusts (a private CA, or self-signed)",
                    "give the CA, or the certificate itself, with --ca-file FILE",
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => (
                    "is for another host name",
                    "connect by a name the certificate holds",
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    ("has expired", "renew the server's certificate")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                    "is not valid yet (check the clocks)",
                    "correct the clock of the server or of this machine",
                ),
                CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => (
                    "is a CA certificate (CA:TRUE) presented as the server's own, which TLS refuses \
                     even when --ca-file trusts it as a CA",
                    "give the server a certificate without CA:TRUE, signed by that CA or by \
                     itself, and that certificate or its CA to --ca-file",
                ),
                _ => ("was refused", "give its CA with --ca-file FILE"),
            };
            format!(
                "the certificate of {target} {what} ({problem:?}); {fix}, or skip the check with \
                 --insecure"
            )
        }
        other => format!("TLS with {target} failed: {other}"),
    }
}
