//! Ghosts: a QQ person's Matrix user registered once, named from the display-name template
//! (set only when the name changed), joined to a room once; each step remembered in the
//! bridge's caches and written through to the store.

use ruma::{OwnedRoomId, OwnedUserId};

use crate::store::Ghost;
use crate::webqq::QqNumber;
use crate::webqq::session::unix_now;

use super::cache::GhostProfile;
use super::{Bridge, BridgeError};

impl Bridge {
    /// The user id of `qq`'s ghost.
    pub(super) fn ghost_id(&self, qq: QqNumber) -> Result<OwnedUserId, BridgeError> {
        self.settings.ghosts.user_id(qq).ok_or_else(|| BridgeError::BadId(qq.to_string()))
    }

    /// The profile of `qq`'s ghost, registering the ghost first if the store never saw it
    /// registered. A cache hit costs nothing.
    async fn ghost_profile(&self, qq: QqNumber) -> Result<GhostProfile, BridgeError> {
        if let Some(profile) = self.caches.ghost(qq) {
            return Ok(profile);
        }
        let known = self.store.ghost(qq)?;
        let profile = known
            .as_ref()
            .map(|g| GhostProfile {
                displayname: g.displayname.clone(),
                avatar_hash: g.avatar_hash.clone(),
                avatar_url: g.avatar_url.clone(),
            })
            .unwrap_or_default();
        if known.as_ref().is_none_or(|g| !g.registered) {
            self.matrix.ensure_registered(&self.settings.ghosts.localpart(qq)).await?;
            self.store.upsert_ghost(&ghost_row(qq, &profile))?;
        }
        self.caches.set_ghost(qq, profile.clone());
        Ok(profile)
    }

    /// Whether `qq`'s ghost is registered, without registering it.
    pub(super) fn ghost_registered(&self, qq: QqNumber) -> Result<bool, BridgeError> {
        if self.caches.ghost(qq).is_some() {
            return Ok(true);
        }
        Ok(self.store.ghost(qq)?.is_some_and(|g| g.registered))
    }

    /// Whether `qq`'s ghost is in `room` (the cache, else the store).
    pub(super) fn ghost_is_in(
        &self,
        qq: QqNumber,
        room: &OwnedRoomId,
    ) -> Result<bool, BridgeError> {
        if self.caches.in_room(qq, room) {
            return Ok(true);
        }
        let joined = self.store.is_ghost_in_room(qq, room)?;
        if joined {
            self.caches.set_in_room(qq, room, true);
        }
        Ok(joined)
    }

    /// QQ number `qq`'s ghost, registered, named (`name` through the template; an empty name
    /// keeps what is set) and joined to `room`; its avatar is checked in the background
    /// through `account`'s session.
    pub(super) async fn ghost_in_room(
        &self,
        account: &str,
        qq: QqNumber,
        name: &str,
        room: &OwnedRoomId,
    ) -> Result<OwnedUserId, BridgeError> {
        let ghost = self.ghost_id(qq)?;
        let profile = self.ghost_profile(qq).await?;
        let wanted = displayname(&self.settings.displayname_template, name, qq);
        if let Some(wanted) = wanted.filter(|w| profile.displayname.as_ref() != Some(w)) {
            self.matrix.set_displayname(&ghost, wanted.clone()).await?;
            // Read again just before the write: the avatar task may have changed the profile.
            let mut latest = self.caches.ghost(qq).unwrap_or(profile);
            latest.displayname = Some(wanted);
            self.store.upsert_ghost(&ghost_row(qq, &latest))?;
            self.caches.set_ghost(qq, latest);
        }
        if !self.ghost_is_in(qq, room)? {
            // A ghost the store forgot may still be in the room: the invite is then refused
            // but the join (idempotent) succeeds.
            let invited = self.matrix.invite(room, &ghost, None).await;
            if let Err(error) = self.matrix.join(room, Some(&ghost)).await {
                return Err(invited.err().unwrap_or(error).into());
            }
            self.store.add_ghost_room(qq, room)?;
            self.caches.set_in_room(qq, room, true);
        }
        self.avatars.check(account, qq);
        Ok(ghost)
    }

    /// Forgets that `qq`'s ghost is in `room` (it left or was removed).
    pub(super) fn ghost_left(&self, qq: QqNumber, room: &OwnedRoomId) -> Result<(), BridgeError> {
        self.store.remove_ghost_room(qq, room)?;
        self.caches.set_in_room(qq, room, false);
        Ok(())
    }
}

/// The stored row of a registered ghost with `profile`.
pub(super) fn ghost_row(qq: QqNumber, profile: &GhostProfile) -> Ghost {
    Ghost {
        qq,
        registered: true,
        displayname: profile.displayname.clone(),
        avatar_hash: profile.avatar_hash.clone(),
        avatar_url: profile.avatar_url.clone(),
        updated_at: unix_now(),
    }
}

/// The display name of a ghost from `template` (`{name}`: the QQ name, `{qq}`: the number);
/// `None` when the QQ name is unknown, so a known name is never replaced by a placeholder.
pub(super) fn displayname(template: &str, name: &str, qq: QqNumber) -> Option<String> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some(template.replace("{qq}", &qq.to_string()).replace("{name}", name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_displayname_template() {
        let qq = QqNumber::new(10_002);
        let cases = [
            ("{name} (QQ)", "Alice", Some("Alice (QQ)")),
            ("{name} ({qq})", "Alice", Some("Alice (10002)")),
            ("{name}", "  spaced  ", Some("spaced")),
            // A name that looks like a placeholder is not expanded again.
            ("{name} (QQ)", "{qq}", Some("{qq} (QQ)")),
            ("{name} (QQ)", "", None),
            ("{name} (QQ)", "   ", None),
        ];
        for (template, name, expected) in cases {
            assert_eq!(displayname(template, name, qq).as_deref(), expected, "{template} {name}");
        }
    }
}
