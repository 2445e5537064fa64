//! The real binary: start-up logs, SIGTERM drain, bounded memory under a 1 GB upload,
//! `uploads list` and `s3-policy`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::support::form::{self, Form};
use crate::support::gatehouse::LISTENERS;
use crate::support::upstream::Upstream;

/// The binary running `run` on a config in a temp dir; killed on drop.
struct Running {
    child: Child,
    https: SocketAddr,
    admin: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(toml: &str) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(toml, dir)
    }

    fn start_in(toml: &str, dir: tempfile::TempDir) -> Running {
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, toml).expect("write");
        let mut child = crate::support::binary()
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gatehouse");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut https = None;
        let mut admin = None;
        while https.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("gatehouse logs its listeners");
            let addr = || {
                line.rsplit("addr=")
                    .next()
                    .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            };
            if line.contains("listener=\"https\"") {
                https = addr();
            } else if line.contains("listener=\"admin\"") {
                admin = addr();
            }
        }
        Running {
            child,
            https: https.expect("https"),
            admin: admin.expect("admin"),
            dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(
            self.dir
                .path()
                .join("certs")
                .join(gatehouse::tls::SELF_SIGNED_CERT),
        )
        .expect("cert");
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
            .http1_only()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https.port())
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit; its status code.
    fn wait_exit(&mut self, seconds: u64) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gatehouse did not exit within {seconds} s");
    }

    /// Peak and current resident memory, in KiB, from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .expect("field")
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

fn upload_toml() -> String {
    format!("{LISTENERS}\n[upload]\nforward = false\n[storage]\nbackend = \"local\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_0() {
    let upstream = Upstream::start().await;
    let toml = format!(
        "{LISTENERS}\n[[route]]\npath = \"/\"\nupstream = \"{}\"\n",
        upstream.url()
    );
    let mut gh = Running::start(&toml);
    let c = gh.client();
    let url = gh.url("/slow");
    let in_flight =
        tokio::spawn(async move { c.get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    gh.signal("TERM");
    let status = in_flight
        .await
        .expect("join")
        .expect("in-flight request completes during the drain");
    assert_eq!(status, 200);
    let code = tokio::task::block_in_place(|| gh.wait_exit(15));
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gigabyte_chunked_upload_is_cut_off_with_bounded_memory() {
    let gh = Running::start(&upload_toml());
    let c = gh.client();
    // Warm up: one accepted upload at the size limit, so buffers have been used once.
    let exact = crate::support::corpus_file("generated/accept_png_exactly_2MiB.png");
    for _ in 0..3 {
        let body = Form::new()
            .file("image", "a.png", "image/png", &exact)
            .finish();
        let (status, _) = crate::upload::post_to(&c, &gh.url("/products"), body).await;
        assert_eq!(status, 201);
    }
    let (before, _) = gh.memory_kib();

    // 1 GiB, generated lazily, sent chunked (no Content-Length).
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let mut head = format!(
        "--{}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n\r\n",
        form::BOUNDARY
    )
    .into_bytes();
    head.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let head = Bytes::from(head);
    let chunk = Bytes::from(vec![0u8; 64 * 1024]);
    let total: u64 = 1 << 30;
    let stream = futures_util::stream::iter(0..(total / chunk.len() as u64 + 1)).map(move |i| {
        let piece = if i == 0 { head.clone() } else { chunk.clone() };
        counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(piece)
    });
    use futures_util::StreamExt;
    let started = std::time::Instant::now();
    let result = c
        .post(gh.url("/products"))
        .header("content-type", form::content_type())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    let elapsed = started.elapsed();
    match result {
        Ok(r) => {
            assert_eq!(r.status(), 400);
            let json: serde_json::Value = r.json().await.expect("json");
            assert_eq!(json["error"]["code"], "file_too_large");
        }
        // The server closes after a bounded linger; a client still writing may see the
        // close first. Either way it must be quick and the body must not be read to the end.
        Err(e) => eprintln!("client saw the connection close: {e}"),
    }
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent < 64 << 20,
        "the server read {sent} bytes: it must stop just past the limit"
    );
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let (after, _) = gh.memory_kib();
    let growth_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("peak RSS before {before} KiB, after {after} KiB, growth {growth_mib:.1} MiB, client sent {sent} bytes in {elapsed:?}");
    assert!(growth_mib < 20.0, "peak memory grew by {growth_mib:.1} MiB");
    // Nothing was recorded for it.
    let listed: serde_json::Value = reqwest::get(format!("http://{}/uploads", gh.admin))
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["uploads"].as_array().expect("array").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_list_reads_the_ledger_live_and_after_stop() {
    // The command finds a running server through server.admin, so it needs a real port.
    let admin = crate::support::process::free_port();
    let toml = upload_toml().replace(
        "admin = \"127.0.0.1:0\"",
        &format!("admin = \"127.0.0.1:{admin}\""),
    );
    let mut gh = Running::start(&toml);
    let c = gh.client();
    let jpeg = crate::support::corpus_file("generated/accept_plain.jpg");
    let body = Form::new()
        .file("image", "lamp.jpg", "image/jpeg", &jpeg)
        .finish();
    let (status, record) = crate::upload::post_to(&c, &gh.url("/products"), body).await;
    assert_eq!(status, 201);
    let config = gh.dir.path().join("proxy.toml");
    let list = |json: bool| {
        let mut cmd = crate::support::binary();
        cmd.args(["uploads", "list", "--config"]).arg(&config);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    // While running, sled is locked: the command asks the admin listener.
    let live = list(true);
    let parsed: serde_json::Value = serde_json::from_str(live.trim()).expect("one JSON line");
    assert_eq!(parsed, record);
    gh.signal("TERM");
    assert_eq!(tokio::task::block_in_place(|| gh.wait_exit(15)), Some(0));
    let table = list(false);
    assert!(
        table.contains(record["url"].as_str().expect("url")),
        "{table}"
    );
    assert!(table.contains("image/jpeg"), "{table}");
}

#[test]
fn s3_policy_prints_read_and_write_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"shop-uploads\"\nprefix = \"products/\"\n").expect("write");
    let out = crate::support::binary()
        .args(["s3-policy", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        text.contains("aws s3api put-bucket-policy --bucket shop-uploads"),
        "{text}"
    );
    assert!(text.contains("\"Action\": \"s3:GetObject\""), "{text}");
    assert!(text.contains("\"Action\": \"s3:PutObject\""), "{text}");
    assert_eq!(
        text.matches("arn:aws:s3:::shop-uploads/products/*").count(),
        2,
        "{text}"
    );
}
