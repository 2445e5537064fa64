//! Config errors as an operator sees them: `gatehouse check` on real files.

use crate::support::binary as gatehouse;

/// Write `text` as proxy.toml in a temp dir and run `gatehouse <command> --config` on it:
/// (exit code, stderr, the file's path, the dir).
fn on_config(command: &str, text: &str) -> (Option<i32>, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, text).expect("write");
    let out = gatehouse()
        .args([command, "--config"])
        .arg(&path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, path.display().to_string(), dir)
}

#[test]
fn check_accepts_the_committed_proxy_toml() {
    let out = gatehouse()
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/proxy.toml"),
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("proxy.toml: ok\n"));
}

#[test]
fn check_prints_every_problem_with_file_line_column_and_exits_1() {
    let (code, stderr, p, _dir) = on_config(
        "check",
        "[server]\nhttps = \"0.0.0.0:443x\"\n\n[[route]]\npath = \"/\"\n\n[timeouts]\nidle = \"soon\"\n",
    );
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{p}:2:9: server.https: ")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{p}:5:8: route[0].upstream: route has no upstream"
        )),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("{p}:8:8: timeouts.idle: ")),
        "{stderr}"
    );
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let (code, stderr, p, _dir) = on_config(
        "check",
        "[server]\nhttps = \"127.0.0.1:8443\"\n\n[upload]\nmax_sise = \"2MiB\"\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!("{p}:5:1: unknown field `max_sise`")),
        "{stderr}"
    );
}

#[test]
fn run_refuses_an_invalid_config_before_binding_with_exit_78() {
    let (code, stderr, _, dir) = on_config("run", "[server]\nhttps = \"127.0.0.1:0\"\nbogus = 1\n");
    assert_eq!(code, Some(78));
    assert!(stderr.contains(":3:1: unknown field `bogus`"), "{stderr}");
    assert!(
        !dir.path().join("certs").exists(),
        "nothing was created before validation passed"
    );
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = gatehouse()
        .args(["check", "--config", "/nonexistent/proxy.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/proxy.toml: cannot read"));
}
