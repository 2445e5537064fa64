//! The admin listener (loopback by default): `GET /health`, and the uploads ledger as
//! JSON at `GET /uploads?limit=&after=` and `GET /uploads/<id>`. Never bind it publicly:
//! the ledger lists every upload.

use http::{Method, Request, Response, StatusCode};

use crate::http::{json, json_error, Body};
use crate::ledger;
use crate::service::{method_not_allowed, State};

/// Default page size of `GET /uploads`.
pub const DEFAULT_LIMIT: usize = 100;

pub async fn handle<B>(state: &State, req: Request<B>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    // A web page the operator visits could point a DNS name at 127.0.0.1 and read the
    // ledger (DNS rebinding): only `localhost` and address literals are answered.
    if let Some(host) = crate::service::request_host(&req) {
        let name = crate::router::strip_port(&host);
        let literal = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        if !(literal || name.eq_ignore_ascii_case("localhost")) {
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden_host",
                "the admin listener answers localhost and IP addresses only",
            );
        }
    }
    let path = req.uri().path();
    if path == "/health" {
        return json(StatusCode::OK, &serde_json::json!({ "status": "ok" }));
    }
    let Some(upload) = &state.upload else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "uploads are not configured",
        );
    };
    let ledger = upload.ledger();
    if path == "/uploads" {
        let query = Query::parse(req.uri().query().unwrap_or(""));
        let (limit, after) = match query {
            Ok(q) => q,
            Err(message) => return json_error(StatusCode::BAD_REQUEST, "bad_query", &message),
        };
        return match ledger.list(after, limit) {
            Ok(records) => {
                let next = (records.len() == limit)
                    .then(|| records.last().map(|r| r.id))
                    .flatten();
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "uploads": records, "next_after": next }),
                )
            }
            Err(error) => ledger_error(&error),
        };
    }
    if let Some(id) = path.strip_prefix("/uploads/") {
        let Ok(id) = id.parse::<u64>() else {
            return json_error(StatusCode::NOT_FOUND, "not_found", "no such upload");
        };
        return match ledger.get(id) {
            Ok(Some(record)) => json(
                StatusCode::OK,
                &serde_json::to_value(record).unwrap_or_default(),
            ),
            Ok(None) => json_error(StatusCode::NOT_FOUND, "not_found", "no such upload"),
            Err(error) => ledger_error(&error),
        };
    }
    json_error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

fn ledger_error(error: &ledger::Error) -> Response<Body> {
    tracing::error!(error = %crate::error_chain(error), "ledger read failed");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "ledger read failed",
    )
}

struct Query;

impl Query {
    /// `limit` (1..=1000, default 100) and `after` (an id).
    fn parse(query: &str) -> Result<(usize, Option<u64>), String> {
        let mut limit = DEFAULT_LIMIT;
        let mut after = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "limit" => {
                    limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=ledger::MAX_LIST).contains(n))
                        .ok_or_else(|| format!("limit must be 1 to {}", ledger::MAX_LIST))?;
                }
                "after" => {
                    after = Some(
                        v.parse::<u64>()
                            .map_err(|_| "after must be an upload id".to_owned())?,
                    )
                }
                _ => return Err(format!("unknown parameter {k:?} (use limit and after)")),
            }
        }
        Ok((limit, after))
    }
}
