//! `file::File` -> `Config`: parse every value, check the cross-field rules, and collect
//! all problems before failing (an operator fixes them in one pass, not one per run).

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::error::{line_column, Diagnostic};
use super::file::{self, File};
use super::*;

pub(super) fn validate(text: &str, path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let file: File = toml::from_str(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        vec![Diagnostic {
            line,
            column,
            key: String::new(),
            message: e.message().trim().to_owned(),
        }]
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let mut v = Validator {
        text,
        base,
        diagnostics: Vec::new(),
    };
    let config = v.config(file, path);
    match (config, v.diagnostics.is_empty()) {
        (Some(config), true) => Ok(config),
        _ => {
            v.diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(v.diagnostics)
        }
    }
}

struct Validator<'a> {
    text: &'a str,
    base: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.diagnostics.push(Diagnostic {
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// Report `result`'s error at `value`'s span and return the parsed value, if any.
    fn check<T, V>(
        &mut self,
        value: &Spanned<V>,
        key: &str,
        result: Result<T, String>,
    ) -> Option<T> {
        match result {
            Ok(t) => Some(t),
            Err(message) => {
                self.error(value.span(), key, message);
                None
            }
        }
    }

    fn addr(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: &str,
    ) -> Option<SocketAddr> {
        let Some(value) = value else {
            return default.parse().ok();
        };
        let result = value.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            format!(
                "{:?} is not a socket address (use IP:PORT, e.g. \"0.0.0.0:8443\" or \"[::1]:8443\")",
                value.get_ref()
            )
        });
        self.check(value, key, result)
    }

    /// A listener that may be turned off with `"off"`.
    fn optional_addr(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Option<&str>,
    ) -> Option<Option<SocketAddr>> {
        match value {
            Some(v) if v.get_ref().trim().eq_ignore_ascii_case("off") => Some(None),
            Some(v) => self.addr(Some(v), key, "").map(Some),
            None => Some(default.and_then(|d| d.parse().ok())),
        }
    }

    fn duration(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        let result = parse_duration(value.get_ref()).and_then(|d| {
            if d.is_zero() {
                Err("must be greater than zero".to_owned())
            } else {
                Ok(d)
            }
        });
        self.check(value, key, result).unwrap_or(default)
    }

    fn size(&mut self, value: Option<&Spanned<file::Size>>, key: &str, default: u64) -> u64 {
        let Some(value) = value else { return default };
        let result = match value.get_ref() {
            file::Size::Bytes(n) => {
                u64::try_from(*n).map_err(|_| format!("{key} must not be negative"))
            }
            file::Size::Text(t) => parse_size(t),
        }
        .and_then(|n| {
            if n == 0 {
                Err(format!("{key} must be greater than zero"))
            } else {
                Ok(n)
            }
        });
        self.check(value, key, result).unwrap_or(default)
    }

    fn count(&mut self, value: Option<&Spanned<i64>>, key: &str, default: usize) -> usize {
        let Some(value) = value else { return default };
        let result = usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{key} must be a whole number greater than zero"));
        self.check(value, key, result).unwrap_or(default)
    }

    fn path(&self, value: &str) -> PathBuf {
        let p = Path::new(value);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    fn config(&mut self, file: File, path: &Path) -> Option<Config> {
        let server = self.server(&file.server);
        let tls = self.tls(&file.tls);
        let routes = self.routes(&file.routes);
        let storage = self.storage(&file.storage);
        let upload = file.upload.as_ref().map(|u| self.upload(u));
        let cache = self.cache(&file.cache);
        let ledger = Ledger {
            path: self.path(
                file.ledger
                    .path
                    .as_ref()
                    .map_or("data/ledger", |p| p.get_ref().as_str()),
            ),
        };
        let t = &file.timeouts;
        let d = Timeouts::default();
        let timeouts = Timeouts {
            tls_handshake: self.duration(
                t.tls_handshake.as_ref(),
                "timeouts.tls_handshake",
                d.tls_handshake,
            ),
            header_read: self.duration(
                t.header_read.as_ref(),
                "timeouts.header_read",
                d.header_read,
            ),
            idle: self.duration(t.idle.as_ref(), "timeouts.idle", d.idle),
            upstream_connect: self.duration(
                t.upstream_connect.as_ref(),
                "timeouts.upstream_connect",
                d.upstream_connect,
            ),
            upstream_response: self.duration(
                t.upstream_response.as_ref(),
                "timeouts.upstream_response",
                d.upstream_response,
            ),
            storage: self.duration(t.storage.as_ref(), "timeouts.storage", d.storage),
            upload_body: self.duration(
                t.upload_body.as_ref(),
                "timeouts.upload_body",
                d.upload_body,
            ),
            shutdown_grace: self.duration(
                t.shutdown_grace.as_ref(),
                "timeouts.shutdown_grace",
                d.shutdown_grace,
            ),
        };
        Some(Config {
            path: path.to_owned(),
            server: server?,
            tls: tls?,
            routes,
            upload: upload.flatten(),
            storage: storage?,
            cache,
            ledger,
            timeouts,
            demo_page: file.demo.page.unwrap_or(false),
        })
    }

    fn server(&mut self, s: &file::Server) -> Option<Server> {
        let https = self.addr(s.https.as_ref(), "server.https", "0.0.0.0:8443");
        let http = self.optional_addr(s.http.as_ref(), "server.http", Some("0.0.0.0:8080"));
        let admin = self.optional_addr(s.admin.as_ref(), "server.admin", Some("127.0.0.1:9090"));
        let internal = self.optional_addr(s.internal.as_ref(), "server.internal", None);
        let hsts = match &s.hsts {
            None => Some(None),
            Some(v) => match v.get_ref() {
                file::Hsts::Enabled(false) => Some(None),
                file::Hsts::Enabled(true) => {
                    Some(Some(http::HeaderValue::from_static("max-age=31536000")))
                }
                file::Hsts::Value(text) => {
                    let result = if text
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("max-age=")
                    {
                        http::HeaderValue::from_str(text.trim())
                            .map(Some)
                            .map_err(|_| "contains characters not allowed in a header".to_owned())
                    } else {
                        Err(format!(
                            "{text:?} is not a Strict-Transport-Security value (use e.g. \"max-age=31536000\", or false)"
                        ))
                    };
                    self.check(v, "server.hsts", result)
                }
            },
        };
        let max_connections = self.count(
            s.max_connections.as_ref(),
            "server.max_connections",
            DEFAULT_MAX_CONNECTIONS,
        );
        let max_header_size = self.size(
            s.max_header_size.as_ref(),
            "server.max_header_size",
            DEFAULT_MAX_HEADER_SIZE as u64,
        );
        let max_body = s
            .max_body
            .as_ref()
            .map(|v| self.size(Some(v), "server.max_body", u64::MAX));
        if let (Some(https), Some(Some(http))) = (https, http) {
            if https == http && https.port() != 0 {
                if let Some(v) = &s.http {
                    self.error(v.span(), "server.http", "must differ from server.https");
                }
            }
        }
        Some(Server {
            https: https?,
            http: http?,
            admin: admin?,
            internal: internal?,
            hsts: hsts?,
            max_connections,
            max_header_size: usize::try_from(max_header_size).unwrap_or(usize::MAX),
            max_body,
        })
    }

    fn tls(&mut self, t: &file::Tls) -> Option<Tls> {
        let dir = self.path(t.dir.as_ref().map_or("certs", |d| d.get_ref().as_str()));
        let mode_name = t
            .mode
            .as_ref()
            .map_or("self-signed", |m| m.get_ref().as_str());
        let mode = match mode_name {
            "self-signed" => Some(TlsMode::SelfSigned),
            "files" => {
                let cert = self.existing_file(t.cert.as_ref(), "tls.cert", t.mode.as_ref());
                let key = self.existing_file(t.key.as_ref(), "tls.key", t.mode.as_ref());
                Some(TlsMode::Files {
                    cert: cert?,
                    key: key?,
                })
            }
            "acme" => {
                if let Some(m) = &t.mode {
                    self.error(
                        m.span(),
                        "tls.mode",
                        "\"acme\" is not available in this build yet (use \"self-signed\" or \"files\")",
                    );
                }
                None
            }
            other => {
                if let Some(m) = &t.mode {
                    self.error(
                        m.span(),
                        "tls.mode",
                        format!(
                            "unknown mode {other:?} (use \"self-signed\", \"files\" or \"acme\")"
                        ),
                    );
                }
                None
            }
        };
        Some(Tls { mode: mode?, dir })
    }

    fn existing_file(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        mode: Option<&Spanned<String>>,
    ) -> Option<PathBuf> {
        let Some(value) = value else {
            let span = mode.map_or(0..0, |m| m.span());
            self.error(
                span,
                key,
                format!("tls.mode = \"files\" needs {key} (a PEM file path)"),
            );
            return None;
        };
        let path = self.path(value.get_ref());
        let result = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            Ok(_) => Err(format!("{} is not a file", path.display())),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        self.check(value, key, result)
    }

    fn routes(&mut self, routes: &[file::Route]) -> Vec<Route> {
        let mut out: Vec<Route> = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            let key = |k: &str| format!("route[{i}].{k}");
            let table_span = r
                .path
                .as_ref()
                .or(r.upstream.as_ref())
                .or(r.host.as_ref())
                .map_or(0..0, |s| s.span());
            let Some(path_value) = &r.path else {
                self.error(
                    table_span,
                    &key("path"),
                    "every [[route]] needs a path, e.g. path = \"/\"",
                );
                continue;
            };
            let path = path_value.get_ref().clone();
            if !path.starts_with('/') {
                self.error(
                    path_value.span(),
                    &key("path"),
                    format!("{path:?} must start with \"/\""),
                );
            }
            let host = r.host.as_ref().map(|h| h.get_ref().to_ascii_lowercase());
            let Some(upstream_value) = &r.upstream else {
                self.error(
                    path_value.span(),
                    &key("upstream"),
                    "route has no upstream (add upstream = \"http://127.0.0.1:3000\")",
                );
                continue;
            };
            let upstream = self.check(
                upstream_value,
                &key("upstream"),
                parse_upstream(upstream_value.get_ref()),
            );
            let cache = r
                .cache
                .as_ref()
                .map(|c| self.duration(Some(c), &key("cache"), Duration::ZERO));
            if out.iter().any(|o| o.path == path && o.host == host) {
                self.error(
                    path_value.span(),
                    &key("path"),
                    format!("another route already has path {path:?} for this host"),
                );
            }
            if let Some(upstream) = upstream {
                out.push(Route {
                    path,
                    host,
                    upstream,
                    cache,
                });
            }
        }
        out
    }

    fn upload(&mut self, u: &Spanned<file::Upload>) -> Option<Upload> {
        let u = u.get_ref();
        let route = u
            .route
            .as_ref()
            .map_or("/products".to_owned(), |r| r.get_ref().clone());
        if !route.starts_with('/') {
            if let Some(r) = &u.route {
                self.error(
                    r.span(),
                    "upload.route",
                    format!("{route:?} must start with \"/\""),
                );
            }
        }
        let non_empty =
            |v: &mut Self, value: &Option<Spanned<String>>, key: &str, default: &str| match value {
                None => default.to_owned(),
                Some(s) if s.get_ref().trim().is_empty() => {
                    v.error(s.span(), key, "must not be empty");
                    default.to_owned()
                }
                Some(s) => s.get_ref().clone(),
            };
        let field = non_empty(self, &u.field, "upload.field", "image");
        let url_field = non_empty(self, &u.url_field, "upload.url_field", "image_url");
        let types = match &u.types {
            None => KNOWN_UPLOAD_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            Some(list) => {
                let mut types = Vec::new();
                for t in list.get_ref() {
                    let name = t
                        .get_ref()
                        .trim()
                        .trim_start_matches('.')
                        .to_ascii_lowercase();
                    if KNOWN_UPLOAD_TYPES.contains(&name.as_str()) {
                        types.push(name);
                    } else {
                        self.error(
                            t.span(),
                            "upload.types",
                            format!("{name:?} cannot be validated (known types: jpg, jpeg, png)"),
                        );
                    }
                }
                if list.get_ref().is_empty() {
                    self.error(list.span(), "upload.types", "must list at least one type");
                }
                types
            }
        };
        let max_size = self.size(
            u.max_size.as_ref(),
            "upload.max_size",
            DEFAULT_UPLOAD_MAX_SIZE,
        );
        let max_pixels = self.count(
            u.max_pixels.as_ref(),
            "upload.max_pixels",
            DEFAULT_UPLOAD_MAX_PIXELS as usize,
        ) as u64;
        let max_fields = self.count(
            u.max_fields.as_ref(),
            "upload.max_fields",
            DEFAULT_UPLOAD_MAX_FIELDS,
        );
        let max_field_size = self.size(
            u.max_field_size.as_ref(),
            "upload.max_field_size",
            DEFAULT_UPLOAD_MAX_FIELD_SIZE,
        );
        let forward = u.forward.unwrap_or(true);
        Some(Upload {
            route,
            field,
            types,
            max_size,
            max_pixels,
            max_fields,
            max_field_size,
            url_field,
            forward,
            strip_metadata: u.strip_metadata.unwrap_or(true),
        })
    }

    fn storage(&mut self, s: &file::Storage) -> Option<Storage> {
        let backend_name = s.backend.as_ref().map_or("local", |b| b.get_ref().as_str());
        let s3 = s.s3.as_ref().map(|s| s.get_ref());
        let prefix = s3
            .and_then(|s3| s3.prefix.as_ref())
            .map_or("products/".to_owned(), |p| p.get_ref().clone());
        if let Some(p) = s3.and_then(|s3| s3.prefix.as_ref()) {
            let text = p.get_ref();
            if text.starts_with('/') || text.contains("..") || text.contains("//") {
                self.error(
                    p.span(),
                    "storage.s3.prefix",
                    format!("{text:?} must be relative, like \"products/\""),
                );
            }
        }
        let public_url = s.public_url.as_ref().and_then(|u| {
            let text = u.get_ref().trim_end_matches('/').to_owned();
            let ok = text.parse::<http::Uri>().ok().filter(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
            });
            let result = ok.map(|_| text.clone()).ok_or_else(|| {
                format!("{text:?} is not a base URL (use e.g. \"https://cdn.example.com\")")
            });
            self.check(u, "storage.public_url", result)
        });
        let backend = match backend_name {
            "local" => Some(StorageBackend::Local {
                dir: self.path(
                    s.dir
                        .as_ref()
                        .map_or("data/media", |d| d.get_ref().as_str()),
                ),
            }),
            "memory" => Some(StorageBackend::Memory),
            "s3" => {
                let Some(s3) = s3 else {
                    let span = s.backend.as_ref().map_or(0..0, |b| b.span());
                    self.error(
                        span,
                        "storage.s3",
                        "backend = \"s3\" needs a [storage.s3] table with a bucket",
                    );
                    return None;
                };
                let bucket = match &s3.bucket {
                    Some(b) if !b.get_ref().trim().is_empty() && !valid_bucket(b.get_ref()) => {
                        self.error(
                            b.span(),
                            "storage.s3.bucket",
                            format!(
                                "{:?} is not an S3 bucket name (3-63 characters: lowercase letters, digits, '.', '-')",
                                b.get_ref()
                            ),
                        );
                        None
                    }
                    Some(b) if !b.get_ref().trim().is_empty() => Some(b.get_ref().to_owned()),
                    other => {
                        let span = other
                            .as_ref()
                            .map_or_else(|| s.s3.as_ref().map_or(0..0, |t| t.span()), |b| b.span());
                        self.error(
                            span,
                            "storage.s3.bucket",
                            "backend = \"s3\" needs a bucket name",
                        );
                        None
                    }
                };
                let region = s3
                    .region
                    .as_ref()
                    .map_or("us-east-1".to_owned(), |r| r.get_ref().clone());
                let endpoint = s3.endpoint.as_ref().and_then(|e| {
                    let text = e.get_ref().trim_end_matches('/').to_owned();
                    let ok = text.parse::<http::Uri>().ok().filter(|uri| {
                        matches!(uri.scheme_str(), Some("http" | "https"))
                            && uri.authority().is_some()
                    });
                    let result = ok.map(|_| text.clone()).ok_or_else(|| {
                        format!(
                            "{text:?} is not an endpoint URL (use e.g. \"http://127.0.0.1:9000\")"
                        )
                    });
                    self.check(e, "storage.s3.endpoint", result)
                });
                Some(StorageBackend::S3 {
                    bucket: bucket?,
                    region,
                    endpoint,
                })
            }
            other => {
                if let Some(b) = &s.backend {
                    self.error(
                        b.span(),
                        "storage.backend",
                        format!("unknown backend {other:?} (use \"local\", \"s3\" or \"memory\")"),
                    );
                }
                None
            }
        };
        Some(Storage {
            backend: backend?,
            prefix,
            public_url,
        })
    }

    fn cache(&mut self, c: &file::Cache) -> Cache {
        let max_entry = self.size(c.max_entry.as_ref(), "cache.max_entry", 1 << 20);
        let backend = match c.backend.as_ref().map(|b| (b, b.get_ref().as_str())) {
            None | Some((_, "memory")) => CacheBackend::Memory,
            Some((_, "redis")) => {
                let url = c
                    .redis
                    .as_ref()
                    .map_or("redis://127.0.0.1:6379".to_owned(), |u| u.get_ref().clone());
                if !(url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("unix://"))
                {
                    if let Some(u) = &c.redis {
                        self.error(
                            u.span(),
                            "cache.redis",
                            format!("{url:?} is not a Redis URL (use redis://HOST:PORT)"),
                        );
                    }
                }
                CacheBackend::Redis { url }
            }
            Some((b, other)) => {
                self.error(
                    b.span(),
                    "cache.backend",
                    format!("unknown backend {other:?} (use \"memory\" or \"redis\")"),
                );
                CacheBackend::Memory
            }
        };
        Cache { backend, max_entry }
    }
}

/// S3 bucket naming rules (the ones a typo breaks).
fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// `http://host:port` (or https) with no path, query or credentials.
fn parse_upstream(text: &str) -> Result<Upstream, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("{text:?} is not a URL (use e.g. \"http://127.0.0.1:3000\")"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => http::uri::Scheme::HTTP,
        Some("https") => http::uri::Scheme::HTTPS,
        Some(other) => {
            return Err(format!(
                "scheme {other:?} not supported (use http or https)"
            ))
        }
        None => {
            return Err(format!(
                "{text:?} has no scheme (use e.g. \"http://{text}\")"
            ))
        }
    };
    let Some(authority) = uri.authority().cloned() else {
        return Err(format!("{text:?} has no host"));
    };
    if authority.as_str().contains('@') {
        return Err("credentials in the upstream URL are not supported".to_owned());
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{text:?} has a path; the upstream is an origin only (requests keep their own path)"
        ));
    }
    Ok(Upstream { scheme, authority })
}
