//! What the bot's commands (`bridge/commands/`) reach of the bridge: the owners of accounts
//! logged in from Matrix beside the config's, each user's management room, a friend's portal
//! opened on request, and the clients the commands answer through.

use std::sync::{Arc, PoisonError};

use actix::Addr;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::account::manager::AccountManager;
use crate::account::send_queue::ChatKey;
use crate::bridge::commands::Commands;
use crate::bridge::ids;
use crate::matrix::client::MatrixClient;
use crate::store::Store;

use super::management::management_key;
use super::{Bridge, BridgeError};

impl Bridge {
    /// The Matrix owner of `account`: the config's, else the one who logged it in from Matrix.
    pub fn owner_of(&self, account: &str) -> Option<OwnedUserId> {
        if let Some(owner) = self.settings.owners.get(account) {
            return Some(owner.clone());
        }
        self.bot_owners.read().unwrap_or_else(PoisonError::into_inner).get(account).cloned()
    }

    /// Every account `user` owns (config and Matrix logins), by id.
    pub fn accounts_of(&self, user: &UserId) -> Vec<String> {
        let mut accounts: Vec<String> = self
            .settings
            .owners
            .iter()
            .filter(|(_, owner)| owner.as_str() == user.as_str())
            .map(|(account, _)| account.clone())
            .collect();
        let bot = self.bot_owners.read().unwrap_or_else(PoisonError::into_inner);
        accounts.extend(
            bot.iter().filter(|(_, owner)| owner.as_str() == user.as_str()).map(|(a, _)| a.clone()),
        );
        accounts
    }

    /// The config's owners, by account.
    pub fn config_owners(&self) -> &std::collections::BTreeMap<String, OwnedUserId> {
        &self.settings.owners
    }

    /// Records `owner` as the owner of `account`, logged in from Matrix.
    pub fn set_bot_owner(&self, account: &str, owner: &UserId) {
        let mut owners = self.bot_owners.write().unwrap_or_else(PoisonError::into_inner);
        owners.insert(account.to_owned(), owner.to_owned());
    }

    /// Forgets the owner of `account`, logged out from Matrix.
    pub fn forget_bot_owner(&self, account: &str) {
        self.bot_owners.write().unwrap_or_else(PoisonError::into_inner).remove(account);
    }

    /// Routes Matrix events that are commands, invites of the bot and non-portal messages to
    /// `commands` from now on.
    pub fn set_commands(&self, commands: Arc<Commands>) {
        let _ = self.commands.set(commands);
    }

    /// The command handler, once set.
    pub(super) fn commands(&self) -> Option<Arc<Commands>> {
        self.commands.get().cloned()
    }

    /// `user`'s management room, if they have one (created by the bridge or invited by them).
    pub async fn management_room_of(&self, user: &UserId) -> Option<OwnedRoomId> {
        if let Some(room) = self.management.lock().await.get(user) {
            return Some(room.clone());
        }
        let stored = self.store.kv_get(&management_key(user)).ok().flatten()?;
        RoomId::parse(stored).ok()
    }

    /// `user`'s management room, created on first use.
    pub async fn ensure_management_room(&self, user: &UserId) -> Result<OwnedRoomId, BridgeError> {
        self.management_room(user).await
    }

    /// Makes `room` `user`'s management room (a DM they invited the bot to).
    pub async fn set_management_room(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<(), BridgeError> {
        self.store.kv_set(&management_key(user), room.as_str())?;
        self.management.lock().await.insert(user.to_owned(), room.to_owned());
        Ok(())
    }

    /// The DM portal of `account` with friend `qq`, created (owner invited) when missing.
    pub async fn open_friend_chat(
        &self,
        account: &str,
        qq: u64,
    ) -> Result<OwnedRoomId, BridgeError> {
        let owner = self.owner(account)?;
        let chat = ChatKey::Friend(crate::webqq::QqNumber::new(qq));
        let key = ids::portal_key(account, &chat);
        let room = self.portal_room(account, &owner, &key, &chat, None).await?;
        Ok(room)
    }

    /// The bot's Matrix client.
    pub fn matrix(&self) -> &MatrixClient {
        &self.matrix
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The account manager.
    pub fn accounts(&self) -> &Addr<AccountManager> {
        &self.accounts
    }

    /// The bot's user id.
    pub fn bot(&self) -> &UserId {
        &self.settings.bot
    }
}
