//! `bridge <group>` and `unbridge` on the bridge side (MATRIX.md §6.1): an existing Matrix room
//! made the portal of a QQ group (store row, `m.bridge` state, the account's space, the first
//! members' ghosts), and a portal turned back into a plain room (ghosts out, state cleared,
//! store and relay forgotten).

use ruma::api::client::membership::joined_members;
use ruma::api::client::state::{get_state_event_for_key, send_state_event};
use ruma::events::StateEventType;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UserId};

use crate::account::manager::GetDirectory;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::metrics::matrix::MatrixEndpoint;
use crate::store::Portal;
use crate::webqq::GroupNumber;
use crate::webqq::session::unix_now;

use super::cache::CachedPortal;
use super::{Bridge, BridgeError};

/// Why a room could not be bridged or unbridged. Each says what to do, for the bot's reply.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The group has a portal already.
    #[error("QQ group {group} is already bridged to {room}; run `unbridge` there first")]
    GroupHasPortal {
        /// The group.
        group: GroupNumber,
        /// Its portal.
        room: OwnedRoomId,
    },
    /// The room is a portal already.
    #[error("this room is already a QQ portal; run `unbridge` here first")]
    RoomIsPortal,
    /// The room is not a portal.
    #[error("this room is not a QQ portal")]
    NotAPortal,
    /// The account is not in the group (or its group list is not loaded).
    #[error("QQ account {account} is not a member of group {group}")]
    NotInGroup {
        /// The account.
        account: String,
        /// The group.
        group: GroupNumber,
    },
    /// The room is encrypted: the bridge cannot read it yet (MATRIX.md §6, Encryption).
    #[error("this room is encrypted, and the bridge cannot bridge encrypted rooms yet")]
    Encrypted,
    /// The account's contact lists are not loaded (not connected).
    #[error("the groups of QQ account {0} are not loaded (is it connected?)")]
    NotReady(String),
    /// The bot may not set the room's state.
    #[error(
        "I may not set this room's state (give me a power level that may send state events, \
         then try again): {0}"
    )]
    NoPower(crate::matrix::Error),
    /// Anything else.
    #[error("{0}")]
    Bridge(#[from] BridgeError),
}

impl From<crate::store::StoreError> for AttachError {
    fn from(error: crate::store::StoreError) -> Self {
        AttachError::Bridge(BridgeError::Store(error))
    }
}

impl Bridge {
    /// Whether `account`'s session lists QQ group `group` among its groups; `None` when its
    /// contact lists are not loaded (the account is not connected).
    pub async fn account_in_group(&self, account: &str, group: GroupNumber) -> Option<bool> {
        let query = GetDirectory { account: account.to_owned() };
        let directory = self.accounts.send(query).await.ok().flatten()?;
        Some(directory.groups.values().any(|g| g.number == Some(group)))
    }

    /// Makes the plain room `room` the portal of QQ group `group`, bridged through `account`
    /// (owned by `owner`): refused when the room or the group has a portal already or the
    /// account is not in the group. The `m.bridge` state goes first, so a bot without the power
    /// to set state changes nothing. One bridge or unbridge runs at a time. The caller checks
    /// permissions and the kind of room.
    pub async fn bridge_room(
        &self,
        room: &RoomId,
        account: &str,
        owner: &UserId,
        group: GroupNumber,
    ) -> Result<(), AttachError> {
        let _attaching = self.attaching.lock().await;
        if self.store.portal_by_room(room)?.is_some() {
            return Err(AttachError::RoomIsPortal);
        }
        let chat = ChatKey::Group(group);
        let key = ids::portal_key(account, &chat);
        if let Some(portal) = self.known_portal(&key)? {
            return Err(AttachError::GroupHasPortal { group, room: portal.room });
        }
        match self.account_in_group(account, group).await {
            None => return Err(AttachError::NotReady(account.to_owned())),
            Some(false) => {
                return Err(AttachError::NotInGroup { account: account.to_owned(), group });
            }
            Some(true) => {}
        }
        if self.room_encrypted(room).await {
            return Err(AttachError::Encrypted);
        }
        let snapshot = self.group_snapshot(account, group).await;
        let name = snapshot.as_ref().map(|s| s.name.clone()).filter(|n| !n.trim().is_empty());
        let content = bridge_info(self.bot(), owner, &chat, name.as_deref());
        self.put_bridge_info(room, &chat, &content).await.map_err(|error| {
            if error.status() == Some(403) {
                AttachError::NoPower(error)
            } else {
                AttachError::Bridge(BridgeError::Matrix(error))
            }
        })?;
        let room = room.to_owned();
        self.store.upsert_portal(&Portal {
            portal_key: key.clone(),
            kind: ids::kind_of(&chat).to_owned(),
            account_id: Some(account.to_owned()),
            remote_id: ids::remote_id(&chat),
            room_id: Some(room.clone()),
            name: name.clone(),
            topic: None,
            avatar_url: None,
            encrypted: false,
            created_at: unix_now(),
        })?;
        self.caches.set_portal(&key, CachedPortal { room: room.clone(), name });
        tracing::info!(%account, portal = %key, %room, "room bridged to a QQ group");
        self.add_to_space(account, owner, &room).await;
        if let Some(snapshot) = snapshot {
            self.join_members(account, &room, snapshot.members).await;
        }
        Ok(())
    }

    /// Turns the portal `room` back into a plain room: its ghosts leave, its `m.bridge` state
    /// is emptied, it leaves the account's space, and the store forgets it and its relay (a
    /// later QQ message makes a new portal). Steps on Matrix that fail are logged; the store
    /// is cleared regardless. Answers the forgotten portal. The caller checks permissions.
    pub async fn unbridge_room(&self, room: &RoomId) -> Result<Portal, AttachError> {
        let _attaching = self.attaching.lock().await;
        let portal = self.store.portal_by_room(room)?.ok_or(AttachError::NotAPortal)?;
        let room = room.to_owned();
        let key = portal.portal_key.clone();
        let relay_key = key.clone();
        self.store.call(move |c| c.unset_relay(&relay_key)).await?;
        self.store.delete_portal(&key)?;
        self.caches.forget_portal(&key);
        self.pending_joins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&room);
        if let Some(chat) = ids::chat_of(&portal.kind, &portal.remote_id)
            && let Err(error) = self.put_bridge_info(&room, &chat, &serde_json::json!({})).await
        {
            tracing::warn!(%room, %error, "bridge info not cleared");
        }
        if let Some(account) = portal.account_id.as_deref() {
            self.leave_space(account, &room).await;
        }
        self.ghosts_leave(&room).await;
        tracing::info!(portal = %key, %room, "portal unbridged");
        Ok(portal)
    }

    /// Whether `room` has `m.room.encryption` state. A state the bot cannot read counts as
    /// none (logged): the bridge then sees the first encrypted event and says so.
    async fn room_encrypted(&self, room: &RoomId) -> bool {
        let request = get_state_event_for_key::v3::Request::new(
            room.to_owned(),
            StateEventType::RoomEncryption,
            String::new(),
        );
        match self.matrix.send(MatrixEndpoint::State, request, None).await {
            Ok(_) => true,
            Err(error) if error.status() == Some(404) => false,
            Err(error) => {
                tracing::warn!(%room, %error, "encryption state not read");
                false
            }
        }
    }

    /// Every ghost joined to `room` leaves it.
    async fn ghosts_leave(&self, room: &OwnedRoomId) {
        let request = joined_members::v3::Request::new(room.clone());
        let members = match self.matrix.send(MatrixEndpoint::Other, request, None).await {
            Ok(answer) => answer.joined,
            Err(error) => {
                tracing::warn!(%room, %error, "members not listed; ghosts stay");
                return;
            }
        };
        for user in members.keys() {
            let Some(qq) = self.settings.ghosts.qq_of(user) else { continue };
            let reason = Some("the room is no longer bridged to QQ".to_owned());
            if let Err(error) = self.matrix.leave_with_reason(room, Some(user), reason).await {
                tracing::warn!(%room, %user, %error, "ghost did not leave");
            }
            if let Err(error) = self.ghost_left(qq, room) {
                tracing::warn!(%room, %user, %error, "ghost membership not forgotten");
            }
        }
    }

    /// Removes `room` from `account`'s space (an empty `m.space.child`); a failure is logged.
    async fn leave_space(&self, account: &str, room: &OwnedRoomId) {
        let space = match self.store.space(account) {
            Ok(Some(space)) => space,
            Ok(None) => return,
            Err(error) => return tracing::warn!(%account, %error, "space not read"),
        };
        let content = serde_json::json!({});
        let Ok(body) = serde_json::value::to_raw_value(&content) else { return };
        let request = send_state_event::v3::Request::new_raw(
            space.clone(),
            StateEventType::SpaceChild,
            room.to_string(),
            Raw::from_json(body),
        );
        if let Err(error) = self.matrix.send(MatrixEndpoint::State, request, None).await {
            tracing::warn!(%space, %room, %error, "portal not removed from the space");
        }
    }

    /// Sends `content` as the bridge info of `chat` in `room` under both event types.
    async fn put_bridge_info(
        &self,
        room: &RoomId,
        chat: &ChatKey,
        content: &serde_json::Value,
    ) -> Result<(), crate::matrix::Error> {
        let state_key = ids::bridge_state_key(ids::kind_of(chat), &ids::remote_id(chat));
        for event_type in ids::BRIDGE_STATE_TYPES {
            let body = serde_json::value::to_raw_value(content)
                .map_err(|e| crate::matrix::Error::Build(format!("bridge info: {e}")))?;
            let request = send_state_event::v3::Request::new_raw(
                room.to_owned(),
                StateEventType::from(event_type),
                state_key.clone(),
                Raw::from_json(body),
            );
            self.matrix.send(MatrixEndpoint::State, request, None).await?;
        }
        Ok(())
    }
}

/// The `m.bridge` content of a portal (MSC2346, MATRIX.md §6.7).
pub(super) fn bridge_info(
    bot: &UserId,
    owner: &UserId,
    chat: &ChatKey,
    name: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "bridgebot": bot,
        "creator": owner,
        "protocol": {"id": "qq", "displayname": "QQ"},
        "channel": {"id": ids::remote_id(chat), "displayname": name.unwrap_or_default()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bridge_info_names_bot_owner_and_group() {
        let bot = UserId::parse("@qqbot:x").unwrap();
        let owner = UserId::parse("@alice:x").unwrap();
        let chat = ChatKey::Group(GroupNumber::new(346_167_134));
        let info = bridge_info(&bot, &owner, &chat, Some("Breath"));
        assert_eq!(info["bridgebot"], "@qqbot:x");
        assert_eq!(info["creator"], "@alice:x");
        assert_eq!(info["protocol"]["id"], "qq");
        assert_eq!(info["channel"]["id"], "346167134");
        assert_eq!(info["channel"]["displayname"], "Breath");
        assert_eq!(bridge_info(&bot, &owner, &chat, None)["channel"]["displayname"], "");
    }

    #[test]
    fn test_attach_errors_say_what_to_do() {
        let room = RoomId::parse("!p:x").unwrap();
        let group = GroupNumber::new(7);
        let taken = AttachError::GroupHasPortal { group, room }.to_string();
        assert!(taken.contains("!p:x") && taken.contains("`unbridge` there"), "{taken}");
        let outside = AttachError::NotInGroup { account: "me".into(), group }.to_string();
        assert!(outside.contains("not a member of group 7"), "{outside}");
    }
}
