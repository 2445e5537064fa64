//! TLS termination: the rustls `ServerConfig` and where its certificate comes from.
//!
//! TLS 1.3 and 1.2 only (rustls offers nothing older), ALPN `h2` then `http/1.1`, one
//! crypto provider (aws-lc-rs). The certificate is resolved per handshake through
//! [`ResolvesServerCert`], so SNI-dispatching and ACME-issued certificates plug in here
//! without touching the connection code.
//!
//! - `self-signed`: a P-256 key and certificate for `localhost`, `127.0.0.1` and `::1`,
//!   created under `tls.dir` on first start (key mode 0600, written atomically) and
//!   reused after.
//! - `files`: a PEM chain and key (PKCS#8, PKCS#1 RSA or SEC1 EC), checked to match.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config;

/// File names of the self-signed pair under `tls.dir`.
pub const SELF_SIGNED_CERT: &str = "self-signed.crt";
pub const SELF_SIGNED_KEY: &str = "self-signed.key";
/// Names the self-signed certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)", path.display())]
    NoKey { path: PathBuf },
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the key in {} is not usable", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot generate the self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("cannot build the TLS configuration")]
    Rustls(#[source] rustls::Error),
}

/// The one crypto provider of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Build the server configuration for `tls`.
pub fn server_config(tls: &config::Tls) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let certified = match &tls.mode {
        config::TlsMode::SelfSigned => self_signed(&tls.dir, &provider)?,
        config::TlsMode::Files { cert, key } => from_files(cert, key, &provider)?,
    };
    let resolver = Arc::new(StaticCert(Arc::new(certified)));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(Error::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One certificate for every SNI name (or none).
#[derive(Debug)]
struct StaticCert(Arc<CertifiedKey>);

impl ResolvesServerCert for StaticCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Load a PEM chain and key, and check that they belong together.
pub fn from_files(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let cert_pem = fs::read(cert).map_err(|source| Error::Read {
        path: cert.to_owned(),
        source,
    })?;
    let key_pem = fs::read(key).map_err(|source| Error::Read {
        path: key.to_owned(),
        source,
    })?;
    certified_key(&cert_pem, cert, &key_pem, key, provider)
}

fn certified_key(
    cert_pem: &[u8],
    cert_path: &Path,
    key_pem: &[u8],
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| Error::NoKey {
        path: key_path.to_owned(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| match source {
        rustls::Error::InconsistentKeys(_) => Error::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        },
        source => Error::BadKey {
            path: key_path.to_owned(),
            source,
        },
    })
}

/// Load the self-signed pair from `dir`, creating it on first use.
pub fn self_signed(dir: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, Error> {
    let cert_path = dir.join(SELF_SIGNED_CERT);
    let key_path = dir.join(SELF_SIGNED_KEY);
    if cert_path.exists() && key_path.exists() {
        match from_files(&cert_path, &key_path, provider) {
            Ok(certified) => return Ok(certified),
            Err(e) => tracing::warn!(
                error = %crate::error_chain(&e),
                "self-signed certificate unusable; making a new one"
            ),
        }
    }
    let mut params = rcgen::CertificateParams::new(SELF_SIGNED_NAMES.map(str::to_owned).to_vec())
        .map_err(Error::Generate)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Gatehouse self-signed");
    let key = rcgen::KeyPair::generate().map_err(Error::Generate)?;
    let cert = params.self_signed(&key).map_err(Error::Generate)?;
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "created a self-signed certificate");
    from_files(&cert_path, &key_path, provider)
}

/// Write `bytes` to a temporary file beside `path` with `mode`, then rename it into place,
/// so a crash never leaves half a key and the key is never readable by others.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = self_signed(dir.path(), &provider()).expect("create");
        let second = self_signed(dir.path(), &provider()).expect("reuse");
        assert_eq!(first.cert[0], second.cert[0]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SELF_SIGNED_KEY))
                .expect("key exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn mismatched_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()]).expect("a");
        let b = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).expect("b");
        let cert = dir.path().join("a.crt");
        let key = dir.path().join("b.key");
        fs::write(&cert, a.cert.pem()).expect("write");
        fs::write(&key, b.signing_key.serialize_pem()).expect("write");
        let err = from_files(&cert, &key, &provider()).expect_err("must not match");
        assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    }

    #[test]
    fn missing_key_pem_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()]).expect("a");
        let cert = dir.path().join("a.crt");
        fs::write(&cert, a.cert.pem()).expect("write");
        let err = from_files(&cert, &cert, &provider()).expect_err("no key in a cert file");
        assert!(matches!(err, Error::NoKey { .. }), "{err:?}");
    }
}
