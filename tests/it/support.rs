//! Fixtures for the integration tests. Each fixture binds 127.0.0.1 port 0, reports its
//! address, and stops on `Drop`. Real external servers (moto S3, chromium) are started
//! per test from the binaries the README's test command installs; when one is missing the
//! test fails with a message naming the package to install (never a silent skip).

#![allow(dead_code)]

pub mod chromium;
pub mod client;
pub mod corpus;
pub mod form;
pub mod gatehouse;
pub mod moto;
pub mod process;
pub mod upstream;

/// The shared corpus of real and adversarial images (`../shared/corpus`).
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// The real `gatehouse` binary, for tests of the command line.
pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

/// The bytes of a corpus file, by its path under `../shared/corpus`.
pub fn corpus_file(path: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(path)).unwrap_or_else(|e| panic!("corpus file {path}: {e}"))
}

/// Where tests leave artifacts (screenshots): `tests/artifacts/`, git-ignored.
pub fn artifacts_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("create tests/artifacts");
    dir
}
