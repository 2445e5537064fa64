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
