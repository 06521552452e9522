//! The bridge's bounded memory of what the store says about portals and ghosts, so a message
//! to a known portal from a known ghost costs no store read. Written through: the store stays
//! the source of truth across restarts, and a miss here only means one store read.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use ruma::{OwnedMxcUri, OwnedRoomId};

use crate::webqq::QqNumber;

/// Entries kept per map: portal rooms, ghost profiles and ghost memberships each.
pub(super) const CACHE_ENTRIES: usize = 50_000;

/// A map of at most about `capacity` entries in two generations: when the young one is full
/// it becomes the old one (the previous old one is dropped), and a hit in the old one moves the
/// entry back to the young one. A cheap LRU approximation: O(1), no per-entry bookkeeping.
#[derive(Debug)]
pub(super) struct Bounded<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    half: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    /// A map holding at most `capacity` entries (at least 2).
    pub(super) fn new(capacity: usize) -> Self {
        Bounded { young: HashMap::new(), old: HashMap::new(), half: (capacity / 2).max(1) }
    }

    /// The value of `key`, if remembered.
    pub(super) fn get(&mut self, key: &K) -> Option<V> {
        if let Some(value) = self.young.get(key) {
            return Some(value.clone());
        }
        let value = self.old.remove(key)?;
        self.insert(key.clone(), value.clone());
        Some(value)
    }

    /// Remembers `value` for `key`.
    pub(super) fn insert(&mut self, key: K, value: V) {
        if self.young.len() >= self.half && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&key);
        self.young.insert(key, value);
    }

    /// Forgets `key`.
    pub(super) fn remove(&mut self, key: &K) {
        self.young.remove(key);
        self.old.remove(key);
    }

    /// How many entries are held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// What the bridge last set on a ghost's profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct GhostProfile {
    /// The display name set, if any.
    pub(super) displayname: Option<String>,
    /// The hash of the face image set as avatar, if any.
    pub(super) avatar_hash: Option<String>,
    /// The avatar set, if any.
    pub(super) avatar_url: Option<OwnedMxcUri>,
}

/// A cached portal: its room and the name last set on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CachedPortal {
    /// The portal's room.
    pub(super) room: OwnedRoomId,
    /// The room name last set by the bridge.
    pub(super) name: Option<String>,
}

/// The maps, each behind its own short lock (never held across an await).
#[derive(Debug)]
pub(super) struct Caches {
    portals: Mutex<Bounded<String, CachedPortal>>,
    ghosts: Mutex<Bounded<QqNumber, GhostProfile>>,
    memberships: Mutex<Bounded<(QqNumber, OwnedRoomId), ()>>,
    /// QQ messages this process bridged, by [`bridged_key`]: a redelivery is known before
    /// the write-behind map row is in the store.
    bridged: Mutex<Bounded<String, ()>>,
}

/// The key of a QQ message in [`Caches`]' bridged set: portal key and QQ message key (a NUL
/// cannot occur in either).
fn bridged_key(portal_key: &str, remote_key: &str) -> String {
    let mut key = String::with_capacity(portal_key.len() + remote_key.len() + 1);
    key.push_str(portal_key);
    key.push('\0');
    key.push_str(remote_key);
    key
}

impl Caches {
    /// Empty maps of `capacity` entries each.
    pub(super) fn new(capacity: usize) -> Self {
        Caches {
            portals: Mutex::new(Bounded::new(capacity)),
            ghosts: Mutex::new(Bounded::new(capacity)),
            memberships: Mutex::new(Bounded::new(capacity)),
            bridged: Mutex::new(Bounded::new(capacity)),
        }
    }

    /// Whether QQ message `remote_key` of `portal_key` was bridged by this process (`false`:
    /// not known here, the store may know).
    pub(super) fn bridged(&self, portal_key: &str, remote_key: &str) -> bool {
        let key = bridged_key(portal_key, remote_key);
        self.bridged.lock().unwrap_or_else(PoisonError::into_inner).get(&key).is_some()
    }

    /// Remembers QQ message `remote_key` of `portal_key` as bridged.
    pub(super) fn set_bridged(&self, portal_key: &str, remote_key: &str) {
        let key = bridged_key(portal_key, remote_key);
        self.bridged.lock().unwrap_or_else(PoisonError::into_inner).insert(key, ());
    }

    /// The portal of `key`, if remembered.
    pub(super) fn portal(&self, key: &str) -> Option<CachedPortal> {
        self.portals.lock().unwrap_or_else(PoisonError::into_inner).get(&key.to_owned())
    }

    /// Remembers the portal of `key`.
    pub(super) fn set_portal(&self, key: &str, portal: CachedPortal) {
        self.portals.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned(), portal);
    }

    /// Forgets the portal of `key` (unbridged).
    pub(super) fn forget_portal(&self, key: &str) {
        self.portals.lock().unwrap_or_else(PoisonError::into_inner).remove(&key.to_owned());
    }

    /// The profile of `qq`'s ghost, if remembered (then the ghost is registered).
    pub(super) fn ghost(&self, qq: QqNumber) -> Option<GhostProfile> {
        self.ghosts.lock().unwrap_or_else(PoisonError::into_inner).get(&qq)
    }

    /// Remembers `qq`'s ghost as registered with `profile`.
    pub(super) fn set_ghost(&self, qq: QqNumber, profile: GhostProfile) {
        self.ghosts.lock().unwrap_or_else(PoisonError::into_inner).insert(qq, profile);
    }

    /// Whether `qq`'s ghost is known to be in `room` (`false`: not known, ask the store).
    pub(super) fn in_room(&self, qq: QqNumber, room: &OwnedRoomId) -> bool {
        self.memberships
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(qq, room.clone()))
            .is_some()
    }

    /// Remembers whether `qq`'s ghost is in `room`.
    pub(super) fn set_in_room(&self, qq: QqNumber, room: &OwnedRoomId, joined: bool) {
        let mut memberships = self.memberships.lock().unwrap_or_else(PoisonError::into_inner);
        if joined {
            memberships.insert((qq, room.clone()), ());
        } else {
            memberships.remove(&(qq, room.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bounded_keeps_at_most_its_capacity_and_the_recently_used() {
        let mut map = Bounded::new(4);
        for i in 0..100 {
            map.insert(i, i * 10);
            assert!(map.len() <= 4, "{} entries after {i}", map.len());
        }
        assert_eq!(map.get(&99), Some(990));
        assert_eq!(map.get(&0), None);
        // A hit in the old generation survives the next turnover.
        let mut map = Bounded::new(4);
        map.insert(1, 1);
        map.insert(2, 2);
        map.insert(3, 3); // 1 and 2 are old now
        assert_eq!(map.get(&1), Some(1)); // moved back to young
        map.insert(4, 4); // young full again: 1, 3 become old, 2 dropped
        map.insert(5, 5);
        assert_eq!(map.get(&2), None);
        assert_eq!(map.get(&1), Some(1));
        map.remove(&1);
        assert_eq!(map.get(&1), None);
    }

    #[test]
    fn test_caches_write_through_and_forget() {
        let caches = Caches::new(10);
        let room: OwnedRoomId = "!a:example.org".try_into().unwrap();
        let qq = QqNumber::new(10_002);
        assert!(caches.portal("group:1").is_none());
        caches.set_portal("group:1", CachedPortal { room: room.clone(), name: None });
        assert_eq!(caches.portal("group:1").map(|p| p.room), Some(room.clone()));
        assert!(!caches.in_room(qq, &room));
        caches.set_in_room(qq, &room, true);
        assert!(caches.in_room(qq, &room));
        caches.set_in_room(qq, &room, false);
        assert!(!caches.in_room(qq, &room));
        assert!(caches.ghost(qq).is_none());
        let profile =
            GhostProfile { displayname: Some("A (QQ)".into()), ..GhostProfile::default() };
        caches.set_ghost(qq, profile.clone());
        assert_eq!(caches.ghost(qq), Some(profile));
        assert!(!caches.bridged("friend:me:1", "a:1"));
        caches.set_bridged("friend:me:1", "a:1");
        assert!(caches.bridged("friend:me:1", "a:1"));
        // Portal and message keys are kept apart: no concatenation collides.
        assert!(!caches.bridged("friend:me:1a", ":1"));
        assert!(!caches.bridged("friend:me:2", "a:1"));
    }
}
