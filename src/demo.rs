//! The built-in upload page (`[demo] page = true`): one HTML document with its CSS and
//! script inline, embedded in the binary. The Content-Security-Policy allows exactly those
//! two inline blocks (by hash), same-origin requests, and images from this origin or any
//! https origin (an S3 bucket or CDN); nothing external is loaded. The page never lists
//! other people's uploads.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use http::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::http::{full, Body};

const PAGE: &str = include_str!("demo/page.html");
const STYLE: &str = include_str!("demo/page.css");
const SCRIPT: &str = include_str!("demo/page.js");

struct Rendered {
    /// The page with its style and script in place; `{{ROUTE}}` is filled per response.
    template: String,
    csp: HeaderValue,
}

/// Style, script and CSP depend only on the embedded files: computed once. The route is
/// not cached with them (one process may serve several configs, e.g. in tests).
fn rendered() -> &'static Rendered {
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let hash = |text: &str| {
            format!(
                "'sha256-{}'",
                BASE64.encode(Sha256::digest(text.as_bytes()))
            )
        };
        let template = PAGE
            .replace("{{STYLE}}", STYLE)
            .replace("{{SCRIPT}}", SCRIPT);
        let csp = format!(
            "default-src 'none'; style-src {}; script-src {}; img-src 'self' https: blob:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            hash(STYLE),
            hash(SCRIPT)
        );
        Rendered {
            template,
            csp: HeaderValue::from_str(&csp).expect("the CSP is ASCII"),
        }
    })
}

/// The page, posting to `route` with the size limit `max_bytes` shown (the upload
/// configuration, when there is one).
pub fn page(route: Option<&str>, max_bytes: u64) -> Response<Body> {
    let page = rendered();
    let html = page
        .template
        .replace("{{ROUTE}}", &html_escape(route.unwrap_or("/products")))
        .replace("{{MAX_BYTES}}", &max_bytes.to_string())
        .replace("{{LIMIT}}", &human_size(max_bytes));
    let mut response = Response::new(full(html));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_SECURITY_POLICY, page.csp.clone());
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `2097152` -> `2 MiB`, `1500000` -> `1.4 MiB`, `65536` -> `64 KiB`.
fn human_size(bytes: u64) -> String {
    let (value, unit) = if bytes >= 1 << 20 {
        (bytes as f64 / f64::from(1u32 << 20), "MiB")
    } else if bytes >= 1 << 10 {
        (bytes as f64 / 1024.0, "KiB")
    } else {
        return format!("{bytes} bytes");
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.trim_end_matches(".0"))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_the_config() {
        assert_eq!(super::human_size(2 * 1024 * 1024), "2 MiB");
        assert_eq!(super::human_size(1_500_000), "1.4 MiB");
        assert_eq!(super::human_size(65_536), "64 KiB");
        assert_eq!(super::human_size(100), "100 bytes");
    }
}
