//! Portal rooms: a portal's room created on first use or by a contact sync (direct for friends,
//! with the `m.bridge` state; a group named from QQ with its memo as topic and its first
//! members' ghosts joined), renamed when QQ's name changes, remembered in the caches.

use std::sync::PoisonError;

use futures_util::StreamExt as _;
use ruma::api::client::room::{Visibility, create_room};
use ruma::events::room::name::RoomNameEventContent;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, UserId};

use crate::account::manager::{GetGroupInfo, GroupSnapshot};
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::store::Portal;
use crate::webqq::session::unix_now;
use crate::webqq::{GroupNumber, QqNumber};

use super::cache::CachedPortal;
use super::{Bridge, BridgeError};

/// Member ghosts joined to a new portal at once.
const JOIN_CONCURRENCY: usize = 8;

/// The members a new group portal still waits for.
#[derive(Debug)]
pub(super) struct PendingJoins {
    /// The account whose session knows them (for their avatars).
    account: String,
    /// Their numbers and names.
    members: Vec<(QqNumber, String)>,
}

impl Bridge {
    /// The portal of `key` if it has a room: from memory, else from the store (then
    /// remembered).
    pub(super) fn known_portal(&self, key: &str) -> Result<Option<CachedPortal>, BridgeError> {
        if let Some(portal) = self.caches.portal(key) {
            return Ok(Some(portal));
        }
        let Some(portal) = self.store.portal(key)? else { return Ok(None) };
        let Some(room) = portal.room_id else { return Ok(None) };
        let cached = CachedPortal { room, name: portal.name };
        self.caches.set_portal(key, cached.clone());
        Ok(Some(cached))
    }

    /// The room of portal `key` for `chat`, created (with the owner invited) when it has none
    /// yet; a known portal whose QQ name changed is renamed.
    pub(super) async fn portal_room(
        &self,
        account: &str,
        owner: &UserId,
        key: &str,
        chat: &ChatKey,
        name: Option<&str>,
    ) -> Result<OwnedRoomId, BridgeError> {
        let name = name.filter(|n| !n.trim().is_empty());
        match self.known_portal(key)? {
            Some(portal) => {
                if let Some(name) = name.filter(|n| portal.name.as_deref() != Some(*n)) {
                    self.rename_portal(key, &portal, name).await;
                }
                Ok(portal.room)
            }
            None => self.create_portal(account, owner, key, chat, name).await,
        }
    }

    /// Sets a portal's room name to QQ's; a failure is logged (the message still goes).
    async fn rename_portal(&self, key: &str, portal: &CachedPortal, name: &str) {
        let content = RoomNameEventContent::new(name.to_owned());
        let renamed = async {
            self.matrix.send_state(&portal.room, None, "", &content, None).await?;
            if let Some(mut row) = self.store.portal(key)? {
                row.name = Some(name.to_owned());
                self.store.upsert_portal(&row)?;
            }
            Ok::<_, BridgeError>(())
        };
        match renamed.await {
            Ok(()) => {
                let renamed =
                    CachedPortal { room: portal.room.clone(), name: Some(name.to_owned()) };
                self.caches.set_portal(key, renamed);
            }
            Err(error) => tracing::warn!(portal = %key, %error, "portal not renamed"),
        }
    }

    async fn create_portal(
        &self,
        account: &str,
        owner: &UserId,
        key: &str,
        chat: &ChatKey,
        name: Option<&str>,
    ) -> Result<OwnedRoomId, BridgeError> {
        let group = match chat {
            ChatKey::Group(group) => self.group_snapshot(account, *group).await,
            _ => None,
        };
        let name = group
            .as_ref()
            .map(|g| g.name.as_str())
            .filter(|n| !n.trim().is_empty())
            .or(name)
            .map(str::to_owned);
        let topic = group.as_ref().map(|g| g.memo.trim().to_owned()).filter(|m| !m.is_empty());
        let mut request = create_room::v3::Request::new();
        request.visibility = Visibility::Private;
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        request.is_direct = matches!(chat, ChatKey::Friend(_));
        request.invite = vec![owner.to_owned()];
        request.name = name.clone();
        request.topic = topic.clone();
        request.initial_state = bridge_state(&self.settings.bot, owner, chat, name.as_deref());
        let room = self.matrix.create_room(request, None).await?;
        self.store.upsert_portal(&Portal {
            portal_key: key.to_owned(),
            kind: ids::kind_of(chat).to_owned(),
            account_id: Some(account.to_owned()),
            remote_id: ids::remote_id(chat),
            room_id: Some(room.clone()),
            name: name.clone(),
            topic,
            avatar_url: None,
            encrypted: false,
            created_at: unix_now(),
        })?;
        self.caches.set_portal(key, CachedPortal { room: room.clone(), name: name.clone() });
        tracing::info!(%account, portal = %key, %room, "portal created");
        self.add_to_space(account, owner, &room).await;
        match (chat, group) {
            (ChatKey::Friend(friend), _) => {
                let members = vec![(*friend, name.unwrap_or_default())];
                self.join_members(account, &room, members).await;
            }
            (ChatKey::Group(_), Some(group)) if !group.members.is_empty() => {
                let pending = PendingJoins { account: account.to_owned(), members: group.members };
                self.pending_joins
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(room.clone(), pending);
            }
            _ => {}
        }
        Ok(room)
    }

    /// Joins the members a new group portal still waits for (none for other rooms): called
    /// after the message that made the portal is on Matrix, so the first message does not wait
    /// for the joins.
    pub(super) async fn join_pending(&self, room: &OwnedRoomId) {
        let pending =
            self.pending_joins.lock().unwrap_or_else(PoisonError::into_inner).remove(room);
        if let Some(pending) = pending {
            self.join_members(&pending.account, room, pending.members).await;
        }
    }

    /// A group's name, memo and first members through `account`; `None` (logged) when QQ
    /// cannot tell: the portal is then made from what the message knew.
    pub(super) async fn group_snapshot(
        &self,
        account: &str,
        group: GroupNumber,
    ) -> Option<GroupSnapshot> {
        let query = GetGroupInfo {
            account: account.to_owned(),
            group,
            limit: self.settings.initial_group_members,
        };
        match self.accounts.send(query).await {
            Ok(Ok(snapshot)) => Some(snapshot),
            Ok(Err(error)) => {
                tracing::info!(%account, %group, %error, "group details not known");
                None
            }
            Err(_) => None,
        }
    }

    /// Joins the ghosts of `members` to a new portal, a few at a time: a big group's portal is
    /// usable at once, and `bridge.initial_group_members` bounds how many join (the others join
    /// when they first speak). A ghost that cannot join is logged and skipped.
    pub(super) async fn join_members(
        &self,
        account: &str,
        room: &OwnedRoomId,
        members: Vec<(QqNumber, String)>,
    ) {
        let joins =
            futures_util::stream::iter(members)
                .map(|(qq, name)| async move {
                    (qq, self.ghost_in_room(account, qq, &name, room).await)
                })
                .buffer_unordered(JOIN_CONCURRENCY);
        futures_util::pin_mut!(joins);
        while let Some((qq, joined)) = joins.next().await {
            if let Err(error) = joined {
                tracing::warn!(%account, %room, %qq, %error, "member ghost did not join");
            }
        }
    }
}

/// The `m.bridge` state of a new portal (MSC2346), under both the stable and the older
/// `uk.half-shot.bridge` type that existing clients read (MATRIX.md §6.7).
fn bridge_state(
    bot: &UserId,
    owner: &UserId,
    chat: &ChatKey,
    name: Option<&str>,
) -> Vec<Raw<ruma::events::AnyInitialStateEvent>> {
    let kind = ids::kind_of(chat);
    let id = ids::remote_id(chat);
    let content = super::attach::bridge_info(bot, owner, chat, name);
    ids::BRIDGE_STATE_TYPES
        .into_iter()
        .filter_map(|event_type| {
            let event = serde_json::json!({
                "type": event_type,
                "state_key": ids::bridge_state_key(kind, &id),
                "content": content,
            });
            serde_json::value::to_raw_value(&event).ok().map(Raw::from_json)
        })
        .collect()
}
