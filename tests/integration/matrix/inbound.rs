//! Homeserver → bridge against the real Synapse: transactions with a human's messages and our own
//! echoes, re-delivery of a failed transaction under the same txn id, and the `hs_token` check on
//! the wire (what Synapse really sends, and a stranger's wrong token).

use std::time::{Duration, Instant};

use ruma::TransactionId;
use ruma::api::appservice::event::push_events::v1::EphemeralData;
use ruma::events::AnyTimelineEvent;
use ruma::events::room::message::RoomMessageEventContent;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc;

use super::{Bridge, Human, WAIT, eventually, take_listener, unique};
use crate::synapse;

#[tokio::test]
async fn test_human_messages_and_our_echoes_arrive() {
    let bridge = Bridge::start().await;
    let human = Human::new(&unique("inbound_human")).await;
    let ghost = bridge.ghost(20001).await;
    let room = bridge.portal(&human, &ghost).await;

    let from_human = human.send_text(&room, "hi from Matrix").await;
    let (txn_id, event) = bridge.delivered(&from_human).await;
    assert_eq!(event["sender"], human.user_id.as_str());
    assert_eq!(event["room_id"], room.as_str());
    assert_eq!(event["content"]["body"], "hi from Matrix");
    let attempts = bridge.handler.attempts();
    let ours: Vec<_> = attempts.iter().filter(|a| a.txn_id == txn_id).collect();
    assert_eq!(ours.len(), 1, "delivered more than once: {ours:?}");
    assert!(ours[0].delivery.is_some(), "our server did not answer 200");

    // Echoes: what the bot and the ghost did comes back, and only the sender tells them apart.
    let content = RoomMessageEventContent::text_plain("hi from QQ");
    let txn = TransactionId::new();
    let echo = bridge.client.send_message(&room, Some(&ghost), &txn, &content, None).await.unwrap();
    let (_, echoed) = bridge.delivered(echo.as_str()).await;
    assert_eq!(echoed["sender"], ghost.as_str());
    let events = bridge.handler.events();
    let in_room = |sender: &str, kind: &str| {
        events.iter().any(|(_, e)| {
            e["room_id"] == room.as_str() && e["sender"] == sender && e["type"] == kind
        })
    };
    assert!(in_room(bridge.bot().as_str(), "m.room.create"), "no echo of the bot's room creation");
    assert!(in_room(ghost.as_str(), "m.room.member"), "no echo of the ghost's join");
    // Everything Synapse sent reads as ruma types (room version 12: the create event has no
    // room id of its own, room ids have no server part).
    for attempt in bridge.handler.attempts() {
        for event in &attempt.events {
            let typed = serde_json::from_value::<AnyTimelineEvent>(event.clone());
            assert!(typed.is_ok(), "{event}: {typed:?}");
        }
        for data in &attempt.ephemeral {
            let typed = serde_json::from_value::<EphemeralData>(data.clone());
            assert!(typed.is_ok(), "{data}: {typed:?}");
        }
    }
    assert!(!room.as_str().contains(':'), "Synapse now puts a server part in room ids: {room}");

    // A human invites a ghost that does not exist: Synapse asks us first (GET /users/{id}).
    let unknown = bridge.slot.ghost_localpart(424242);
    let unknown = format!("@{unknown}:{}", synapse::DOMAIN);
    let path = format!("/_matrix/client/v3/rooms/{}/invite", super::enc(room.as_str()));
    let (status, body) =
        synapse::call("POST", &path, Some(&human.token), Some(json!({"user_id": unknown}))).await;
    eprintln!("matrix: invite of an unknown ghost: {status} {body}");
    // Synapse asks before it pushes the invite to us, not before it answers the inviter.
    eventually("Synapse to ask us about the unknown ghost", WAIT, async || {
        bridge.handler.memory.user_queries().iter().any(|u| u.as_str() == unknown).then_some(())
    })
    .await;

    // Transaction ids are opaque and unique per delivery.
    let mut ids: Vec<_> = bridge.handler.attempts().into_iter().map(|a| a.txn_id).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a transaction was delivered twice");
    bridge.stop().await;
}

#[tokio::test]
async fn test_failed_transaction_is_redelivered_with_the_same_txn_id() {
    let bridge = Bridge::start().await;
    let human = Human::new(&unique("retry_human")).await;
    let ghost = bridge.ghost(20002).await;
    let room = bridge.portal(&human, &ghost).await;
    let settled = human.send_text(&room, "settle").await;
    bridge.delivered(&settled).await;

    bridge.handler.memory.fail_next(1);
    let started = Instant::now();
    let message = human.send_text(&room, "delivered after a failure").await;
    let (txn_id, _) = bridge.delivered(&message).await;
    let took = started.elapsed();
    let attempts = bridge.handler.attempts();
    let failed: Vec<_> = attempts.iter().filter(|a| a.delivery.is_none()).collect();
    assert_eq!(failed.len(), 1, "{attempts:#?}");
    let failed = failed[0];
    // Synapse re-sends the very transaction it failed to deliver (stored before sending), under
    // the same id, after its 2 s recoverer delay.
    let retried = attempts
        .iter()
        .find(|a| a.txn_id == failed.txn_id && a.delivery.is_some())
        .unwrap_or_else(|| panic!("txn {} never re-delivered: {attempts:#?}", failed.txn_id));
    let delay = retried.at - failed.at;
    assert!(delay >= Duration::from_millis(1500), "re-delivered after only {delay:?}");
    if failed.events.iter().any(|e| e["event_id"] == message.as_str()) {
        assert_eq!(txn_id, failed.txn_id, "the message came back under another txn id");
    }
    eprintln!(
        "matrix: failed txn {} re-delivered after {delay:?}; message in {took:?}",
        failed.txn_id
    );
    bridge.stop().await;
}

#[tokio::test]
async fn test_ping_makes_synapse_retry_at_once() {
    // Unlike MATRIX.md §2 says, a successful CS ping cuts Synapse's recoverer delay short
    // (synapse/rest/client/appservice_ping.py calls `force_retry`): a restarted bridge gets its
    // backlog at once instead of after up to 8.5 min.
    let bridge = Bridge::start().await;
    let human = Human::new(&unique("ping_human")).await;
    let ghost = bridge.ghost(20003).await;
    let room = bridge.portal(&human, &ghost).await;
    let settled = human.send_text(&room, "settle").await;
    bridge.delivered(&settled).await;

    // Two failures: the second comes 2 s after the first, the next try would be 4 s later.
    bridge.handler.memory.fail_next(2);
    let message = human.send_text(&room, "after two failures").await;
    let failures = || bridge.handler.attempts().into_iter().filter(|a| a.delivery.is_none());
    let second = eventually("two failed deliveries", WAIT, async || failures().nth(1)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    bridge.client.appservice_ping(&TransactionId::new()).await.unwrap();
    let (txn_id, _) = bridge.delivered(&message).await;
    let success =
        bridge.handler.attempts().into_iter().find(|a| a.txn_id == txn_id && a.delivery.is_some());
    let after = success.unwrap().at - second.at;
    assert!(after < Duration::from_millis(3000), "no forced retry: {after:?} after the failure");
    eprintln!("matrix: re-delivered {after:?} after the second failure (natural: 4 s)");
    bridge.stop().await;
}

#[tokio::test]
async fn test_alias_namespace_and_alias_query() {
    let bridge = Bridge::start().await;
    let prefix = format!("qqt{}_", bridge.slot.index);
    let mut request = ruma::api::client::room::create_room::v3::Request::new();
    request.room_alias_name = Some(format!("{prefix}group_123"));
    let room = bridge.client.create_room(request, None).await.unwrap();

    let human = Human::new(&unique("alias_human")).await;
    let alias = |local: &str| super::enc(&format!("#{local}:{}", synapse::DOMAIN));
    let (status, body) = human
        .get(&format!("/_matrix/client/v3/directory/room/{}", alias(&format!("{prefix}group_123"))))
        .await;
    assert_eq!((status, body["room_id"].as_str()), (200, Some(room.as_str())), "{body}");

    // An unknown alias in our namespace: Synapse asks us (GET /rooms/{alias}); we never
    // create rooms on demand (MATRIX.md §1), so it stays unknown.
    let unknown = format!("{prefix}group_999");
    let (status, body) =
        human.get(&format!("/_matrix/client/v3/directory/room/{}", alias(&unknown))).await;
    assert_eq!((status, body["errcode"].as_str()), (404, Some("M_NOT_FOUND")), "{body}");
    // A human cannot take an alias in our exclusive namespace, even for their own room.
    let (status, own) =
        synapse::call("POST", "/_matrix/client/v3/createRoom", Some(&human.token), Some(json!({})))
            .await;
    assert_eq!(status, 200, "{own}");
    let path = format!("/_matrix/client/v3/directory/room/{}", alias(&format!("{prefix}squat")));
    let (status, body) =
        synapse::call("PUT", &path, Some(&human.token), Some(json!({"room_id": own["room_id"]})))
            .await;
    assert_eq!((status, body["errcode"].as_str()), (400, Some("M_EXCLUSIVE")), "{body}");
    bridge.stop().await;
}

/// One HTTP request head as a bare listener read it.
#[derive(Debug)]
struct Head {
    request_line: String,
    authorization: Option<String>,
}

/// Answers every request on `stream` with `200 {}` and `Connection: close`, reporting its head.
async fn answer_one(stream: tokio::net::TcpStream, seen: mpsc::UnboundedSender<Head>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
        return;
    }
    let (mut authorization, mut length) = (None, 0usize);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().unwrap(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
    reader.get_mut().shutdown().await.ok();
    let _ = seen.send(Head { request_line: request_line.trim_end().to_owned(), authorization });
}

#[tokio::test]
async fn test_hs_token_on_the_wire() {
    // Phase 1: a bare listener records how Synapse authenticates its ping and transactions.
    let mut slot = synapse::lease();
    let listener = take_listener(&mut slot).await;
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let acceptor = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted.unwrap();
                    connections.spawn(answer_one(stream, seen_tx.clone()));
                }
                _ = &mut stop_rx => break,
            }
        }
        while connections.join_next().await.is_some() {}
        listener
    });
    let client = super::client_for(&slot, qqbridge::metrics::Metrics::try_new().unwrap());
    client.appservice_ping(&TransactionId::new()).await.unwrap();
    let human = Human::new(&unique("auth_human")).await;
    let mut request = ruma::api::client::room::create_room::v3::Request::new();
    request.invite = vec![ruma::UserId::parse(&human.user_id).unwrap()];
    let room = client.create_room(request, None).await.unwrap();
    let mut heads = Vec::new();
    eventually("a ping and a transaction at the bare listener", WAIT, async || {
        while let Ok(head) = seen_rx.try_recv() {
            heads.push(head);
        }
        let has = |prefix: &str| heads.iter().any(|h| h.request_line.starts_with(prefix));
        (has("POST /_matrix/app/v1/ping ") && has("PUT /_matrix/app/v1/transactions/"))
            .then_some(())
    })
    .await;
    let expected = format!("Bearer {}", slot.registration.hs_token.expose());
    for head in &heads {
        assert_eq!(head.authorization.as_deref(), Some(expected.as_str()), "{}", head.request_line);
        assert!(
            !head.request_line.contains("access_token"),
            "legacy query auth: {}",
            head.request_line
        );
    }
    stop_tx.send(()).unwrap();
    let listener = acceptor.await.unwrap().into_std().unwrap();
    slot.listener = Some(listener);

    // Phase 2: our server on the same port accepts Synapse and refuses a stranger.
    let bridge = Bridge::serve_on(slot).await;
    human.join(&room).await;
    let message = human.send_text(&room, "through the real auth check").await;
    bridge.delivered(&message).await;
    let base = format!("http://{}", bridge.slot.listen_addr);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let wrong = http
        .put(format!("{base}/_matrix/app/v1/transactions/stranger-1"))
        .bearer_auth("0".repeat(64))
        .json(&json!({"events": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    assert!(bridge.handler.attempts().iter().all(|a| a.txn_id != "stranger-1"));
    let transactions = "qqbridge_appservice_transactions_total";
    assert_eq!(bridge.counter(transactions, "outcome=\"auth_rejected\""), 1.0);
    assert!(bridge.counter(transactions, "outcome=\"processed\"") >= 1.0);
    bridge.stop().await;
}
