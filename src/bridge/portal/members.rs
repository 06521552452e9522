//! Group membership and presence, QQ → Matrix: a member joining or leaving a group becomes the
//! ghost joining or leaving its portal (a removal by an admin: the bot kicks the ghost, saying
//! who), the account's own joins and leaves a notice to its owner, and friends' online status
//! ghost presence (`bridge.presence`, off by default).

use ruma::presence::PresenceState;

use crate::account::resolve::Membership;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::webqq::QqNumber;

use super::{Bridge, BridgeError};

/// The Matrix presence of a QQ status word (protocol §0.5, §4.6); `None` for a word this build
/// does not know (then nothing is set).
pub fn presence_of(status: &str) -> Option<PresenceState> {
    match status {
        "online" | "callme" => Some(PresenceState::Online),
        "away" | "busy" | "silent" => Some(PresenceState::Unavailable),
        "offline" | "hidden" => Some(PresenceState::Offline),
        _ => None,
    }
}

/// How a group is named in a notice.
fn group_label(change: &Membership) -> String {
    match change.group_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({})", change.group),
        None => change.group.to_string(),
    }
}

impl Bridge {
    /// Someone joined a group of `account`: their ghost joins the group's portal if it exists
    /// (a portal is never created for a join); the account itself joining tells the owner.
    pub async fn qq_member_joined(
        &self,
        account: &str,
        change: &Membership,
    ) -> Result<(), BridgeError> {
        if change.is_self {
            let text = format!("QQ account {account} joined the group {}.", group_label(change));
            self.tell_owner(account, &text).await;
            return Ok(());
        }
        let key = ids::portal_key(account, &ChatKey::Group(change.group));
        let Some(portal) = self.known_portal(&key)? else { return Ok(()) };
        self.ghost_in_room(account, change.member, &change.name, &portal.room).await?;
        Ok(())
    }

    /// Someone left a group of `account`: their ghost leaves the portal, or is kicked by the bot
    /// with the admin's name when an admin removed them. The account itself leaving tells the
    /// owner (the portal stays: other bridged accounts may still be in the group).
    pub async fn qq_member_left(
        &self,
        account: &str,
        change: &Membership,
    ) -> Result<(), BridgeError> {
        if change.is_self {
            let how = match &change.removed_by {
                Some(admin) => {
                    format!("was removed from the group {} by {admin}", group_label(change))
                }
                None => format!("left the group {}", group_label(change)),
            };
            self.tell_owner(account, &format!("QQ account {account} {how}.")).await;
            return Ok(());
        }
        let key = ids::portal_key(account, &ChatKey::Group(change.group));
        let Some(portal) = self.known_portal(&key)? else { return Ok(()) };
        if !self.ghost_is_in(change.member, &portal.room)? {
            return Ok(());
        }
        let ghost = self.ghost_id(change.member)?;
        match &change.removed_by {
            Some(admin) => {
                let reason = format!("removed from the QQ group by {admin}");
                self.matrix.kick(&portal.room, &ghost, Some(reason)).await?;
            }
            None => {
                let reason = Some("left the QQ group".to_owned());
                self.matrix.leave_with_reason(&portal.room, Some(&ghost), reason).await?;
            }
        }
        self.ghost_left(change.member, &portal.room)
    }

    /// A friend's online status as their ghost's presence, when `bridge.presence` is on and the
    /// ghost exists (a status change never registers a ghost).
    pub async fn qq_presence(&self, friend: QqNumber, status: &str) -> Result<(), BridgeError> {
        if !self.settings.presence {
            return Ok(());
        }
        let Some(presence) = presence_of(status) else { return Ok(()) };
        if !self.ghost_registered(friend)? {
            return Ok(());
        }
        let ghost = self.ghost_id(friend)?;
        self.matrix.set_presence(&ghost, presence).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::GroupNumber;

    #[test]
    fn test_presence_of_each_qq_status() {
        let cases = [
            ("online", Some(PresenceState::Online)),
            ("callme", Some(PresenceState::Online)),
            ("away", Some(PresenceState::Unavailable)),
            ("busy", Some(PresenceState::Unavailable)),
            ("silent", Some(PresenceState::Unavailable)),
            ("offline", Some(PresenceState::Offline)),
            ("hidden", Some(PresenceState::Offline)),
            ("Online", None),
            ("", None),
        ];
        for (status, expected) in cases {
            assert_eq!(presence_of(status), expected, "{status}");
        }
    }

    #[test]
    fn test_group_label_falls_back_to_the_number() {
        let mut change = Membership {
            group: GroupNumber::new(42),
            group_name: Some("Rust".into()),
            member: QqNumber::new(1),
            name: String::new(),
            is_self: true,
            removed_by: None,
        };
        assert_eq!(group_label(&change), "Rust (42)");
        change.group_name = Some(String::new());
        assert_eq!(group_label(&change), "42");
        change.group_name = None;
        assert_eq!(group_label(&change), "42");
    }
}
