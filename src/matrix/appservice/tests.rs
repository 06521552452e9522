//! Tests of the appservice server over real HTTP on port 0: auth before body, size cap, body
//! parsing (unstable ephemeral key, bad events kept raw), dedupe, 500 on store errors, routes.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;

use super::routes::{BodyError, parse_transaction};
use super::*;

const TOKEN: &str = "hs-token-123";

/// A running server with its handler, status and metrics.
struct Running {
    base: String,
    addr: std::net::SocketAddr,
    handler: MemoryHandler,
    status: AppserviceStatus,
    metrics: Metrics,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn start(max_body_bytes: usize) -> Running {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = MemoryHandler::new();
        let status = AppserviceStatus::new();
        let metrics = Metrics::try_new().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let settings =
            ServerSettings { hs_token: Token::new(TOKEN), max_body_bytes, provisioning: None };
        let task = tokio::spawn(serve(
            listener,
            settings,
            Arc::new(handler.clone()),
            status.clone(),
            metrics.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Running {
            base: format!("http://{addr}"),
            addr,
            handler,
            status,
            metrics,
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task).await.unwrap().unwrap().unwrap();
    }

    /// Sends `method path` with `auth` ("header", "query", "both", "none" or a wrong-token
    /// spelling) and `body`; returns status and JSON body (Null when not JSON).
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Auth,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut url = format!("{}{}", self.base, path);
        let mut req_header = None;
        match auth {
            Auth::Header(t) => req_header = Some(t),
            Auth::Query(t) => url = format!("{url}?access_token={t}"),
            Auth::Both(h, q) => {
                req_header = Some(h);
                url = format!("{url}?access_token={q}");
            }
            Auth::None => {}
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, url);
        if let Some(t) = req_header {
            req = req.bearer_auth(t);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn metric(&self, line_prefix: &str) -> String {
        let text = self.metrics.encode();
        text.lines().find(|l| l.starts_with(line_prefix)).unwrap_or("").to_owned()
    }
}

#[derive(Clone, Copy)]
enum Auth {
    Header(&'static str),
    Query(&'static str),
    Both(&'static str, &'static str),
    None,
}

fn txn_body() -> Value {
    json!({
        "events": [{
            "type": "m.room.message", "event_id": "$e1", "room_id": "!r:hs", "sender": "@u:hs",
            "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": "hi"}
        }]
    })
}

#[tokio::test]
async fn test_auth_matrix_on_every_route() {
    let s = Running::start(DEFAULT_MAX_BODY_BYTES);
    let routes: &[(&str, &str, Option<Value>, u16)] = &[
        ("PUT", "/_matrix/app/v1/transactions/1", Some(txn_body()), 200),
        ("PUT", "/transactions/2", Some(txn_body()), 200),
        ("GET", "/_matrix/app/v1/users/%40qq_1%3Ahs", None, 404),
        ("GET", "/users/%40qq_1%3Ahs", None, 404),
        ("GET", "/_matrix/app/v1/rooms/%23qq_1%3Ahs", None, 404),
        ("GET", "/rooms/%23qq_1%3Ahs", None, 404),
        ("POST", "/_matrix/app/v1/ping", Some(json!({"transaction_id": "p1"})), 200),
        ("GET", "/_matrix/app/v1/thirdparty/protocol/qq", None, 404),
        ("GET", "/_matrix/app/v1/thirdparty/user/qq", None, 200),
        ("GET", "/_matrix/app/com.qqbridge/bridge_state", None, 200),
    ];
    let auths: &[(Auth, Option<u16>, Option<&str>)] = &[
        (Auth::Header(TOKEN), None, None),
        (Auth::Query(TOKEN), None, None),
        (Auth::Both(TOKEN, TOKEN), None, None),
        (Auth::Both(TOKEN, "other"), Some(403), Some("M_FORBIDDEN")),
        (Auth::Both("other", TOKEN), Some(403), Some("M_FORBIDDEN")),
        (Auth::Header("wrong"), Some(403), Some("M_FORBIDDEN")),
        (Auth::Query("wrong"), Some(403), Some("M_FORBIDDEN")),
        (Auth::None, Some(401), Some("M_MISSING_TOKEN")),
    ];
    let mut txn = 100;
    for (method, path, body, ok_status) in routes {
        for (auth, status, errcode) in auths {
            // Fresh txn ids so an accepted transaction is never a duplicate.
            txn += 1;
            let path = path.replace("/1", &format!("/{txn}")).replace("/2", &format!("/{txn}"));
            let (got, answer) = s.call(method, &path, *auth, body.clone()).await;
            assert_eq!(got, status.unwrap_or(*ok_status), "{method} {path}");
            if let Some(errcode) = errcode {
                assert_eq!(answer["errcode"], *errcode, "{method} {path}");
            }
        }
    }
    // 2 transaction routes × 5 refusing auth spellings.
    assert_eq!(
        s.metric("qqbridge_appservice_transactions_total{outcome=\"auth_rejected\"}"),
        "qqbridge_appservice_transactions_total{outcome=\"auth_rejected\"} 10"
    );
    assert_eq!(s.handler.transactions().len(), 6);
    s.shutdown().await;
}

/// Writes a request head announcing a huge body plus a few bytes of it, then reads the answer
/// without ever sending the rest: only an answer given before reading the body can arrive.
async fn answer_without_body(addr: std::net::SocketAddr, token: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /_matrix/app/v1/transactions/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{{\"events\": ["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n =
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn test_refused_before_the_body_is_read() {
    let s = Running::start(1024);
    let answer = answer_without_body(s.addr, "wrong").await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // With the right token the declared length alone is over the cap: 413, still unread.
    let answer = answer_without_body(s.addr, TOKEN).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("M_TOO_LARGE"), "{answer}");
    assert!(s.handler.transactions().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn test_body_size_cap_while_streaming() {
    let s = Running::start(1024);
    let big = json!({ "events": [{ "type": "x", "pad": "a".repeat(2000) }] });
    let (status, answer) =
        s.call("PUT", "/_matrix/app/v1/transactions/t1", Auth::Header(TOKEN), Some(big)).await;
    assert_eq!((status, answer["errcode"].as_str()), (413, Some("M_TOO_LARGE")));
    // A chunked body has no Content-Length: the cap applies while reading.
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut request = format!(
        "PUT /_matrix/app/v1/transactions/t2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    for _ in 0..8 {
        request.push_str(&format!("200\r\n{}\r\n", " ".repeat(512)));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n =
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(
        s.metric("qqbridge_appservice_transactions_total{outcome=\"bad_body\"}"),
        "qqbridge_appservice_transactions_total{outcome=\"bad_body\"} 2"
    );
    let small = json!({ "events": [] });
    let (status, _) =
        s.call("PUT", "/_matrix/app/v1/transactions/t3", Auth::Header(TOKEN), Some(small)).await;
    assert_eq!(status, 200);
    s.shutdown().await;
}

#[test]
fn test_parse_transaction_cases() {
    let typing = || json!({"type": "m.typing", "room_id": "!r:hs", "content": {"user_ids": []}});
    type Case = (Value, Result<(usize, usize), BodyError>);
    let cases: Vec<Case> = vec![
        (json!({"events": []}), Ok((0, 0))),
        (json!({}), Ok((0, 0))),
        (json!({"events": [txn_body()["events"][0].clone()], "ephemeral": [typing()]}), Ok((1, 1))),
        // The unstable key counts when the stable one is absent...
        (json!({"events": [], "de.sorunome.msc2409.ephemeral": [typing(), typing()]}), Ok((0, 2))),
        // ...and is ignored when the stable one is present.
        (
            json!({"ephemeral": [typing()], "de.sorunome.msc2409.ephemeral": [typing(), typing()]}),
            Ok((0, 1)),
        ),
        // Malformed events stay in, raw.
        (json!({"events": [42, {"type": "m.room.message"}, "x"]}), Ok((3, 0))),
        (json!({"events": null}), Ok((0, 0))),
        (json!({"events": {}}), Err(BodyError::BadField("events"))),
        (json!({"ephemeral": "x"}), Err(BodyError::BadField("ephemeral"))),
        (json!([1, 2]), Err(BodyError::NotJson)),
        (json!("events"), Err(BodyError::NotJson)),
    ];
    for (body, expected) in cases {
        let got = parse_transaction("t".to_owned(), body.to_string().as_bytes())
            .map(|t| (t.events.len(), t.ephemeral.len()));
        assert_eq!(got, expected, "{body}");
    }
    assert_eq!(parse_transaction("t".to_owned(), b"{not json").err(), Some(BodyError::NotJson));
}

#[tokio::test]
async fn test_bad_event_inside_a_good_transaction_reaches_the_handler_raw() {
    let s = Running::start(DEFAULT_MAX_BODY_BYTES);
    let good = txn_body()["events"][0].clone();
    let body = json!({
        "events": [good, {"type": "m.room.message", "content": "not an object"}, 7],
        "de.sorunome.msc2409.ephemeral": [{"type": "m.typing", "room_id": "!r:hs", "content": {"user_ids": ["@a:hs"]}}],
    });
    let (status, answer) = s
        .call("PUT", "/_matrix/app/v1/transactions/abc%2Fdef", Auth::Header(TOKEN), Some(body))
        .await;
    assert_eq!((status, answer), (200, json!({})));
    let txns = s.handler.transactions();
    assert_eq!(txns.len(), 1);
    let txn = &txns[0];
    assert_eq!(txn.txn_id, "abc/def");
    assert_eq!(txn.events.len(), 3);
    assert!(txn.events[0].deserialize().is_ok());
    assert!(txn.events[1].deserialize().is_err());
    assert_eq!(txn.events[2].json().get(), "7");
    assert_eq!(txn.ephemeral.len(), 1);
    assert_eq!(txn.ephemeral[0].deserialize().unwrap().data_type(), "m.typing");
    assert_eq!(
        s.metric("qqbridge_appservice_events_total{kind=\"pdu\",outcome=\"received\"}"),
        "qqbridge_appservice_events_total{kind=\"pdu\",outcome=\"received\"} 3"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn test_not_json_is_400() {
    let s = Running::start(DEFAULT_MAX_BODY_BYTES);
    for body in ["[1]", "nope", ""] {
        let resp = s
            .http
            .put(format!("{}/_matrix/app/v1/transactions/n", s.base))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["errcode"], "M_NOT_JSON");
    }
    assert!(s.handler.transactions().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn test_duplicate_txn_and_store_error() {
    let s = Running::start(DEFAULT_MAX_BODY_BYTES);
    let path = "/_matrix/app/v1/transactions/42";
    s.handler.fail_next(1);
    let (status, answer) = s.call("PUT", path, Auth::Header(TOKEN), Some(txn_body())).await;
    assert_eq!((status, answer["errcode"].as_str()), (500, Some("M_UNKNOWN")));
    assert!(s.handler.transactions().is_empty());
    // The homeserver's retry of the same txnId now succeeds, its next retry is a duplicate.
    for _ in 0..2 {
        let (status, answer) = s.call("PUT", path, Auth::Header(TOKEN), Some(txn_body())).await;
        assert_eq!((status, answer), (200, json!({})));
    }
    // The legacy route shares the handler and its dedupe.
    let (status, _) =
        s.call("PUT", "/transactions/42", Auth::Header(TOKEN), Some(txn_body())).await;
    assert_eq!(status, 200);
    assert_eq!(s.handler.transactions().len(), 1);
    // One event, however often the homeserver re-sent it.
    let received = "qqbridge_appservice_events_total{kind=\"pdu\",outcome=\"received\"}";
    assert_eq!(s.metric(received), format!("{received} 1"));
    for (outcome, n) in [("store_error", 1), ("processed", 1), ("duplicate", 2)] {
        let prefix = format!("qqbridge_appservice_transactions_total{{outcome=\"{outcome}\"}}");
        assert_eq!(s.metric(&prefix), format!("{prefix} {n}"));
    }
    assert!(s.metric("qqbridge_appservice_transaction_duration_seconds_count").ends_with(" 4"));
    s.shutdown().await;
}

#[tokio::test]
async fn test_user_query_ping_health_and_unknown_routes() {
    let s = Running::start(DEFAULT_MAX_BODY_BYTES);
    s.handler.add_user(ruma::owned_user_id!("@qq_10001:hs"));
    let (status, answer) =
        s.call("GET", "/_matrix/app/v1/users/%40qq_10001%3Ahs", Auth::Header(TOKEN), None).await;
    assert_eq!((status, answer), (200, json!({})));
    let (status, answer) = s.call("GET", "/users/@qq_2:hs", Auth::Header(TOKEN), None).await;
    assert_eq!((status, answer["errcode"].as_str()), (404, Some("M_NOT_FOUND")));
    let (status, _) = s.call("GET", "/users/not-a-user", Auth::Header(TOKEN), None).await;
    assert_eq!(status, 400);
    assert_eq!(
        s.handler.user_queries(),
        vec![ruma::owned_user_id!("@qq_10001:hs"), ruma::owned_user_id!("@qq_2:hs")]
    );

    assert!(!s.status.ping_received("ping-1"));
    let ping = json!({"transaction_id": "ping-1"});
    let (status, answer) =
        s.call("POST", "/_matrix/app/v1/ping", Auth::Header(TOKEN), Some(ping)).await;
    assert_eq!((status, answer), (200, json!({})));
    assert!(s.status.ping_received("ping-1"));
    assert!(!s.status.ping_received("ping-2"));

    let (status, answer) =
        s.call("GET", "/_matrix/app/v1/thirdparty/location", Auth::Header(TOKEN), None).await;
    assert_eq!((status, answer), (200, json!([])));

    assert_eq!(s.call("GET", "/health/live", Auth::None, None).await.0, 200);
    assert_eq!(s.call("GET", "/health/ready", Auth::None, None).await.0, 503);
    s.status.set_ready(true);
    assert_eq!(s.call("GET", "/health/ready", Auth::None, None).await.0, 200);

    let (status, answer) = s.call("GET", "/_matrix/app/v1/nope", Auth::Header(TOKEN), None).await;
    assert_eq!((status, answer["errcode"].as_str()), (404, Some("M_UNRECOGNIZED")));
    s.shutdown().await;
}

#[test]
fn test_status_remembers_only_recent_pings() {
    let status = AppserviceStatus::new();
    for n in 0..=REMEMBERED_PINGS {
        status.record_ping(format!("p{n}"));
    }
    assert!(!status.ping_received("p0"));
    assert!(status.ping_received("p1"));
    assert!(status.ping_received(&format!("p{REMEMBERED_PINGS}")));
}

/// Arbitrary JSON shaped like Matrix events: the keys a transaction and its events use. No floats:
/// serde_json's default float parsing does not always round-trip the last digit.
fn arb_event_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let key = prop::sample::select(vec![
        "type",
        "room_id",
        "event_id",
        "sender",
        "content",
        "body",
        "events",
        "ephemeral",
        "de.sorunome.msc2409.ephemeral",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "(?s).{0,8}".prop_map(Value::from),
        Just(Value::from("m.room.message")),
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn test_parse_transaction_never_panics_on_bytes(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
    ) {
        let _ = parse_transaction("t".to_owned(), &body);
    }

    #[test]
    fn test_parse_transaction_keeps_every_event_raw(
        events in proptest::collection::vec(arb_event_json(), 0..6),
        ephemeral in proptest::option::of(proptest::collection::vec(arb_event_json(), 0..4)),
        extra in arb_event_json(),
    ) {
        let mut body = json!({"events": events, "x": extra});
        if let Some(ephemeral) = &ephemeral {
            body["de.sorunome.msc2409.ephemeral"] = json!(ephemeral);
        }
        let txn = parse_transaction("t".to_owned(), body.to_string().as_bytes()).unwrap();
        let raw: Vec<Value> =
            txn.events.iter().map(|e| serde_json::from_str(e.json().get()).unwrap()).collect();
        proptest::prop_assert_eq!(raw, events);
        proptest::prop_assert_eq!(txn.ephemeral.len(), ephemeral.map_or(0, |e| e.len()));
    }
}
