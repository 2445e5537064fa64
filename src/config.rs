//! The validated configuration.
//!
//! `proxy.toml` -> [`file::File`] (serde mirror, spans kept) -> [`validate`] -> [`Config`].
//! `Config` holds plain, already-parsed types (socket addresses, durations, byte counts,
//! absolute paths): nothing downstream parses a string or guesses a default. Relative paths
//! in the file are resolved against the directory of the file itself, so
//! `gatehouse run --config /etc/gatehouse/proxy.toml` behaves the same from any directory.
//!
//! Loading never binds a port or touches the network; it may read the filesystem to check
//! that configured certificate files exist.

pub mod error;
pub mod file;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{Diagnostic, Error};

/// Default request-body cap for proxied (non-upload) requests: none, bodies stream.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
pub const DEFAULT_UPLOAD_MAX_SIZE: u64 = 2 * 1024 * 1024;
pub const DEFAULT_UPLOAD_MAX_PIXELS: u64 = 40_000_000;
pub const DEFAULT_UPLOAD_MAX_FIELDS: usize = 32;
pub const DEFAULT_UPLOAD_MAX_FIELD_SIZE: u64 = 64 * 1024;
/// The file types Gatehouse can validate; `upload.types` picks from these.
pub const KNOWN_UPLOAD_TYPES: [&str; 3] = ["jpg", "jpeg", "png"];

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from.
    pub path: PathBuf,
    pub server: Server,
    pub tls: Tls,
    /// Routes in file order; the router picks the longest matching prefix.
    pub routes: Vec<Route>,
    pub upload: Option<Upload>,
    pub storage: Storage,
    pub cache: Cache,
    pub ledger: Ledger,
    pub timeouts: Timeouts,
    /// Serve the built-in upload page at `/` when no route claims it.
    pub demo_page: bool,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub https: SocketAddr,
    /// Plain HTTP: ACME HTTP-01 answers and 308 to https. `None` when set to `"off"`.
    pub http: Option<SocketAddr>,
    /// Health and ledger; loopback by default.
    pub admin: Option<SocketAddr>,
    /// Plain HTTP for an Nginx in front; trusts its `X-Forwarded-*`.
    pub internal: Option<SocketAddr>,
    /// `Strict-Transport-Security` value added to every https response.
    pub hsts: Option<http::HeaderValue>,
    pub max_connections: usize,
    pub max_header_size: usize,
    /// Cap on a proxied request body; `None` streams any length.
    pub max_body: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub mode: TlsMode,
    /// Where self-signed (and later ACME) state lives.
    pub dir: PathBuf,
}

#[derive(Debug, Clone)]
pub enum TlsMode {
    SelfSigned,
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Route {
    pub path: String,
    pub host: Option<String>,
    pub upstream: Upstream,
    pub cache: Option<Duration>,
}

/// An upstream origin: scheme and authority, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

#[derive(Debug, Clone)]
pub struct Upload {
    /// Exact path whose `POST` is intercepted.
    pub route: String,
    /// The multipart field that carries the image.
    pub field: String,
    /// Allowed filename extensions, lowercase, from [`KNOWN_UPLOAD_TYPES`].
    pub types: Vec<String>,
    pub max_size: u64,
    pub max_pixels: u64,
    pub max_fields: usize,
    pub max_field_size: u64,
    pub url_field: String,
    pub forward: bool,
    pub strip_metadata: bool,
}

impl Upload {
    /// The cap on a whole upload request body: the file, the other fields, and room for
    /// multipart framing. A `Content-Length` above it is refused before reading.
    pub fn max_body(&self) -> u64 {
        self.max_size + self.max_field_size * self.max_fields as u64 + 64 * 1024
    }
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub backend: StorageBackend,
    /// Key prefix, e.g. `products/`.
    pub prefix: String,
    /// Base URL for stored objects (a CDN); without it the backend's own URL is used.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone)]
pub enum StorageBackend {
    Local {
        dir: PathBuf,
    },
    Memory,
    S3 {
        bucket: String,
        region: String,
        endpoint: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Cache {
    pub backend: CacheBackend,
    pub max_entry: u64,
}

#[derive(Debug, Clone)]
pub enum CacheBackend {
    Memory,
    Redis { url: String },
}

#[derive(Debug, Clone)]
pub struct Ledger {
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub tls_handshake: Duration,
    pub header_read: Duration,
    pub idle: Duration,
    pub upstream_connect: Duration,
    pub upstream_response: Duration,
    pub storage: Duration,
    /// The whole multipart body of an upload must arrive within this.
    pub upload_body: Duration,
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tls_handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(30),
            idle: Duration::from_secs(120),
            upstream_connect: Duration::from_secs(5),
            upstream_response: Duration::from_secs(60),
            storage: Duration::from_secs(30),
            upload_body: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Read and validate a file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validate `text` as if it were the file at `path` (relative paths resolve against
    /// the directory of `path`).
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        validate::validate(text, path).map_err(|diagnostics| Error::Invalid {
            path: path.to_owned(),
            diagnostics,
        })
    }
}

/// Parse a size: an integer of bytes, or a number with a unit (`B`, `KB`, `KiB`, `MB`,
/// `MiB`, `GB`, `GiB`; case-insensitive, `K`/`M`/`G` mean the binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} is not a size (use e.g. \"2MiB\", \"64KiB\" or bytes)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parse a duration such as `"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}; use e.g. \"30s\", \"5m\")"))
}

#[cfg(test)]
mod tests;
