//! TLS: protocol versions, ALPN, the self-signed certificate's life, and `files` mode.

use std::process::{Command, Stdio};

use crate::support::client::{self, Proto};
use crate::support::gatehouse::{Gatehouse, LISTENERS};

fn openssl_available() {
    assert!(
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "openssl not found: install the Debian package openssl"
    );
}

/// `openssl s_client` with `args`; returns (exit success, stdout).
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_with_h2_alpn() {
    openssl_available();
    let gh = Gatehouse::start(LISTENERS).await;
    let port = gh.https.port();
    let (ok, _) = tokio::task::spawn_blocking(move || s_client(port, &["-tls1_1"]))
        .await
        .expect("join");
    assert!(!ok, "TLS 1.1 must be refused");
    let (ok, out) =
        tokio::task::spawn_blocking(move || s_client(port, &["-tls1_2", "-alpn", "h2,http/1.1"]))
            .await
            .expect("join");
    assert!(ok, "TLS 1.2 works: {out}");
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let (ok, out) =
        tokio::task::spawn_blocking(move || s_client(port, &["-tls1_3", "-alpn", "http/1.1"]))
            .await
            .expect("join");
    assert!(ok, "TLS 1.3 works: {out}");
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    assert!(
        out.contains("CN = Gatehouse self-signed") || out.contains("CN=Gatehouse self-signed"),
        "{out}"
    );
}

#[tokio::test]
async fn self_signed_certificate_is_reused_across_restarts() {
    let gh = Gatehouse::start(LISTENERS).await;
    let first = gh.cert_pem();
    let key = gh
        .dir
        .path()
        .join("certs")
        .join(gatehouse::tls::SELF_SIGNED_KEY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key must be 0600");
    }
    let dir = gh.stop().await;
    let gh = Gatehouse::start_in(LISTENERS, dir).await;
    assert_eq!(
        gh.cert_pem(),
        first,
        "the certificate is reused, not regenerated"
    );
    // And the client that trusts it still connects.
    let r = client::client(&gh, Proto::H1)
        .get(gh.url("/"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn files_mode_serves_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("cert");
    std::fs::write(dir.path().join("fullchain.pem"), ck.cert.pem()).expect("write");
    // PKCS#8 key as rcgen writes it.
    std::fs::write(
        dir.path().join("privkey.pem"),
        ck.signing_key.serialize_pem(),
    )
    .expect("write");
    let toml = format!(
        "{LISTENERS}\n[tls]\nmode = \"files\"\ncert = \"fullchain.pem\"\nkey = \"privkey.pem\"\n"
    );
    let gh = Gatehouse::start_in(&toml, dir).await;
    let trusted = reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).expect("pem");
    let c = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .expect("client");
    let r = c
        .get(gh.url("/"))
        .send()
        .await
        .expect("the configured certificate is served");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn files_mode_with_a_mismatched_key_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a");
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("b");
    std::fs::write(dir.path().join("cert.pem"), a.cert.pem()).expect("write");
    std::fs::write(dir.path().join("key.pem"), b.signing_key.serialize_pem()).expect("write");
    let toml =
        format!("{LISTENERS}\n[tls]\nmode = \"files\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, toml).expect("write");
    let config = gatehouse::Config::load(&path).expect("valid config");
    let Err(error) = gatehouse::App::bind(config).await else {
        panic!("a mismatched key must not start");
    };
    let text = gatehouse::error_chain(&error);
    assert!(text.contains("does not match the certificate"), "{text}");
}
