#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests talk to, then runs
# formatting, lints and every test. Re-running it skips what is already installed.
#
#   Debian packages: chromium chromium-driver (browser test), openssl (TLS checks),
#                    curl, python3-venv
#   PyPI, in .venv:  moto[server] (the S3-compatible server the storage tests start)
#
# Each test starts its own servers on 127.0.0.1 (free ports); nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------
declare -A need=(
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [openssl]=openssl
  [curl]=curl
)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- moto (S3-compatible server) ---------------------------------------------------
if [ ! -x .venv/bin/moto_server ]; then
  say "installing moto[server] into .venv (PyPI)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check 'moto[server]'
fi

# The S3 tests sign with this fake pair (moto accepts any). Set here so object_store
# never falls back to instance metadata, which is not on loopback.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
export RUST_BACKTRACE=1

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

say "criterion benches, once each as a smoke test (measure with: cargo bench)"
cargo test --bench hot_paths

say "cargo test"
cargo test --lib --bins --tests
