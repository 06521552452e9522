//! Matrix → QQ: the events of a transaction sorted out (our own echoes, non-portals, non-owners,
//! encryption, redactions, bad input), the owner's messages converted and handed to the ordered
//! outbound queue (`outbound.rs`); the owner's typing; pictures downloaded from the media
//! repository and uploaded to QQ.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use ruma::events::AnyTimelineEvent;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedUserId, RoomId};

use crate::account::account_actor::{NotifyTyping, UploadPicture};
use crate::account::manager::{NotifyTypingVia, UploadPictureVia};
use crate::account::send_queue::ChatKey;
use crate::bridge::convert::relay_line;
use crate::bridge::convert::to_qq::{
    OutgoingQq, ReplyQuote, ToQqOptions, matrix_to_qq, replied_event_id, text_bytes,
};
use crate::bridge::ids;
use crate::store::{Direction, MessageRow, OutboxRow, Portal};
use crate::webqq::content::Content;
use crate::webqq::session::unix_now;

use super::outbound::Job;
use super::permissions::Refusal;
use super::relay::{Relayed, Route};
use super::status::SendStatus;
use super::{Bridge, BridgeError, image_type};

/// The fields every event has, read without trusting the rest of it.
pub(super) struct EventHead {
    /// `type`.
    pub event_type: String,
    /// `room_id`.
    pub room_id: OwnedRoomId,
    /// `sender`.
    pub sender: OwnedUserId,
    /// `event_id`.
    pub event_id: OwnedEventId,
    /// `state_key`, for state events.
    pub state_key: Option<String>,
}

impl EventHead {
    /// The head of `raw`, or `None` when one of the required fields is missing or invalid.
    pub fn parse(raw: &Raw<AnyTimelineEvent>) -> Option<EventHead> {
        Some(EventHead {
            event_type: raw.get_field::<String>("type").ok()??,
            room_id: raw.get_field::<OwnedRoomId>("room_id").ok()??,
            sender: raw.get_field::<OwnedUserId>("sender").ok()??,
            event_id: raw.get_field::<OwnedEventId>("event_id").ok()??,
            state_key: raw.get_field::<String>("state_key").ok().flatten(),
        })
    }
}

impl Bridge {
    /// Handles one timeline event of a transaction. A message of a portal's owner is checked,
    /// converted and queued for QQ (its status is reported later, `outbound.rs`); everything
    /// else is refused with a reason: a notice where a person should know, else a debug log.
    /// Answers whether a message was accepted for QQ. Never waits for QQ.
    pub async fn matrix_event(
        self: &Arc<Self>,
        raw: &Raw<AnyTimelineEvent>,
    ) -> Result<bool, BridgeError> {
        let Some(head) = EventHead::parse(raw) else {
            tracing::debug!("event without a valid type, room, sender or event id ignored");
            return Ok(false);
        };
        if self.is_ours(&head.sender) {
            self.remember_own_excerpt(&head, raw).await;
            return Ok(false);
        }
        if super::double_puppet::has_marker(raw) {
            // Our own double-puppeted copy of a QQ message (MATRIX.md §6.4): never back to QQ.
            tracing::debug!(event = %head.event_id, "double-puppeted event dropped");
            return Ok(false);
        }
        let commands = self.commands();
        let Some(portal) = self.store.portal_by_room(&head.room_id)? else {
            if let Some(commands) = commands {
                // Outside the portals: the bot's invites, management rooms and DMs.
                commands.event(self, raw, false).await;
                return Ok(false);
            }
            tracing::debug!(room = %head.room_id, event_type = %head.event_type, "event outside the portals ignored");
            return Ok(false);
        };
        if let Some(commands) = &commands
            && commands.is_command(raw)
        {
            commands.event(self, raw, true).await;
            return Ok(false);
        }
        let owner = portal.account_id.as_ref().and_then(|a| self.owner_of(a));
        let from_owner = owner.as_ref() == Some(&head.sender);
        // An owner named `block` in bridge.permissions loses the account; everyone else who is
        // not the owner is refused below anyway.
        if from_owner && commands.is_some_and(|c| c.is_blocked(self, &head.sender)) {
            let text = "you are not allowed to use this bridge; this message was not sent.";
            self.refuse(&portal, &head, Refusal::Blocked, SendStatus::no_permission(text));
            return Ok(false);
        }
        match head.event_type.as_str() {
            "m.room.encryption" if head.state_key.is_some() => {
                self.portal_encrypted(&portal, &head.room_id).await?;
            }
            "m.room.encrypted" => {
                let text = "this message is encrypted, and the bridge does not support \
                            encryption yet.";
                self.refuse(&portal, &head, Refusal::Encrypted, SendStatus::unsupported(text));
            }
            "m.room.redaction" if from_owner => {
                // QQ has no recall in WebQQ: the owner must know the message stays on QQ.
                self.notice(
                    &head.room_id,
                    "QQ cannot retract messages: the redacted message stays on QQ.",
                )
                .await?;
            }
            "m.reaction" if from_owner => {
                let text = "QQ has no reactions; reactions are not bridged.";
                self.refuse(&portal, &head, Refusal::Unsupported, SendStatus::unsupported(text));
            }
            "m.room.message" | "m.sticker" => match self.route(&portal, &head).await? {
                Some(route) => return self.accept_message(portal, head, raw, route).await,
                None => {
                    let text =
                        "only the owner's messages are bridged to QQ; this one was not sent.";
                    self.refuse(&portal, &head, Refusal::NotOwner, SendStatus::no_permission(text));
                }
            },
            other => {
                tracing::debug!(room = %head.room_id, event_type = %other, "event type not bridged");
            }
        }
        Ok(false)
    }

    /// Tells the sender of `head` why it was not bridged, at most once per user, portal and
    /// reason per hour ([`super::permissions::REFUSAL_WINDOW`]); the status event (when on)
    /// goes every time.
    fn refuse(
        self: &Arc<Self>,
        portal: &Portal,
        head: &EventHead,
        refusal: Refusal,
        status: SendStatus,
    ) {
        let allowed = self.refusals.lock().unwrap_or_else(PoisonError::into_inner).allow(
            &portal.portal_key,
            head.sender.as_str(),
            refusal,
            Instant::now(),
        );
        tracing::debug!(room = %head.room_id, sender = %head.sender, ?refusal, told = allowed, "event refused");
        self.report_later(&head.room_id, &head.event_id, status, allowed);
    }

    /// Marks the portal encrypted and tells the room once.
    async fn portal_encrypted(&self, portal: &Portal, room: &RoomId) -> Result<(), BridgeError> {
        if portal.encrypted {
            return Ok(());
        }
        let key = portal.portal_key.clone();
        self.store.call(move |c| c.set_portal_encrypted(&key, true)).await?;
        tracing::info!(%room, portal = %portal.portal_key, "portal encrypted; encrypted events are not bridged");
        self.notice(
            room,
            "This room is encrypted, but the bridge does not support encryption yet: encrypted \
             messages here are not bridged to QQ.",
        )
        .await
    }

    /// An owner's (or relayed) `m.room.message` or `m.sticker`: read, claimed in the message
    /// map (so a replayed transaction sends nothing twice), checked, converted and queued.
    async fn accept_message(
        self: &Arc<Self>,
        portal: Portal,
        head: EventHead,
        raw: &Raw<AnyTimelineEvent>,
        route: Route,
    ) -> Result<bool, BridgeError> {
        let message = MessageRow {
            portal_key: portal.portal_key.clone(),
            remote_key: format!("mx:{}", head.event_id),
            room_id: head.room_id.clone(),
            event_id: head.event_id.clone(),
            direction: Direction::MatrixToQq,
            sender: head.sender.to_string(),
            created_at: unix_now(),
        };
        let row = OutboxRow {
            room_id: head.room_id.clone(),
            event_id: head.event_id.clone(),
            seq: self.next_outbox_seq(),
            event_json: raw.json().get().to_owned(),
            sending: false,
            outcome: None,
        };
        let claimed = self.store.call(move |c| c.claim_for_outbox(&message, &row)).await?;
        if !claimed {
            tracing::debug!(event = %head.event_id, "Matrix message already handled");
            return Ok(false);
        }
        Ok(self.send_accepted(portal, head, raw, route).await)
    }

    /// Converts and queues a message that is claimed and in the outbox (also one replayed
    /// after a restart) along its `route`. `false` when it cannot go to QQ: its status is
    /// reported and it leaves the outbox.
    pub(super) async fn send_accepted(
        self: &Arc<Self>,
        portal: Portal,
        head: EventHead,
        raw: &Raw<AnyTimelineEvent>,
        route: Route,
    ) -> bool {
        let Route { account, chat, relay } = route;
        let messages = match self.convert(&portal, &head, raw, relay.as_ref()).await {
            Ok(messages) => messages,
            Err(status) => {
                self.conclude_later(head.room_id, head.event_id, status);
                return false;
            }
        };
        self.enqueue(Job {
            room: head.room_id,
            event_id: head.event_id,
            portal_key: portal.portal_key,
            account,
            chat,
            messages,
        });
        true
    }

    /// The QQ messages of a message (formatted by the relay template when `relay` is set), or
    /// the status saying why there are none.
    async fn convert(
        &self,
        portal: &Portal,
        head: &EventHead,
        raw: &Raw<AnyTimelineEvent>,
        relay: Option<&Relayed>,
    ) -> Result<Vec<OutgoingQq>, SendStatus> {
        let unreadable = |e: serde_json::Error| {
            let mut why = e.to_string();
            why.truncate(why.floor_char_boundary(200));
            SendStatus::unsupported(format!("the message could not be read ({why})."))
        };
        if head.event_type == "m.sticker" {
            let content = raw.get_field::<serde_json::Value>("content").map_err(unreadable)?;
            let mxc = content
                .as_ref()
                .and_then(|c| c.get("url"))
                .and_then(serde_json::Value::as_str)
                .map(OwnedMxcUri::from)
                .ok_or_else(|| SendStatus::unsupported("the sticker has no picture."))?;
            // A relayed sticker goes with a line naming its sender.
            let caption = relay
                .map(|r| {
                    let template = &self.settings.relay.templates.image;
                    let line = relay_line(template, &r.displayname, &r.userid, "");
                    vec![crate::webqq::content::Segment::Text(line)]
                })
                .unwrap_or_default();
            let image =
                OutgoingQq::Image { mxc, filename: None, mimetype: None, size: None, caption };
            return Ok(vec![image]);
        }
        let content = raw
            .get_field::<RoomMessageEventContent>("content")
            .map_err(unreadable)?
            .ok_or_else(|| SendStatus::unsupported("the message has no content."))?;
        let bytes = text_bytes(&content);
        if bytes > self.settings.max_text_bytes {
            return Err(SendStatus::unsupported(format!(
                "the text is {bytes} bytes long; at most {} bytes go to QQ in one message \
                 (bridge.max_text_bytes).",
                self.settings.max_text_bytes
            )));
        }
        let displayname = relay.map_or(head.sender.localpart(), |r| r.displayname.as_str());
        self.remember_excerpt(portal, head, displayname, &content).await;
        let quote = match replied_event_id(&content) {
            Some(replied) => self.reply_quote(portal, &head.room_id, replied).await,
            None => None,
        };
        let mut opts = ToQqOptions::new(displayname);
        if let Some(relay) = relay {
            opts.relay_template = Some(self.relay_template(&content));
            opts.userid = &relay.userid;
        }
        opts.max_body_bytes = self.settings.max_text_bytes;
        opts.reply_to = quote.as_ref().map(|(name, text)| ReplyQuote { name, text });
        matrix_to_qq(&content, &opts)
            .map_err(|unsupported| SendStatus::unsupported(unsupported.reason))
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
        let Some(owner) = self.owner_of(&account) else { return Ok(()) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_event_head_reads_only_valid_heads() {
        let good = json!({"type": "m.room.message", "room_id": "!r:x", "sender": "@a:x",
                          "event_id": "$e", "content": {"nonsense": [1, 2]}});
        /// The parsed type and state key.
        type Head<'a> = Option<(&'a str, Option<&'a str>)>;
        // (change to the good event, parsed head)
        let cases: Vec<(serde_json::Value, Head<'_>)> = vec![
            (json!({}), Some(("m.room.message", None))),
            (
                json!({"type": "m.room.encryption", "state_key": ""}),
                Some(("m.room.encryption", Some(""))),
            ),
            (json!({"type": 5}), None),
            (json!({"room_id": null}), None),
            (json!({"room_id": "not a room"}), None),
            (json!({"sender": "nobody"}), None),
            (json!({"event_id": ""}), None),
        ];
        for (change, want) in cases {
            let mut event = good.clone();
            for (key, value) in change.as_object().unwrap() {
                event[key] = value.clone();
            }
            let raw: Raw<AnyTimelineEvent> = serde_json::from_value(event.clone()).unwrap();
            let head = EventHead::parse(&raw);
            let got = head.as_ref().map(|h| (h.event_type.as_str(), h.state_key.as_deref()));
            assert_eq!(got, want, "{event}");
        }
    }
}
