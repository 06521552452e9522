//! [`PollLog`]: where a poller keeps each poll2 batch before anything else happens to it
//! (RELIABILITY.md §1.2: persisted, then re-polled). WebQQ never sends an event twice, so the
//! time between the answer's arrival and this commit is the only window in which a crash loses
//! a QQ message; the poller commits straight from the answer, before its account sees the batch
//! (debug log `poll batch persisted` with the milliseconds it took).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::store::{PolledRow, Store};
use crate::webqq::event::PollEvent;

/// An account's persisted poll batches: the store and the batch numbering, shared by the
/// account (which replays and forgets batches) and each of its pollers.
#[derive(Clone)]
pub struct PollLog {
    store: Store,
    last_seq: Arc<AtomicU64>,
}

impl PollLog {
    /// A log writing to `store`.
    pub fn new(store: Store) -> PollLog {
        PollLog { store, last_seq: Arc::new(AtomicU64::new(0)) }
    }

    /// The store it writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Notes a batch number a previous run gave out, so new ones come after it.
    pub fn seen(&self, seq: u64) {
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Persists `events`, polled by `account` in the session opened at `session`, as one batch;
    /// its number, or `None` (logged) when it could not be written: the batch then goes on
    /// from memory. `since` is when the answer arrived.
    pub async fn keep(
        &self,
        account: &str,
        session: u64,
        events: &[PollEvent],
        since: Instant,
    ) -> Option<u64> {
        let events_json = match serde_json::to_string(events) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%account, %error, "poll batch not persistable; resolved from memory");
                return None;
            }
        };
        let seq = crate::store::next_seq(&self.last_seq);
        let row = PolledRow { account_id: account.to_owned(), seq, session, events_json };
        match self.store.call(move |c| c.polled_push(&row)).await {
            Ok(()) => {
                let ms = since.elapsed().as_secs_f64() * 1000.0;
                tracing::debug!(%account, events = events.len(), ms, "poll batch persisted");
                Some(seq)
            }
            Err(error) => {
                tracing::error!(%account, %error, "poll batch not persisted; resolved from memory");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_batch_numbers_rise_past_every_seen_one() {
        let log = PollLog::new(Store::open_in_memory().unwrap());
        let first = crate::store::next_seq(&log.last_seq);
        assert!(crate::store::next_seq(&log.last_seq) > first);
        log.seen(u64::MAX - 1);
        assert_eq!(crate::store::next_seq(&log.last_seq), u64::MAX);
    }
}
