//! Reply quotes for Matrix → QQ: every message of a portal leaves an excerpt (its sender's name
//! and first characters) in the store — the owner's when they send it, the ghosts' when Synapse
//! pushes their events back to us — and a reply from Matrix quotes the excerpt of the event it
//! replies to, resolved only inside the same portal (RELIABILITY.md §2).

use ruma::events::AnyTimelineEvent;
use ruma::events::room::message::{MessageType, RoomMessageEventContent};
use ruma::serde::Raw;
use ruma::{EventId, RoomId};

use crate::bridge::convert::to_qq::{edited_event_id, excerpt};
use crate::store::{Direction, Excerpt, Portal};
use crate::webqq::QqNumber;

use super::Bridge;
use super::to_qq::EventHead;

/// What a quote shows when the replied-to text was never stored (bridged before excerpts).
const UNKNOWN_TEXT: &str = "…";

impl Bridge {
    /// Stores the excerpt of a message one of our ghosts (or the bot, for a QQ member without
    /// a ghost) sent into a portal, from its echo. Failures only cost a later quote its text.
    pub(super) async fn remember_own_excerpt(&self, head: &EventHead, raw: &Raw<AnyTimelineEvent>) {
        if head.event_type != "m.room.message" {
            return;
        }
        let ghost = self.settings.ghosts.qq_of(&head.sender);
        let Ok(Some(mut content)) = raw.get_field::<RoomMessageEventContent>("content") else {
            return;
        };
        // The bot's notices are the bridge talking; its texts speak for a QQ member without a
        // ghost, as `name: body` (from_qq.rs).
        let name = match (ghost, &mut content.msgtype) {
            (Some(qq), _) => self.ghost_name(qq),
            (None, MessageType::Text(text)) => match text.body.split_once(": ") {
                Some((name, body)) => {
                    let name = name.to_owned();
                    text.body = body.to_owned();
                    name
                }
                None => return,
            },
            (None, _) => return,
        };
        let Ok(Some(portal)) = self.store.portal_by_room(&head.room_id) else { return };
        self.remember_excerpt(&portal, head, &name, &content).await;
    }

    /// Stores what a reply to `head`'s event quotes; an edit also replaces the excerpt of the
    /// event it edits.
    pub(super) async fn remember_excerpt(
        &self,
        portal: &Portal,
        head: &EventHead,
        name: &str,
        content: &RoomMessageEventContent,
    ) {
        let entry = Excerpt {
            portal_key: portal.portal_key.clone(),
            sender_name: name.to_owned(),
            text: excerpt(content),
        };
        let mut events = vec![head.event_id.clone()];
        events.extend(edited_event_id(content).map(ToOwned::to_owned));
        for event in events {
            let (room, entry) = (head.room_id.clone(), entry.clone());
            let stored = self.store.call(move |c| c.put_excerpt(&room, &event, &entry)).await;
            if let Err(error) = stored {
                tracing::debug!(room = %head.room_id, %error, "excerpt for reply quotes not stored");
            }
        }
    }

    /// The name and text a reply to `replied` quotes, when that event was bridged in this
    /// portal; `None` otherwise (the reply then goes without a quote).
    pub(super) async fn reply_quote(
        &self,
        portal: &Portal,
        room: &RoomId,
        replied: &EventId,
    ) -> Option<(String, String)> {
        let row = self.store.message_by_event(room, replied).ok()??;
        if row.portal_key != portal.portal_key {
            return None;
        }
        let (room, event) = (room.to_owned(), replied.to_owned());
        let stored = self.store.call(move |c| c.excerpt(&room, &event)).await;
        match stored {
            Ok(Some(found)) if found.portal_key == portal.portal_key => {
                Some((found.sender_name, found.text))
            }
            _ => {
                let name = match row.direction {
                    Direction::QqToMatrix => match row.sender.parse::<u64>() {
                        Ok(qq) => self.ghost_name(QqNumber::new(qq)),
                        Err(_) => row.sender.clone(),
                    },
                    Direction::MatrixToQq => ruma::UserId::parse(row.sender.as_str())
                        .map(|u| u.localpart().to_owned())
                        .unwrap_or(row.sender),
                };
                Some((name, UNKNOWN_TEXT.to_owned()))
            }
        }
    }

    /// The display name of `qq`'s ghost as stored, else the number.
    fn ghost_name(&self, qq: QqNumber) -> String {
        match self.store.ghost(qq) {
            Ok(Some(ghost)) => ghost.displayname.unwrap_or_else(|| qq.to_string()),
            _ => qq.to_string(),
        }
    }
}
