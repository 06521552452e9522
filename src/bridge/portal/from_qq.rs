//! QQ → Matrix: one resolved QQ message or typing notice into its portal, pictures fetched through
//! the account and uploaded to the media repository, sent with idempotent transaction ids.

use ruma::events::room::message::RoomMessageEventContent;
use ruma::{MilliSecondsSinceUnixEpoch, UInt, UserId};

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

impl Bridge {
    /// Bridges one QQ message of `account` to its portal, writing its message-map rows.
    pub async fn qq_message(
        &self,
        account: &str,
        msg: &QqMessage,
    ) -> Result<QqOutcome, BridgeError> {
        let (outcome, rows) = self.qq_message_unsettled(account, msg, false).await?;
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
    /// answers with the first events).
    pub async fn qq_message_unsettled(
        &self,
        account: &str,
        msg: &QqMessage,
        unmapped: bool,
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
    room: &ruma::RoomId,
    event_id: ruma::OwnedEventId,
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
