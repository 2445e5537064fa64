//! A real S3-compatible server: moto (PyPI `moto[server]`), one per test, on a free
//! loopback port, with a bucket created and made publicly readable by the policy that
//! `gatehouse s3-policy` prints.

use std::process::{Command, Stdio};

use super::process::{find_binary, free_port, wait_for_port, ChildGuard};

pub struct Moto {
    pub port: u16,
    pub bucket: String,
    _child: ChildGuard,
}

pub const ACCESS_KEY: &str = "test";
pub const SECRET_KEY: &str = "test";

impl Moto {
    pub async fn start(bucket: &str) -> Moto {
        let root = env!("CARGO_MANIFEST_DIR");
        let venv = format!("{root}/.venv/bin/moto_server");
        let binary =
            find_binary("GATEHOUSE_MOTO_SERVER", &[&venv], "moto_server").unwrap_or_else(|| {
                panic!(
                    "moto_server not found: install the PyPI package moto[server] \
                 (`python3 -m venv .venv && .venv/bin/pip install 'moto[server]'`), \
                 or run scripts/test.sh, which does it"
                )
            });
        let port = free_port();
        let child = ChildGuard::spawn(
            "moto_server",
            Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        assert!(
            wait_for_port(port, 30).await,
            "moto_server did not listen on {port} within 30 s"
        );
        let moto = Moto {
            port,
            bucket: bucket.to_owned(),
            _child: child,
        };
        let client = reqwest::Client::new();
        let created = client
            .put(format!("{}/{bucket}", moto.endpoint()))
            .send()
            .await
            .expect("create bucket");
        assert!(
            created.status().is_success(),
            "create bucket: {}",
            created.status()
        );
        moto
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Apply a bucket policy (JSON) with an unsigned request (moto does not check
    /// signatures).
    pub async fn put_policy(&self, policy: &serde_json::Value) {
        let response = reqwest::Client::new()
            .put(format!("{}/{}?policy", self.endpoint(), self.bucket))
            .body(policy.to_string())
            .send()
            .await
            .expect("put bucket policy");
        assert!(
            response.status().is_success(),
            "put policy: {}",
            response.status()
        );
    }

    /// The `[storage]` table for a Gatehouse using this server.
    pub fn storage_toml(&self) -> String {
        format!(
            "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"{}\"\nregion = \"us-east-1\"\nprefix = \"products/\"\nendpoint = \"{}\"\n",
            self.bucket,
            self.endpoint()
        )
    }
}
