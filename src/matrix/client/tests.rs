//! Tests of the appservice client against an in-process fake homeserver on port 0: retries
//! (429 with `retry_after_ms`, 502, none on 403), identity assertion and `ts` on the wire,
//! registration, media fallback and caps, and token-free error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{
    OwnedEventId, TransactionId, owned_room_id, owned_server_name, owned_user_id, room_id, user_id,
};
use serde_json::{Value, json};

use super::*;

const AS_TOKEN: &str = "as-token-secret-42";

/// One scripted answer.
struct Scripted {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
}

fn answer(status: u16, body: Value) -> Scripted {
    Scripted { status, body: body.to_string().into_bytes(), headers: Vec::new() }
}

/// One request the fake received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    auth: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    body: Vec<u8>,
    at: Instant,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A recording fake homeserver answering from a script (FIFO; `{}` when it runs out).
#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Scripted>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn push(&self, scripted: Scripted) {
        self.script.lock().unwrap().push_back(scripted);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn fake_answer(req: HttpRequest, body: web::Bytes, fake: web::Data<Fake>) -> HttpResponse {
    let header =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    fake.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.query_string().to_owned(),
        auth: header("authorization"),
        content_type: header("content-type"),
        content_length: header("content-length"),
        body: body.to_vec(),
        at: Instant::now(),
    });
    let scripted =
        fake.script.lock().unwrap().pop_front().unwrap_or_else(|| answer(200, json!({})));
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(scripted.status).unwrap());
    for (name, value) in scripted.headers {
        response.insert_header((name, value));
    }
    response.body(scripted.body)
}

/// A fake homeserver on port 0 and a client pointed at it with fast retries.
fn start() -> (Fake, MatrixClient, Metrics) {
    let fake = Fake::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let data = web::Data::new(fake.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .default_service(web::to(fake_answer))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    let metrics = Metrics::try_new().unwrap();
    let client = client_for(&format!("http://{addr}"), metrics.clone());
    (fake, client, metrics)
}

fn client_for(base: &str, metrics: Metrics) -> MatrixClient {
    let settings = ClientSettings {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(80),
            max_rate_limit_wait: Duration::from_secs(2),
        },
        request_timeout: Duration::from_secs(5),
        max_download_bytes: 1000,
        ..ClientSettings::new(
            Url::parse(base).unwrap(),
            owned_server_name!("hs"),
            Token::new(AS_TOKEN),
            owned_user_id!("@qqbot:hs"),
            "qqbridge".to_owned(),
        )
    };
    MatrixClient::new(settings, metrics).unwrap()
}

fn metric(metrics: &Metrics, prefix: &str) -> String {
    metrics.encode().lines().find(|l| l.starts_with(prefix)).unwrap_or("").to_owned()
}

async fn send_text(client: &MatrixClient, as_user: Option<&UserId>) -> Result<OwnedEventId, Error> {
    let content = RoomMessageEventContent::text_plain("hi");
    let txn = TransactionId::new();
    client.send_message(room_id!("!r:hs"), as_user, &txn, &content, None).await
}

#[tokio::test]
async fn test_429_waits_retry_after_then_succeeds() {
    let (fake, client, metrics) = start();
    fake.push(answer(
        429,
        json!({"errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": 300}),
    ));
    fake.push(answer(200, json!({"event_id": "$e1"})));
    let event = send_text(&client, None).await.unwrap();
    assert_eq!(event.as_str(), "$e1");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(300) && gap < Duration::from_secs(2), "{gap:?}");
    for (outcome, n) in [("rate_limited", 1), ("ok", 1), ("server_error", 0)] {
        let prefix =
            format!("qqbridge_matrix_requests_total{{endpoint=\"send\",outcome=\"{outcome}\"}}");
        assert_eq!(metric(&metrics, &prefix), format!("{prefix} {n}"));
    }
}

#[tokio::test]
async fn test_retry_after_header_wins_and_is_capped() {
    let (fake, client, _) = start();
    // A 1-hour Retry-After is cut to the policy's 2 s cap; the client still retries.
    let mut limited = answer(429, json!({"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1}));
    limited.headers.push(("retry-after", "3600"));
    fake.push(limited);
    fake.push(answer(200, json!({"event_id": "$e1"})));
    send_text(&client, None).await.unwrap();
    let seen = fake.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_secs(2) && gap < Duration::from_secs(4), "{gap:?}");
}

#[tokio::test]
async fn test_502_and_503_are_retried() {
    let (fake, client, metrics) = start();
    fake.push(Scripted {
        status: 502,
        body: b"<html>bad gateway</html>".to_vec(),
        headers: Vec::new(),
    });
    fake.push(answer(503, json!({"errcode": "M_UNKNOWN"})));
    fake.push(answer(200, json!({"event_id": "$e2"})));
    assert_eq!(send_text(&client, None).await.unwrap().as_str(), "$e2");
    assert_eq!(fake.seen().len(), 3);
    let prefix = "qqbridge_matrix_requests_total{endpoint=\"send\",outcome=\"server_error\"}";
    assert_eq!(metric(&metrics, prefix), format!("{prefix} 2"));
}

#[tokio::test]
async fn test_403_is_not_retried() {
    let (fake, client, _) = start();
    fake.push(answer(403, json!({"errcode": "M_FORBIDDEN", "error": "not in room"})));
    let err = send_text(&client, None).await.unwrap_err();
    assert_eq!((err.status(), err.errcode()), (Some(403), Some("M_FORBIDDEN")));
    assert!(!err.is_transient());
    assert_eq!(err.to_string(), "homeserver answered 403 M_FORBIDDEN: not in room");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn test_gives_up_after_max_attempts_and_unlimited_keeps_going() {
    let (fake, client, _) = start();
    for _ in 0..6 {
        fake.push(answer(504, json!({})));
    }
    let err = send_text(&client, None).await.unwrap_err();
    assert_eq!(err.status(), Some(504));
    assert_eq!(fake.seen().len(), 4);
    // Two 504s remain scripted; an unlimited client outlasts them.
    fake.push(answer(200, json!({"event_id": "$e3"})));
    let queue = client.with_retry(RetryPolicy { max_attempts: 0, ..client.retry });
    assert_eq!(send_text(&queue, None).await.unwrap().as_str(), "$e3");
    assert_eq!(fake.seen().len(), 7);
}

#[tokio::test]
async fn test_identity_assertion_and_ts_on_the_wire() {
    let (fake, client, _) = start();
    fake.push(answer(200, json!({"event_id": "$g"})));
    fake.push(answer(200, json!({"event_id": "$b"})));
    fake.push(answer(200, json!({"event_id": "$s"})));
    let ghost = user_id!("@qq_10001:hs");
    let content = RoomMessageEventContent::text_plain("hello");
    let ts = ruma::MilliSecondsSinceUnixEpoch(ruma::UInt::new(1_700_000_000_123).unwrap());
    let txn: &TransactionId = "qq-msg-77".into();
    let event =
        client.send_message(room_id!("!r:hs"), Some(ghost), txn, &content, Some(ts)).await.unwrap();
    assert_eq!(event.as_str(), "$g");
    send_text(&client, None).await.unwrap();
    let name = ruma::events::room::name::RoomNameEventContent::new("Group".to_owned());
    client.send_state(room_id!("!r:hs"), Some(ghost), "", &name, Some(ts)).await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].path, "/_matrix/client/v3/rooms/!r:hs/send/m.room.message/qq-msg-77");
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(seen[0].query.as_bytes()).into_owned().collect();
    assert!(query.contains(&("user_id".to_owned(), "@qq_10001:hs".to_owned())), "{query:?}");
    assert!(query.contains(&("ts".to_owned(), ts.get().to_string())), "{query:?}");
    assert_eq!(seen[0].auth.as_deref(), Some(format!("Bearer {AS_TOKEN}").as_str()));
    assert_eq!(seen[0].json(), json!({"msgtype": "m.text", "body": "hello"}));
    // As the bot: the bot asserted (it is not the registration's sender), no ts.
    assert_eq!(seen[1].query, "user_id=%40qqbot%3Ahs");
    assert_eq!(seen[2].path, "/_matrix/client/v3/rooms/!r:hs/state/m.room.name/");
    assert!(seen[2].query.contains("user_id=%40qq_10001%3Ahs"), "{}", seen[2].query);
    assert!(seen[2].query.contains("ts="), "{}", seen[2].query);
}

#[tokio::test]
async fn test_ensure_registered() {
    let (fake, client, _) = start();
    fake.push(answer(200, json!({"user_id": "@qq_1:hs"})));
    fake.push(answer(400, json!({"errcode": "M_USER_IN_USE", "error": "taken"})));
    fake.push(answer(400, json!({"errcode": "M_EXCLUSIVE", "error": "not yours"})));
    client.ensure_registered("qq_1").await.unwrap();
    client.ensure_registered("qq_1").await.unwrap();
    let err = client.ensure_registered("alice").await.unwrap_err();
    assert_eq!(err.errcode(), Some("M_EXCLUSIVE"));
    let seen = fake.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/_matrix/client/v3/register")
    );
    assert_eq!(
        seen[0].json(),
        json!({"type": "m.login.application_service", "username": "qq_1", "inhibit_login": true})
    );
    // Registration is the appservice's own act: the user may not exist yet.
    assert_eq!(seen[0].query, "");
}

#[tokio::test]
async fn test_upload_download_fallback_and_cap() {
    let (fake, client, _) = start();
    fake.push(answer(200, json!({"content_uri": "mxc://hs/abc"})));
    let mxc = client
        .upload(Some(user_id!("@qq_1:hs")), b"png".to_vec(), "image/png", Some("a.png".to_owned()))
        .await
        .unwrap();
    assert_eq!(mxc.as_str(), "mxc://hs/abc");

    // An old server: authenticated media unknown, legacy path answers.
    fake.push(answer(404, json!({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})));
    fake.push(Scripted {
        status: 200,
        body: b"bytes".to_vec(),
        headers: vec![("content-type", "image/png")],
    });
    let got = client.download(&mxc).await.unwrap();
    assert_eq!(
        (got.bytes.as_slice(), got.content_type.as_deref()),
        (&b"bytes"[..], Some("image/png"))
    );

    // Missing media is not a reason to fall back.
    fake.push(answer(404, json!({"errcode": "M_NOT_FOUND"})));
    assert_eq!(client.download(&mxc).await.unwrap_err().errcode(), Some("M_NOT_FOUND"));

    // Over the 1000-byte cap.
    fake.push(Scripted { status: 200, body: vec![b'x'; 5000], headers: Vec::new() });
    assert!(matches!(client.download(&mxc).await.unwrap_err(), Error::TooLarge { limit: 1000 }));

    let seen = fake.seen();
    assert_eq!(seen[0].path, "/_matrix/media/v3/upload");
    assert_eq!(seen[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(seen[0].content_length.as_deref(), Some("3"));
    assert!(seen[0].query.contains("filename=a.png") && seen[0].query.contains("user_id="));
    assert_eq!(seen[1].path, "/_matrix/client/v1/media/download/hs/abc");
    assert_eq!(seen[2].path, "/_matrix/media/v3/download/hs/abc");
    assert_eq!(seen[3].path, "/_matrix/client/v1/media/download/hs/abc");
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn test_empty_upload_declares_its_length() {
    // Synapse answers `400 Request must specify a Content-Length` to an upload without one.
    let (fake, client, _) = start();
    fake.push(answer(200, json!({"content_uri": "mxc://hs/empty"})));
    client.upload(None, Vec::new(), "application/octet-stream", None).await.unwrap();
    let seen = fake.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].content_length.as_deref()), ("POST", Some("0")));
    assert!(seen[0].body.is_empty());
}

#[tokio::test]
async fn test_room_profile_ping_and_presence_paths() {
    let (fake, client, _) = start();
    fake.push(answer(200, json!({"room_id": "!new:hs"})));
    let room = client.create_room(create_room_request(), None).await.unwrap();
    assert_eq!(room, owned_room_id!("!new:hs"));
    let ghost = user_id!("@qq_1:hs");
    client.invite(&room, ghost, None).await.unwrap();
    fake.push(answer(200, json!({"room_id": "!new:hs"})));
    client.join(&room, Some(ghost)).await.unwrap();
    client.leave(&room, Some(ghost)).await.unwrap();
    client.set_displayname(ghost, "Nick".to_owned()).await.unwrap();
    client.set_avatar_url(ghost, "mxc://hs/av".into()).await.unwrap();
    client.typing(&room, ghost, Some(Duration::from_secs(5))).await.unwrap();
    client.set_presence(ghost, ruma::presence::PresenceState::Online).await.unwrap();
    fake.push(answer(200, json!({"duration_ms": 12})));
    let rtt = client.appservice_ping("ping-1".into()).await.unwrap();
    assert_eq!(rtt, Duration::from_millis(12));
    fake.push(answer(200, json!({"event_id": "$red"})));
    client
        .redact(&room, "$e:hs".try_into().unwrap(), Some(ghost), "red-1".into(), None)
        .await
        .unwrap();
    fake.push(answer(200, json!({"user_id": "@qqbot:hs"})));
    assert_eq!(client.whoami().await.unwrap(), owned_user_id!("@qqbot:hs"));

    let seen: Vec<(String, String)> = fake.seen().into_iter().map(|s| (s.method, s.path)).collect();
    let expected = [
        ("POST", "/_matrix/client/v3/createRoom"),
        ("POST", "/_matrix/client/v3/rooms/!new:hs/invite"),
        ("POST", "/_matrix/client/v3/rooms/!new:hs/join"),
        ("POST", "/_matrix/client/v3/rooms/!new:hs/leave"),
        ("PUT", "/_matrix/client/v3/profile/@qq_1:hs/displayname"),
        ("PUT", "/_matrix/client/v3/profile/@qq_1:hs/avatar_url"),
        ("PUT", "/_matrix/client/v3/rooms/!new:hs/typing/@qq_1:hs"),
        ("PUT", "/_matrix/client/v3/presence/@qq_1:hs/status"),
        ("POST", "/_matrix/client/v1/appservice/qqbridge/ping"),
        ("PUT", "/_matrix/client/v3/rooms/!new:hs/redact/$e:hs/red-1"),
        ("GET", "/_matrix/client/v3/account/whoami"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(seen, expected);
    let ping = &fake.seen()[8];
    assert_eq!(ping.json(), json!({"transaction_id": "ping-1"}));
}

fn create_room_request() -> ruma::api::client::room::create_room::v3::Request {
    let mut request = ruma::api::client::room::create_room::v3::Request::new();
    request.name = Some("Portal".to_owned());
    request
}

#[tokio::test]
async fn test_network_errors_retry_then_fail_without_tokens_or_query() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let metrics = Metrics::try_new().unwrap();
    let client = client_for(&format!("http://127.0.0.1:{port}"), metrics.clone());
    let err = send_text(&client, Some(user_id!("@qq_1:hs"))).await.unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    assert!(err.is_transient());
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(AS_TOKEN) && !text.contains("user_id") && !text.contains("qq_1"),
        "{text}"
    );
    let prefix = "qqbridge_matrix_requests_total{endpoint=\"send\",outcome=\"network\"}";
    assert_eq!(metric(&metrics, prefix), format!("{prefix} 4"));

    let err = client
        .wait_for_homeserver(Duration::from_millis(50), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn test_wait_for_homeserver_returns_versions() {
    let (fake, client, _) = start();
    fake.push(answer(200, json!({"versions": ["v1.11", "v1.12"]})));
    let versions = client
        .wait_for_homeserver(Duration::from_millis(50), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(versions.versions, vec!["v1.11".to_owned(), "v1.12".to_owned()]);
    assert_eq!(fake.seen()[0].path, "/_matrix/client/versions");
}

#[test]
fn test_backoff_ceiling_doubles_and_caps() {
    let policy = RetryPolicy::INTERACTIVE;
    let ceilings: Vec<u64> = (1..=10).map(|n| policy.ceiling(n).as_secs()).collect();
    assert_eq!(ceilings, [4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
    assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(600));
    let server_error =
        Error::Api { status: 502, errcode: None, message: String::new(), retry_after: None };
    for retry in 1..4 {
        let delay = policy.delay(&server_error, retry).unwrap();
        assert!(delay <= policy.ceiling(retry), "{delay:?}");
    }
    assert_eq!(policy.delay(&server_error, 4), None);
    assert!(RetryPolicy::unlimited().delay(&server_error, 1000).is_some());
}
