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
            RequestError::Proxy(proxy::Error::BodyTooLarge | proxy::Error::ClientBody { .. }) => {
                Fault::Client
            }
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
                proxy::Error::Upstream { .. } | proxy::Error::BadUpgrade { .. } => {
                    plain(StatusCode::BAD_GATEWAY, "upstream failed")
                }
                proxy::Error::Timeout { .. } => {
                    plain(StatusCode::GATEWAY_TIMEOUT, "upstream timed out")
                }
                proxy::Error::ClientBody { .. } => plain(
                    StatusCode::BAD_REQUEST,
                    "malformed or incomplete request body",
                ),
                proxy::Error::BodyTooLarge => {
                    plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                }
            },
            RequestError::Upload(e) => {
                let (status, code) = e.status_and_code();
                let mut response = json_error(status, code, &e.client_message());
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    response.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static("5"),
                    );
                }
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_body(error: RequestError) -> (u16, String) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let ct = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct)
    }

    #[test]
    fn statuses_are_pinned() {
        assert_eq!(status_and_body(RequestError::NoRoute).0, 404);
        let timeout = proxy::Error::Timeout {
            upstream: "http://127.0.0.1:1".into(),
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(status_and_body(timeout.into()).0, 504);
        assert_eq!(status_and_body(proxy::Error::BodyTooLarge.into()).0, 413);
        let too_large = upload::Error::FileTooLarge { limit: 2 };
        assert_eq!(
            status_and_body(too_large.into()),
            (400, "application/json".to_owned())
        );
        let storage = upload::Error::Storage(crate::storage::Error::Timeout {
            after: std::time::Duration::from_secs(1),
        });
        let response = RequestError::from(storage).into_response();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
    }

    #[test]
    fn upload_codes_follow_the_contract() {
        let cases: Vec<(upload::Error, &str)> = vec![
            (upload::Error::NotMultipart, "malformed_multipart"),
            (
                upload::Error::MissingFile {
                    field: "image".into(),
                },
                "missing_file",
            ),
            (upload::Error::FileTooLarge { limit: 1 }, "file_too_large"),
            (upload::Error::BodyTooLarge { limit: 1 }, "file_too_large"),
            (
                upload::Error::UnsupportedType { reason: "x".into() },
                "unsupported_type",
            ),
            (
                upload::Error::TypeMismatch {
                    declared: "JPEG",
                    detected: "PNG",
                },
                "type_mismatch",
            ),
            (upload::Error::EmptyFile, "corrupt_image"),
        ];
        for (error, code) in cases {
            assert_eq!(
                error.status_and_code(),
                (http::StatusCode::BAD_REQUEST, code),
                "{error:?}"
            );
            assert_eq!(error.fault(), Fault::Client);
        }
    }
}
