//! The integration tests: one binary (one link step), each module one capability.
//! Every test starts its own Gatehouse on 127.0.0.1 port 0 and its own real peers
//! (upstream, S3-compatible server, browser) through `support`.

mod support;

mod browser;
mod cli;
mod config;
mod proxy;
mod s3;
mod tls;
mod upload;
