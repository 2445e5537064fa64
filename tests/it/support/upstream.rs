//! A real HTTP/1.1 upstream on 127.0.0.1:0, shut down on `Drop`.
//!
//! - `POST /echo`: streams the request body back unchanged (nothing buffered).
//! - `GET /bytes/N`: streams N deterministic bytes ([`pattern`]).
//! - `GET /slow`: answers after 3 s.
//! - `GET /ws` with `Upgrade`: switches protocols and echoes every byte.
//! - `GET /ws-bare`: a 101 without `Upgrade` (a broken upstream).
//! - anything else: reads the body, records the request, answers 200 with JSON
//!   `{method, path, headers, body_len, body_sha256}`; `GET /status/NNN` answers NNN.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Byte `i` of every generated body.
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_task = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let seen = Arc::clone(&seen_task);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let seen = Arc::clone(&seen);
                        async move { Ok::<_, Infallible>(answer(req, seen).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Upstream { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests recorded so far (not the streaming endpoints).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn answer(mut req: Request<Incoming>, seen: Arc<Mutex<Vec<Seen>>>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/ws-bare" {
        // A broken upstream: 101 with no Upgrade header.
        let mut response = Response::new(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        return response;
    }
    if path == "/ws" {
        // A protocol upgrade that echoes every byte back.
        let upgrade = req.headers().get("upgrade").cloned();
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on.await {
                let (mut r, mut w) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut response = Response::new(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert("connection", http::HeaderValue::from_static("upgrade"));
        if let Some(upgrade) = upgrade {
            response.headers_mut().insert("upgrade", upgrade);
        }
        return response;
    }
    if path == "/echo" {
        let body = req
            .into_body()
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            .boxed();
        return Response::new(body);
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().expect("byte count");
        let stream = futures_util::stream::iter((0..n).step_by(64 * 1024).map(move |start| {
            let end = (start + 64 * 1024).min(n);
            let chunk: Vec<u8> = (start..end).map(pattern).collect();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(chunk)))
        }));
        return Response::new(StreamBody::new(stream).boxed());
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                serde_json::Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let reply = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        "headers": headers,
        "body_len": body.len(),
        "body_sha256": hex::encode(Sha256::digest(&body)),
    });
    seen.lock().expect("lock").push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    });
    let mut response = Response::new(
        Full::new(Bytes::from(reply.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        "connection",
        http::HeaderValue::from_static("keep-alive, x-upstream-private"),
    );
    response
        .headers_mut()
        .insert("x-upstream-private", http::HeaderValue::from_static("hop"));
    response
}
