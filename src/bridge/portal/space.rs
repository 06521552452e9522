//! The space of each account (MSC1772, mautrix's personal filtering space): one `m.space` room
//! per QQ account, the owner invited, every portal of the account added as a child, so a client
//! can show an account's chats together.

use ruma::api::client::room::{Visibility, create_room};
use ruma::events::space::child::SpaceChildEventContent;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UserId};

use super::{Bridge, BridgeError};

impl Bridge {
    /// Adds `portal` to `account`'s space, creating the space (owner invited) on first use. A
    /// failure here leaves the portal working: it is logged, not returned to the message flow.
    pub(super) async fn add_to_space(&self, account: &str, owner: &UserId, portal: &RoomId) {
        if let Err(error) = self.try_add_to_space(account, owner, portal).await {
            tracing::warn!(%account, %portal, %error, "portal not added to the account's space");
        }
    }

    async fn try_add_to_space(
        &self,
        account: &str,
        owner: &UserId,
        portal: &RoomId,
    ) -> Result<(), BridgeError> {
        let space = match self.store.space(account)? {
            Some(space) => space,
            None => self.create_space(account, owner).await?,
        };
        let via = vec![self.settings.bot.server_name().to_owned()];
        self.matrix
            .send_state(&space, None, portal.as_str(), &SpaceChildEventContent::new(via), None)
            .await?;
        Ok(())
    }

    async fn create_space(
        &self,
        account: &str,
        owner: &UserId,
    ) -> Result<OwnedRoomId, BridgeError> {
        let mut request = create_room::v3::Request::new();
        request.visibility = Visibility::Private;
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        request.invite = vec![owner.to_owned()];
        request.name = Some(format!("QQ ({account})"));
        request.topic = Some(format!("The chats of QQ account {account}, bridged"));
        let creation = serde_json::json!({"type": "m.space"});
        request.creation_content =
            serde_json::value::to_raw_value(&creation).ok().map(Raw::from_json);
        let space = self.matrix.create_room(request, None).await?;
        self.store.set_space(account, &space)?;
        tracing::info!(%account, %space, "account space created");
        Ok(space)
    }
}
