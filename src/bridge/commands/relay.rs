//! `set-relay [qq]` and `unset-relay` (MATRIX.md §6.3): an admin makes one of their QQ accounts
//! the relay of a group portal, through which the messages of Matrix users without a QQ login
//! there go out, prefixed with their names.

use std::sync::Arc;

use ruma::{RoomId, UserId};

use super::Commands;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::bridge::portal::Bridge;

impl Commands {
    /// `set-relay [qq]` in the portal `room`: the given account, else the portal's own account
    /// when `user` owns it, else `user`'s only account.
    pub(super) async fn set_relay(
        &self,
        bridge: &Arc<Bridge>,
        user: &UserId,
        room: &RoomId,
        qq: Option<u64>,
    ) -> String {
        if !bridge.relay_enabled() {
            return "Relay mode is off on this bridge (relay.enabled in its config).".to_owned();
        }
        let portal = match bridge.store().portal_by_room(room) {
            Ok(portal) => portal,
            Err(error) => return format!("Relay not set: {error}."),
        };
        let group = portal.as_ref().and_then(|p| match ids::chat_of(&p.kind, &p.remote_id) {
            Some(ChatKey::Group(group)) => Some(group),
            _ => None,
        });
        let portal_account = portal.and_then(|p| p.account_id);
        let account = match (qq, portal_account) {
            (None, Some(own)) if bridge.accounts_of(user).contains(&own) => own,
            _ => match self.pick(bridge, user, qq) {
                Ok(account) => account,
                Err(reply) => return reply,
            },
        };
        // A relay outside the group cannot send there: its session has no gid for the group
        // (send_qun_msg2 targets a gid of its own group list, protocol §2.4).
        if let Some(group) = group {
            let qq = self.qq_of(&account).map(|q| q.to_string()).unwrap_or_default();
            match bridge.account_in_group(&account, group).await {
                Some(true) => {}
                Some(false) => {
                    return format!(
                        "Relay not set: QQ {qq} ({account}) is not a member of group {group}; \
                         pick one of your accounts that is (`set-relay <qq>`)."
                    );
                }
                None => {
                    return format!(
                        "Relay not set: the groups of QQ {qq} ({account}) are not loaded (is it \
                         connected?)."
                    );
                }
            }
        }
        match bridge.set_relay(room, &account, user).await {
            Ok(relay) => format!(
                "Relay on: messages here from Matrix users without QQ go out through QQ {} ({}), \
                 each prefixed with the sender's name. `unset-relay` stops it.",
                relay.qq, relay.account
            ),
            Err(error) => format!("Relay not set: {error}."),
        }
    }

    /// `unset-relay` in the portal `room`.
    pub(super) async fn unset_relay(&self, bridge: &Arc<Bridge>, room: &RoomId) -> String {
        match bridge.unset_relay(room).await {
            Ok(true) => "Relay off: only QQ users' own messages are bridged here now.".to_owned(),
            Ok(false) => "This portal had no relay account.".to_owned(),
            Err(error) => format!("Relay not cleared: {error}."),
        }
    }
}
