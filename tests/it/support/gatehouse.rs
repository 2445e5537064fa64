//! An in-process Gatehouse: `Gatehouse::start(toml).await` writes the config into a fresh
//! temp dir (so certs/, data/ are private to the test), binds every listener on
//! 127.0.0.1:0, and serves until dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gatehouse::{App, Config};
use tokio_util::sync::CancellationToken;

pub struct Gatehouse {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub internal: Option<SocketAddr>,
    /// The temp dir holding proxy.toml, certs/ and data/.
    pub dir: tempfile::TempDir,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The listener block every test config starts with: all on loopback port 0.
pub const LISTENERS: &str = r#"
[server]
https = "127.0.0.1:0"
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
hsts = "max-age=31536000"
"#;

/// A config with uploads answered by Gatehouse itself, memory storage.
pub fn upload_config(storage: &str) -> String {
    format!(
        r#"{LISTENERS}
[upload]
route = "/products"
forward = false

{storage}
"#
    )
}

impl Gatehouse {
    /// Start with `toml` (a whole proxy.toml; use [`LISTENERS`] for the server table).
    pub async fn start(toml: &str) -> Gatehouse {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(toml, dir).await
    }

    /// Start in a given directory (to restart over the same certs/ and data/).
    pub async fn start_in(toml: &str, dir: tempfile::TempDir) -> Gatehouse {
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, toml).expect("write proxy.toml");
        let config =
            Config::load(&path).unwrap_or_else(|e| panic!("test config invalid:\n{}", e.render()));
        let app = App::bind(config)
            .await
            .unwrap_or_else(|e| panic!("bind: {}", gatehouse::error_chain(&e)));
        let addrs = app.local_addrs();
        let token = CancellationToken::new();
        let task = tokio::spawn(app.run(token.clone()));
        Gatehouse {
            https: addrs.https,
            http: addrs.http,
            admin: addrs.admin,
            internal: addrs.internal,
            dir,
            token,
            task: Some(task),
        }
    }

    /// `https://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https.port())
    }

    /// `GET http://<admin><path>` as JSON (health, ledger).
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let admin = self.admin.expect("admin listener configured");
        super::client::plain()
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .expect("admin request")
            .json()
            .await
            .expect("admin JSON")
    }

    /// Records in the uploads ledger.
    pub async fn ledger_len(&self) -> usize {
        self.admin_json("/uploads?limit=1000").await["uploads"]
            .as_array()
            .expect("uploads array")
            .len()
    }

    /// The self-signed certificate (PEM) this instance serves.
    pub fn cert_path(&self) -> PathBuf {
        self.dir
            .path()
            .join("certs")
            .join(gatehouse::tls::SELF_SIGNED_CERT)
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.cert_path()).expect("self-signed cert exists after start")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stop (graceful drain) and hand back the directory, for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
