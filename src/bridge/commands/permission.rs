//! Who may use the bridge (`bridge.permissions`, MATRIX.md §6.1): a user's [`Permission`] from
//! the most specific matching key, an account owner's right to their own account, and the
//! per-user flood limit on commands. Pure.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ruma::{OwnedUserId, UserId};

pub use crate::config::Permission;

/// The permission table of `bridge.permissions`.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    table: BTreeMap<String, Permission>,
}

impl Permissions {
    /// A table keyed by user id, server name or `*` (checked by the config).
    pub fn new(table: BTreeMap<String, Permission>) -> Self {
        Permissions { table }
    }

    /// The level the table gives `user`: its own key, else its server name's, else `*`'s,
    /// else [`Permission::Block`].
    pub fn level_of(&self, user: &UserId) -> Permission {
        self.matched(user).unwrap_or(Permission::Block)
    }

    /// The level of `user` when `owns_account` says whether some account is theirs (in
    /// `accounts[].owner` or logged in from Matrix): an owner the table does not mention keeps
    /// the use of their account ([`Permission::User`]); an explicit entry still wins, so an
    /// owner can be blocked.
    pub fn effective(&self, user: &UserId, owns_account: bool) -> Permission {
        match self.matched(user) {
            Some(level) => level,
            None if owns_account => Permission::User,
            None => Permission::Block,
        }
    }

    fn matched(&self, user: &UserId) -> Option<Permission> {
        self.table
            .get(user.as_str())
            .or_else(|| self.table.get(user.server_name().as_str()))
            .or_else(|| self.table.get("*"))
            .copied()
    }
}

/// Commands one user may send per minute before the bot stops answering them.
pub const COMMANDS_PER_MINUTE: u32 = 20;
/// Users remembered by the flood limiter; older windows are pruned past this.
const FLOOD_USERS: usize = 4096;
const FLOOD_WINDOW: Duration = Duration::from_secs(60);

/// What to do with a user's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// Run it.
    Allow,
    /// Answer "slow down" once, do not run it.
    SlowDown,
    /// Ignore it silently (the user was told).
    Ignore,
}

/// Counts commands per user in fixed one-minute windows.
#[derive(Debug)]
pub struct FloodLimiter {
    per_minute: u32,
    windows: HashMap<OwnedUserId, (Instant, u32)>,
}

impl FloodLimiter {
    /// A limiter allowing `per_minute` commands per user and minute.
    pub fn new(per_minute: u32) -> Self {
        FloodLimiter { per_minute, windows: HashMap::new() }
    }

    /// Counts a command of `user` at `now`.
    pub fn check(&mut self, user: &UserId, now: Instant) -> Flood {
        if self.windows.len() >= FLOOD_USERS {
            self.windows
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < FLOOD_WINDOW);
        }
        let window = self.windows.entry(user.to_owned()).or_insert((now, 0));
        if now.saturating_duration_since(window.0) >= FLOOD_WINDOW {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        match window.1 {
            n if n <= self.per_minute => Flood::Allow,
            n if n == self.per_minute.saturating_add(1) => Flood::SlowDown,
            _ => Flood::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> OwnedUserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn test_most_specific_key_wins() {
        let table = Permissions::new(BTreeMap::from([
            ("*".to_owned(), Permission::Relay),
            ("example.org".to_owned(), Permission::User),
            ("@boss:example.org".to_owned(), Permission::Admin),
            ("@troll:example.org".to_owned(), Permission::Block),
        ]));
        // (user, level)
        let cases = [
            ("@boss:example.org", Permission::Admin),
            ("@troll:example.org", Permission::Block),
            ("@alice:example.org", Permission::User),
            ("@alice:other.net", Permission::Relay),
        ];
        for (id, want) in cases {
            assert_eq!(table.level_of(&user(id)), want, "{id}");
        }
        let empty = Permissions::default();
        assert_eq!(empty.level_of(&user("@a:b")), Permission::Block);
    }

    #[test]
    fn test_owners_keep_their_account_unless_named() {
        let table = Permissions::new(BTreeMap::from([("@banned:x".to_owned(), Permission::Block)]));
        assert_eq!(table.effective(&user("@owner:x"), true), Permission::User);
        assert_eq!(table.effective(&user("@stranger:x"), false), Permission::Block);
        assert_eq!(table.effective(&user("@banned:x"), true), Permission::Block);
    }

    #[test]
    fn test_permission_order() {
        assert!(Permission::Block < Permission::Relay);
        assert!(Permission::Relay < Permission::User);
        assert!(Permission::User < Permission::Admin);
    }

    #[test]
    fn test_flood_limiter_slows_down_once_then_ignores() {
        let mut limiter = FloodLimiter::new(3);
        let (a, b) = (user("@a:x"), user("@b:x"));
        let start = Instant::now();
        let got: Vec<Flood> = (0..6).map(|_| limiter.check(&a, start)).collect();
        use Flood::*;
        assert_eq!(got, [Allow, Allow, Allow, SlowDown, Ignore, Ignore]);
        assert_eq!(limiter.check(&b, start), Allow, "users are counted apart");
        assert_eq!(limiter.check(&a, start + FLOOD_WINDOW), Allow, "a new minute starts over");
    }
}
