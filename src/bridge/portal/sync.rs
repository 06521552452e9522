//! Portal creation by contact sync (`bridge.portal_creation: on_sync`): once an account is
//! connected and its contact lists are loaded, a portal for every friend, group and discussion,
//! a few at a time, once per account and process. Idempotent: existing portals are kept.

use std::time::Duration;

use futures_util::StreamExt as _;

use crate::account::manager::GetDirectory;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::config::PortalCreation;
use crate::webqq::directory::Directory;

use super::{Bridge, BridgeError};

/// Portals created at once during a sync.
const SYNC_CONCURRENCY: usize = 4;
/// How often, and how many times, to ask whether the contact lists are loaded: they load after
/// the session opens, on the login permits (ARCHITECTURE.md, account/).
const DIRECTORY_POLL: Duration = Duration::from_millis(250);
const DIRECTORY_TRIES: usize = 240;

/// The chats of a directory with their names: friends and groups whose permanent number is
/// known (a chat without one cannot be keyed, STYLE.md §6), and every discussion.
pub(super) fn chats_of(directory: &Directory) -> Vec<(ChatKey, String)> {
    let friends = directory.friends.values().filter_map(|f| {
        let name = f.markname.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| f.nick.clone());
        Some((ChatKey::Friend(f.qq?), name))
    });
    let groups =
        directory.groups.values().filter_map(|g| Some((ChatKey::Group(g.number?), g.name.clone())));
    let discussions =
        directory.discussions.values().map(|d| (ChatKey::Discussion(d.did), d.name.clone()));
    friends.chain(groups).chain(discussions).collect()
}

impl Bridge {
    /// On a connect: syncs `account`'s contacts to portals if `bridge.portal_creation` says so
    /// and this process has not done it yet.
    pub(super) async fn sync_on_connect(&self, account: &str) {
        if self.settings.portal_creation != PortalCreation::OnSync {
            return;
        }
        let first = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(account.to_owned());
        if !first {
            return;
        }
        match self.sync_portals(account).await {
            Ok(created) => {
                tracing::info!(%account, portals = created, "contacts synced to portals")
            }
            Err(error) => {
                tracing::warn!(%account, %error, "contacts not synced to portals");
                // The next connect tries again.
                self.synced
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(account);
            }
        }
    }

    /// A portal for every chat of `account`'s contact lists; answers how many portals are
    /// there (created now or before).
    pub async fn sync_portals(&self, account: &str) -> Result<usize, BridgeError> {
        let owner = self.owner(account)?;
        let mut directory = None;
        for _ in 0..DIRECTORY_TRIES {
            let query = GetDirectory { account: account.to_owned() };
            directory = self.accounts.send(query).await.ok().flatten();
            if directory.is_some() {
                break;
            }
            tokio::time::sleep(DIRECTORY_POLL).await;
        }
        let directory = directory.ok_or_else(|| BridgeError::NotReady(account.to_owned()))?;
        let owner = &owner;
        let portals = futures_util::stream::iter(chats_of(&directory))
            .map(|(chat, name)| async move {
                let key = ids::portal_key(account, &chat);
                let made = self.portal_room(account, owner, &key, &chat, Some(&name)).await;
                if let Ok(room) = &made {
                    self.join_pending(room).await;
                }
                (key, made)
            })
            .buffer_unordered(SYNC_CONCURRENCY);
        futures_util::pin_mut!(portals);
        let mut ready = 0;
        while let Some((key, made)) = portals.next().await {
            match made {
                Ok(_) => ready += 1,
                Err(error) => tracing::warn!(%account, portal = %key, %error, "portal not synced"),
            }
        }
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::directory::{Discussion, Friend, Group};
    use crate::webqq::{Did, Gid, GroupCode, GroupNumber, QqNumber, Uin};

    #[test]
    fn test_chats_of_keeps_only_keyable_chats_with_their_names() {
        let mut directory = Directory::default();
        for (uin, qq, markname) in
            [(1, Some(10_002), Some("Al")), (2, None, None), (3, Some(10_004), Some(""))]
        {
            directory.friends.insert(
                Uin::new(uin),
                Friend {
                    uin: Uin::new(uin),
                    qq: qq.map(QqNumber::new),
                    nick: format!("nick{uin}"),
                    markname: markname.map(str::to_owned),
                    category: 0,
                    face: 0,
                },
            );
        }
        for (gid, number) in [(7, Some(346)), (8, None)] {
            directory.groups.insert(
                Gid::new(gid),
                Group {
                    gid: Gid::new(gid),
                    code: GroupCode::new(gid),
                    number: number.map(GroupNumber::new),
                    name: format!("group{gid}"),
                },
            );
        }
        directory
            .discussions
            .insert(Did::new(9), Discussion { did: Did::new(9), name: "d".into() });
        assert_eq!(
            chats_of(&directory),
            vec![
                (ChatKey::Friend(QqNumber::new(10_002)), "Al".to_owned()),
                (ChatKey::Friend(QqNumber::new(10_004)), "nick3".to_owned()),
                (ChatKey::Group(GroupNumber::new(346)), "group7".to_owned()),
                (ChatKey::Discussion(Did::new(9)), "d".to_owned()),
            ]
        );
    }
}
