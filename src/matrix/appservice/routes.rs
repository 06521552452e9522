//! The AS API routes and their request handling: auth first, then the body (capped), then the
//! handler; answers in the Matrix error format (`{"errcode", "error"}`).

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use ruma::UserId;
use ruma::serde::Raw;
use serde_json::{Value, json};

use super::auth::{self, AuthFailure};
use super::{
    AppserviceHandler, AppserviceStatus, Delivery, SMALL_BODY_BYTES, ServerSettings, Transaction,
};
use crate::metrics::Metrics;
use crate::metrics::matrix::{AppserviceEventKind, AppserviceEventOutcome, AppserviceTxnOutcome};

/// The older Synapse spelling of `ephemeral` (MSC2409), sent alone by some versions.
const UNSTABLE_EPHEMERAL: &str = "de.sorunome.msc2409.ephemeral";

/// What every route shares.
pub(super) struct AppState {
    pub(super) settings: ServerSettings,
    pub(super) handler: Arc<dyn AppserviceHandler>,
    pub(super) status: AppserviceStatus,
    pub(super) metrics: Metrics,
}

/// Registers every route; unknown paths get 404 `M_UNRECOGNIZED`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["/_matrix/app/v1", ""] {
        cfg.route(&format!("{prefix}/transactions/{{txn_id}}"), web::put().to(put_transaction))
            .route(&format!("{prefix}/users/{{user_id}}"), web::get().to(get_user))
            .route(&format!("{prefix}/rooms/{{alias}}"), web::get().to(get_room));
    }
    cfg.route("/_matrix/app/v1/ping", web::post().to(post_ping))
        .route("/_matrix/app/com.qqbridge/bridge_state", web::get().to(get_bridge_state))
        .route("/_matrix/app/v1/thirdparty/{tail:.*}", web::get().to(get_thirdparty))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .default_service(web::to(unrecognized));
}

/// A Matrix error answer.
fn error(status: StatusCode, errcode: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errcode": errcode, "error": message }))
}

fn ok_empty() -> HttpResponse {
    HttpResponse::Ok().json(json!({}))
}

/// The `hs_token` check shared by every AS API route; `Some` is the refusal to send.
fn refusal(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    auth::check(header, req.query_string(), &state.settings.hs_token).err().map(|failure| {
        tracing::warn!(path = %req.path(), ?failure, "appservice request refused");
        match failure {
            AuthFailure::Missing => {
                error(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "missing hs_token")
            }
            AuthFailure::Forbidden => error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "bad hs_token"),
        }
    })
}

/// Why a body could not be read.
#[derive(Debug)]
enum ReadFailure {
    /// Over the cap: 413 `M_TOO_LARGE`.
    TooLarge,
    /// The connection failed mid-body: 400.
    Unreadable,
}

impl ReadFailure {
    fn answer(self) -> HttpResponse {
        match self {
            ReadFailure::TooLarge => {
                error(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "body too large")
            }
            ReadFailure::Unreadable => {
                error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "could not read the request body")
            }
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes (by `Content-Length` up front, else
/// while streaming).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ReadFailure> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ReadFailure::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ReadFailure::Unreadable)?;
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(ReadFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why a transaction body was refused; the `Display` text is the answer's `error` member.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or JSON but not an object: 400 `M_NOT_JSON`.
    #[error("body is not a JSON object")]
    NotJson,
    /// `events` or `ephemeral` present but not an array: 400 `M_BAD_JSON`.
    #[error("`{0}` is not an array")]
    BadField(&'static str),
}

/// Parses a transaction body once as JSON, takes the unstable ephemeral key when the stable one
/// is missing, and keeps every event raw (one bad event never fails the transaction). Pure: the
/// route and the fuzz target (`fuzz/fuzz_targets/transaction.rs`) share it.
pub fn parse_transaction(txn_id: String, body: &[u8]) -> Result<Transaction, BodyError> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return Err(BodyError::NotJson);
    };
    let ephemeral = match object.remove("ephemeral") {
        Some(stable) => Some(stable),
        None => object.remove(UNSTABLE_EPHEMERAL),
    };
    Ok(Transaction {
        txn_id,
        events: raw_array(object.remove("events"), "events")?,
        ephemeral: raw_array(ephemeral, "ephemeral")?,
    })
}

/// The elements of a JSON array as raw values; a missing key or `null` is an empty list.
fn raw_array<T>(value: Option<Value>, key: &'static str) -> Result<Vec<Raw<T>>, BodyError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                serde_json::value::to_raw_value(item)
                    .map(Raw::from_json)
                    .map_err(|_| BodyError::BadField(key))
            })
            .collect(),
        Some(_) => Err(BodyError::BadField(key)),
    }
}

async fn put_transaction(
    req: HttpRequest,
    txn_id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let metrics = &state.metrics;
    if let Some(answer) = refusal(&req, &state) {
        metrics.appservice_transaction(AppserviceTxnOutcome::AuthRejected, None);
        return answer;
    }
    let bad_body = |answer: HttpResponse| {
        metrics.appservice_transaction(AppserviceTxnOutcome::BadBody, Some(started.elapsed()));
        answer
    };
    let body = match read_body(&req, payload, state.settings.max_body_bytes).await {
        Ok(body) => body,
        Err(failure) => return bad_body(failure.answer()),
    };
    let txn = match parse_transaction(txn_id.into_inner(), &body) {
        Ok(txn) => txn,
        Err(failure) => {
            let errcode = match failure {
                BodyError::NotJson => "M_NOT_JSON",
                BodyError::BadField(_) => "M_BAD_JSON",
            };
            return bad_body(error(StatusCode::BAD_REQUEST, errcode, &failure.to_string()));
        }
    };
    drop(body);
    let (pdus, ephemeral) = (txn.events.len(), txn.ephemeral.len());
    let txn_id = txn.txn_id.clone();
    match state.handler.transaction(txn).await {
        Ok(delivery) => {
            let outcome = match delivery {
                Delivery::Processed => {
                    // Counted once per transaction, not per homeserver retry.
                    let received = AppserviceEventOutcome::Received;
                    metrics.appservice_events(AppserviceEventKind::Pdu, received, count(pdus));
                    metrics.appservice_events(
                        AppserviceEventKind::Ephemeral,
                        received,
                        count(ephemeral),
                    );
                    AppserviceTxnOutcome::Processed
                }
                Delivery::Duplicate => AppserviceTxnOutcome::Duplicate,
            };
            tracing::debug!(%txn_id, pdus, ephemeral, ?delivery, "appservice transaction");
            metrics.appservice_transaction(outcome, Some(started.elapsed()));
            ok_empty()
        }
        Err(err) => {
            // 500 makes the homeserver keep the transaction and re-send it (MATRIX.md §2).
            tracing::error!(%txn_id, error = %err, "appservice transaction not stored");
            metrics
                .appservice_transaction(AppserviceTxnOutcome::StoreError, Some(started.elapsed()));
            error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "could not store the transaction")
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

async fn get_user(
    req: HttpRequest,
    user_id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(answer) = refusal(&req, &state) {
        return answer;
    }
    let Ok(user_id) = UserId::parse(user_id.as_str()) else {
        return error(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "invalid user id");
    };
    if state.handler.query_user(user_id).await {
        ok_empty()
    } else {
        error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no such user")
    }
}

/// The bridge's per-login states (MATRIX.md §6.5), for whoever holds the hs_token.
async fn get_bridge_state(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(answer) = refusal(&req, &state) {
        return answer;
    }
    HttpResponse::Ok().json(state.handler.bridge_state())
}

/// Room aliases are never created on demand (MATRIX.md §1): always 404.
async fn get_room(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(answer) = refusal(&req, &state) {
        return answer;
    }
    error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no such room alias")
}

async fn post_ping(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(answer) = refusal(&req, &state) {
        return answer;
    }
    let body = match read_body(&req, payload, SMALL_BODY_BYTES).await {
        Ok(body) => body,
        Err(failure) => return failure.answer(),
    };
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "M_NOT_JSON", "body is not a JSON object");
    };
    if let Some(Value::String(id)) = object.get("transaction_id") {
        state.status.record_ping(id.clone());
    }
    ok_empty()
}

/// Third-party lookups (MATRIX.md §1): no protocol metadata, empty location and user lists.
async fn get_thirdparty(
    req: HttpRequest,
    tail: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(answer) = refusal(&req, &state) {
        return answer;
    }
    if tail.starts_with("location") || tail.starts_with("user") {
        HttpResponse::Ok().json(Value::Array(Vec::new()))
    } else {
        error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no third-party protocol")
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ok\n")
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.status.is_ready() {
        HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("not ready\n")
    }
}

async fn unrecognized() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "unrecognized request")
}
