//! Relay mode, the sending side (MATRIX.md §6.3): a group portal's relay account (stored in
//! `portal_relays`), the `may_relay` permission hook, and where each Matrix message goes — the
//! owner's through the portal's account, anyone else's through the relay account, formatted
//! by the `relay.templates` of its message type.

use std::sync::{Arc, PoisonError};

use ruma::events::room::message::{MessageType, Relation, RoomMessageEventContent};
use ruma::{RoomId, UserId};

use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::store::{Portal, StoreError};
use crate::webqq::QqNumber;

use super::to_qq::EventHead;
use super::{Bridge, BridgeError};

/// Decides whether a Matrix user may speak through a relay account. The bridge asks it only
/// when `relay.enabled` is true; the default allows everyone (the permissions config narrows
/// it, see [`Bridge::set_may_relay`]).
pub type MayRelay = Arc<dyn Fn(&UserId) -> bool + Send + Sync>;

/// A portal's relay account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayAccount {
    /// The configured account id (`accounts[].id`).
    pub account: String,
    /// Its QQ number.
    pub qq: QqNumber,
}

/// Why a relay could not be set, cleared or read.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The room is not a portal.
    #[error("this room is not a QQ portal")]
    NotAPortal,
    /// Relay mode works in group portals only.
    #[error("relay mode works in QQ group portals only")]
    NotAGroup,
    /// No enabled account has this id.
    #[error("there is no QQ account {0:?} in this bridge")]
    UnknownAccount(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Who a relayed message is from, as the template names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Relayed {
    /// The sender's display name in the room (their localpart when they have none); sanitised
    /// when the template is filled.
    pub displayname: String,
    /// The sender's Matrix id.
    pub userid: String,
}

/// Where one Matrix message goes on QQ.
#[derive(Clone, Debug)]
pub(super) struct Route {
    /// The account that sends it.
    pub account: String,
    /// The QQ chat.
    pub chat: ChatKey,
    /// Set when the message goes through a relay account.
    pub relay: Option<Relayed>,
}

impl Bridge {
    /// Makes `account` the relay of the group portal in `room`: Matrix users other than the
    /// owner then speak through it (when `relay.enabled`). `set_by` is remembered. Replaces a
    /// previous relay. The caller checks permissions (`set-relay` is an admin command).
    pub async fn set_relay(
        &self,
        room: &RoomId,
        account: &str,
        set_by: &UserId,
    ) -> Result<RelayAccount, RelayError> {
        let portal = self.group_portal(room)?;
        let qq = self
            .account_number(account)
            .ok_or_else(|| RelayError::UnknownAccount(account.to_owned()))?;
        let (key, id, by) = (portal.portal_key.clone(), account.to_owned(), set_by.to_string());
        self.store.call(move |c| c.set_relay(&key, &id, qq.get(), &by)).await?;
        tracing::info!(%room, portal = %portal.portal_key, %account, %set_by, "relay account set");
        Ok(RelayAccount { account: account.to_owned(), qq })
    }

    /// Clears the relay of the portal in `room`; `true` if it had one.
    pub async fn unset_relay(&self, room: &RoomId) -> Result<bool, RelayError> {
        let portal = self.store.portal_by_room(room)?.ok_or(RelayError::NotAPortal)?;
        let key = portal.portal_key.clone();
        let had = self.store.call(move |c| c.unset_relay(&key)).await?;
        tracing::info!(%room, portal = %portal.portal_key, had, "relay account cleared");
        Ok(had)
    }

    /// The relay account of the portal in `room`; `None` when it has none.
    pub async fn relay_of(&self, room: &RoomId) -> Result<Option<RelayAccount>, RelayError> {
        let portal = self.store.portal_by_room(room)?.ok_or(RelayError::NotAPortal)?;
        let key = portal.portal_key;
        let row = self.store.call(move |c| c.relay_of(&key)).await?;
        Ok(row.map(|row| RelayAccount { account: row.account_id, qq: QqNumber::new(row.qq) }))
    }

    /// The permanent QQ number of `account`: the config's, or the one in the id of an account
    /// logged in from Matrix.
    pub fn account_number(&self, account: &str) -> Option<QqNumber> {
        self.settings
            .numbers
            .get(account)
            .copied()
            .or_else(|| crate::bridge::commands::bot_account_qq(account).map(QqNumber::new))
    }

    /// Whether relay mode is on (`relay.enabled`).
    pub fn relay_enabled(&self) -> bool {
        self.settings.relay.enabled
    }

    /// Replaces the relay permission hook (default: everyone). Only consulted when
    /// `relay.enabled` is true.
    pub fn set_may_relay(&self, hook: MayRelay) {
        *self.may_relay.write().unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// Whether `user` may speak through a relay account: relay mode is on and the hook agrees.
    pub fn may_relay(&self, user: &UserId) -> bool {
        if !self.settings.relay.enabled {
            return false;
        }
        let hook = self.may_relay.read().unwrap_or_else(PoisonError::into_inner).clone();
        hook(user)
    }

    /// The group portal of `room`.
    fn group_portal(&self, room: &RoomId) -> Result<Portal, RelayError> {
        let portal = self.store.portal_by_room(room)?.ok_or(RelayError::NotAPortal)?;
        match ids::chat_of(&portal.kind, &portal.remote_id) {
            Some(ChatKey::Group(_)) => Ok(portal),
            _ => Err(RelayError::NotAGroup),
        }
    }

    /// Where a message of `head.sender` in `portal` goes: the owner's through the portal's
    /// account; anyone else's through the portal's relay account when relay mode allows it;
    /// `None` when it cannot go to QQ (the caller refuses it as today).
    pub(super) async fn route(
        &self,
        portal: &Portal,
        head: &EventHead,
    ) -> Result<Option<Route>, BridgeError> {
        let Some(chat) = ids::chat_of(&portal.kind, &portal.remote_id) else { return Ok(None) };
        let owner = portal.account_id.as_ref().and_then(|a| self.settings.owners.get(a));
        if owner == Some(&head.sender) {
            let Some(account) = portal.account_id.clone() else { return Ok(None) };
            return Ok(Some(Route { account, chat, relay: None }));
        }
        if !matches!(chat, ChatKey::Group(_)) || !self.may_relay(&head.sender) {
            return Ok(None);
        }
        let key = portal.portal_key.clone();
        let Some(row) = self.store.call(move |c| c.relay_of(&key)).await? else {
            return Ok(None);
        };
        if !self.settings.owners.contains_key(&row.account_id) {
            tracing::warn!(portal = %portal.portal_key, account = %row.account_id, "relay account no longer configured");
            return Ok(None);
        }
        let displayname = match self.matrix.member_displayname(&head.room_id, &head.sender).await {
            Ok(Some(name)) if !name.trim().is_empty() => name,
            Ok(_) => head.sender.localpart().to_owned(),
            Err(error) => {
                tracing::debug!(%error, sender = %head.sender, "display name not read; localpart used");
                head.sender.localpart().to_owned()
            }
        };
        let relay = Relayed { displayname, userid: head.sender.to_string() };
        Ok(Some(Route { account: row.account_id, chat, relay: Some(relay) }))
    }

    /// The relay template for `content` (an edit's new content decides): text, notice, emote
    /// or image.
    pub(super) fn relay_template(&self, content: &RoomMessageEventContent) -> &str {
        let msgtype = match &content.relates_to {
            Some(Relation::Replacement(replacement)) => &replacement.new_content.msgtype,
            _ => &content.msgtype,
        };
        let templates = &self.settings.relay.templates;
        match msgtype {
            MessageType::Notice(_) => &templates.notice,
            MessageType::Emote(_) => &templates.emote,
            MessageType::Image(_) => &templates.image,
            _ => &templates.text,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::bridge::convert::to_qq::{OutgoingQq, ToQqOptions, matrix_to_qq};
    use crate::config::RelayTemplates;
    use crate::webqq::content::Segment;
    use serde_json::json;

    /// The first QQ text of `content` relayed with `template` from `name`.
    fn relayed(content: serde_json::Value, template: &str, name: &str) -> Vec<Segment> {
        let content = serde_json::from_value(content).unwrap();
        let opts = ToQqOptions {
            relay_template: Some(template),
            userid: "@bob:x",
            ..ToQqOptions::new(name)
        };
        match matrix_to_qq(&content, &opts).unwrap().into_iter().next().unwrap() {
            OutgoingQq::Text(content) => content.segments,
            OutgoingQq::Image { caption, .. } => caption,
        }
    }

    #[test]
    fn test_default_relay_templates_per_type() {
        let t = RelayTemplates::default();
        let text = |s: &str| vec![Segment::Text(s.to_owned())];
        let cases = [
            (json!({"msgtype": "m.text", "body": "hi"}), &t.text, "Bob", "\u{2068}Bob\u{2069}: hi"),
            (
                json!({"msgtype": "m.notice", "body": "n"}),
                &t.notice,
                "Bob",
                "\u{2068}Bob\u{2069}: n",
            ),
            (
                json!({"msgtype": "m.emote", "body": "waves"}),
                &t.emote,
                "Bob",
                "* \u{2068}Bob\u{2069} waves",
            ),
            // Display names are plain text: HTML stays literal, controls and bidi go.
            (
                json!({"msgtype": "m.text", "body": "x"}),
                &t.text,
                "<b>Eve</b>\u{202e}\n\u{7}",
                "\u{2068}<b>Eve</b>\u{2069}: x",
            ),
            (
                json!({"msgtype": "m.image", "body": "p.png", "url": "mxc://x/y"}),
                &t.image,
                "Bob",
                "\u{2068}Bob\u{2069} sent a picture:",
            ),
        ];
        for (content, template, name, want) in cases {
            assert_eq!(relayed(content.clone(), template, name), text(want), "{content}");
        }
        let custom =
            relayed(json!({"msgtype": "m.text", "body": "yo"}), "[{userid}] {message}", "B");
        assert_eq!(custom, text("[@bob:x] yo"));
    }
}
