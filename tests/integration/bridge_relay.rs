//! Relay mode, double puppeting and bridge state against a real Synapse and the emulator
//! (MATRIX.md §6.3–6.5): a second Matrix user's message reaches QQ through the relay account
//! with the template; the owner's message from another QQ client appears as the owner's real
//! user and never goes back to QQ; a kick is pushed to the status endpoint and told in the
//! management room while a short blip is neither.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use qqbridge::config::Permission;
use ruma::{RoomId, UserId};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bridge_common::{ME, setup, start_bridge, urlencode};
use crate::harness::{TestEmulator, test_store};
use crate::synapse::{call, register_user, synapse};

const BREATH: u64 = 10003;
const GROUP: u64 = 346_167_134;

/// What account 10001 sent to the group, as text.
async fn group_texts(te: &TestEmulator) -> Vec<String> {
    te.sent(ME)
        .await
        .iter()
        .filter(|m| m["kind"] == "group")
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until the group got a text passing `accept`; answers it.
async fn wait_sent(te: &TestEmulator, what: &str, accept: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        if let Some(text) = group_texts(te).await.into_iter().find(|t| accept(t)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    panic!("QQ never got {what}; sent: {:?}", group_texts(te).await);
}

#[actix::test]
async fn test_relay_sends_a_second_users_message_with_the_template() {
    let (te, mut slot, owner, mut config) = setup().await;
    config.relay.enabled = true;
    // The owner is an admin (may set the relay); everyone else on the server may be relayed.
    config.bridge.permissions =
        [(owner.user_id.clone(), Permission::Admin), ("*".to_owned(), Permission::Relay)].into();
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    te.post_message(ME, "group", BREATH, "group hello", json!({"group": GROUP})).await;
    let (room, _) = owner.wait_for("group hello").await;

    // A second Matrix user, with a hostile display name, joins the group portal.
    let (eve, eve_token) =
        register_user(&format!("eve{}x{}", slot.index, rand::random::<u16>())).await;
    let path = format!("/_matrix/client/v3/profile/{}/displayname", urlencode(&eve));
    let (status, body) =
        call("PUT", &path, Some(&eve_token), Some(json!({"displayname": "Eve\u{202e} <b>x</b>"})))
            .await;
    assert_eq!(status, 200, "{body}");
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", urlencode(&room));
    let (status, body) =
        call("POST", &invite, Some(&owner.token), Some(json!({"user_id": eve}))).await;
    assert_eq!(status, 200, "{body}");
    let join = format!("/_matrix/client/v3/rooms/{}/join", urlencode(&room));
    let (status, body) = call("POST", &join, Some(&eve_token), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let send = |body: &'static str| {
        let token = eve_token.clone();
        let room = room.clone();
        async move {
            let path = format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/t{}",
                urlencode(&room),
                rand::random::<u64>()
            );
            let content = json!({"msgtype": "m.text", "body": body});
            let (status, answer) = call("PUT", &path, Some(&token), Some(content)).await;
            assert_eq!(status, 200, "{answer}");
        }
    };

    // Without a relay account the message is refused as before.
    let room_id = RoomId::parse(room.as_str()).unwrap();
    assert_eq!(side.bridge.relay_of(&room_id).await.unwrap(), None);
    send("before the relay").await;
    owner.wait_for_match("the refusal", |b| b.contains("only the owner's messages")).await;

    // Eve may be relayed but may not pick the relay; the owner, an admin, may: `!qq set-relay`
    // picks the portal's own account.
    send("!qq set-relay").await;
    owner.wait_for_match("the level refusal", |b| b.contains("needs the Admin permission")).await;
    assert_eq!(side.bridge.relay_of(&room_id).await.unwrap(), None);
    owner.send(&room, "!qq set-relay").await;
    owner.wait_for_match("the relay answer", |b| b.starts_with("Relay on")).await;
    let relay = side.bridge.relay_of(&room_id).await.unwrap().unwrap();
    assert_eq!((relay.account.as_str(), relay.qq.get()), ("me", ME));
    let admin = UserId::parse(owner.user_id.as_str()).unwrap();
    send("hi from Matrix").await;
    let text = wait_sent(&te, "the relayed message", |t| t.contains("hi from Matrix")).await;
    assert_eq!(text, "\u{2068}Eve <b>x</b>\u{2069}: hi from Matrix");
    assert!(!group_texts(&te).await.iter().any(|t| t.contains("before the relay")));

    // The owner's own messages are not prefixed.
    owner.send(&room, "owner speaking").await;
    let text = wait_sent(&te, "the owner's message", |t| t.contains("owner speaking")).await;
    assert_eq!(text, "owner speaking");

    // Relay cleared by the command: gone. Relay off in the hook: refused too.
    owner.send(&room, "!qq unset-relay").await;
    owner.wait_for_match("the unset answer", |b| b.starts_with("Relay off")).await;
    assert_eq!(side.bridge.relay_of(&room_id).await.unwrap(), None);
    side.bridge.set_relay(&room_id, "me", &admin).await.unwrap();
    side.bridge.set_may_relay(Arc::new(|_| false));
    send("after the hook").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!group_texts(&te).await.iter().any(|t| t.contains("after the hook")));
    side.stop().await;
}

#[actix::test]
async fn test_owner_message_from_another_client_is_double_puppeted() {
    let (te, mut slot, owner, mut config) = setup().await;
    let secret = format!("as_token:{}", synapse().double_puppet_token);
    config.double_puppet.secrets.insert("localhost".into(), secret.into());
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    te.post_message(ME, "group", BREATH, "group hello", json!({"group": GROUP})).await;
    let (room, _) = owner.wait_for("group hello").await;

    // The owner sends from Matrix: its echo from QQ is not bridged back.
    owner.send(&room, "typed in Matrix").await;
    wait_sent(&te, "the owner's message", |t| t == "typed in Matrix").await;

    // The owner writes on another QQ client: it appears as the owner's real Matrix user.
    te.post_message(ME, "group", ME, "typed on my phone", json!({"group": GROUP})).await;
    let (puppet_room, event) = owner.wait_for("typed on my phone").await;
    assert_eq!(puppet_room, room);
    assert_eq!(event["sender"], owner.user_id.as_str(), "{event}");
    let marker = &event["content"][qqbridge::bridge::portal::DOUBLE_PUPPET_MARKER];
    assert!(marker.as_str().is_some_and(|m| m.starts_with("group:")), "{event}");
    let ghost = format!("@{}:localhost", slot.ghost_localpart(ME));
    assert!(!owner.joined_members(&room).await.contains(&ghost), "the owner's ghost stayed out");

    // The transaction that brings it back sends nothing to QQ.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts = group_texts(&te).await;
    assert!(!texts.iter().any(|t| t.contains("typed on my phone")), "{texts:?}");
    assert_eq!(texts.iter().filter(|t| *t == "typed in Matrix").count(), 1, "{texts:?}");
    let messages = owner.messages(&room).await;
    let copies = messages.iter().filter(|e| e["content"]["body"] == "typed on my phone").count();
    assert_eq!(copies, 1, "{messages:?}");
    side.stop().await;
}

/// A tiny status endpoint: records each POST's `Authorization` header and JSON body.
async fn status_endpoint() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bridge-state", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = socket.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0usize);
                        if buffer.len() < end + 4 + length {
                            break;
                        }
                        let body: Value =
                            serde_json::from_slice(&buffer[end + 4..end + 4 + length]).unwrap();
                        let auth = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("authorization").then(|| v.trim().to_owned())
                            })
                            .unwrap_or_default();
                        record.lock().unwrap().push((auth, body));
                        buffer.drain(..end + 4 + length);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, seen)
}

#[actix::test]
async fn test_bridge_state_pushed_and_told_but_not_a_blip() {
    let (te, mut slot, owner, mut config) = setup().await;
    let (url, pushes) = status_endpoint().await;
    config.homeserver.status_endpoint = Some(url);
    config.bridge.bridge_status_transient_hold_seconds = 3;
    let (store, _guard) = test_store();
    let listen = slot.listen_addr;
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    // Login states carry `state_event`; the bridge's own (global) states `bridgeState`.
    let states = || {
        pushes
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, b)| b["state_event"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let globals = || {
        pushes
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, b)| b["bridgeState"]["state_event"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if !states().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states(), ["CONNECTED"]);
    // STARTING (unless a later state overtook it before it went out), UNCONFIGURED (the
    // account is added after start-up here), then RUNNING at its first state.
    let global = globals();
    assert_eq!(global.last().map(String::as_str), Some("RUNNING"), "{global:?}");
    let order = ["STARTING", "UNCONFIGURED", "RUNNING"];
    let ranks: Vec<usize> =
        global.iter().map(|g| order.iter().position(|o| o == g).unwrap_or(9)).collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]) && ranks.len() <= 3, "{global:?}");
    let (auth, body) =
        pushes.lock().unwrap().iter().find(|(_, b)| b["state_event"].is_string()).unwrap().clone();
    assert_eq!(auth, format!("Bearer {}", slot.as_token()));
    assert_eq!(
        (body["remote_id"].as_str(), body["remote_name"].as_str()),
        (Some("10001"), Some("me"))
    );

    // A blip: two broken polls, then the account is back within the hold.
    te.fault(json!({"endpoint": "poll2", "account": ME, "count": 2, "kind": {"reset": true}}))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(states(), ["CONNECTED"], "the blip was pushed");

    // A kick: LOGGED_OUT is pushed and told, with the state under fi.mau.bridge_state.
    te.emulator.kick(qqbridge::webqq::QqNumber::new(ME)).unwrap();
    let (management, notice) =
        owner.wait_for_match("the state notice", |b| b.contains("(LOGGED_OUT")).await;
    assert_eq!(notice["content"]["fi.mau.bridge_state"]["state_event"], "LOGGED_OUT");
    assert_eq!(notice["content"]["fi.mau.bridge_state"]["user_action"], "RELOGIN");
    for _ in 0..50 {
        if states().len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states(), ["CONNECTED", "LOGGED_OUT"]);
    let told = owner.messages(&management).await;
    assert!(
        !told
            .iter()
            .any(|e| e["content"]["body"].as_str().is_some_and(|b| b.contains("TRANSIENT"))),
        "{told:?}"
    );

    // The current states, for whoever holds the hs_token.
    let url = format!("http://{listen}/_matrix/app/com.qqbridge/bridge_state");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let answer: Value = http
        .get(&url)
        .bearer_auth(slot.registration.hs_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["states"][0]["state_event"], "LOGGED_OUT", "{answer}");
    assert_eq!(answer["states"][0]["error"], "qq-kicked", "{answer}");
    assert_eq!(answer["global"]["bridgeState"]["state_event"], "RUNNING", "{answer}");
    side.stop().await;
}
