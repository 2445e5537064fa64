//! `GET /media/<key>`: objects Gatehouse stores itself (local or memory backend), served
//! with their type, a strong `ETag` (the content hash is in the key), immutable caching,
//! and `nosniff` plus a locked-down CSP so an image URL can never run script.

use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Request, Response, StatusCode};

use crate::http::{empty, full, plain, Body};
use crate::storage::{Store, IMMUTABLE};

pub const PREFIX: &str = "/media/";

pub async fn serve<B>(store: &Store, req: &Request<B>) -> Response<Body> {
    let Some(key) = req
        .uri()
        .path()
        .strip_prefix(PREFIX)
        .filter(|k| valid_key(k))
    else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let content_type = match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        _ => return plain(StatusCode::NOT_FOUND, "not found"),
    };
    let stem = key.rsplit('/').next().unwrap_or(key);
    let etag = format!("\"{}\"", stem.split('.').next().unwrap_or(stem));
    let bytes = match store.get(key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "not found"),
        Err(error) => {
            tracing::error!(error = %crate::error_chain(&error), key, "media read failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
        }
    };
    let not_modified = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if not_modified {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let len = bytes.len();
        let mut r = Response::new(if req.method() == Method::HEAD {
            empty()
        } else {
            full(bytes)
        });
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, etag);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}

/// Keys Gatehouse writes: lowercase hex names under a relative prefix. Anything with
/// `..`, a leading `/`, or odd characters is not one of ours.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && !key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn only_plain_relative_keys() {
        assert!(valid_key("products/ab12.jpg"));
        assert!(!valid_key("../etc/passwd"));
        assert!(!valid_key("products/../x.jpg"));
        assert!(!valid_key("/abs.png"));
        assert!(!valid_key("a//b.png"));
        assert!(!valid_key("a%2e.png"));
    }
}
