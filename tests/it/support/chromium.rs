//! A real headless Chromium (Debian packages `chromium chromium-driver`), driven over
//! WebDriver: chromedriver on a free loopback port, fantoccini speaking plain HTTP to it.
//!
//! Chromium trusts exactly one certificate: `--ignore-certificate-errors-spki-list` with
//! the SHA-256 of that certificate's SubjectPublicKeyInfo (never a blanket
//! `--ignore-certificate-errors`). Each browser gets a fresh profile in a temp dir.
//!
//! Cleanup never depends on the test getting to its end: on `Drop` the WebDriver session
//! is deleted (a blocking request with short timeouts) and chromedriver's whole process
//! group (chromedriver, Chromium and its helpers) is killed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::process::{find_binary, free_port, wait_for_port, ChildGuard};

/// The browser window (and so the screenshot) size.
pub const WINDOW: (u32, u32) = (900, 700);

const MISSING: &str = "install the Debian packages `chromium chromium-driver` \
     (apt-get install chromium chromium-driver), or point GATEHOUSE_CHROMIUM and \
     GATEHOUSE_CHROMEDRIVER at the binaries";

pub struct Browser {
    pub client: fantoccini::Client,
    port: u16,
    session: Option<String>,
    // Dropped after `Drop::drop` ran, in this order: the driver (killed, reaped), then the
    // profile directory (Chromium is gone by then).
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a Chromium session trusting exactly the certificate in
    /// `cert_pem`. `name` tags the chromedriver log under `tests/artifacts/`.
    pub async fn start(cert_pem: &[u8], name: &str) -> Browser {
        let chromium = find_binary("GATEHOUSE_CHROMIUM", &["/usr/bin/chromium"], "chromium")
            .unwrap_or_else(|| panic!("chromium not found: {MISSING}"));
        let chromedriver = find_binary(
            "GATEHOUSE_CHROMEDRIVER",
            &["/usr/bin/chromedriver"],
            "chromedriver",
        )
        .unwrap_or_else(|| panic!("chromedriver not found: {MISSING}"));
        for binary in [&chromium, &chromedriver] {
            assert!(
                binary.is_file(),
                "{} does not exist: {MISSING}",
                binary.display()
            );
        }

        let profile = tempfile::tempdir().expect("tempdir for the Chromium profile");
        let log = super::artifacts_dir().join(format!("chromedriver-{name}.log"));
        let port = free_port();
        let driver = ChildGuard::spawn(
            "chromedriver",
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so Drop can kill Chromium along with it.
                .process_group(0),
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e} ({MISSING})", chromedriver.display()));
        // From here on a panic drops `driver`, which kills the process group.
        let driver = Driver(driver);
        assert!(
            wait_for_port(port, 20).await,
            "chromedriver did not listen on 127.0.0.1:{port} within 20 s (log: {})",
            log.display()
        );

        let spki = spki_sha256_base64(cert_pem);
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--ignore-certificate-errors-spki-list={spki}"),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "pageLoadStrategy": "normal",
            "timeouts": { "implicit": 0, "pageLoad": 20_000, "script": 10_000 },
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": args,
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };

        let mut builder = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        );
        builder.capabilities(capabilities);
        let url = format!("http://127.0.0.1:{port}");
        let connect = builder.connect(&url);
        let client = match tokio::time::timeout(Duration::from_secs(30), connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "chromedriver could not start Chromium ({}): {e}; log: {} ({MISSING})",
                chromium.display(),
                log.display()
            ),
            Err(_) => panic!(
                "chromedriver did not start a Chromium session within 30 s; log: {}",
                log.display()
            ),
        };
        let mut browser = Browser {
            client,
            port,
            session: None,
            driver,
            _profile: profile,
        };
        browser.session = browser
            .client
            .session_id()
            .await
            .expect("session id")
            .map(|id| id.to_string());
        browser.set_viewport(WINDOW.0, WINDOW.1).await;
        browser
    }

    /// Size the window so the viewport (what screenshots show) is `width`×`height`: even
    /// headless, the window reserves room for browser UI.
    async fn set_viewport(&self, width: u32, height: u32) {
        let (outer_w, outer_h, inner_w, inner_h) = self.window_sizes().await;
        let resize = self.client.set_window_size(
            width + outer_w.saturating_sub(inner_w),
            height + outer_h.saturating_sub(inner_h),
        );
        tokio::time::timeout(Duration::from_secs(15), resize)
            .await
            .expect("resize within 15 s")
            .expect("resize the window");
        let (_, _, inner_w, inner_h) = self.window_sizes().await;
        assert_eq!((inner_w, inner_h), (width, height), "viewport size");
    }

    /// `(outerWidth, outerHeight, innerWidth, innerHeight)`
    async fn window_sizes(&self) -> (u32, u32, u32, u32) {
        let v = self
            .eval(
                "return [outerWidth, outerHeight, innerWidth, innerHeight];",
                vec![],
            )
            .await;
        let n = |i: usize| v[i].as_u64().and_then(|n| u32::try_from(n).ok());
        match (n(0), n(1), n(2), n(3)) {
            (Some(ow), Some(oh), Some(iw), Some(ih)) => (ow, oh, iw, ih),
            _ => panic!("window sizes: {v}"),
        }
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page, bounded.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        match tokio::time::timeout(Duration::from_secs(15), self.client.execute(script, args)).await
        {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("execute script failed: {e}\nscript: {script}"),
            Err(_) => panic!("execute script did not return within 15 s\nscript: {script}"),
        }
    }

    /// A PNG of the viewport, written to `tests/artifacts/<name>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = tokio::time::timeout(Duration::from_secs(15), self.client.screenshot())
            .await
            .expect("screenshot within 15 s")
            .expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "screenshot is not a PNG"
        );
        let path = super::artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The browser console entries (`goog:loggingPrefs`) since the last call: each
    /// `(level, message)`. Chromedriver's log endpoint is outside the W3C protocol, so this
    /// is a plain request to it.
    pub async fn console(&self) -> Vec<(String, String)> {
        let session = self.session.as_deref().expect("a session");
        let response = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/session/{session}/se/log",
                self.port
            ))
            .timeout(Duration::from_secs(15))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("read the browser log from chromedriver");
        let body: Value = response.json().await.expect("browser log JSON");
        body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("unexpected browser log answer: {body}"))
            .iter()
            .map(|entry| {
                (
                    entry["level"].as_str().unwrap_or("?").to_owned(),
                    entry["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// End the session (Chromium quits) and stop chromedriver.
    pub async fn quit(mut self) {
        if self.session.is_some() {
            let closed =
                tokio::time::timeout(Duration::from_secs(15), self.client.clone().close()).await;
            if matches!(closed, Ok(Ok(()))) {
                self.session = None;
            }
        }
        // Drop kills whatever is left.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            delete_session(self.port, &session);
        }
        // Then `driver` drops (the process group is killed) and the profile is removed.
    }
}

/// chromedriver, started as the leader of its own process group: Chromium and its helpers
/// inherit the group, so killing the group on `Drop` leaves nothing behind.
struct Driver(ChildGuard);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.pid());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Then the ChildGuard reaps chromedriver.
    }
}

/// `DELETE /session/<id>`, blocking (Drop cannot await), with short timeouts.
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    ) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (DER): the form
/// Chromium's `--ignore-certificate-errors-spki-list` takes.
pub fn spki_sha256_base64(cert_pem: &[u8]) -> String {
    let cert = CertificateDer::from_pem_slice(cert_pem).expect("a PEM certificate");
    let spki = subject_public_key_info(&cert).expect("a well-formed X.509 certificate");
    BASE64.encode(Sha256::digest(spki))
}

/// The SubjectPublicKeyInfo of an X.509 certificate, found by walking the DER:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }`.
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let (tag, certificate, _) = der_element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = der_element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    if tbs.first() == Some(&VERSION) {
        tbs = der_element(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        tbs = der_element(tbs)?.2;
    }
    let (tag, content, rest) = der_element(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    // The whole element: header and content.
    let whole = tbs.len() - rest.len();
    debug_assert!(whole > content.len());
    Some(&tbs[..whole])
}

/// One DER element at the start of `input`: `(tag, content, rest)`.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (bytes, rest) = input.split_at(count);
        input = rest;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (content, rest) = input.split_at(len);
    Some((tag, content, rest))
}
