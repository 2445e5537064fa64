//! Gatehouse: one binary at the edge of a web shop.
//!
//! It terminates HTTPS (HTTP/1.1 and h2), reverse-proxies to the application, and takes
//! product-image uploads off the application's hands: validate while streaming, store in
//! an object store, record in a ledger, and hand the application a URL instead of a file.
//!
//! ```text
//! TcpListener (server) -> server::conn: TLS (tls) -> hyper-util auto (HTTP/1.1 | h2)
//!   -> service::dispatch
//!        POST <upload.route>  -> upload -> storage (S3 | local | memory) -> ledger (sled)
//!                                       -> proxy (rewritten form) | 201 with the record
//!        GET  /media/<key>    -> media -> storage
//!        a route (router)     -> proxy -> upstream (pooled, streaming)
//!        GET  / (demo page)   -> demo
//! plain listener  -> server::plain: 308 to https (ACME HTTP-01 later)
//! admin listener  -> admin: health, uploads ledger
//! ```
//!
//! Modules mirror the boxes: [`config`] (proxy.toml -> `Config`), [`tls`], [`server`],
//! [`service`], [`router`], [`proxy`], [`upload`], [`storage`], [`ledger`], [`media`],
//! [`admin`], [`demo`]; [`app`] wires them and [`shutdown`] turns signals into a token.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod ledger;
pub mod media;
pub mod proxy;
pub mod router;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod storage;
pub mod tls;
pub mod upload;

pub use app::App;
pub use config::Config;

/// An error and its sources, `outer: inner: innermost` (each level's `Display` says only
/// its own part, so the chain is printed once, here).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
