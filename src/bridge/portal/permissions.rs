//! [`NoticeLimiter`]: at most one refusal notice per Matrix user, portal and reason per window,
//! so a person told once ("only the owner's messages are bridged") is not told again for every
//! message, and a chatty room cannot make the bot flood it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often one user is told the same refusal in one portal (issue 4, "Bad input").
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(3600);

/// Entries kept before old ones are pruned.
const MAX_ENTRIES: usize = 4096;

/// Why a notice is limited; each reason has its own window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The sender is not the portal's owner.
    NotOwner,
    /// The event is encrypted.
    Encrypted,
    /// The event type has no QQ counterpart (reactions).
    Unsupported,
    /// The sender is blocked by `bridge.permissions`.
    Blocked,
}

/// Remembers when each (portal, user, reason) was last told.
#[derive(Debug)]
pub struct NoticeLimiter {
    window: Duration,
    told: HashMap<(String, String, Refusal), Instant>,
}

impl NoticeLimiter {
    /// A limiter allowing one notice per key per `window`.
    pub fn new(window: Duration) -> NoticeLimiter {
        NoticeLimiter { window, told: HashMap::new() }
    }

    /// Whether `user` may be told `refusal` in `portal_key` at `now`; a `true` starts the window.
    pub fn allow(&mut self, portal_key: &str, user: &str, refusal: Refusal, now: Instant) -> bool {
        let key = (portal_key.to_owned(), user.to_owned(), refusal);
        if let Some(last) = self.told.get(&key)
            && now.saturating_duration_since(*last) < self.window
        {
            return false;
        }
        if self.told.len() >= MAX_ENTRIES {
            let window = self.window;
            self.told.retain(|_, last| now.saturating_duration_since(*last) < window);
        }
        self.told.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_one_notice_per_user_portal_and_reason_per_window() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut limiter = NoticeLimiter::new(REFUSAL_WINDOW);
        // (portal, user, reason, seconds since start, allowed)
        let cases = [
            ("p1", "@bob:x", Refusal::NotOwner, 0, true),
            ("p1", "@bob:x", Refusal::NotOwner, 10, false),
            ("p1", "@bob:x", Refusal::Encrypted, 10, true),
            ("p1", "@eve:x", Refusal::NotOwner, 10, true),
            ("p2", "@bob:x", Refusal::NotOwner, 10, true),
            ("p1", "@bob:x", Refusal::NotOwner, 3599, false),
            ("p1", "@bob:x", Refusal::NotOwner, 3600, true),
            ("p1", "@bob:x", Refusal::NotOwner, 3700, false),
        ];
        for (portal, user, reason, secs, allowed) in cases {
            assert_eq!(
                limiter.allow(portal, user, reason, at(secs)),
                allowed,
                "{portal} {user} {reason:?} at {secs}s"
            );
        }
    }

    #[test]
    fn test_memory_is_bounded() {
        let start = Instant::now();
        let mut limiter = NoticeLimiter::new(Duration::from_secs(1));
        for i in 0..(MAX_ENTRIES * 3) {
            let now = start + Duration::from_millis(u64::try_from(i).unwrap());
            assert!(limiter.allow("p", &format!("@u{i}:x"), Refusal::NotOwner, now));
        }
        assert!(limiter.told.len() <= MAX_ENTRIES, "{}", limiter.told.len());
    }
}
