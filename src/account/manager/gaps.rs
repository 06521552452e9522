//! Gaps in an account's polling (RELIABILITY.md §1.7, G9). WebQQ has no history and no
//! re-delivery, so QQ messages sent while nobody polled may be gone. When an account polls
//! again after a gap longer than `poller.gap_notice_seconds`, its owner is told the window.
//! The last successful poll is also marked in the store (at most once per [`MARK_EVERY`]
//! seconds per account), so a gap across a restart or a long stop is seen too.

use std::collections::HashMap;

use super::AccountManager;
use crate::account::poller_actor::QqEventsReceived;
use crate::account::resolve::QqEvent;

/// How often, at most, an account's last successful poll is written to the store (seconds):
/// a gap across a restart may start this much earlier than it did, never later.
pub const MARK_EVERY: u64 = 60;

/// The store key of `account`'s last successful poll (unix seconds).
pub fn mark_key(account: &str) -> String {
    format!("poll_ok:{account}")
}

/// What one successful poll means for the gaps.
#[derive(Debug, PartialEq, Eq)]
pub struct Polled {
    /// The gap it closes, `(from, to)` in unix seconds, when longer than the threshold.
    pub gap: Option<(u64, u64)>,
    /// Whether to write the poll's time to the store now.
    pub mark: bool,
}

/// The last successful poll of each account. Plain data: the manager feeds it the clock.
#[derive(Debug, Default)]
pub struct PollGaps {
    /// Gaps up to this long (seconds) are not told; 0 tells none.
    threshold: u64,
    /// Per account: its last successful poll, and when that was last written to the store.
    last: HashMap<String, (u64, Option<u64>)>,
}

impl PollGaps {
    /// Gaps longer than `threshold` seconds are told; 0 turns them off.
    pub fn new(threshold: u64) -> PollGaps {
        PollGaps { threshold, last: HashMap::new() }
    }

    /// `account` starts; `stored` is the last successful poll an earlier run (or an earlier
    /// login of it) marked in the store.
    pub fn start(&mut self, account: &str, stored: Option<u64>) {
        match stored {
            Some(at) => self.last.insert(account.to_owned(), (at, Some(at))),
            None => self.last.remove(account),
        };
    }

    /// A poll of `account` answered (ok or idle) at `now`.
    pub fn polled(&mut self, account: &str, now: u64) -> Polled {
        let entry = self.last.entry(account.to_owned()).or_insert((now, None));
        let (before, marked) = *entry;
        let gap = (self.threshold > 0 && now.saturating_sub(before) > self.threshold)
            .then_some((before, now));
        let mark = marked.is_none_or(|at| now.saturating_sub(at) >= MARK_EVERY);
        *entry = (now, if mark { Some(now) } else { marked });
        Polled { gap, mark }
    }

    /// `account` was removed: its memory goes (its store mark stays for a later start).
    pub fn forget(&mut self, account: &str) {
        self.last.remove(account);
    }
}

impl AccountManager {
    /// Starts `account`'s gap watch from the mark an earlier run left in the store.
    pub(super) fn start_gaps(&mut self, account: &str) {
        let stored = match self.store.kv_get(&mark_key(account)) {
            Ok(stored) => stored.and_then(|at| at.parse().ok()),
            Err(error) => {
                tracing::warn!(%account, %error, "last poll time not readable; a gap across the restart is not told");
                None
            }
        };
        self.gaps.start(account, stored);
    }

    /// A poll of `account` answered at `now`: a gap it closes goes to the sink as
    /// [`QqEvent::PollGap`] (logged too), and the time is marked in the store now and then.
    pub(super) fn poll_answered(&mut self, account: &str, now: u64) {
        let polled = self.gaps.polled(account, now);
        if let Some((from, to)) = polled.gap {
            tracing::warn!(%account, from, to, "QQ was not polled for a while: messages sent to it then may be missing");
            let resolved = vec![QqEvent::PollGap { from, to }];
            let (account, events, polled) = (account.to_owned(), Vec::new(), None);
            self.events.do_send(QqEventsReceived { account, events, resolved, polled });
        }
        if polled.mark {
            let (store, key) = (self.store.clone(), mark_key(account));
            actix::spawn(async move {
                if let Err(error) = store.call(move |c| c.kv_set(&key, &now.to_string())).await {
                    tracing::warn!(%error, "last poll time not stored");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gaps_longer_than_the_threshold_are_told_once() {
        let mut gaps = PollGaps::new(120);
        assert_eq!(gaps.polled("a", 1000), Polled { gap: None, mark: true });
        assert_eq!(gaps.polled("a", 1060), Polled { gap: None, mark: true });
        assert_eq!(gaps.polled("a", 1100), Polled { gap: None, mark: false });
        // Exactly the threshold is not a gap; one second more is.
        assert_eq!(gaps.polled("a", 1220), Polled { gap: None, mark: true });
        assert_eq!(gaps.polled("a", 1341), Polled { gap: Some((1220, 1341)), mark: true });
        assert_eq!(gaps.polled("a", 1342).gap, None);
        // Accounts are apart.
        assert_eq!(gaps.polled("b", 5000).gap, None);
    }

    #[test]
    fn test_a_gap_across_a_restart_starts_at_the_stored_mark() {
        let mut gaps = PollGaps::new(120);
        gaps.start("a", Some(1000));
        assert_eq!(gaps.polled("a", 1100), Polled { gap: None, mark: true });
        gaps.start("a", Some(1100));
        assert_eq!(gaps.polled("a", 2000), Polled { gap: Some((1100, 2000)), mark: true });
        // Removed, then started with nothing stored: no gap to tell.
        gaps.forget("a");
        gaps.start("a", None);
        assert_eq!(gaps.polled("a", 9000).gap, None);
        // Off.
        let mut off = PollGaps::new(0);
        off.start("a", Some(0));
        assert_eq!(off.polled("a", 9000).gap, None);
    }
}
