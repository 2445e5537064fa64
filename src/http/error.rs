//! The one boundary where request failures become responses.
//!
//! Every handler returns `Result<Response, RequestError>`; [`RequestError::into_response`]
//! is the only place a failure picks its status code. The match is exhaustive (no `_ =>`),
//! so a new failure cannot silently become a 500. Bodies carry a message for the client
//! and never internal detail; the log line carries the whole error chain.

use http::{Response, StatusCode};

use crate::http::{json_error, plain, Body};
use crate::{proxy, upload};

/// Who caused a failure (as pingora's `ErrorSource`): decides the log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no route for this request")]
    NoRoute,
    #[error("proxying failed")]
    Proxy(#[from] proxy::Error),
    #[error("upload failed")]
    Upload(#[from] upload::Error),
}

impl RequestError {
    pub fn fault(&self) -> Fault {
        match self {
            RequestError::NoRoute => Fault::Client,
            RequestError::Proxy(proxy::Error::BodyTooLarge) => Fault::Client,
            RequestError::Proxy(_) => Fault::Upstream,
            RequestError::Upload(e) => e.fault(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        match self {
            RequestError::NoRoute => plain(StatusCode::NOT_FOUND, "no route for this path"),
            RequestError::Proxy(e) => match e {
                proxy::Error::Connect { .. } => {
                    plain(StatusCode::BAD_GATEWAY, "upstream unavailable")
                }
                proxy::Error::Upstream { .. } => plain(StatusCode::BAD_GATEWAY, "upstream failed"),
                proxy::Error::Timeout { .. } => {
                    plain(StatusCode::GATEWAY_TIMEOUT, "upstream timed out")
                }
                proxy::Error::BodyTooLarge => {
                    plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                }
            },
            RequestError::Upload(e) => {
                let (status, code) = e.status_and_code();
                json_error(status, code, &e.client_message())
            }
        }
    }
}
