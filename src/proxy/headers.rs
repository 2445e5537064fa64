//! Pure header rewriting between client and upstream.
//!
//! - Hop-by-hop headers (RFC 9110 §7.6.1) and every header named in `Connection` are
//!   removed in both directions.
//! - `X-Forwarded-For` gets the client's address. On the public listener the client's own
//!   `X-Forwarded-*` values are dropped first (anyone can send them); on the internal
//!   listener (an Nginx we trust in front) they are kept and appended to.
//! - `X-Forwarded-Proto` and `X-Forwarded-Host` describe the client's request.
//! - `Host` is the client's host (`:authority` for h2), passed through unchanged.
//! - `Via` records this hop.

use std::net::IpAddr;

use http::header::FORWARDED;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, EXPECT, HOST, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};
use http::Version;

use crate::http::{
    KEEP_ALIVE, PROXY_CONNECTION, VIA_NAME, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
};

/// What the proxy knows about the client side of a request.
#[derive(Debug, Clone)]
pub struct Forwarding {
    pub client_ip: IpAddr,
    /// `https` on the public listener; what a trusted front proxy says on the internal one.
    pub proto: &'static str,
    /// Keep and append to the client's `X-Forwarded-*` (only behind a trusted proxy).
    pub trust_forwarded: bool,
}

/// Another client-settable claim about the client's address, dropped like `X-Forwarded-*`.
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Remove hop-by-hop headers and those listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The protocol a message asks to switch to (`Upgrade: websocket` with `upgrade` listed
/// in `Connection`), if any.
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let listed = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    listed.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// Put back the upgrade headers that hop-by-hop stripping removed.
pub fn restore_upgrade(headers: &mut HeaderMap, protocol: &HeaderValue) {
    headers.insert(UPGRADE, protocol.clone());
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Rewrite a client request's headers for the upstream. `host` is the request's host
/// (from `Host` or the h2 `:authority`), `version` the client's HTTP version.
pub fn upstream_request(
    headers: &mut HeaderMap,
    host: Option<&str>,
    version: Version,
    fwd: &Forwarding,
) {
    strip_hop_by_hop(headers);
    // The upstream is spoken to without 100-continue; the body is already flowing.
    headers.remove(EXPECT);

    let client_ip = fwd.client_ip.to_string();
    let xff = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) if fwd.trust_forwarded => format!("{prior}, {client_ip}"),
        _ => client_ip,
    };
    if !fwd.trust_forwarded {
        headers.remove(X_FORWARDED_PROTO);
        headers.remove(X_FORWARDED_HOST);
        headers.remove(FORWARDED);
        headers.remove(X_REAL_IP);
    }
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(fwd.proto));
    }
    if let Some(host) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        if !headers.contains_key(X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        headers.insert(HOST, host);
    }
    append_via(headers, version);
}

/// Rewrite an upstream response's headers for the client.
pub fn client_response(headers: &mut HeaderMap, version: Version) {
    strip_hop_by_hop(headers);
    append_via(headers, version);
}

fn append_via(headers: &mut HeaderMap, version: Version) {
    let protocol = match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    let hop = format!("{protocol} {VIA_NAME}");
    let value = match headers.get(VIA).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {hop}"),
        None => hop,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(VIA, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(trust: bool) -> Forwarding {
        Forwarding {
            client_ip: "203.0.113.7".parse().expect("ip"),
            proto: "https",
            trust_forwarded: trust,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn public_listener_replaces_client_forwarded_headers() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        upstream_request(
            &mut h,
            Some("shop.example:8443"),
            Version::HTTP_2,
            &fwd(false),
        );
        assert_eq!(h[X_FORWARDED_FOR], "203.0.113.7");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        assert_eq!(h[X_FORWARDED_HOST], "shop.example:8443");
        assert_eq!(h[HOST], "shop.example:8443");
        assert_eq!(h[VIA], "2 gatehouse");
        assert!(h.get(FORWARDED).is_none() && h.get(X_REAL_IP).is_none());
    }

    #[test]
    fn internal_listener_appends_to_trusted_forwarded_for() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("via", "1.1 nginx"),
        ]);
        upstream_request(&mut h, Some("shop.example"), Version::HTTP_11, &fwd(true));
        assert_eq!(h[X_FORWARDED_FOR], "1.2.3.4, 203.0.113.7");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        assert_eq!(h[VIA], "1.1 nginx, 1.1 gatehouse");
    }
}
