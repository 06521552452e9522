//! The provisioning routes: the shared secret checked (constant time) before anything else, then
//! `user_id`, the per-user rate limit, the body (capped), the handler; answers in the Matrix
//! error format.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine as _;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};

use super::limiter::Limiter;
use super::{LoginStep, PREFIX, ProvError, Provisioning, StepKind};
use crate::matrix::appservice::auth::{self, AuthFailure};

/// Largest accepted body (a step's few fields).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the provisioning routes share.
pub(crate) struct ProvState {
    provisioning: Provisioning,
    limiter: Mutex<Limiter>,
}

/// Registers the routes under [`PREFIX`] when provisioning is on.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, provisioning: Option<&Provisioning>) {
    let Some(provisioning) = provisioning else { return };
    let state = web::Data::new(ProvState {
        limiter: Mutex::new(Limiter::new(provisioning.requests_per_minute)),
        provisioning: provisioning.clone(),
    });
    cfg.service(
        web::scope(PREFIX)
            .app_data(state)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/whoami", web::get().to(whoami))
            .route("/login/flows", web::get().to(flows))
            .route("/login/start/{flow_id}", web::post().to(start))
            .route("/login/step/{process_id}/{step_id}/{step_type}", web::post().to(step))
            .route("/logout/{login_id}", web::post().to(logout))
            .route("/logins", web::get().to(logins))
            .route("/contacts", web::get().to(contacts))
            .route(
                "/resolve_identifier/{identifier}",
                web::get().to(|c: Caller, r: HttpRequest, p, s| lookup(c, r, p, s, false)),
            )
            .route(
                "/create_dm/{identifier}",
                web::post().to(|c: Caller, r: HttpRequest, p, s| lookup(c, r, p, s, true)),
            )
            .default_service(web::to(|| async {
                error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "unknown provisioning endpoint")
            })),
    );
}

fn error(status: StatusCode, errcode: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errcode": errcode, "error": message }))
}

fn from_prov(e: ProvError) -> HttpResponse {
    let (status, code) = match &e {
        ProvError::Forbidden(_) => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        ProvError::NotFound(_) => (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
        ProvError::BadRequest(_) => (StatusCode::BAD_REQUEST, "M_BAD_STATE"),
        ProvError::Conflict(_) => (StatusCode::CONFLICT, "M_CONFLICT"),
        ProvError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN"),
    };
    error(status, code, &e.to_string())
}

/// The query parameter `name`, if present.
fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A refusal before the handler runs (auth, `user_id`, rate limit).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    body: Value,
}

impl Refusal {
    fn new(status: StatusCode, errcode: &str, message: &str) -> Refusal {
        Refusal { status, body: json!({ "errcode": errcode, "error": message }) }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provisioning request refused ({})", self.status)
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

/// The admitted caller of a route: the shared secret checked first, then `user_id`, then the
/// rate limit.
struct Caller(OwnedUserId);

impl FromRequest for Caller {
    type Error = Refusal;
    type Future = Ready<Result<Caller, Refusal>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(admit(req))
    }
}

fn admit(req: &HttpRequest) -> Result<Caller, Refusal> {
    let state = req.app_data::<web::Data<ProvState>>().ok_or_else(|| {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "provisioning is off")
    })?;
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    // The query string is not searched for a token: only the header carries the secret here.
    match auth::check(header, "", &state.provisioning.shared_secret) {
        Ok(()) => {}
        Err(AuthFailure::Missing) => {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "M_MISSING_TOKEN",
                "missing auth token",
            ));
        }
        Err(AuthFailure::Forbidden) => {
            tracing::warn!(path = %req.path(), "provisioning request with a wrong secret refused");
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "invalid auth token",
            ));
        }
    }
    let user = query_param(req, "user_id").ok_or_else(|| {
        Refusal::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", "user_id is required")
    })?;
    let user = UserId::parse(user.as_str()).map_err(|_| {
        Refusal::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "user_id is not a Matrix user id")
    })?;
    let mut limiter = state.limiter.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(wait) = limiter.check(user.as_str(), Instant::now()) {
        let mut refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "M_LIMIT_EXCEEDED",
            "too many provisioning requests; slow down",
        );
        refusal.body["retry_after_ms"] =
            Value::from(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        return Err(refusal);
    }
    Ok(Caller(user))
}

/// A `data:` URL for an image shown by a web client: JPEG (WebQQ's captchas) or PNG.
fn data_url(image: &[u8]) -> String {
    let mime = if image.starts_with(&[0xFF, 0xD8]) { "image/jpeg" } else { "image/png" };
    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(image))
}

/// The bridgev2 wire shape of a login step.
pub(super) fn step_json(step: &LoginStep) -> Value {
    let mut value = json!({
        "login_id": step.process_id,
        "type": step.type_name(),
        "step_id": step.step_id,
        "instructions": step.instructions,
    });
    let (key, params) = match &step.kind {
        StepKind::DisplayQr { png } => {
            // WebQQ's ptqrshow gives the picture, not the text it encodes (protocol §1.1), so the
            // client shows the image rather than drawing a code from `data`.
            ("display_and_wait", json!({"type": "qr", "data": "", "image_url": data_url(png)}))
        }
        StepKind::Wait => ("display_and_wait", json!({"type": "nothing"})),
        StepKind::UserInput { fields, image } => {
            let mut input = json!({ "fields": fields });
            if let Some(image) = image {
                input["image_url"] = Value::from(data_url(image));
            }
            ("user_input", input)
        }
        StepKind::Complete { login_id } => ("complete", json!({ "user_login_id": login_id })),
    };
    value[key] = params;
    value
}

fn answer<T>(result: Result<T, ProvError>, to_json: impl FnOnce(T) -> Value) -> HttpResponse {
    match result {
        Ok(value) => HttpResponse::Ok().json(to_json(value)),
        Err(e) => from_prov(e),
    }
}

async fn whoami(Caller(user): Caller, state: web::Data<ProvState>) -> HttpResponse {
    answer(state.provisioning.handler.whoami(user).await, |v| v)
}

async fn flows(_: Caller, state: web::Data<ProvState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "flows": state.provisioning.handler.login_flows() }))
}

async fn start(
    Caller(user): Caller,
    path: web::Path<String>,
    state: web::Data<ProvState>,
) -> HttpResponse {
    let result = state.provisioning.handler.login_start(user, path.into_inner()).await;
    answer(result, |step| step_json(&step))
}

async fn step(
    Caller(user): Caller,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    state: web::Data<ProvState>,
) -> HttpResponse {
    let (process_id, step_id, step_type) = path.into_inner();
    if step_type != "user_input" && step_type != "display_and_wait" {
        return error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "unknown step type");
    }
    let input: BTreeMap<String, String> = if body.iter().all(u8::is_ascii_whitespace) {
        BTreeMap::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(input) => input,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "M_NOT_JSON",
                    "the body must be a JSON object of strings",
                );
            }
        }
    };
    if step_type == "user_input" && input.is_empty() {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "a user_input step needs its fields");
    }
    let result = state.provisioning.handler.login_step(user, process_id, step_id, input).await;
    answer(result, |step| step_json(&step))
}

async fn logout(
    Caller(user): Caller,
    path: web::Path<String>,
    state: web::Data<ProvState>,
) -> HttpResponse {
    answer(state.provisioning.handler.logout(user, path.into_inner()).await, |()| json!({}))
}

async fn logins(Caller(user): Caller, state: web::Data<ProvState>) -> HttpResponse {
    answer(state.provisioning.handler.logins(user).await, |ids| json!({ "login_ids": ids }))
}

async fn contacts(
    Caller(user): Caller,
    req: HttpRequest,
    state: web::Data<ProvState>,
) -> HttpResponse {
    let login = query_param(&req, "login_id");
    answer(state.provisioning.handler.contacts(user, login).await, |v| v)
}

/// `resolve_identifier` and, with `open`, `create_dm`: the same lookup, then the DM portal.
async fn lookup(
    Caller(user): Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<ProvState>,
    open: bool,
) -> HttpResponse {
    let (login, handler) = (query_param(&req, "login_id"), &state.provisioning.handler);
    let result = match open {
        false => handler.resolve_identifier(user, path.into_inner(), login).await,
        true => handler.create_dm(user, path.into_inner(), login).await,
    };
    answer(result, |v| v)
}
