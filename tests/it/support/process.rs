//! Child processes that die with the test: killed (and reaped) on `Drop`.

use std::process::{Child, Command};

pub struct ChildGuard {
    pub child: Child,
    pub name: &'static str,
}

impl ChildGuard {
    pub fn spawn(name: &'static str, command: &mut Command) -> std::io::Result<ChildGuard> {
        Ok(ChildGuard {
            child: command.spawn()?,
            name,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound then released; for servers that cannot report theirs).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Wait until something accepts TCP on `port` (at most `seconds`).
pub async fn wait_for_port(port: u16, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Find an executable: `$VAR` when set, else each candidate path, else `PATH`.
pub fn find_binary(env_var: &str, candidates: &[&str], name: &str) -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var(env_var) {
        return Some(p.into());
    }
    for c in candidates {
        let p = std::path::Path::new(c);
        if p.is_file() {
            return Some(p.to_owned());
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}
