//! `set-relay [qq]` and `unset-relay` (MATRIX.md §6.3): an admin makes one of their QQ accounts
//! the relay of a group portal, through which the messages of Matrix users without a QQ login
//! there go out, prefixed with their names.

use std::sync::Arc;

use ruma::{RoomId, UserId};

use super::Commands;
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
        let portal_account = match bridge.store().portal_by_room(room) {
            Ok(portal) => portal.and_then(|p| p.account_id),
            Err(error) => return format!("Relay not set: {error}."),
        };
        let account = match (qq, portal_account) {
            (None, Some(own)) if bridge.accounts_of(user).contains(&own) => own,
            _ => match self.pick(bridge, user, qq) {
                Ok(account) => account,
                Err(reply) => return reply,
            },
        };
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
