//! Reading trusted CA certificates from a PEM file: `--ca-file` for HTTPS targets and the probe,
//! `sslrootcert` for PostgreSQL. Its errors ([`PemError`]) name the setting the file came from.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::CertificateDer;

/// Why a PEM file of CA certificates cannot be used; the message is one line naming the setting
/// the path came from. Public because the public `ConfigError` carries it.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read {setting} {}: {err}", path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{setting} {} is not valid PEM: {err}", path.display())]
    NotPem {
        setting: &'static str,
        path: PathBuf,
        err: pem::Error,
    },
    #[error("{setting} {} holds no PEM certificate", path.display())]
    NoCertificate {
        setting: &'static str,
        path: PathBuf,
    },
}

/// The certificates of the PEM file at `path` (other sections, such as keys, are skipped);
/// `setting` names where the path was given (`--ca-file`, `sslrootcert`) in the error: the file
/// cannot be read, is not valid PEM, or holds no certificate.
pub(crate) fn read_certificates(
    path: &Path,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = std::fs::read(path).map_err(|err| PemError::Read {
        setting,
        path: path.to_path_buf(),
        err,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| PemError::NotPem {
            setting,
            path: path.to_path_buf(),
            err,
        })?;
    if certificates.is_empty() {
        return Err(PemError::NoCertificate {
            setting,
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_read_and_bad_files_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let missing = read_certificates(&path, "sslrootcert")
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("cannot read sslrootcert "), "{missing}");

        std::fs::write(&path, "no PEM here\n").unwrap();
        let empty = read_certificates(&path, "--ca-file")
            .unwrap_err()
            .to_string();
        assert!(empty.ends_with("holds no PEM certificate"), "{empty}");

        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
        let broken = read_certificates(&path, "sslrootcert")
            .unwrap_err()
            .to_string();
        assert!(broken.contains("is not valid PEM"), "{broken}");

        let body = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        std::fs::write(&path, format!("{body}{body}")).unwrap();
        let read = read_certificates(&path, "sslrootcert").unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].as_ref(), [1, 2, 3]);
    }
}
