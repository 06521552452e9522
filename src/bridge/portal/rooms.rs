//! Portal rooms and ghosts: a portal's room created on first use (direct for friends, with the
//! `m.bridge` state), and a QQ person's ghost registered, named and joined to a room.

use ruma::api::client::room::{Visibility, create_room};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::account::resolve::QqMessage;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::store::Portal;
use crate::webqq::QqNumber;
use crate::webqq::session::unix_now;

use super::{Bridge, BridgeError};

impl Bridge {
    /// The room of portal `key`, created (with the owner invited) when it has none yet.
    pub(super) async fn portal_room(
        &self,
        account: &str,
        owner: &UserId,
        key: &str,
        msg: &QqMessage,
    ) -> Result<OwnedRoomId, BridgeError> {
        if let Some(room) = self.store.portal(key)?.and_then(|p| p.room_id) {
            return Ok(room);
        }
        let name = msg.chat_name.clone().filter(|n| !n.is_empty());
        let mut request = create_room::v3::Request::new();
        request.visibility = Visibility::Private;
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        request.is_direct = matches!(msg.chat, ChatKey::Friend(_));
        request.invite = vec![owner.to_owned()];
        request.name = name.clone();
        request.initial_state = bridge_state(&self.settings.bot, owner, &msg.chat, name.as_deref());
        let room = self.matrix.create_room(request, None).await?;
        self.store.upsert_portal(&Portal {
            portal_key: key.to_owned(),
            kind: ids::kind_of(&msg.chat).to_owned(),
            account_id: Some(account.to_owned()),
            remote_id: ids::remote_id(&msg.chat),
            room_id: Some(room.clone()),
            name,
            topic: None,
            avatar_url: None,
            encrypted: false,
            created_at: unix_now(),
        })?;
        tracing::info!(%account, portal = %key, %room, "portal created");
        self.add_to_space(account, owner, &room).await;
        Ok(room)
    }

    /// QQ number `qq`'s ghost, registered, named and joined to `room`.
    pub(super) async fn ghost_in_room(
        &self,
        qq: QqNumber,
        name: &str,
        room: &RoomId,
    ) -> Result<OwnedUserId, BridgeError> {
        let ghost =
            self.settings.ghosts.user_id(qq).ok_or_else(|| BridgeError::BadId(qq.to_string()))?;
        let known = self.store.ghost(qq)?;
        let displayname = self
            .settings
            .displayname_template
            .replace("{name}", if name.is_empty() { "QQ user" } else { name });
        if known.as_ref().is_none_or(|g| !g.registered) {
            self.matrix.ensure_registered(&self.settings.ghosts.localpart(qq)).await?;
        }
        if known.as_ref().and_then(|g| g.displayname.as_deref()) != Some(displayname.as_str())
            && !name.is_empty()
        {
            self.matrix.set_displayname(&ghost, displayname.clone()).await?;
            self.store.upsert_ghost(&crate::store::Ghost {
                qq,
                registered: true,
                displayname: Some(displayname),
                avatar_hash: known.as_ref().and_then(|g| g.avatar_hash.clone()),
                avatar_url: known.as_ref().and_then(|g| g.avatar_url.clone()),
                updated_at: unix_now(),
            })?;
        } else if known.is_none() {
            self.store.upsert_ghost(&crate::store::Ghost {
                qq,
                registered: true,
                displayname: None,
                avatar_hash: None,
                avatar_url: None,
                updated_at: unix_now(),
            })?;
        }
        if !self.store.is_ghost_in_room(qq, room)? {
            self.matrix.invite(room, &ghost, None).await?;
            self.matrix.join(room, Some(&ghost)).await?;
            self.store.add_ghost_room(qq, room)?;
        }
        Ok(ghost)
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
    let content = serde_json::json!({
        "bridgebot": bot,
        "creator": owner,
        "protocol": {"id": "qq", "displayname": "QQ"},
        "channel": {"id": id, "displayname": name.unwrap_or_default()},
    });
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
