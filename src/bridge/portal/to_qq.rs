//! Matrix → QQ: the owner's messages and typing in a portal, converted and queued on the
//! account's sender; pictures downloaded from the media repository and uploaded to QQ.

use ruma::RoomId;
use ruma::events::{AnyMessageLikeEvent, AnyTimelineEvent, MessageLikeEvent};
use ruma::serde::Raw;

use crate::account::account_actor::{NotifyTyping, UploadPicture};
use crate::account::manager::{NotifyTypingVia, SendVia, UploadPictureVia};
use crate::account::send_queue::ChatKey;
use crate::account::sender_actor::QueueMessage;
use crate::bridge::convert::to_qq::{OutgoingQq, ToQqOptions, matrix_to_qq};
use crate::bridge::ids;
use crate::store::{Direction, MessageRow};
use crate::webqq::content::Content;
use crate::webqq::session::unix_now;

use super::{Bridge, BridgeError, image_type};

impl Bridge {
    /// Handles one timeline event of a transaction: a message of a portal's owner goes to QQ;
    /// everything else (our own echoes, other rooms, other senders) is ignored. Answers whether
    /// it was bridged.
    pub async fn matrix_event(&self, raw: &Raw<AnyTimelineEvent>) -> Result<bool, BridgeError> {
        let Ok(event) = raw.deserialize() else { return Ok(false) };
        if self.is_ours(event.sender()) {
            return Ok(false);
        }
        if let AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomRedaction(redaction)) = &event
        {
            // QQ has no recall in WebQQ: the owner must know the message stays on QQ.
            let from_owner = self.settings.owners.values().any(|o| o == redaction.sender());
            if from_owner && self.store.portal_by_room(redaction.room_id())?.is_some() {
                self.notice(
                    redaction.room_id(),
                    "QQ cannot retract messages: the redacted message stays on QQ.",
                )
                .await?;
            }
            return Ok(false);
        }
        let AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(
            MessageLikeEvent::Original(event),
        )) = event
        else {
            return Ok(false);
        };
        let Some(portal) = self.store.portal_by_room(&event.room_id)? else { return Ok(false) };
        let (Some(account), Some(chat)) =
            (portal.account_id.clone(), ids::chat_of(&portal.kind, &portal.remote_id))
        else {
            return Ok(false);
        };
        if self.settings.owners.get(&account) != Some(&event.sender) {
            return Ok(false);
        }
        if self.store.message_by_event(&event.room_id, &event.event_id)?.is_some() {
            return Ok(false);
        }
        let displayname = event.sender.localpart().to_owned();
        let outgoing = match matrix_to_qq(&event.content, &ToQqOptions::new(&displayname)) {
            Ok(outgoing) => outgoing,
            Err(unsupported) => {
                self.notice(&event.room_id, &format!("Not sent to QQ: {unsupported}")).await?;
                return Ok(false);
            }
        };
        for message in outgoing {
            let content = match message {
                OutgoingQq::Text(content) => content,
                OutgoingQq::Image { mxc, caption, .. } => {
                    match self.picture_to_qq(&account, chat, &mxc, caption).await {
                        Ok(content) => content,
                        Err(reason) => {
                            let text = format!("Not sent to QQ: the picture {reason}");
                            self.notice(&event.room_id, &text).await?;
                            continue;
                        }
                    }
                }
            };
            self.remember_echo(&portal.portal_key, &content);
            if !self.send_to_qq(&account, chat, content).await {
                let text = "Not sent to QQ: the QQ account of this chat is not running.";
                self.notice(&event.room_id, text).await?;
                return Ok(false);
            }
        }
        self.store.insert_message(&MessageRow {
            portal_key: portal.portal_key.clone(),
            remote_key: format!("mx:{}", event.event_id),
            room_id: event.room_id.clone(),
            event_id: event.event_id.clone(),
            direction: Direction::MatrixToQq,
            sender: event.sender.to_string(),
            created_at: unix_now(),
        })?;
        Ok(true)
    }

    /// Handles one ephemeral event of a transaction: the owner typing in a friend portal is
    /// told to the friend (QQ shows typing for friend chats only). Everything else is ignored.
    pub fn matrix_ephemeral(&self, raw: &serde_json::Value) -> Result<(), BridgeError> {
        if raw.get("type").and_then(serde_json::Value::as_str) != Some("m.typing") {
            return Ok(());
        }
        let Some(room) =
            raw.get("room_id").and_then(|r| r.as_str()).and_then(|r| RoomId::parse(r).ok())
        else {
            return Ok(());
        };
        let Some(portal) = self.store.portal_by_room(&room)? else { return Ok(()) };
        let (Some(account), Some(ChatKey::Friend(friend))) =
            (portal.account_id, ids::chat_of(&portal.kind, &portal.remote_id))
        else {
            return Ok(());
        };
        let Some(owner) = self.settings.owners.get(&account) else { return Ok(()) };
        let typing = raw
            .pointer("/content/user_ids")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|users| users.iter().any(|u| u.as_str() == Some(owner.as_str())));
        if typing {
            let typing = NotifyTyping { to: friend };
            self.accounts.do_send(NotifyTypingVia { account, typing });
        }
        Ok(())
    }

    /// Queues `content` on `account`'s sender; `false` (logged) when the account is not running.
    pub(super) async fn send_to_qq(&self, account: &str, chat: ChatKey, content: Content) -> bool {
        let send = SendVia { account: account.to_owned(), message: QueueMessage { chat, content } };
        match self.accounts.send(send).await {
            Ok(Some(_)) => true,
            Ok(None) | Err(_) => {
                tracing::warn!(%account, "message for QQ not queued: the account is not running");
                false
            }
        }
    }

    /// A Matrix picture as QQ content: downloaded from the homeserver (size-capped), checked to
    /// be an image, uploaded through the account; `caption` goes before it. Errors say why, for
    /// a notice.
    pub(super) async fn picture_to_qq(
        &self,
        account: &str,
        chat: ChatKey,
        mxc: &ruma::MxcUri,
        caption: Vec<crate::webqq::content::Segment>,
    ) -> Result<Content, String> {
        let downloaded =
            self.matrix.download(mxc).await.map_err(|e| format!("could not be downloaded: {e}"))?;
        if downloaded.bytes.len() > self.settings.max_image_bytes {
            return Err(format!("is larger than {} bytes", self.settings.max_image_bytes));
        }
        let (_, extension) = image_type(&downloaded.bytes)
            .ok_or_else(|| "is not an image QQ can show".to_owned())?;
        let upload = UploadPicture {
            chat,
            file_name: format!("matrix.{extension}"),
            bytes: downloaded.bytes,
        };
        let segment = match self
            .accounts
            .send(UploadPictureVia { account: account.to_owned(), upload })
            .await
        {
            Ok(Ok(segment)) => segment,
            Ok(Err(reason)) => return Err(format!("could not be uploaded to QQ: {reason}")),
            Err(_) => return Err("could not be uploaded: the account stopped".to_owned()),
        };
        let mut content = Content { font: None, segments: caption };
        content.push(segment);
        Ok(content)
    }
}
