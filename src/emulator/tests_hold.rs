//! Long-poll timing on paused tokio time: the exact hold and the instant an event ends it,
//! driven directly through the route dispatcher (no sockets).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::emulator::http::Req;
use crate::emulator::session::lock;
use crate::webqq::QqNumber;

const D1_REFERER: &str = "http://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2";
const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/56.0 Safari/537.36";

/// A logged-in session made directly in the shared state, and a poll2 request for it.
fn direct_session(emulator: &Emulator) -> Req {
    let shared = &emulator.shared;
    let auth = lock(&shared.login).new_auth(QqNumber::new(10001), tokio::time::Instant::now());
    lock(&shared.login).set_ptwebqq(&auth.skey, "p".repeat(64));
    let (session, _) = state::write(&shared.sessions).create(session::NewSession {
        account: QqNumber::new(10001),
        clientid: 53_999_199,
        vfwebqq: "v".repeat(80),
        skey: auth.skey.clone(),
        ptwebqq: "p".repeat(64),
        login2_ptwebqq: String::new(),
        channel_host: "d1.web2.qq.com".to_owned(),
        status: "online".to_owned(),
        random_uins: true,
        send_burst: 20.0,
    });
    session.lock().warmed_up = true;
    let r =
        json!({"ptwebqq": "", "clientid": 53999199, "psessionid": session.psessionid, "key": ""});
    let body = format!(
        "r={}",
        url::form_urlencoded::byte_serialize(r.to_string().as_bytes()).collect::<String>()
    );
    let (parts, ()) = ::http::Request::builder()
        .method("POST")
        .uri("/channel/poll2")
        .header("Host", "d1.web2.qq.com")
        .header("Referer", D1_REFERER)
        .header("User-Agent", UA)
        .header("Cookie", format!("skey={}; uin=o0000010001", auth.skey))
        .body(())
        .unwrap()
        .into_parts();
    Req::new(parts, bytes::Bytes::from(body), false, "127.0.0.1:1".parse().unwrap())
}

#[tokio::test(start_paused = true)]
async fn test_poll_hold_is_exact_on_paused_time() {
    let emulator = Emulator::new(World::demo(), EmulatorOptions::default()).unwrap();
    let req = Arc::new(direct_session(&emulator));
    let started = tokio::time::Instant::now();
    let poll = {
        let shared = emulator.shared.clone();
        let req = req.clone();
        tokio::spawn(async move {
            let reply =
                routes::dispatch(&shared, router::Endpoint::Channel(router::Channel::Poll2), &req)
                    .await;
            (reply, tokio::time::Instant::now())
        })
    };
    let (reply, ended) = poll.await.unwrap();
    assert_eq!(ended - started, Duration::from_secs(60), "held exactly poll_hold");
    assert_eq!(&reply.body[..], br#"{"errmsg":"","retcode":102}"#);

    // An event that arrives during the hold ends it at that instant.
    let poll = {
        let shared = emulator.shared.clone();
        let req = req.clone();
        tokio::spawn(async move {
            let reply =
                routes::dispatch(&shared, router::Endpoint::Channel(router::Channel::Poll2), &req)
                    .await;
            (reply, tokio::time::Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_secs(7)).await;
    let posted = emulator
        .post_message(PostMessage {
            account: QqNumber::new(10001),
            kind: MessageKind::Friend,
            from: QqNumber::new(10002),
            group: None,
            discussion: None,
            text: "ping".to_owned(),
            face: None,
            image: true,
        })
        .unwrap();
    assert_eq!(posted.delivered, 1);
    let (reply, ended) = poll.await.unwrap();
    assert_eq!(ended - started, Duration::from_secs(67));
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["result"][0]["value"]["content"][1], "ping");
    assert_eq!(body["result"][0]["value"]["content"][2][0], "offpic", "a generated picture");
}
