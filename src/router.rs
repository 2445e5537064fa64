//! Pure routing: (host, path) -> the configured route that serves it.
//!
//! The longest path prefix wins; among routes with the same prefix, one whose `host`
//! names the request's host wins over one without a host. Prefixes match on segment
//! boundaries: `/api` matches `/api` and `/api/items` but not `/apiary`, and `/` matches
//! everything. No I/O, no allocation per request.

use crate::config;

/// The routes of a config, ordered for matching.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<config::Route>,
}

impl Router {
    pub fn new(routes: &[config::Route]) -> Router {
        let mut routes = routes.to_vec();
        // Longest prefix first; host-specific before host-less at equal length.
        routes.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| b.host.is_some().cmp(&a.host.is_some()))
        });
        Router { routes }
    }

    /// The route for a request. `host` may carry a port; it is compared without it,
    /// case-insensitively.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&config::Route> {
        let host = host.map(strip_port);
        self.routes.iter().find(|r| {
            let host_ok = match (&r.host, host) {
                (None, _) => true,
                (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
                (Some(_), None) => false,
            };
            host_ok && path_matches(&r.path, path)
        })
    }
}

/// Does route prefix `prefix` cover request path `path`?
pub fn path_matches(prefix: &str, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
}

/// The path every routing decision (and the upstream) sees: percent-encoded unreserved
/// characters decoded (`%70` -> `p`), other escapes kept (`%2F` stays), repeated slashes
/// merged, and `.` / `..` segments resolved without climbing above the root. Without
/// this, `/x/../products` or `//products` would slip past a prefix meant to cover them.
pub fn normalize_path(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = (h * 16 + l) as u8;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                    out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                }
                i += 3;
                continue;
            }
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

/// `example.com:8443` -> `example.com`, `[::1]:8443` -> `[::1]`.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, host: Option<&str>, upstream: &str) -> config::Route {
        config::Route {
            path: path.to_owned(),
            host: host.map(str::to_owned),
            upstream: config::Upstream {
                scheme: http::uri::Scheme::HTTP,
                authority: upstream.parse().expect("test authority"),
            },
            cache: None,
        }
    }

    fn upstream_of<'a>(router: &'a Router, host: Option<&str>, path: &str) -> Option<&'a str> {
        router
            .find(host, path)
            .map(|r| r.upstream.authority.as_str())
    }

    #[test]
    fn longest_prefix_wins() {
        let router = Router::new(&[
            route("/", None, "a:1"),
            route("/api", None, "b:1"),
            route("/api/v2/", None, "c:1"),
        ]);
        assert_eq!(upstream_of(&router, None, "/"), Some("a:1"));
        assert_eq!(upstream_of(&router, None, "/index.html"), Some("a:1"));
        assert_eq!(upstream_of(&router, None, "/api"), Some("b:1"));
        assert_eq!(upstream_of(&router, None, "/api/v1/x"), Some("b:1"));
        assert_eq!(upstream_of(&router, None, "/api/v2/x"), Some("c:1"));
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let router = Router::new(&[route("/api", None, "b:1")]);
        assert_eq!(upstream_of(&router, None, "/apiary"), None);
        assert_eq!(upstream_of(&router, None, "/api/"), Some("b:1"));
        assert!(path_matches("/api/", "/api/x"));
        assert!(!path_matches("/api/", "/api"));
    }

    #[test]
    fn host_specific_route_beats_host_less_one() {
        let router = Router::new(&[
            route("/", None, "any:1"),
            route("/", Some("shop.example.com"), "shop:1"),
        ]);
        assert_eq!(
            upstream_of(&router, Some("SHOP.example.com:8443"), "/x"),
            Some("shop:1")
        );
        assert_eq!(
            upstream_of(&router, Some("other.example.com"), "/x"),
            Some("any:1")
        );
        assert_eq!(upstream_of(&router, None, "/x"), Some("any:1"));
    }

    #[test]
    fn no_route_means_none() {
        let router = Router::new(&[route("/api", Some("a.example"), "a:1")]);
        assert_eq!(upstream_of(&router, Some("b.example"), "/api"), None);
    }

    #[test]
    fn paths_are_normalized_before_matching() {
        for (raw, want) in [
            ("/products", "/products"),
            ("//products", "/products"),
            ("/./products", "/products"),
            ("/x/../products", "/products"),
            ("/../../products", "/products"),
            ("/%70roducts", "/products"),
            ("/products%2f", "/products%2F"),
            ("/products/.", "/products/"),
            ("/products/", "/products/"),
            ("/a/b/..", "/a/"),
            ("/", "/"),
            ("", "/"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/100%", "/100%"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn strip_port_handles_ipv6() {
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("example.com:80"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
