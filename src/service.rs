//! The request path: one `match` picks the stage for a request, then the response is
//! finished the same way for every stage.
//!
//! Order of decisions on the public listener (first match wins):
//! 1. `POST <upload.route>` -> the upload interceptor (before routes: the point is that
//!    the upstream never sees the raw file).
//! 2. `GET|HEAD /media/<key>` when Gatehouse stores objects itself -> the object store.
//! 3. A configured route (longest prefix) -> the upstream.
//! 4. `GET|HEAD /` with `[demo] page = true` -> the built-in upload page.
//! 5. Otherwise `404`.
//!
//! Then: failures become responses in one place ([`RequestError::into_response`]), HSTS is
//! added on TLS listeners, and one access-log line is written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderValue, CONTENT_TYPE, HOST, STRICT_TRANSPORT_SECURITY};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::http::error::{Fault, RequestError};
use crate::http::{plain, Body, BoxError};
use crate::proxy::{Forwarding, Proxy};
use crate::router::Router;
use crate::{admin, demo, media, upload, Config};

/// What one accepted connection is.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    pub sni: Option<String>,
    pub listener: &'static str,
}

/// What a listener does with requests.
#[derive(Clone)]
pub enum Handler {
    /// The https listener: everything in the module docs.
    Public(Arc<State>),
    /// Plain HTTP for a trusted Nginx in front: as `Public`, trusting `X-Forwarded-*`.
    Internal(Arc<State>),
    /// Port 80: ACME challenges and 308 to https.
    Redirect { https_port: u16 },
    /// Loopback admin: health and the uploads ledger.
    Admin(Arc<State>),
}

/// Everything the request path shares.
pub struct State {
    pub config: Arc<Config>,
    pub router: Router,
    pub proxy: Proxy,
    pub upload: Option<upload::Handler>,
}

pub async fn handle(
    handler: Handler,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<Body> {
    match handler {
        Handler::Public(state) => public(&state, &conn, req, false).await,
        Handler::Internal(state) => public(&state, &conn, req, true).await,
        Handler::Redirect { https_port } => crate::server::plain::redirect(&req, https_port),
        Handler::Admin(state) => admin::handle(&state, req).await,
    }
}

async fn public(
    state: &State,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    trusted: bool,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    normalize_uri(&mut req);
    let path = req.uri().path().to_owned();
    let version = req.version();
    let host = request_host(&req);

    let result = match check_request(&req, host.as_deref()) {
        Ok(()) => dispatch(state, conn, req, host.as_deref(), trusted).await,
        Err(message) => Ok(plain(StatusCode::BAD_REQUEST, message)),
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            let chain = crate::error_chain(&error);
            match error.fault() {
                Fault::Client => {
                    tracing::debug!(peer = %conn.peer, %method, %path, error = %chain, "request refused")
                }
                Fault::Upstream => {
                    tracing::warn!(peer = %conn.peer, %method, %path, error = %chain, "upstream failed")
                }
                Fault::Internal => {
                    tracing::error!(peer = %conn.peer, %method, %path, error = %chain, "request failed")
                }
            }
            error.into_response()
        }
    };
    if conn.tls {
        if let Some(hsts) = &state.config.server.hsts {
            response
                .headers_mut()
                .insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
    tracing::info!(
        target: "gatehouse::access",
        peer = %conn.peer,
        listener = conn.listener,
        sni = conn.sni.as_deref().unwrap_or("-"),
        host = host.as_deref().unwrap_or("-"),
        %method,
        %path,
        version = ?version,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    response
}

async fn dispatch(
    state: &State,
    conn: &ConnInfo,
    req: Request<Incoming>,
    host: Option<&str>,
    trusted: bool,
) -> Result<Response<Body>, RequestError> {
    let fwd = Forwarding {
        client_ip: conn.peer.ip(),
        proto: if conn.tls { "https" } else { "http" },
        trust_forwarded: trusted,
    };
    let path = req.uri().path();
    let read = req.method() == Method::GET || req.method() == Method::HEAD;

    if let Some(upload) = &state.upload {
        // Every multipart body at or under the upload route is an upload, whatever the
        // method or spelling of the path; and any POST to the route itself is one.
        // Any Content-Type header that mentions multipart counts, read as raw bytes: a
        // non-ASCII byte or a second, innocent Content-Type must not hide a form.
        let multipart = req.headers().get_all(CONTENT_TYPE).iter().any(|ct| {
            ct.as_bytes()
                .windows(b"multipart".len())
                .any(|w| w.eq_ignore_ascii_case(b"multipart"))
        });
        let is_post = req.method() == Method::POST;
        if upload.covers(path) && (multipart || (is_post && upload.is_route(path))) {
            let upstream = state.router.find(host, path).map(|r| &r.upstream);
            let forward = upload::Forward {
                proxy: &state.proxy,
                upstream: upstream.filter(|_| upload.forwards()),
                fwd: &fwd,
            };
            return upload.handle(req, host, forward).await;
        }
        if read && path.starts_with(media::PREFIX) && upload.store().serves_media() {
            return Ok(media::serve(upload.store(), &req).await);
        }
    }
    if let Some(route) = state.router.find(host, path) {
        let upstream = route.upstream.clone();
        let req = match state.config.server.max_body {
            None => req.map(|body| body.map_err(BoxError::from).boxed()),
            Some(limit) => {
                let declared = req
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > limit) {
                    return Err(crate::proxy::Error::BodyTooLarge.into());
                }
                // A body without a (truthful) length is cut off while it streams.
                let cap = usize::try_from(limit).unwrap_or(usize::MAX);
                req.map(|body| http_body_util::Limited::new(body, cap).boxed())
            }
        };
        return Ok(state.proxy.forward(req, &upstream, host, &fwd).await?);
    }
    if read && state.config.demo_page {
        if path == "/" {
            let upload = state.config.upload.as_ref();
            let max = upload.map_or(crate::config::DEFAULT_UPLOAD_MAX_SIZE, |u| u.max_size);
            return Ok(demo::page(upload.map(|u| u.route.as_str()), max));
        }
        if path == "/favicon.ico" {
            // The page has no icon; answer "nothing" rather than a 404 in every console.
            let mut response = http::Response::new(crate::http::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            return Ok(response);
        }
    }
    Err(RequestError::NoRoute)
}

/// Route and forward the normalized path (see [`crate::router::normalize_path`]).
fn normalize_uri<B>(req: &mut Request<B>) {
    let path = req.uri().path();
    // Most paths have nothing to normalize: skip the allocation on the hot path.
    if !(path.contains("//") || path.contains("/.") || path.contains('%')) {
        return;
    }
    let normalized = crate::router::normalize_path(path);
    if normalized == path {
        return;
    }
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Refuse what upstreams could read differently from us. HTTP/1.1 needs exactly one
/// valid `Host` (RFC 9112 §3.2; h2 has `:authority`). Method names are case-sensitive, and
/// `post` is not `POST` to us but is to frameworks that upper-case it, so lower-case
/// methods are refused rather than forwarded (nginx does the same).
fn check_request<B>(req: &Request<B>, host: Option<&str>) -> Result<(), &'static str> {
    if req
        .method()
        .as_str()
        .bytes()
        .any(|b| b.is_ascii_lowercase())
    {
        return Err("method names are upper case");
    }
    let count = req.headers().get_all(HOST).iter().count();
    if count > 1 {
        return Err("more than one Host header");
    }
    if host.is_none()
        && (count == 1
            || req.version() == http::Version::HTTP_11
            || req.version() == http::Version::HTTP_2)
    {
        return Err("a valid Host header is required");
    }
    Ok(())
}

/// The request's host: the h2 `:authority` (or an absolute-form URI), else `Host`; only
/// when it is a plain host name or address with an optional port (it ends up in logs,
/// upstream headers and, without `storage.public_url`, in stored URLs).
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|h| crate::server::plain::valid_host(h))
}

/// A 405 for the admin listener and friends.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    response
}
