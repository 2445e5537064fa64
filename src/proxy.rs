//! Forwarding a request to its upstream and streaming the answer back.
//!
//! One pooled keep-alive client (hyper-util's legacy client over hyper-rustls) is shared
//! by all routes; it speaks HTTP/1.1 to upstreams, whatever the client spoke to us. Bodies
//! stream both ways and are never buffered whole. Failures are typed by who is at fault:
//! a refused or unreachable upstream is [`Error::Connect`] (502), no response within
//! `timeouts.upstream_response` (or no connection within `timeouts.upstream_connect`) is
//! [`Error::Timeout`] (504).

pub mod headers;

use std::time::Duration;

use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::{self, Upstream};
use crate::http::{Body, BoxError};
pub use headers::Forwarding;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to upstream {upstream}")]
    Connect {
        upstream: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("upstream {upstream} did not answer within {after:?}")]
    Timeout { upstream: String, after: Duration },
    #[error("upstream {upstream} failed")]
    Upstream {
        upstream: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("request body over server.max_body")]
    BodyTooLarge,
    #[error("the client's request body failed (malformed or cut off)")]
    ClientBody {
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("upstream {upstream} switched protocols without agreeing to the client's upgrade")]
    BadUpgrade { upstream: String },
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The shared upstream client.
#[derive(Clone, Debug)]
pub struct Proxy {
    client: Client<Connector, Body>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl Proxy {
    pub fn new(timeouts: &config::Timeouts) -> Result<Proxy, BoxError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.upstream_connect));
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()?;
        let tls = rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(tls)?
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(Proxy {
            client,
            connect_timeout: timeouts.upstream_connect,
            response_timeout: timeouts.upstream_response,
        })
    }

    /// Send `req` to `upstream` and return its response, headers rewritten, body streaming.
    /// `host` is the client's host, passed through as `Host`.
    pub async fn forward(
        &self,
        mut req: Request<Body>,
        upstream: &Upstream,
        host: Option<&str>,
        fwd: &Forwarding,
    ) -> Result<Response<Body>, Error> {
        let client_version = req.version();
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(upstream.authority.clone())
            .path_and_query(path)
            .build()
            .expect("scheme, authority and path were each already valid");
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        // An HTTP/1.1 protocol upgrade (WebSocket): the `Upgrade` header is hop-by-hop, so
        // it is carried across this hop explicitly, and the two upgraded connections are
        // joined once the upstream answers 101.
        let upgrade = (client_version == Version::HTTP_11)
            .then(|| headers::requested_upgrade(req.headers()))
            .flatten();
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        headers::upstream_request(req.headers_mut(), host, client_version, fwd);
        if let Some(protocol) = &upgrade {
            headers::restore_upgrade(req.headers_mut(), protocol);
        }

        let upstream_name = upstream.to_string();
        let response =
            match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
                Err(_) => {
                    return Err(Error::Timeout {
                        upstream: upstream_name,
                        after: self.response_timeout,
                    })
                }
                Ok(Err(source)) if source.is_connect() => {
                    return Err(if is_timeout(&source) {
                        Error::Timeout {
                            upstream: upstream_name,
                            after: self.connect_timeout,
                        }
                    } else {
                        Error::Connect {
                            upstream: upstream_name,
                            source,
                        }
                    });
                }
                Ok(Err(source)) if body_over_limit(&source) => return Err(Error::BodyTooLarge),
                Ok(Err(source)) if client_body_failed(&source) => {
                    return Err(Error::ClientBody { source })
                }
                Ok(Err(source)) => {
                    return Err(Error::Upstream {
                        upstream: upstream_name,
                        source,
                    })
                }
                Ok(Ok(response)) => response,
            };
        let mut response = response;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // Join the connections only for the upgrade the client asked for, confirmed by
            // the upstream; anything else would be an unvalidated tunnel.
            let confirmed = headers::requested_upgrade(response.headers());
            let agreed = match (&upgrade, &confirmed) {
                (Some(asked), Some(got)) => asked.as_bytes().eq_ignore_ascii_case(got.as_bytes()),
                _ => false,
            };
            let (Some(client_upgrade), Some(protocol), true) = (client_upgrade, confirmed, agreed)
            else {
                return Err(Error::BadUpgrade {
                    upstream: upstream_name,
                });
            };
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(join_upgraded(
                client_upgrade,
                upstream_upgrade,
                upstream_name,
            ));
            let (mut parts, body) = response.into_parts();
            headers::client_response(&mut parts.headers, client_version);
            headers::restore_upgrade(&mut parts.headers, &protocol);
            return Ok(Response::from_parts(
                parts,
                body.map_err(BoxError::from).boxed(),
            ));
        }
        let (mut parts, body) = response.into_parts();
        headers::client_response(&mut parts.headers, client_version);
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed(),
        ))
    }
}

/// Copy bytes both ways between an upgraded client connection and its upstream until
/// either side closes.
async fn join_upgraded(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    name: String,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(upstream = %name, %error, "protocol upgrade failed");
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(upstream = %name, %error, "upgraded connection ended with an error");
    }
}

/// Did sending fail because the *client's* body stream failed (bad chunking, a client
/// that went away mid-body)? hyper marks a failing request body as a user error.
fn client_body_failed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Did the request body hit `server.max_body` while streaming?
fn body_over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if e.to_string().contains("timed out") {
            return true;
        }
        current = e.source();
    }
    false
}
