//! Bridge → homeserver against the real Synapse: the start-up sequence, ghosts and their
//! profiles, portal rooms (timestamps, idempotent sends, state, typing, redaction) and media.

use std::time::Duration;

use base64::Engine as _;
use qqbridge::matrix::Error;
use qqbridge::matrix::client::{ClientSettings, MatrixClient};
use qqbridge::metrics::Metrics;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::events::{StateEventContent, StateEventType};
use ruma::presence::PresenceState;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedTransactionId, OwnedUserId, TransactionId, UInt};
use serde_json::Value;

use super::{Bridge, Human, WAIT, enc, eventually, unique};
use crate::synapse::{self, DOMAIN};

/// A 1×1 PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The MSC2346 bridge info state event (`m.bridge`), reduced to what the test needs (by hand:
/// ruma's derive emits a cfg unknown to this crate, which `-D warnings` refuses).
#[derive(Clone, Debug, serde::Serialize)]
struct BridgeInfoContent {
    bridgebot: OwnedUserId,
    protocol: Value,
}

impl StateEventContent for BridgeInfoContent {
    type StateKey = String;

    fn event_type(&self) -> StateEventType {
        "m.bridge".into()
    }
}

fn txn(prefix: &str) -> OwnedTransactionId {
    format!("{prefix}-{}", rand::random::<u64>()).into()
}

#[tokio::test]
async fn test_startup_sequence_against_synapse() {
    let bridge = Bridge::serve().await;
    let client = &bridge.client;
    let versions =
        client.wait_for_homeserver(Duration::from_millis(200), Duration::from_secs(30)).await;
    assert!(versions.unwrap().versions.iter().any(|v| v == "v1.12"), "Synapse lacks v1.12");
    // The bot is a namespace user: registered first (a second time is M_USER_IN_USE), then
    // every call without a ghost asserts it, whoami included.
    client.ensure_registered(&bridge.slot.config.appservice.bot_localpart).await.unwrap();
    client.ensure_registered(&bridge.slot.config.appservice.bot_localpart).await.unwrap();
    assert_eq!(client.whoami().await.unwrap(), bridge.bot());

    let ping = TransactionId::new();
    assert!(!bridge.status.ping_received(ping.as_str()));
    let rtt = client.appservice_ping(&ping).await.unwrap();
    assert!(rtt < Duration::from_secs(10), "{rtt:?}");
    assert!(bridge.status.ping_received(ping.as_str()), "Synapse did not call our ping");

    // The deployment faults the start-up sequence exists to catch.
    let mut wrong = ClientSettings::clone(client.settings());
    wrong.as_token = qqbridge::matrix::Token::new("0".repeat(64));
    let wrong = MatrixClient::new(wrong, Metrics::try_new().unwrap()).unwrap();
    let err = wrong.whoami().await.unwrap_err();
    assert_eq!((err.status(), err.errcode()), (Some(401), Some("M_UNKNOWN_TOKEN")), "{err}");
    let err = client.ensure_registered("not_our_namespace").await.unwrap_err();
    assert_eq!((err.status(), err.errcode()), (Some(400), Some("M_EXCLUSIVE")), "{err}");

    // A slot nobody serves: Synapse cannot reach it. The spec's codes are M_CONNECTION_FAILED,
    // M_CONNECTION_TIMEOUT, M_BAD_STATUS, M_URL_NOT_SET (`M_AS_PING_*` is only Synapse's name
    // for the constants).
    let mut dark = synapse::lease();
    drop(dark.listener.take());
    let dark_client = super::client_for(&dark, Metrics::try_new().unwrap());
    dark_client.ensure_registered(&dark.config.appservice.bot_localpart).await.unwrap();
    let err = dark_client.appservice_ping(&TransactionId::new()).await.unwrap_err();
    assert_eq!(err.status(), Some(502), "{err}");
    assert_eq!(err.errcode(), Some("M_CONNECTION_FAILED"), "{err}");
    drop(dark);
    bridge.stop().await;
}

#[tokio::test]
async fn test_ghost_profile_as_a_human_sees_it() {
    let bridge = Bridge::start().await;
    let localpart = bridge.slot.ghost_localpart(10002);
    bridge.client.ensure_registered(&localpart).await.unwrap();
    bridge.client.ensure_registered(&localpart).await.unwrap();
    let ghost = bridge.ghost(10002).await;
    assert_eq!(ghost.as_str(), format!("@{localpart}:{DOMAIN}"));

    let png = base64::engine::general_purpose::STANDARD.decode(PNG_1X1).unwrap();
    let mxc = bridge
        .client
        .upload(Some(&ghost), png.clone(), "image/png", Some("avatar.png".to_owned()))
        .await
        .unwrap();
    assert_eq!(mxc.server_name().unwrap().as_str(), DOMAIN);
    bridge.client.set_displayname(&ghost, "Alice 爱丽丝 (QQ)".to_owned()).await.unwrap();
    bridge.client.set_avatar_url(&ghost, mxc.clone()).await.unwrap();

    let human = Human::new(&unique("profile_viewer")).await;
    let (status, profile) =
        human.get(&format!("/_matrix/client/v3/profile/{}", enc(ghost.as_str()))).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["displayname"], "Alice 爱丽丝 (QQ)");
    assert_eq!(profile["avatar_url"], mxc.as_str());
    let avatar = bridge.client.download(&mxc).await.unwrap();
    assert_eq!(avatar.bytes, png);

    bridge.client.set_presence(&ghost, PresenceState::Online).await.unwrap();
    // Presence is visible only to users sharing a room: read it as the ghost itself.
    let path = format!(
        "/_matrix/client/v3/presence/{}/status?user_id={}",
        enc(ghost.as_str()),
        enc(ghost.as_str())
    );
    let (status, presence) = synapse::call("GET", &path, Some(bridge.slot.as_token()), None).await;
    assert_eq!((status, presence["presence"].as_str()), (200, Some("online")), "{presence}");
    bridge.stop().await;
}

#[tokio::test]
async fn test_portal_room_as_a_human_sees_it() {
    let bridge = Bridge::start().await;
    let human = Human::new(&unique("portal_human")).await;
    let ghost = bridge.ghost(10003).await;
    let room = bridge.portal(&human, &ghost).await;

    // Name, topic and the DM flag on the human's invite.
    assert_eq!(human.state(&room, "m.room.name", "").await["name"], "QQ: Alice");
    assert_eq!(human.state(&room, "m.room.topic", "").await["topic"], "bridged from QQ 10001");
    assert_eq!(human.state(&room, "m.room.join_rules", "").await["join_rule"], "invite");
    let messages = human.messages(&room).await;
    let invite = messages
        .iter()
        .find(|e| {
            e["type"] == "m.room.member"
                && e["state_key"] == human.user_id.as_str()
                && e["content"]["membership"] == "invite"
        })
        .unwrap_or_else(|| panic!("no invite of the human in {messages:#?}"));
    assert_eq!(invite["content"]["is_direct"], true, "{invite}");

    // A ghost message with a past timestamp, and its retry with the same txn id.
    let hour_ago = MilliSecondsSinceUnixEpoch::now().get() - UInt::from(3_600_000u32);
    let ts = MilliSecondsSinceUnixEpoch(hour_ago);
    let text = "héllo 🐧 <b>not html</b>\nline 2";
    let content = RoomMessageEventContent::text_plain(text);
    let send_txn = txn("qq-msg");
    let client = &bridge.client;
    let first =
        client.send_message(&room, Some(&ghost), &send_txn, &content, Some(ts)).await.unwrap();
    let again =
        client.send_message(&room, Some(&ghost), &send_txn, &content, Some(ts)).await.unwrap();
    assert_eq!(first, again, "a retried send made a second event");
    let seen = human.event(&room, first.as_str()).await;
    assert_eq!(seen["sender"], ghost.as_str());
    assert_eq!(seen["origin_server_ts"], u64::from(hour_ago), "{seen}");
    assert_eq!(seen["content"]["body"], text);
    assert_eq!(seen["content"]["msgtype"], "m.text");
    let copies =
        human.messages(&room).await.into_iter().filter(|e| e["content"]["body"] == text).count();
    assert_eq!(copies, 1);
    // Synapse keys send txn ids by appservice, not by ghost (MATRIX.md §3): another ghost
    // reusing the id gets the FIRST ghost's event back. Txn ids must be bridge-unique.
    let other = bridge.ghost(10004).await;
    client.invite(&room, &other, None).await.unwrap();
    client.join(&room, Some(&other)).await.unwrap();
    let clash = client.send_message(&room, Some(&other), &send_txn, &content, None).await.unwrap();
    assert_eq!(clash, first, "Synapse now keys send txn ids per user");

    // Custom state (m.bridge) by the bot.
    let info = BridgeInfoContent {
        bridgebot: bridge.bot(),
        protocol: serde_json::json!({"id": "qq", "displayname": "QQ"}),
    };
    let state_key = "qqbridge://qq/10003";
    let state_id = client.send_state(&room, None, state_key, &info, Some(ts)).await.unwrap();
    let state_event = human.event(&room, state_id.as_str()).await;
    assert_eq!(state_event["origin_server_ts"], u64::from(hour_ago), "{state_event}");
    assert_eq!(state_event["state_key"], state_key);
    let stored = human.state(&room, "m.bridge", state_key).await;
    assert_eq!(stored["bridgebot"], bridge.bot().as_str());
    assert_eq!(stored["protocol"]["id"], "qq");

    // Typing by the ghost reaches the room: our own appservice gets it back as ephemeral data.
    client.typing(&room, &ghost, Some(Duration::from_secs(10))).await.unwrap();
    eventually("the ghost's typing notification", WAIT, async || {
        bridge.handler.attempts().into_iter().flat_map(|a| a.ephemeral).find(|e| {
            e["type"] == "m.typing"
                && e["room_id"] == room.as_str()
                && e["content"]["user_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|id| id == ghost.as_str()))
        })
    })
    .await;
    client.typing(&room, &ghost, None).await.unwrap();

    client.leave(&room, Some(&other)).await.unwrap();
    let left = human.state(&room, "m.room.member", other.as_str()).await;
    assert_eq!(left["membership"], "leave");

    // Redaction by the ghost of its own message.
    let redaction = client
        .redact(&room, first.clone(), Some(&ghost), &txn("qq-redact"), Some("recalled".to_owned()))
        .await
        .unwrap();
    let redacted = human.event(&room, first.as_str()).await;
    assert_eq!(redacted["content"], serde_json::json!({}), "{redacted}");
    assert_eq!(redacted["unsigned"]["redacted_because"]["event_id"], redaction.as_str());
    // Leave nothing undelivered for the slot's next tenant.
    bridge.delivered(redaction.as_str()).await;
    bridge.stop().await;
}

#[tokio::test]
async fn test_media_round_trip_and_size_cap() {
    let bridge = Bridge::start().await;
    let ghost = bridge.ghost(10005).await;
    let bytes: Vec<u8> =
        (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mxc = bridge
        .client
        .upload(Some(&ghost), bytes.clone(), "application/octet-stream", None)
        .await
        .unwrap();
    let back = bridge.client.download(&mxc).await.unwrap();
    assert_eq!(back.bytes.len(), bytes.len());
    assert!(back.bytes == bytes, "downloaded bytes differ");
    assert_eq!(back.content_type.as_deref(), Some("application/octet-stream"));
    // Authenticated media answered: no fallback to the legacy endpoint.
    assert_eq!(bridge.requests("endpoint=\"download\""), 1.0);

    let mut small = ClientSettings::clone(bridge.client.settings());
    small.max_download_bytes = 10_000;
    let small = MatrixClient::new(small, Metrics::try_new().unwrap()).unwrap();
    let started = std::time::Instant::now();
    match small.download(&mxc).await {
        Err(Error::TooLarge { limit }) => assert_eq!(limit, 10_000),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "an over-cap download was retried");

    let missing = ruma::OwnedMxcUri::from(format!("mxc://{DOMAIN}/doesnotexist123"));
    let err = bridge.client.download(&missing).await.unwrap_err();
    assert_eq!((err.status(), err.errcode()), (Some(404), Some("M_NOT_FOUND")), "{err}");
    assert_eq!(bridge.requests("endpoint=\"download\""), 2.0, "missing media was retried");

    // A 0-byte file (QQ allows them) goes up and comes back.
    let empty = bridge.client.upload(Some(&ghost), Vec::new(), "text/plain", None).await.unwrap();
    assert!(bridge.client.download(&empty).await.unwrap().bytes.is_empty());
    bridge.stop().await;
}
