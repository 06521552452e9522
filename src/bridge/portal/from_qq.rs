//! QQ → Matrix: one resolved QQ message or typing notice into its portal, pictures fetched through
//! the account and uploaded to the media repository, sent with idempotent transaction ids.

use ruma::events::room::message::RoomMessageEventContent;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, RoomId, UInt, UserId};

use crate::account::account_actor::{FetchPicture, PictureRequest};
use crate::account::manager::FetchPictureVia;
use crate::account::resolve::QqMessage;
use crate::account::send_queue::ChatKey;
use crate::bridge::convert::to_matrix::{MatrixPart, PictureRef, ToMatrixOptions, qq_to_matrix};
use crate::bridge::ids;
use crate::store::{Direction, MessageRow};
use crate::webqq::QqNumber;
use crate::webqq::content::normalize_for_echo;
use crate::webqq::session::unix_now;

use super::double_puppet::send_as_owner;
use super::{Bridge, BridgeError, QqOutcome, TYPING_TIMEOUT, image_type};

/// How many of a room's latest events [`Bridge::sent_before`] looks through.
const RECHECK_DEPTH: u32 = 50;

impl Bridge {
    /// Bridges one QQ message of `account` to its portal, writing its message-map rows.
    /// `recheck`: an earlier attempt may have reached the homeserver (a retry, or a replay
    /// after a restart), so each part is first looked for in the room ([`Bridge::sent_before`]).
    pub async fn qq_message(
        &self,
        account: &str,
        msg: &QqMessage,
        recheck: bool,
    ) -> Result<QqOutcome, BridgeError> {
        let (outcome, rows) = self.qq_message_unsettled(account, msg, false, recheck).await?;
        for row in &rows {
            self.store.insert_message(row)?;
        }
        Ok(outcome)
    }

    /// Bridges one QQ message of `account` to its portal and returns its message-map rows for
    /// the caller to write (the bridge actor writes them behind, in batches). From the return
    /// on, this process counts the message as bridged: a redelivery is a duplicate even before
    /// the rows are stored. `unmapped`: the caller found the message absent from the store's
    /// map (in the batch's intake read), so that read is not repeated here. If a later part of
    /// a message fails, the rows of the parts already sent are written before the error
    /// returns; a retry sends them again under the same transaction ids (the homeserver
    /// answers with the first events). `recheck` as in [`Bridge::qq_message`].
    pub async fn qq_message_unsettled(
        &self,
        account: &str,
        msg: &QqMessage,
        unmapped: bool,
        recheck: bool,
    ) -> Result<(QqOutcome, Vec<MessageRow>), BridgeError> {
        let owner = self.owner(account)?;
        let key = ids::portal_key(account, &msg.chat);
        if self.caches.bridged(&key, &msg.key)
            || (!unmapped && self.store.is_message_mapped(&key, &msg.key)?)
        {
            return Ok((QqOutcome::Duplicate, Vec::new()));
        }
        let parts = qq_to_matrix(&msg.content, &ToMatrixOptions::default());
        if msg.from_self && self.take_echo(&key, &normalize_for_echo(&msg.content)) {
            return Ok((QqOutcome::Duplicate, Vec::new()));
        }
        let room =
            self.portal_room(account, &owner, &key, &msg.chat, msg.chat_name.as_deref()).await?;
        // Not an echo, so the owner wrote it on another QQ client: it appears as the owner's
        // real Matrix user when their server has a double-puppet secret, else as the owner's
        // ghost (MATRIX.md §6.4).
        let mut puppet = if msg.from_self { self.puppet_of(&owner) } else { None };
        let mut sender = match (msg.sender, puppet) {
            (Some(qq), None) => {
                Some(self.ghost_in_room(account, qq, &msg.sender_name, &room).await?)
            }
            _ => None,
        };
        let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(msg.time.saturating_mul(1000)));
        let source = format!("{key}/{}", msg.key);
        let mut rows = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let speaker =
                (sender.is_none() && puppet.is_none()).then_some(msg.sender_name.as_str());
            let content = match part {
                MatrixPart::Image { qq_ref } => {
                    self.picture(account, msg, qq_ref, sender.as_deref()).await
                }
                MatrixPart::Text { .. } => matrix_content(part, speaker),
            };
            let txn = ids::txn_id(&key, &msg.key, index);
            if recheck {
                let earlier = match self.sent_before(&room, sender.as_deref(), ts, &content).await {
                    Ok(earlier) => earlier,
                    Err(error) => return Err(self.rows_then(&rows, error)),
                };
                if let Some(event_id) = earlier {
                    tracing::info!(%room, %event_id, "QQ message found in the room from an earlier attempt; not sent again");
                    rows.push(part_row(&key, msg, index, &room, event_id));
                    continue;
                }
            }
            if let Some(client) = puppet {
                match send_as_owner(client, &room, &owner, &txn, &content, ts, &source).await {
                    Ok(event_id) => {
                        rows.push(part_row(&key, msg, index, &room, event_id));
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, %owner, "double puppeting failed; the owner's ghost sends instead");
                        puppet = None;
                        if let Some(qq) = msg.sender {
                            match self.ghost_in_room(account, qq, &msg.sender_name, &room).await {
                                Ok(ghost) => sender = Some(ghost),
                                Err(error) => return Err(self.rows_then(&rows, error)),
                            }
                        }
                    }
                }
            }
            let sent =
                self.matrix.send_message(&room, sender.as_deref(), &txn, &content, Some(ts)).await;
            match sent {
                Ok(event_id) => rows.push(part_row(&key, msg, index, &room, event_id)),
                Err(error) => return Err(self.rows_then(&rows, error.into())),
            }
        }
        self.caches.set_bridged(&key, &msg.key);
        self.join_pending(&room).await;
        Ok((QqOutcome::Bridged, rows))
    }

    /// Writes `rows` (the parts of a message already sent) and hands back `error`: a retry
    /// then sends those parts again under the same transaction ids, and the homeserver answers
    /// with the first events. A store failure here wins, as it must stop the batch too.
    fn rows_then(&self, rows: &[MessageRow], error: BridgeError) -> BridgeError {
        for row in rows {
            if let Err(store) = self.store.insert_message(row) {
                return store.into();
            }
        }
        error
    }

    /// The event an earlier attempt already put in `room` for `content`, if any. The txnId makes
    /// a retry idempotent only while the homeserver remembers it, and Synapse keeps transaction
    /// ids of appservice users in memory: an attempt whose answer was lost (the homeserver went
    /// down) and a retry after its restart would post the message twice (RELIABILITY.md §1.2
    /// step 4; seen in the chaos run). Matched among the latest [`RECHECK_DEPTH`] events on the
    /// sender, the `origin_server_ts` we set (the QQ time) and the body, skipping events the
    /// message map already gives to another QQ message.
    async fn sent_before(
        &self,
        room: &RoomId,
        sender: Option<&UserId>,
        ts: MilliSecondsSinceUnixEpoch,
        content: &RoomMessageEventContent,
    ) -> Result<Option<OwnedEventId>, BridgeError> {
        let sender = sender.unwrap_or(&self.settings.bot);
        let events = self.matrix.recent_events(room, Some(sender), RECHECK_DEPTH).await?;
        let body = serde_json::to_value(content).ok().and_then(|c| c.get("body").cloned());
        for event in events {
            let Ok(event) = event.deserialize_as::<serde_json::Value>() else { continue };
            if !is_same_message(&event, sender, ts, body.as_ref()) {
                continue;
            }
            let Some(id) = event.get("event_id").and_then(|i| i.as_str()) else { continue };
            let Ok(event_id) = OwnedEventId::try_from(id) else { continue };
            if self.store.message_by_event(room, &event_id)?.is_none() {
                return Ok(Some(event_id));
            }
        }
        Ok(None)
    }

    /// A QQ picture as an `m.image` (fetched through the account, uploaded as the ghost), or a
    /// notice saying why it could not be (too big, gone, not an image): never dropped silently.
    pub(super) async fn picture(
        &self,
        account: &str,
        msg: &QqMessage,
        picture: &PictureRef,
        ghost: Option<&UserId>,
    ) -> RoomMessageEventContent {
        let request = match picture.clone() {
            PictureRef::Group { name, file_id, server, .. } => {
                PictureRequest::Group { name, file_id, server }
            }
            PictureRef::CustomFace { name } => PictureRequest::CustomFace { name },
            PictureRef::Offline { file_path } => PictureRequest::Offline { file_path },
        };
        let fetch = FetchPictureVia {
            account: account.to_owned(),
            fetch: FetchPicture { origin: msg.origin, picture: request },
        };
        let bytes = match self.accounts.send(fetch).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(reason)) => return picture_notice(&reason),
            Err(_) => return picture_notice("the account stopped"),
        };
        if bytes.len() > self.settings.max_image_bytes {
            return picture_notice(&format!(
                "it is larger than {} bytes",
                self.settings.max_image_bytes
            ));
        }
        let Some((mimetype, extension)) = image_type(&bytes) else {
            return picture_notice("QQ sent something that is not an image");
        };
        let size = bytes.len();
        let filename = format!("qq-picture.{extension}");
        match self.matrix.upload(ghost, bytes, mimetype, Some(filename.clone())).await {
            Ok(mxc) => {
                let mut info = ruma::events::room::ImageInfo::new();
                info.mimetype = Some(mimetype.to_owned());
                info.size = UInt::new(u64::try_from(size).unwrap_or(u64::MAX));
                let image =
                    ruma::events::room::message::ImageMessageEventContent::plain(filename, mxc)
                        .info(Some(Box::new(info)));
                RoomMessageEventContent::new(ruma::events::room::message::MessageType::Image(image))
            }
            Err(error) => picture_notice(&format!("the upload failed: {error}")),
        }
    }

    /// Shows QQ's typing notice of friend `from` as the ghost typing in the friend's portal, if
    /// that portal exists (typing never creates one).
    pub async fn qq_typing(&self, account: &str, from: QqNumber) -> Result<(), BridgeError> {
        let key = ids::portal_key(account, &ChatKey::Friend(from));
        let Some(portal) = self.known_portal(&key)? else { return Ok(()) };
        if !self.ghost_is_in(from, &portal.room)? {
            return Ok(());
        }
        let ghost = self.ghost_id(from)?;
        self.matrix.typing(&portal.room, &ghost, Some(TYPING_TIMEOUT)).await?;
        Ok(())
    }
}

/// The notice that stands in for a QQ picture that could not be bridged.
/// Whether `event` (a room event as JSON) is a message by `sender` at `ts` with `body`.
fn is_same_message(
    event: &serde_json::Value,
    sender: &UserId,
    ts: MilliSecondsSinceUnixEpoch,
    body: Option<&serde_json::Value>,
) -> bool {
    event.get("type").and_then(|t| t.as_str()) == Some("m.room.message")
        && event.get("sender").and_then(|s| s.as_str()) == Some(sender.as_str())
        && event.get("origin_server_ts").and_then(serde_json::Value::as_u64)
            == Some(u64::from(ts.0))
        && body.is_some()
        && event.pointer("/content/body") == body
}

fn picture_notice(reason: &str) -> RoomMessageEventContent {
    RoomMessageEventContent::notice_plain(format!(
        "[a picture from QQ could not be bridged: {reason}]"
    ))
}

/// The Matrix content of one converted part; `speaker` prefixes a message the bot sends for a
/// member whose number is unknown.
fn matrix_content(part: &MatrixPart, speaker: Option<&str>) -> RoomMessageEventContent {
    match (part, speaker) {
        (MatrixPart::Text { body, .. }, Some(name)) => {
            RoomMessageEventContent::text_plain(format!("{name}: {body}"))
        }
        (MatrixPart::Text { body, formatted_html: Some(html) }, None) => {
            RoomMessageEventContent::text_html(body.clone(), html.clone())
        }
        (MatrixPart::Text { body, formatted_html: None }, None) => {
            RoomMessageEventContent::text_plain(body.clone())
        }
        (MatrixPart::Image { .. }, _) => picture_notice("it was not fetched"),
    }
}

/// The message-map row of part `index` of `msg`, bridged to `event_id`.
fn part_row(
    key: &str,
    msg: &QqMessage,
    index: usize,
    room: &RoomId,
    event_id: OwnedEventId,
) -> MessageRow {
    let remote_key = if index == 0 { msg.key.clone() } else { format!("{}#{index}", msg.key) };
    MessageRow {
        portal_key: key.to_owned(),
        remote_key,
        room_id: room.to_owned(),
        event_id,
        direction: Direction::QqToMatrix,
        sender: msg.sender.map(|qq| qq.to_string()).unwrap_or_default(),
        created_at: unix_now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_is_same_message_finds_the_earlier_attempt_only() {
        let ghost = UserId::parse("@qq_30001:localhost").unwrap();
        let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(1_700_000_000_000));
        let body = json!("chaos q9-4");
        let sent = json!({"type": "m.room.message", "sender": "@qq_30001:localhost",
            "origin_server_ts": 1_700_000_000_000_u64, "event_id": "$a",
            "content": {"msgtype": "m.text", "body": "chaos q9-4"}});
        // (change to the event the earlier attempt left, still the same message)
        let cases = [
            (json!({}), true),
            (json!({"sender": "@qq_30002:localhost"}), false),
            (json!({"origin_server_ts": 1_700_000_001_000_u64}), false),
            (json!({"content": {"msgtype": "m.text", "body": "chaos q9-5"}}), false),
            (json!({"type": "m.reaction"}), false),
            (json!({"content": {}}), false),
        ];
        for (change, want) in cases {
            let mut event = sent.clone();
            for (key, value) in change.as_object().unwrap() {
                event[key] = value.clone();
            }
            assert_eq!(is_same_message(&event, &ghost, ts, Some(&body)), want, "{event}");
        }
        assert!(!is_same_message(&sent, &ghost, ts, None), "a part without a body never matches");
    }
}
