//! `bridge <group>` and `unbridge` (MATRIX.md §6.1): a user's plain room made the portal of a
//! QQ group one of their accounts is in, and a portal detached again by its owner or an admin.

use std::sync::Arc;

use ruma::{RoomId, UserId};

use super::Commands;
use super::permission::Permission;
use crate::bridge::portal::{AttachError, Bridge};
use crate::webqq::GroupNumber;

impl Commands {
    /// `bridge <group>` in `room` (not a portal; `management` says whether it is the sender's
    /// management room): bridged through the first of `user`'s accounts in the group.
    pub(super) async fn bridge_group(
        &self,
        bridge: &Arc<Bridge>,
        user: &UserId,
        room: &RoomId,
        group: u64,
        management: bool,
    ) -> String {
        if management {
            return "Run `bridge <group number>` in the room to bridge (invite me there), not in \
                    your direct chat with me."
                .to_owned();
        }
        let group = GroupNumber::new(group);
        let mine = bridge.accounts_of(user);
        let Some(first) = mine.first().cloned() else {
            return "You have no QQ account here; log one in with `login qr` first.".to_owned();
        };
        let mut account = first;
        for candidate in &mine {
            if bridge.account_in_group(candidate, group).await == Some(true) {
                account = candidate.clone();
                break;
            }
        }
        match bridge.bridge_room(room, &account, user, group).await {
            Ok(()) => {
                let qq = self.qq_of(&account).map(|q| q.to_string()).unwrap_or_default();
                format!(
                    "This room is now the portal of QQ group {group}, bridged through QQ {qq} \
                     ({account}). `unbridge` detaches it again."
                )
            }
            Err(AttachError::NotInGroup { .. } | AttachError::NotReady(_)) if mine.len() > 1 => {
                let numbers: Vec<String> =
                    mine.iter().filter_map(|a| self.qq_of(a)).map(|q| q.to_string()).collect();
                format!(
                    "Not bridged: none of your QQ accounts ({}) is a connected member of group \
                     {group}.",
                    numbers.join(", ")
                )
            }
            Err(error) => format!("Not bridged: {error}."),
        }
    }

    /// `unbridge` in the portal `room`, by its account's owner or an admin.
    pub(super) async fn unbridge(
        &self,
        bridge: &Arc<Bridge>,
        user: &UserId,
        room: &RoomId,
    ) -> String {
        let portal = match bridge.store().portal_by_room(room) {
            Ok(Some(portal)) => portal,
            Ok(None) => return "This room is not a QQ portal.".to_owned(),
            Err(error) => return format!("Not unbridged: {error}."),
        };
        let owner = portal.account_id.as_deref().and_then(|a| bridge.owner_of(a));
        if owner.as_deref() != Some(user) && self.level(bridge, user) < Permission::Admin {
            return "Only this portal's owner or a bridge admin may unbridge it.".to_owned();
        }
        match bridge.unbridge_room(room).await {
            Ok(portal) => format!(
                "This room is no longer bridged to QQ {} {}: its QQ members left and its relay \
                 setting is gone. A new QQ message there opens a new portal.",
                portal.kind, portal.remote_id
            ),
            Err(error) => format!("Not unbridged: {error}."),
        }
    }
}
