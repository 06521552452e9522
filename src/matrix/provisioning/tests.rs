//! Tests of the provisioning routes through actix's test service: the secret before anything,
//! `user_id`, the rate limit, step shapes, error mapping.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, test};
use futures_util::FutureExt as _;
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "provisioning-secret-0123";

/// A handler with one QR flow: start → QR step "qr-1"; waiting on it → complete.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

fn refuse_blocked(user: &OwnedUserId) -> Result<(), ProvError> {
    if user.localpart() == "blocked" {
        return Err(ProvError::Forbidden("you may not use this bridge".into()));
    }
    Ok(())
}

impl ProvisioningHandler for Fake {
    fn whoami(&self, user: OwnedUserId) -> ProvFuture<Value> {
        self.log(format!("whoami {user}"));
        let result = refuse_blocked(&user).map(|()| json!({"user": user.as_str(), "logins": []}));
        async move { result }.boxed()
    }

    fn login_flows(&self) -> Vec<LoginFlow> {
        vec![LoginFlow { id: "qr".into(), name: "QR code".into(), description: "scan".into() }]
    }

    fn login_start(&self, user: OwnedUserId, flow_id: String) -> ProvFuture<LoginStep> {
        self.log(format!("start {user} {flow_id}"));
        let result = refuse_blocked(&user).and_then(|()| match flow_id.as_str() {
            "qr" => Ok(LoginStep {
                process_id: "p1".into(),
                step_id: "qr-1".into(),
                instructions: "scan it".into(),
                kind: StepKind::DisplayQr { png: vec![0x89, b'P', b'N', b'G'] },
            }),
            "password" => Ok(LoginStep {
                process_id: "p2".into(),
                step_id: "pw".into(),
                instructions: "your password".into(),
                kind: StepKind::UserInput {
                    fields: vec![InputField {
                        kind: "password".into(),
                        id: "password".into(),
                        name: "Password".into(),
                    }],
                    image: None,
                },
            }),
            other => Err(ProvError::NotFound(format!("no login flow {other}"))),
        });
        async move { result }.boxed()
    }

    fn login_step(
        &self,
        user: OwnedUserId,
        process_id: String,
        step_id: String,
        input: BTreeMap<String, String>,
    ) -> ProvFuture<LoginStep> {
        self.log(format!("step {user} {process_id} {step_id} {}", input.len()));
        let result = if step_id == "qr-1" {
            Ok(LoginStep {
                process_id,
                step_id: "done".into(),
                instructions: "logged in".into(),
                kind: StepKind::Complete { login_id: "10001".into() },
            })
        } else {
            Err(ProvError::BadRequest("step id does not match".into()))
        };
        async move { result }.boxed()
    }

    fn logout(&self, user: OwnedUserId, login_id: String) -> ProvFuture<()> {
        self.log(format!("logout {user} {login_id}"));
        let result =
            if login_id == "10001" { Ok(()) } else { Err(ProvError::NotFound("no".into())) };
        async move { result }.boxed()
    }

    fn logins(&self, _: OwnedUserId) -> ProvFuture<Vec<String>> {
        async { Ok(vec!["10001".to_owned()]) }.boxed()
    }

    fn contacts(&self, _: OwnedUserId, login_id: Option<String>) -> ProvFuture<Value> {
        async move { Ok(json!({"contacts": [], "login": login_id})) }.boxed()
    }

    fn resolve_identifier(
        &self,
        _: OwnedUserId,
        identifier: String,
        _: Option<String>,
    ) -> ProvFuture<Value> {
        async move { Ok(json!({"id": identifier})) }.boxed()
    }

    fn create_dm(
        &self,
        _: OwnedUserId,
        identifier: String,
        _: Option<String>,
    ) -> ProvFuture<Value> {
        async move { Err(ProvError::Conflict(format!("{identifier} is someone else's"))) }.boxed()
    }
}

fn provisioning(fake: &Arc<Fake>, per_minute: u32) -> Provisioning {
    Provisioning {
        shared_secret: Token::new(SECRET),
        requests_per_minute: per_minute,
        handler: fake.clone(),
    }
}

/// A request to build; `send` runs it through a test service.
fn request(method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> test::TestRequest {
    let mut req = test::TestRequest::default()
        .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(auth) = auth {
        req = req.insert_header(("Authorization", auth.to_owned()));
    }
    if let Some(body) = body {
        req = req.set_payload(body.to_owned());
    }
    req
}

/// Runs `request(...)` through `$app`; yields (status, JSON body or Null).
macro_rules! call {
    ($app:expr, $($arg:expr),+ $(,)?) => {{
        let resp = test::call_service(&$app, request($($arg),+).to_request()).await;
        let status = resp.status().as_u16();
        let bytes = test::read_body(resp).await;
        (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
    }};
}

#[actix_web::test]
async fn test_secret_user_id_and_errors() {
    let fake = Arc::new(Fake::default());
    let prov = provisioning(&fake, 100);
    let app = test::init_service(App::new().configure(|cfg| configure(cfg, Some(&prov)))).await;
    let bearer = format!("Bearer {SECRET}");
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", "/_matrix/provision/v3/whoami?user_id=@a:x", None, 401, "M_MISSING_TOKEN"),
        (
            "GET",
            "/_matrix/provision/v3/whoami?user_id=@a:x",
            Some("Bearer wrong"),
            401,
            "M_UNKNOWN_TOKEN",
        ),
        ("GET", "/_matrix/provision/v3/whoami", Some(&bearer), 400, "M_MISSING_PARAM"),
        (
            "GET",
            "/_matrix/provision/v3/whoami?user_id=nobody",
            Some(&bearer),
            400,
            "M_INVALID_PARAM",
        ),
        (
            "GET",
            "/_matrix/provision/v3/whoami?user_id=@blocked:x",
            Some(&bearer),
            403,
            "M_FORBIDDEN",
        ),
        (
            "POST",
            "/_matrix/provision/v3/login/start/sms?user_id=@a:x",
            Some(&bearer),
            404,
            "M_NOT_FOUND",
        ),
        (
            "POST",
            "/_matrix/provision/v3/create_dm/10002?user_id=@a:x",
            Some(&bearer),
            409,
            "M_CONFLICT",
        ),
        (
            "POST",
            "/_matrix/provision/v3/logout/999?user_id=@a:x",
            Some(&bearer),
            404,
            "M_NOT_FOUND",
        ),
        ("GET", "/_matrix/provision/v3/nothing?user_id=@a:x", Some(&bearer), 404, "M_UNRECOGNIZED"),
    ];
    for (method, path, auth, status, errcode) in cases {
        let (got, body) = call!(app, method, path, *auth, None);
        assert_eq!((got, body["errcode"].as_str().unwrap_or("")), (*status, *errcode), "{path}");
    }
    // The secret is checked before the handler: refused requests never reached it.
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        ["whoami @blocked:x", "start @a:x sms", "logout @a:x 999"],
        "only admitted requests reach the handler"
    );
    // The access_token query parameter is not a way in.
    let path = format!("/_matrix/provision/v3/whoami?user_id=@a:x&access_token={SECRET}");
    assert_eq!(call!(app, "GET", &path, None, None).0, 401);
}

#[actix_web::test]
async fn test_qr_login_steps_and_wire_shapes() {
    let fake = Arc::new(Fake::default());
    let prov = provisioning(&fake, 100);
    let app = test::init_service(App::new().configure(|cfg| configure(cfg, Some(&prov)))).await;
    let auth = Some(format!("Bearer {SECRET}"));
    let auth = auth.as_deref();
    let base = "/_matrix/provision/v3";

    let (status, flows) =
        call!(app, "GET", &format!("{base}/login/flows?user_id=@a:x"), auth, None);
    assert_eq!(
        (status, flows),
        (200, json!({"flows": [{"id": "qr", "name": "QR code", "description": "scan"}]}))
    );

    let (status, step) =
        call!(app, "POST", &format!("{base}/login/start/qr?user_id=@a:x"), auth, None);
    assert_eq!(status, 200);
    assert_eq!(
        step,
        json!({"login_id": "p1", "type": "display_and_wait", "step_id": "qr-1", "instructions": "scan it",
               "display_and_wait": {"type": "qr", "data": "", "image_url": "data:image/png;base64,iVBORw=="}})
    );
    let (_, step) =
        call!(app, "POST", &format!("{base}/login/start/password?user_id=@a:x"), auth, None);
    assert_eq!(
        step["user_input"]["fields"][0],
        json!({"type": "password", "id": "password", "name": "Password"})
    );

    let wait = format!("{base}/login/step/p1/qr-1/display_and_wait?user_id=@a:x");
    let (status, done) = call!(app, "POST", &wait, auth, None);
    assert_eq!(status, 200);
    assert_eq!(done["type"], "complete");
    assert_eq!(done["complete"], json!({"user_login_id": "10001"}));

    let cases: &[(&str, Option<&str>, u16)] = &[
        ("login/step/p1/qr-1/cookies", None, 404),
        ("login/step/p2/pw/user_input", None, 400),
        ("login/step/p2/pw/user_input", Some("[1,2]"), 400),
        ("login/step/p2/pw/user_input", Some(r#"{"password": 5}"#), 400),
        ("login/step/p1/old/display_and_wait", None, 400),
    ];
    for (path, body, status) in cases {
        let path = format!("{base}/{path}?user_id=@a:x");
        assert_eq!(call!(app, "POST", &path, auth, *body).0, *status, "{path} {body:?}");
    }
    let (status, logins) = call!(app, "GET", &format!("{base}/logins?user_id=@a:x"), auth, None);
    assert_eq!((status, logins), (200, json!({"login_ids": ["10001"]})));
    let path = format!("{base}/contacts?user_id=@a:x&login_id=10001");
    assert_eq!(call!(app, "GET", &path, auth, None).1["login"], "10001");
    let path = format!("{base}/resolve_identifier/10002?user_id=@a:x");
    assert_eq!(call!(app, "GET", &path, auth, None).1, json!({"id": "10002"}));
    let path = format!("{base}/logout/10001?user_id=@a:x");
    assert_eq!(call!(app, "POST", &path, auth, None), (200, json!({})));
}

#[actix_web::test]
async fn test_rate_limit_per_user() {
    let fake = Arc::new(Fake::default());
    let prov = provisioning(&fake, 3);
    let app = test::init_service(App::new().configure(|cfg| configure(cfg, Some(&prov)))).await;
    let auth = Some(format!("Bearer {SECRET}"));
    for _ in 0..3 {
        let path = "/_matrix/provision/v3/logins?user_id=@a:x";
        assert_eq!(call!(app, "GET", path, auth.as_deref(), None).0, 200);
    }
    let (status, body) =
        call!(app, "GET", "/_matrix/provision/v3/logins?user_id=@a:x", auth.as_deref(), None);
    assert_eq!((status, body["errcode"].as_str()), (429, Some("M_LIMIT_EXCEEDED")));
    assert!(body["retry_after_ms"].as_u64().unwrap() > 50_000);
    let other = "/_matrix/provision/v3/logins?user_id=@b:x";
    assert_eq!(call!(app, "GET", other, auth.as_deref(), None).0, 200);
}

#[actix_web::test]
async fn test_off_without_settings() {
    let app = test::init_service(
        App::new()
            .configure(|cfg| configure(cfg, None))
            .default_service(actix_web::web::to(actix_web::HttpResponse::NotFound)),
    )
    .await;
    let path = "/_matrix/provision/v3/whoami?user_id=@a:x";
    let auth = format!("Bearer {SECRET}");
    assert_eq!(call!(app, "GET", path, Some(&auth), None).0, 404);
}

#[actix_web::test]
async fn test_a_waiting_step_shows_nothing_rather_than_an_empty_image() {
    let step = LoginStep {
        process_id: "p1".into(),
        step_id: "starting".into(),
        instructions: "wait".into(),
        kind: StepKind::Wait,
    };
    assert_eq!(
        routes::step_json(&step),
        json!({"login_id": "p1", "type": "display_and_wait", "step_id": "starting",
               "instructions": "wait", "display_and_wait": {"type": "nothing"}})
    );
}
