//! [`Limiter`]: requests per Matrix user per minute for the provisioning API, so one user (or a
//! leaked secret) cannot make the bridge start logins in a loop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The window the limit counts over.
const WINDOW: Duration = Duration::from_secs(60);

/// Users remembered; beyond it windows that are over are pruned, then the oldest.
const MAX_USERS: usize = 10_000;

/// Fixed one-minute windows per user.
#[derive(Debug)]
pub(super) struct Limiter {
    per_window: u32,
    windows: HashMap<String, (Instant, u32)>,
}

impl Limiter {
    /// A limiter allowing `per_window` requests per user per minute.
    pub(super) fn new(per_window: u32) -> Limiter {
        Limiter { per_window, windows: HashMap::new() }
    }

    /// Counts a request of `user` at `now`: `Ok` when allowed, else the time until the window
    /// ends.
    pub(super) fn check(&mut self, user: &str, now: Instant) -> Result<(), Duration> {
        if self.windows.len() >= MAX_USERS && !self.windows.contains_key(user) {
            self.windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if self.windows.len() >= MAX_USERS {
                let oldest =
                    self.windows.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| k.clone());
                if let Some(key) = oldest {
                    self.windows.remove(&key);
                }
            }
        }
        let entry = self.windows.entry(user.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_window {
            return Err(WINDOW.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limit_per_user_and_window() {
        let mut limiter = Limiter::new(2);
        let t0 = Instant::now();
        assert_eq!(limiter.check("@a:x", t0), Ok(()));
        assert_eq!(limiter.check("@a:x", t0), Ok(()));
        let wait = limiter.check("@a:x", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(limiter.check("@b:x", t0), Ok(()), "users are counted apart");
        assert_eq!(limiter.check("@a:x", t0 + WINDOW), Ok(()), "a new window");
    }

    #[test]
    fn test_memory_is_bounded() {
        let mut limiter = Limiter::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_USERS + 5 {
            assert_eq!(limiter.check(&format!("@u{i}:x"), t0), Ok(()));
        }
        assert!(limiter.windows.len() <= MAX_USERS);
    }
}
