//! The bot's own encryption device (`qqbridge::matrix::bot`) against the real Synapse: a human
//! with a matrix-sdk client (in-memory crypto store) opens an encrypted DM with the bot, the bot
//! reads and answers there, and its device survives a restart.
//!
//! Synapse refuses `/sync` for an appservice's `sender_localpart` user (500, matrix-doc#1144), so
//! the device belongs to another user of the slot's exclusive namespace (`qqt<i>_10`); the last
//! test proves the sender is refused with a clear error.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::{Client, Room};
use qqbridge::matrix::Token;
use qqbridge::matrix::bot::{BotClient, BotEvent, BotMessage, BotSettings, DEVICE_FILE};
use ruma::events::room::member::MembershipState;
use ruma::events::room::message::{MessageType, RoomMessageEventContent};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Bridge, WAIT, enc, unique};
use crate::synapse::{DOMAIN, PASSWORD, SynapseSlot, call, register_user, synapse};

/// A 2×1 PNG (red, blue), enough for the homeserver and clients to accept as an image.
pub fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 2, 1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[255, 0, 0, 0, 0, 255]).unwrap();
    writer.finish().unwrap();
    out
}

/// The user that owns the bot's device: in the appservice's namespace, not its sender.
fn device_user(slot: &SynapseSlot) -> OwnedUserId {
    UserId::parse(format!("@{}:{DOMAIN}", slot.ghost_localpart(10))).unwrap()
}

fn bot_settings(slot: &SynapseSlot, dir: &std::path::Path) -> BotSettings {
    settings_for(slot, dir, device_user(slot))
}

fn settings_for(slot: &SynapseSlot, dir: &std::path::Path, user: OwnedUserId) -> BotSettings {
    let mut settings = BotSettings::new(
        synapse().base_url.parse().unwrap(),
        user,
        Token::new(slot.as_token()),
        dir.to_owned(),
    );
    // The bridge decides; here: any invite from a user of our server.
    settings.on_invite =
        Some(Arc::new(|_room: &RoomId, inviter: &UserId| inviter.server_name().as_str() == DOMAIN));
    settings
}

/// Registers the device's user (and the sender, as start-up does) through the appservice API;
/// fine when they exist already.
async fn register_bot(slot: &SynapseSlot) {
    register_as(slot, &slot.config.appservice.bot_localpart).await;
    register_as(slot, &slot.ghost_localpart(10)).await;
}

async fn register_as(slot: &SynapseSlot, localpart: &str) {
    let body = serde_json::json!({
        "type": "m.login.application_service",
        "username": localpart,
        "inhibit_login": true,
    });
    let (status, body) =
        call("POST", "/_matrix/client/v3/register", Some(slot.as_token()), Some(body)).await;
    assert!(status == 200 || body["errcode"] == "M_USER_IN_USE", "{status} {body}");
}

async fn start_bot(settings: BotSettings) -> (BotClient, mpsc::Receiver<BotEvent>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("QQBRIDGE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    BotClient::start(settings, std::future::pending()).await.unwrap()
}

/// The next event the predicate accepts, within [`WAIT`].
async fn next_event(
    events: &mut mpsc::Receiver<BotEvent>,
    mut accept: impl FnMut(&BotEvent) -> bool,
) -> BotEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("bot event stream ended");
            if accept(&event) {
                return event;
            }
        }
    })
    .await
    .expect("no matching bot event in time")
}

async fn next_message(events: &mut mpsc::Receiver<BotEvent>, body: &str) -> BotMessage {
    match next_event(events, |e| matches!(e, BotEvent::Message(m) if m.body == body)).await {
        BotEvent::Message(message) => message,
        other => panic!("not a message: {other:?}"),
    }
}

/// A human with a matrix-sdk client that syncs in the background.
pub struct E2eeHuman {
    pub client: Client,
    pub user_id: OwnedUserId,
    /// A token of another device of the same user (plain HTTP calls).
    pub token: String,
    sync: tokio::task::JoinHandle<()>,
}

impl E2eeHuman {
    pub async fn new(name: &str) -> E2eeHuman {
        let localpart = unique(name);
        let (user_id, token) = register_user(&localpart).await;
        let client = Client::builder().homeserver_url(&synapse().base_url).build().await.unwrap();
        client.matrix_auth().login_username(&localpart, PASSWORD).send().await.unwrap();
        client.sync_once(SyncSettings::new()).await.unwrap();
        let syncing = client.clone();
        let sync = tokio::spawn(async move {
            let _ = syncing.sync(SyncSettings::new().timeout(Duration::from_secs(5))).await;
        });
        E2eeHuman { client, user_id: user_id.try_into().unwrap(), token, sync }
    }

    /// The room as this human's client knows it, once `other` has joined.
    pub async fn joined_room(&self, room_id: &RoomId, other: &UserId) -> Room {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(room) = self.client.get_room(room_id)
                    && let Ok(Some(member)) = room.get_member_no_sync(other).await
                    && *member.membership() == MembershipState::Join
                {
                    return room;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the bot never joined in the human's view")
    }

    pub async fn send(&self, room: &Room, body: &str) -> OwnedEventId {
        room.send(RoomMessageEventContent::text_plain(body)).await.unwrap().response.event_id
    }

    /// The event as the homeserver stores it (what travels on the wire).
    pub async fn wire_event(&self, room_id: &RoomId, event_id: &str) -> Value {
        let path =
            format!("/_matrix/client/v3/rooms/{}/event/{}", enc(room_id.as_str()), enc(event_id));
        let (status, body) = call("GET", &path, Some(&self.token), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The newest decrypted `m.room.message` of `room` (among the last 50 events) whose JSON
    /// `accept` takes, waiting up to [`WAIT`] for it; `what` names it in the failure.
    pub async fn wait_decrypted(
        &self,
        room: &Room,
        what: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let mut options = MessagesOptions::backward();
                options.limit = 50u32.into();
                let page = room.messages(options).await.unwrap();
                for event in page.chunk {
                    if event.encryption_info().is_none() {
                        continue;
                    }
                    let json: Value = serde_json::from_str(event.raw().json().get()).unwrap();
                    if json["type"] == "m.room.message" && accept(&json) {
                        return json;
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("{} never got a decrypted {what}", room.room_id()))
    }

    /// The bytes of an `m.image` `content` sent as an encrypted file (`file`, never `url`),
    /// downloaded and decrypted.
    pub async fn encrypted_image(&self, content: &Value) -> Vec<u8> {
        assert!(content.get("url").is_none() && content["file"]["url"].is_string(), "{content}");
        let MessageType::Image(image) =
            serde_json::from_value::<RoomMessageEventContent>(content.clone()).unwrap().msgtype
        else {
            panic!("not an image: {content}")
        };
        self.client.media().get_file(&image, false).await.unwrap().unwrap()
    }

    /// The event decrypted by this human's client, waiting for the room key to arrive.
    async fn decrypted(&self, room: &Room, event_id: &OwnedEventId) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = room.event(event_id, None).await.unwrap();
                if !matches!(event.kind, TimelineEventKind::UnableToDecrypt { .. }) {
                    assert!(event.encryption_info().is_some(), "not decrypted: {event:?}");
                    return serde_json::from_str(event.raw().json().get()).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await
        .expect("the human could not decrypt the bot's event")
    }
}

impl Drop for E2eeHuman {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

/// Creates the encrypted DM as the human (Element's default) and waits for the bot to join.
async fn encrypted_dm(
    human: &E2eeHuman,
    bot: &UserId,
    events: &mut mpsc::Receiver<BotEvent>,
) -> (OwnedRoomId, Room) {
    let room = human.client.create_dm(bot).await.unwrap();
    let room_id = room.room_id().to_owned();
    let invite =
        next_event(events, |e| matches!(e, BotEvent::Invite { room_id: r, .. } if *r == room_id))
            .await;
    let BotEvent::Invite { inviter, joined, .. } = invite else { panic!("not an invite") };
    assert_eq!((inviter, joined), (human.user_id.clone(), true));
    (room_id.clone(), human.joined_room(&room_id, bot).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bot_reads_and_answers_in_an_encrypted_dm_and_keeps_its_device() {
    // Our appservice serves the slot, so Synapse's transactions for the device's user (it is in
    // the namespace) are delivered and the slot is left clean for its next tenant.
    let bridge = Bridge::start().await;
    let slot = &bridge.slot;
    register_bot(slot).await;
    let bot_user = device_user(slot);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("bot-device");
    let (bot, mut events) = start_bot(bot_settings(slot, &data_dir)).await;
    let device_id = bot.device_id().to_owned();
    let device_file = data_dir.join(DEVICE_FILE);
    assert_eq!(std::fs::metadata(&device_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777, 0o700);

    let human = E2eeHuman::new("e2ee_alice").await;
    let (room_id, room) = encrypted_dm(&human, &bot_user, &mut events).await;
    assert!(bot.is_encrypted(&room_id).await.unwrap());

    // The human's "ping" reaches the bot decrypted, and is encrypted on the wire.
    let ping = human.send(&room, "ping").await;
    let message = next_message(&mut events, "ping").await;
    assert_eq!(
        (&message.room_id, &message.sender, &message.event_id),
        (&room_id, &human.user_id, &ping)
    );
    assert!(message.encrypted);
    assert_eq!(message.msgtype, "m.text");
    let wire = human.wire_event(&room_id, ping.as_str()).await;
    assert_eq!(wire["type"], "m.room.encrypted", "{wire}");
    // The same event as an appservice transaction would carry it decrypts through the bot.
    let decrypted = bot.decrypt(&room_id, &wire).await.unwrap();
    assert_eq!(decrypted["content"]["body"], "ping", "{decrypted}");
    assert_eq!(decrypted["type"], "m.room.message");
    let err = bot.decrypt(&room_id, &serde_json::json!({"type": "m.room.message"})).await;
    assert!(err.unwrap_err().to_string().starts_with("not an encrypted room event"));

    // The bot answers with a notice and an image; the human decrypts both.
    let pong = bot.send_text(&room_id, "pong", Some("<b>pong</b>"), true).await.unwrap();
    let png = tiny_png();
    let image = bot.send_image(&room_id, &png, "qr.png", "image/png", Some((2, 1))).await.unwrap();
    for event_id in [&pong, &image] {
        let wire = human.wire_event(&room_id, event_id.as_str()).await;
        assert_eq!(wire["type"], "m.room.encrypted", "{wire}");
    }
    let pong_event = human.decrypted(&room, &pong).await;
    assert_eq!(pong_event["content"]["msgtype"], "m.notice", "{pong_event}");
    assert_eq!(pong_event["content"]["body"], "pong");
    assert_eq!(pong_event["content"]["formatted_body"], "<b>pong</b>");
    let image_event = human.decrypted(&room, &image).await;
    let content = &image_event["content"];
    assert_eq!(content["msgtype"], "m.image", "{image_event}");
    assert_eq!(content["body"], "qr.png");
    assert_eq!((content["info"]["w"].as_u64(), content["info"]["h"].as_u64()), (Some(2), Some(1)));
    assert_eq!(content["info"]["mimetype"], "image/png");
    assert_eq!(content["info"]["size"].as_u64(), Some(png.len() as u64));
    let bytes = human.encrypted_image(content).await;
    assert_eq!(bytes, png, "the decrypted upload differs");

    // The bot's own messages never come back as events; redaction works in the encrypted room.
    bot.redact(&room_id, &pong, Some("test")).await.unwrap();

    // Restart: same device, the stored keys still decrypt the human's next message.
    bot.stop().await;
    drop(bot);
    drop(events);
    let (bot, mut events) = start_bot(bot_settings(slot, &data_dir)).await;
    assert_eq!(bot.device_id(), &*device_id);
    let ping2 = human.send(&room, "ping again").await;
    let message = next_message(&mut events, "ping again").await;
    assert!(message.encrypted);
    assert_eq!(message.event_id, ping2);
    let answer = bot.send_text(&room_id, "pong again", None, false).await.unwrap();
    let answer = human.decrypted(&room, &answer).await;
    assert_eq!(answer["content"]["body"], "pong again");
    assert_eq!(answer["content"]["msgtype"], "m.text");
    assert!(
        !matches!(
            events.try_recv(),
            Ok(BotEvent::Message(m)) if m.sender == bot_user
        ),
        "the bot's own message was reported"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bot_plain_dm_and_refused_invites() {
    // Our appservice serves the slot, so Synapse's transactions for the device's user (it is in
    // the namespace) are delivered and the slot is left clean for its next tenant.
    let bridge = Bridge::start().await;
    let slot = &bridge.slot;
    register_bot(slot).await;
    let bot_user = device_user(slot);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = bot_settings(slot, dir.path());
    settings.on_invite = None;
    let (bot, mut events) = start_bot(settings).await;
    let human = E2eeHuman::new("e2ee_bob").await;

    // The bot opens an unencrypted DM with the human and talks there.
    let room_id = bot.create_dm(&human.user_id, false).await.unwrap();
    assert!(!bot.is_encrypted(&room_id).await.unwrap());
    let path = format!("/_matrix/client/v3/join/{}", enc(room_id.as_str()));
    let (status, body) = call("POST", &path, Some(&human.token), Some(serde_json::json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let hello = bot.send_text(&room_id, "hello", None, false).await.unwrap();
    let wire = human.wire_event(&room_id, hello.as_str()).await;
    assert_eq!(
        (wire["type"].as_str(), wire["content"]["body"].as_str()),
        (Some("m.room.message"), Some("hello"))
    );
    let room = human.joined_room(&room_id, &bot_user).await;
    human.send(&room, "plain ping").await;
    let message = next_message(&mut events, "plain ping").await;
    assert!(!message.encrypted);
    assert_eq!(message.content["body"], "plain ping");

    // Without an invite filter the bot reports invites but stays out.
    let invited = human.client.create_dm(&bot_user).await.unwrap();
    let invited_id = invited.room_id().to_owned();
    let event = next_event(
        &mut events,
        |e| matches!(e, BotEvent::Invite { room_id, .. } if *room_id == invited_id),
    )
    .await;
    assert!(matches!(event, BotEvent::Invite { joined: false, .. }), "{event:?}");
    assert!(
        matches!(bot.send_text(&invited_id, "x", None, false).await, Err(e) if e.to_string().contains("not in room"))
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bot_logs_in_again_when_its_token_is_revoked() {
    // Our appservice serves the slot, so Synapse's transactions for the device's user (it is in
    // the namespace) are delivered and the slot is left clean for its next tenant.
    let bridge = Bridge::start().await;
    let slot = &bridge.slot;
    register_bot(slot).await;
    let dir = tempfile::tempdir().unwrap();
    let (bot, _events) = start_bot(bot_settings(slot, dir.path())).await;
    let first = bot.device_id().to_owned();
    bot.stop().await;
    drop(bot);

    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(DEVICE_FILE)).unwrap())
            .unwrap();
    let token = stored["access_token"].as_str().unwrap();
    let (status, body) =
        call("POST", "/_matrix/client/v3/logout", Some(token), Some(serde_json::json!({}))).await;
    assert_eq!(status, 200, "{body}");

    let (bot, _events) = start_bot(bot_settings(slot, dir.path())).await;
    assert_ne!(bot.device_id(), &*first, "the revoked device was reused");
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(DEVICE_FILE)).unwrap())
            .unwrap();
    assert_eq!(stored["device_id"], bot.device_id().as_str());
    bot.stop().await;

    // The appservice's sender gets a device but no /sync from Synapse: a clear error at start.
    register_as(slot, &slot.config.appservice.sender_localpart).await;
    let sender =
        UserId::parse(format!("@{}:{DOMAIN}", slot.config.appservice.sender_localpart)).unwrap();
    let sender_dir = dir.path().join("sender");
    let err = BotClient::start(settings_for(slot, &sender_dir, sender), std::future::pending())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Synapse refuses /sync for an appservice's sender_localpart"),
        "{err}"
    );

    // A corrupt device file stops the start with a clear error naming it.
    std::fs::write(dir.path().join(DEVICE_FILE), "{").unwrap();
    let err =
        BotClient::start(bot_settings(slot, dir.path()), std::future::pending()).await.unwrap_err();
    assert!(err.to_string().contains("device.json is unreadable"), "{err}");
}
