//! The serde mirror of `proxy.toml`.
//!
//! Owns the file's shape only: key names, nesting and which keys exist. Unknown keys are
//! rejected (`deny_unknown_fields`) so a typo is an error with its line, never a silent default.
//! Values with a grammar (addresses, durations, sizes, URLs) stay strings wrapped in
//! [`Spanned`] so that `validate` can parse them all, collect every problem, and point at
//! the exact line and column of each.

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    pub upload: Option<Spanned<Upload>>,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub cache: Cache,
    #[serde(default)]
    pub ledger: Ledger,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub demo: Demo,
}

/// A size: `"2MiB"`, `"64KiB"`, `"10MB"` or a plain integer of bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(i64),
    Text(String),
}

/// `hsts = "max-age=…"` or `hsts = false`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Hsts {
    Enabled(bool),
    Value(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub https: Option<Spanned<String>>,
    pub http: Option<Spanned<String>>,
    pub admin: Option<Spanned<String>>,
    pub internal: Option<Spanned<String>>,
    pub hsts: Option<Spanned<Hsts>>,
    pub max_connections: Option<Spanned<i64>>,
    pub max_header_size: Option<Spanned<Size>>,
    pub max_body: Option<Spanned<Size>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub mode: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub acme: Option<Spanned<Acme>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    #[serde(default)]
    pub domains: Vec<Spanned<String>>,
    #[serde(default)]
    pub contact: Vec<Spanned<String>>,
    pub directory: Option<Spanned<String>>,
    pub ca_root: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    pub cache: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    pub route: Option<Spanned<String>>,
    pub field: Option<Spanned<String>>,
    pub types: Option<Spanned<Vec<Spanned<String>>>>,
    pub max_size: Option<Spanned<Size>>,
    pub max_pixels: Option<Spanned<i64>>,
    pub max_fields: Option<Spanned<i64>>,
    pub max_field_size: Option<Spanned<Size>>,
    pub url_field: Option<Spanned<String>>,
    pub forward: Option<bool>,
    pub strip_metadata: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub backend: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
    pub public_url: Option<Spanned<String>>,
    pub s3: Option<Spanned<S3>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    pub bucket: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub prefix: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub backend: Option<Spanned<String>>,
    pub redis: Option<Spanned<String>>,
    pub max_entry: Option<Spanned<Size>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub path: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub tls_handshake: Option<Spanned<String>>,
    pub header_read: Option<Spanned<String>>,
    pub idle: Option<Spanned<String>>,
    pub upstream_connect: Option<Spanned<String>>,
    pub upstream_response: Option<Spanned<String>>,
    pub storage: Option<Spanned<String>>,
    pub upload_body: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    pub page: Option<bool>,
}
