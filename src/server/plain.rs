//! The plain-HTTP listener: `308 Permanent Redirect` to the same host, path and query on
//! https (with the https port when it is not 443). ACME HTTP-01 challenges will be answered
//! here before the redirect; until ACME is configured they get a 404.

use http::header::{HeaderValue, HOST, LOCATION};
use http::{Request, Response, StatusCode};

use crate::http::{plain, Body};
use crate::router::strip_port;

/// Where ACME HTTP-01 validation requests arrive.
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The answer of the plain listener to `req`.
pub fn redirect<B>(req: &Request<B>, https_port: u16) -> Response<Body> {
    if req.uri().path().starts_with(ACME_CHALLENGE_PREFIX) {
        return plain(StatusCode::NOT_FOUND, "no ACME challenge pending");
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    let Some(host) = host.filter(|h| valid_host(h)) else {
        return plain(StatusCode::BAD_REQUEST, "a valid Host header is required");
    };
    let name = strip_port(&host);
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{name}{port}{path}");
    let Ok(location) = HeaderValue::from_str(&location) else {
        return plain(StatusCode::BAD_REQUEST, "cannot build the https URL");
    };
    let mut response = plain(StatusCode::PERMANENT_REDIRECT, "moved to https");
    response.headers_mut().insert(LOCATION, location);
    response
}

/// A host name or IP literal, with an optional port: nothing that could turn the redirect
/// into another URL (`/`, `@`, `?`, spaces).
pub fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    // `[v6]` or `[v6]:port`; else `name` or `name:port` with no other colon.
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: &str, uri: &str, port: u16) -> Option<String> {
        let req = Request::builder()
            .uri(uri)
            .header(HOST, host)
            .body(())
            .expect("request");
        let response = redirect(&req, port);
        response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    #[test]
    fn keeps_path_and_query_and_maps_the_port() {
        assert_eq!(
            location("shop.example:8080", "/a/b?x=1&y=2", 8443).as_deref(),
            Some("https://shop.example:8443/a/b?x=1&y=2")
        );
        assert_eq!(
            location("shop.example", "/", 443).as_deref(),
            Some("https://shop.example/")
        );
        assert_eq!(
            location("[::1]:8080", "/x", 8443).as_deref(),
            Some("https://[::1]:8443/x")
        );
    }

    #[test]
    fn host_syntax() {
        for ok in [
            "shop.example",
            "shop.example:8443",
            "127.0.0.1:8443",
            "[::1]",
            "[::1]:8443",
            "localhost",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "[::1]evil.example",
            "[::1]:443.evil.example",
            "[::1]_x",
            "localhost:99999999999",
            "a.com:99999",
            "a:b:c",
            "[nope]",
            "",
            "evil.com/../x",
            "user@evil.com",
            "a.com:",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn rejects_hosts_that_would_change_the_url() {
        assert_eq!(location("evil.example/@x", "/", 443), None);
        assert_eq!(location("a b", "/", 443), None);
    }
}
