//! What the bridge asks of the bot's client: send text and images, redact, create DMs, tell
//! whether a room is encrypted, and decrypt an `m.room.encrypted` event that came in through an
//! appservice transaction. Each works in encrypted and plain rooms (matrix-sdk encrypts as needed).

use std::time::Duration;

use matrix_sdk::attachment::{AttachmentConfig, AttachmentInfo, BaseImageInfo};
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::{Room, RoomState};
use ruma::api::client::room::create_room;
use ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::serde::Raw;
use ruma::{EventId, OwnedEventId, OwnedRoomId, RoomId, UInt, UserId};

use super::{BotClient, BotError};

/// Waits between attempts to find a room the sync has not brought yet, or to decrypt an event
/// whose room key has not arrived (to-device keys often come a moment after the event): about
/// 7 s in all.
const WAITS: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(2),
];

/// Attempts to join a room the bot was invited to: the homeserver may not be ready for the join
/// right after the invite (a race matrix-sdk's own examples retry).
const JOIN_WAITS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Joins `room`, retrying a few times; whether the bot is joined at the end.
pub(super) async fn join_with_retries(room: &Room) -> bool {
    let mut waits = JOIN_WAITS.iter();
    loop {
        match room.join().await {
            Ok(()) => return true,
            Err(e) => {
                let error = BotError::sdk("join", &e);
                let Some(wait) = waits.next() else {
                    tracing::warn!(room = %room.room_id(), %error, "bot could not join");
                    return false;
                };
                tracing::debug!(room = %room.room_id(), %error, "bot join failed; retrying");
                tokio::time::sleep(*wait).await;
            }
        }
    }
}

impl BotClient {
    /// The joined room `room_id` as the bot's client knows it, waiting briefly for the sync to
    /// bring a room the bot just joined.
    async fn room(&self, room_id: &RoomId) -> Result<Room, BotError> {
        let mut waits = WAITS.iter();
        loop {
            if self.is_stopped() {
                return Err(BotError::Stopped);
            }
            // An invited or left room is known too, but the bot cannot act in it.
            if let Some(room) = self.client.get_room(room_id)
                && room.state() == RoomState::Joined
            {
                return Ok(room);
            }
            match waits.next() {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => return Err(BotError::UnknownRoom(room_id.to_owned())),
            }
        }
    }

    /// Sends a text message (`m.notice` when `notice`) with an optional HTML body to `room_id`,
    /// encrypted when the room is; returns its event id. Network IO.
    pub async fn send_text(
        &self,
        room_id: &RoomId,
        body: &str,
        html: Option<&str>,
        notice: bool,
    ) -> Result<OwnedEventId, BotError> {
        let room = self.room(room_id).await?;
        let content = match (html, notice) {
            (Some(html), false) => RoomMessageEventContent::text_html(body, html),
            (Some(html), true) => RoomMessageEventContent::notice_html(body, html),
            (None, false) => RoomMessageEventContent::text_plain(body),
            (None, true) => RoomMessageEventContent::notice_plain(body),
        };
        let sent = room.send(content).await.map_err(|e| BotError::sdk("send message", &e))?;
        Ok(sent.response.event_id)
    }

    /// Uploads `bytes` (of type `mimetype`) and sends them as an `m.image` (with
    /// `info.mimetype`, `size` and, when known, `w` and `h`) to `room_id`; in an encrypted room
    /// the file is encrypted too (`file` instead of `url`). Returns the event id. Network IO.
    pub async fn send_image(
        &self,
        room_id: &RoomId,
        bytes: &[u8],
        filename: &str,
        mimetype: &str,
        size: Option<(u32, u32)>,
    ) -> Result<OwnedEventId, BotError> {
        let room = self.room(room_id).await?;
        let mime: mime::Mime = mimetype
            .parse()
            .map_err(|_| BotError::Settings(format!("{mimetype:?} is not a media type")))?;
        let info = BaseImageInfo {
            width: size.map(|(w, _)| UInt::from(w)),
            height: size.map(|(_, h)| UInt::from(h)),
            size: UInt::try_from(bytes.len()).ok(),
            ..BaseImageInfo::default()
        };
        let config = AttachmentConfig::new().info(AttachmentInfo::Image(info));
        let response = room
            .send_attachment(filename, &mime, bytes.to_vec(), config)
            .await
            .map_err(|e| BotError::sdk("send image", &e))?;
        Ok(response.event_id)
    }

    /// Redacts `event_id` in `room_id` with an optional reason. Network IO.
    pub async fn redact(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        reason: Option<&str>,
    ) -> Result<(), BotError> {
        let room = self.room(room_id).await?;
        room.redact(event_id, reason, None).await.map_err(|e| BotError::http("redact", &e))?;
        Ok(())
    }

    /// Whether `room_id` is encrypted (asks the homeserver when the sync has not said). Network
    /// IO at most once per room.
    pub async fn is_encrypted(&self, room_id: &RoomId) -> Result<bool, BotError> {
        let room = self.room(room_id).await?;
        let state = room
            .latest_encryption_state()
            .await
            .map_err(|e| BotError::sdk("read encryption state", &e))?;
        Ok(state.is_encrypted())
    }

    /// Creates a direct chat with `user` (invited, `is_direct`, recorded in the bot's `m.direct`),
    /// encrypted from the start when `encrypted`; returns its room id. Network IO.
    pub async fn create_dm(&self, user: &UserId, encrypted: bool) -> Result<OwnedRoomId, BotError> {
        let room = if encrypted {
            self.client.create_dm(user).await
        } else {
            let mut request = create_room::v3::Request::new();
            request.invite = vec![user.to_owned()];
            request.is_direct = true;
            request.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
            self.client.create_room(request).await
        };
        let room = room.map_err(|e| BotError::sdk("create DM", &e))?;
        Ok(room.room_id().to_owned())
    }

    /// Decrypts `event`, an `m.room.encrypted` event of `room_id` as an appservice transaction
    /// carried it, into the decrypted event JSON (`type`, `content`, `sender`, `event_id`, …).
    /// Waits up to about 7 s for a room key that has not arrived yet. Network IO (key requests).
    pub async fn decrypt(
        &self,
        room_id: &RoomId,
        event: &serde_json::Value,
    ) -> Result<serde_json::Value, BotError> {
        if event.get("type").and_then(|t| t.as_str()) != Some("m.room.encrypted") {
            let kind = event.get("type").and_then(|t| t.as_str()).unwrap_or("(no type)");
            return Err(BotError::NotEncrypted(kind.to_owned()));
        }
        let event_id: OwnedEventId = event
            .get("event_id")
            .and_then(|id| id.as_str())
            .and_then(|id| id.try_into().ok())
            .ok_or_else(|| BotError::NotEncrypted("event without a valid event_id".to_owned()))?;
        let json = serde_json::value::to_raw_value(event)
            .map_err(|e| BotError::NotEncrypted(e.to_string()))?;
        let raw: Raw<OriginalSyncRoomEncryptedEvent> = Raw::from_json(json);
        let room = self.room(room_id).await?;
        let mut waits = WAITS.iter();
        loop {
            let decrypted =
                room.decrypt_event(&raw, None).await.map_err(|e| BotError::sdk("decrypt", &e))?;
            let reason = match &decrypted.kind {
                TimelineEventKind::UnableToDecrypt { utd_info, .. } => {
                    format!("{:?}", utd_info.reason)
                }
                _ => {
                    return serde_json::from_str(decrypted.raw().json().get())
                        .map_err(|e| BotError::NotEncrypted(e.to_string()));
                }
            };
            if self.is_stopped() {
                return Err(BotError::Stopped);
            }
            let Some(wait) = waits.next() else {
                let room_id = room_id.to_owned();
                return Err(BotError::Undecryptable { room_id, event_id, reason });
            };
            tracing::debug!(room = %room_id, event = %event_id, %reason, "bot cannot decrypt yet; waiting for the room key");
            tokio::time::sleep(*wait).await;
        }
    }
}
