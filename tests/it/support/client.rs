//! reqwest clients that trust exactly one Gatehouse's self-signed certificate, forced to
//! HTTP/1.1 or h2.

use super::gatehouse::Gatehouse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

pub fn client(gh: &Gatehouse, proto: Proto) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&gh.cert_pem()).expect("cert pem");
    let builder = reqwest::Client::builder()
        .tls_certs_only([cert])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60));
    let builder = match proto {
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_prior_knowledge(),
    };
    builder.build().expect("client")
}

/// A client for plain-HTTP listeners (redirect, admin).
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A raw TLS connection (ALPN `http/1.1`) to `gh`, for tests that write bytes by hand.
pub async fn raw_tls(gh: &Gatehouse) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&gh.cert_pem()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(gatehouse::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gh.https)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    connector.connect(name, tcp).await.expect("tls handshake")
}

/// Send raw bytes over TLS (paths and headers exactly as written) and read the whole
/// answer (at most 10 s).
pub async fn raw_exchange(gh: &Gatehouse, head: &[u8], body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = raw_tls(gh).await;
    tls.write_all(head).await.expect("write head");
    tls.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}
