//! The whole bridge against a real Synapse and the emulator: portals created on the first
//! message, ghosts named from QQ, messages both ways for a friend chat and a group, echoes and
//! redeliveries not bridged twice.

use std::time::Duration;

use qqbridge::account::manager::RemoveAccount;
use qqbridge::metrics::Metrics;
use serde_json::{Value, json};

use crate::bridge_common::{
    ME, add_me, manager_settings, owner_and_config, setup, space_of, start_bridge, urlencode,
};
use crate::harness::{TestEmulator, test_store};
use crate::synapse::{call, lease};

const ALICE: u64 = 10002;
const BREATH: u64 = 10003;
const GROUP: u64 = 346_167_134;

async fn sent_texts(te: &TestEmulator) -> Vec<String> {
    te.sent(ME).await.iter().map(|m| m.to_string()).collect()
}

#[actix::test]
async fn test_friend_and_group_both_ways_through_synapse() {
    let (te, mut slot, owner, config) = setup().await;
    let owner_id = owner.user_id.clone();
    let (store, _guard) = test_store();
    let listener = slot.listener.take().unwrap();
    let side = start_bridge(&te, &config, store, listener).await;

    // QQ → Matrix, friend: a DM portal with the friend's ghost, named from QQ.
    te.post_message(ME, "friend", ALICE, "hello from QQ <b>", json!({})).await;
    let (dm, event) = owner.wait_for("hello from QQ <b>").await;
    let ghost = format!("@{}:localhost", slot.ghost_localpart(ALICE));
    assert_eq!(event["sender"], ghost.as_str());
    let profile = format!("/_matrix/client/v3/profile/{}", urlencode(&ghost));
    let (_, profile) = call("GET", &profile, Some(&owner.token), None).await;
    assert!(profile["displayname"].as_str().unwrap_or_default().contains("(QQ)"), "{profile}");

    // The portal says what it bridges (MSC2346), under both event types clients read.
    for event_type in ["m.bridge", "uk.half-shot.bridge"] {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{event_type}/{}",
            urlencode(&dm),
            urlencode(&format!("org.qqbridge://qq/friend/{ALICE}"))
        );
        let (status, state) = call("GET", &path, Some(&owner.token), None).await;
        assert_eq!(status, 200, "{event_type}: {state}");
        assert_eq!(state["protocol"]["id"], "qq");
        assert_eq!(state["channel"]["id"], ALICE.to_string());
        assert_eq!(state["creator"], owner_id.as_str());
    }

    // The account has a space holding its portals, the owner invited to it.
    let space = space_of(&owner).await.expect("a space for the account");
    let child = owner.state(&space, "m.space.child", &dm).await;
    let child = child.expect("the DM portal is a child of the space");
    assert_eq!(child["via"], json!(["localhost"]));

    // The owner typing in the DM portal is told to the QQ friend (input_notify2).
    let typing_path =
        format!("/_matrix/client/v3/rooms/{}/typing/{}", urlencode(&dm), urlencode(&owner.user_id));
    let typing = json!({"typing": true, "timeout": 5000});
    let (status, body) = call("PUT", &typing_path, Some(&owner.token), Some(typing)).await;
    assert_eq!(status, 200, "{body}");
    let mut notified = 0;
    for _ in 0..100 {
        let state = te.control_get("state").await;
        notified = state["counters"]["input_notify2"]["requests"].as_u64().unwrap_or(0);
        if notified > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(notified > 0, "the friend was told that the owner types");

    // Matrix → QQ, friend.
    owner.send(&dm, "hello from Matrix").await;
    for _ in 0..100 {
        if sent_texts(&te).await.iter().any(|m| m.contains("hello from Matrix")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = sent_texts(&te).await;
    assert_eq!(sent.iter().filter(|m| m.contains("hello from Matrix")).count(), 1, "{sent:?}");

    // A redaction cannot reach QQ: the owner is told so instead of nothing happening.
    let event_id = owner.send(&dm, "a message to retract").await;
    let path = format!(
        "/_matrix/client/v3/rooms/{}/redact/{}/r{}",
        urlencode(&dm),
        urlencode(&event_id),
        rand::random::<u64>()
    );
    let (status, body) = call("PUT", &path, Some(&owner.token), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    owner.wait_for("QQ cannot retract messages: the redacted message stays on QQ.").await;

    // QQ → Matrix, group: a second portal, the member's ghost.
    te.post_message(ME, "group", BREATH, "group hello", json!({"group": GROUP})).await;
    let (group_room, event) = owner.wait_for("group hello").await;
    assert_ne!(group_room, dm);
    assert_eq!(event["sender"], format!("@{}:localhost", slot.ghost_localpart(BREATH)).as_str());

    // A picture in the group becomes an m.image uploaded to the media repository, and a face
    // becomes its emoji in the text.
    te.post_message(
        ME,
        "group",
        BREATH,
        "look",
        json!({"group": GROUP, "image": true, "face": 14}),
    )
    .await;
    let mut image = None;
    for _ in 0..100 {
        image = owner
            .messages(&group_room)
            .await
            .into_iter()
            .find(|e| e["content"]["msgtype"] == "m.image");
        if image.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let image = image.expect("an m.image in the group portal");
    let mxc = image["content"]["url"].as_str().unwrap();
    assert!(mxc.starts_with("mxc://localhost/"), "{image}");
    let media = format!("/_matrix/client/v1/media/download/{}", mxc.trim_start_matches("mxc://"));
    let (status, _) = call("GET", &media, Some(&owner.token), None).await;
    assert_eq!(status, 200, "the picture downloads from Synapse");
    let texts: Vec<String> = owner
        .messages(&group_room)
        .await
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    assert!(texts.iter().any(|t| t.starts_with("look") && t.contains('\u{1f642}')), "{texts:?}");

    // Matrix → QQ, group; the echo QQ sends back is not bridged a second time.
    owner.send(&group_room, "to the group").await;
    for _ in 0..100 {
        if sent_texts(&te).await.iter().any(|m| m.contains("to the group")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bodies: Vec<Value> = owner
        .messages(&group_room)
        .await
        .into_iter()
        .map(|e| e["content"]["body"].clone())
        .collect();
    assert_eq!(bodies.iter().filter(|b| *b == "to the group").count(), 1, "{bodies:?}");

    // A Matrix picture goes to QQ as an uploaded group picture, and to the friend as an offline
    // picture.
    let mxc = owner.upload_png().await;
    for (room, needle) in [(&group_room, "cface"), (&dm, "offpic")] {
        let content = json!({"msgtype": "m.image", "body": "pic.png", "url": mxc,
                             "info": {"mimetype": "image/png"}});
        owner.send_content(room, content).await;
        let mut found = false;
        for _ in 0..100 {
            found = sent_texts(&te).await.iter().any(|m| m.contains(needle));
            if found {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(found, "no {needle} sent to QQ: {:?}", sent_texts(&te).await);
    }

    // A second message in the same chat goes to the same portal, in order.
    te.post_message(ME, "friend", ALICE, "second", json!({})).await;
    let (room, _) = owner.wait_for("second").await;
    assert_eq!(room, dm);
    let bodies: Vec<Value> =
        owner.messages(&dm).await.into_iter().map(|e| e["content"]["body"].clone()).collect();
    let first = bodies.iter().position(|b| b == "hello from QQ <b>").unwrap();
    let second = bodies.iter().position(|b| b == "second").unwrap();
    assert!(first < second, "{bodies:?}");
    side.stop().await;
}

/// Delivers `events` to the bridge's appservice listener as the homeserver would, as
/// transaction `txn_id`; answers the HTTP status.
async fn push_transaction(slot: &crate::synapse::SynapseSlot, txn_id: &str, events: Value) -> u16 {
    let url = format!("http://{}/_matrix/app/v1/transactions/{txn_id}", slot.listen_addr);
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .put(url)
        .bearer_auth(slot.registration.hs_token.expose())
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn count_sent(te: &TestEmulator, text: &str) -> usize {
    sent_texts(te).await.iter().filter(|m| m.contains(text)).count()
}

#[actix::test]
async fn test_replayed_transactions_and_bad_events_across_a_restart() {
    let te = TestEmulator::start().await;
    let mut slot = lease();
    let (owner, config) = owner_and_config(&slot).await;
    let (store, guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    te.post_message(ME, "friend", ALICE, "open the portal", json!({})).await;
    let (dm, _) = owner.wait_for("open the portal").await;

    // A transaction with a malformed event, an event of an unknown type and a good message: 200,
    // and the good message is bridged once.
    let message = json!({"type": "m.room.message", "room_id": dm, "sender": owner.user_id,
        "event_id": "$replayed-1", "origin_server_ts": 1_700_000_000_000_u64,
        "content": {"msgtype": "m.text", "body": "replayed once"}});
    let events = json!([{"type": 5}, {"type": "org.example.unknown", "room_id": dm,
        "sender": owner.user_id, "event_id": "$x", "origin_server_ts": 1, "content": {}}, message]);
    assert_eq!(push_transaction(&slot, "replay-1", events.clone()).await, 200);
    for _ in 0..100 {
        if count_sent(&te, "replayed once").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_sent(&te, "replayed once").await, 1);
    // The homeserver retries the same transaction: answered, nothing sent again.
    assert_eq!(push_transaction(&slot, "replay-1", events.clone()).await, 200);

    // A restart of the bridge on the same store: the replay is still recognised, and the same
    // event under a new transaction id is not sent again either (the message map).
    side.accounts.send(RemoveAccount { id: "me".into() }).await.unwrap();
    // With the account stopped, a message from Matrix is refused with a notice, not dropped.
    owner.send(&dm, "while the account is off").await;
    owner.wait_for("Not sent to QQ: the QQ account of this chat is not running.").await;
    side.stop().await;
    let listener = std::net::TcpListener::bind(slot.listen_addr).unwrap();
    let side = start_bridge(&te, &config, guard.reopen(), listener).await;
    assert_eq!(push_transaction(&slot, "replay-1", events.clone()).await, 200);
    assert_eq!(push_transaction(&slot, "replay-2", json!([message])).await, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count_sent(&te, "replayed once").await, 1, "{:?}", sent_texts(&te).await);

    // A wrong hs_token is refused before anything is read.
    let url = format!("http://{}/_matrix/app/v1/transactions/evil", slot.listen_addr);
    let status = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .put(url)
        .bearer_auth("wrong")
        .json(&json!({"events": [message]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 403);
    side.stop().await;
}

/// Puts a message of `owner` in `room` into the store's outbox as an earlier run would have
/// left it; `sending`: its QQ send call had begun; `outcome`: its failure was known, and kept
/// for telling.
fn left_in_outbox(
    store: &qqbridge::store::Store,
    room: &str,
    owner: &str,
    n: u32,
    (sending, outcome): (bool, Option<&'static str>),
) {
    use qqbridge::store::{Direction, MessageRow, OutboxRow};
    let event_id = format!("$left-{n}");
    let event = json!({"type": "m.room.message", "room_id": room, "sender": owner,
        "event_id": event_id, "origin_server_ts": 1_700_000_000_000_u64,
        "content": {"msgtype": "m.text", "body": format!("left in the outbox {n}")}});
    let room_id: ruma::OwnedRoomId = room.try_into().unwrap();
    let event_id: ruma::OwnedEventId = event_id.try_into().unwrap();
    let message = MessageRow {
        portal_key: "unused".into(),
        remote_key: format!("mx:{event_id}"),
        room_id: room_id.clone(),
        event_id: event_id.clone(),
        direction: Direction::MatrixToQq,
        sender: owner.into(),
        created_at: 1,
    };
    let row = OutboxRow {
        room_id: room_id.clone(),
        event_id: event_id.clone(),
        seq: u64::from(n),
        event_json: event.to_string(),
        sending: false,
        outcome: None,
    };
    store
        .blocking_call(move |c| {
            assert!(c.claim_for_outbox(&message, &row)?);
            if sending {
                assert!(c.outbox_sending(&room_id, event_id.as_str())?);
            }
            if let Some(outcome) = outcome {
                assert!(c.outbox_outcome(&room_id, event_id.as_str(), outcome)?);
            }
            Ok(())
        })
        .unwrap();
}

#[actix::test]
async fn test_outbox_after_a_crash_resends_the_unsent_and_tells_the_interrupted_and_untold() {
    let te = TestEmulator::start().await;
    let mut slot = lease();
    let (owner, config) = owner_and_config(&slot).await;
    let (store, guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    te.post_message(ME, "friend", ALICE, "open the outbox portal", json!({})).await;
    let (dm, _) = owner.wait_for("open the outbox portal").await;
    side.accounts.send(RemoveAccount { id: "me".into() }).await.unwrap();
    side.stop().await;

    // What a SIGKILL leaves: one message never handed to QQ, one whose send call had begun
    // (RELIABILITY.md §1.5: the durable `sending` mark), one whose failure was known but whose
    // notice had not reached the room (G6: the homeserver was away).
    let store = guard.reopen();
    let refused = r#"{"status":"FAIL_PERMANENT","reason":"m_generic_error","message":"QQ refused it (retcode 1202).","maybe_delivered":false}"#;
    left_in_outbox(&store, &dm, owner.user_id.as_str(), 1, (false, None));
    left_in_outbox(&store, &dm, owner.user_id.as_str(), 2, (true, None));
    left_in_outbox(&store, &dm, owner.user_id.as_str(), 3, (true, Some(refused)));
    let listener = std::net::TcpListener::bind(slot.listen_addr).unwrap();
    let side = start_bridge(&te, &config, store, listener).await;
    for _ in 0..100 {
        if count_sent(&te, "left in the outbox 1").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_sent(&te, "left in the outbox 1").await, 1, "the unsent one is sent");
    let told = "Maybe not delivered to QQ: QQ did not confirm it (the bridge stopped while \
                sending it).";
    let (_, notice) = owner.wait_for_match(told, |b| b.starts_with(told)).await;
    assert_eq!(notice["content"]["m.relates_to"]["m.in_reply_to"]["event_id"], "$left-2");
    let told = "Not sent to QQ: QQ refused it (retcode 1202).";
    let (_, notice) = owner.wait_for(told).await;
    assert_eq!(notice["content"]["m.relates_to"]["m.in_reply_to"]["event_id"], "$left-3");
    for n in [2, 3] {
        let text = format!("left in the outbox {n}");
        assert_eq!(count_sent(&te, &text).await, 0, "{:?}", sent_texts(&te).await);
    }
    let left = guard.reopen().blocking_call(|c| c.outbox()).unwrap();
    assert!(left.is_empty(), "all settled: {left:?}");
    side.stop().await;
}

/// RELIABILITY.md §1.7: the accounts log in and poll before the homeserver is waited for (it
/// may be down when the bridge restarts); what they poll waits in the inbox, then is bridged.
#[actix::test]
async fn test_accounts_poll_before_the_homeserver_is_found() {
    let (te, mut slot, owner, config) = setup().await;
    let (store, _guard) = test_store();
    let manager = manager_settings(&te);
    let prepared =
        qqbridge::bridge::startup::prepare(&config, store.clone(), Metrics::new(), manager)
            .await
            .unwrap();
    add_me(&prepared.accounts).await;
    te.post_message(ME, "friend", ALICE, "polled before the homeserver", json!({})).await;
    let mut waiting = Vec::new();
    for _ in 0..100 {
        waiting = store.inbox().unwrap();
        if !waiting.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting.len(), 1, "the polled message waits in the inbox");
    assert!(waiting[0].event_json.contains("polled before the homeserver"), "{waiting:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.inbox().unwrap().len(), 1, "held until the homeserver is found");

    let listener = slot.listener.take().unwrap();
    let side = prepared.serve(&config, listener).await.unwrap();
    let (_, event) = owner.wait_for("polled before the homeserver").await;
    assert_eq!(event["sender"], format!("@{}:localhost", slot.ghost_localpart(ALICE)).as_str());
    for _ in 0..50 {
        if store.inbox().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.inbox().unwrap().is_empty(), "bridged and taken out of the inbox");
    side.stop().await;
}
