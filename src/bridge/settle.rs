//! [`Settle`]: the bridge actor's write-behind queue for bridged QQ events — their message-map
//! rows and inbox deletions, written in one store transaction per few milliseconds instead of
//! two store round trips per message (map rows before deletions: RELIABILITY.md §1.1).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::store::{MessageRow, Store};

/// How long the first queued item waits for others to share its transaction. Each commit
/// writes the pages it touched once, so fewer, larger ones cost the store far less; the map
/// rows are needed only by later Matrix replies and edits, and the inbox keeps everything safe
/// meanwhile.
const FLUSH_DELAY: Duration = Duration::from_millis(5);

/// Queued rows and deletions that are written at once without waiting for the delay.
const FLUSH_ITEMS: usize = 512;

/// What waits for the next flush.
#[derive(Default)]
struct Pending {
    messages: Vec<MessageRow>,
    done: Vec<u64>,
    /// A flush task is spawned and has not taken the queue yet.
    scheduled: bool,
    /// Flushes sent to the store and not answered yet.
    in_flight: usize,
}

/// The queue, on the bridge actor's thread (a tokio `LocalSet`: an actix arbiter is one).
///
/// A message is already on Matrix when it gets here; until the flush commits, its inbox row
/// stays, so a crash in between replays it and its idempotent transaction id makes the
/// homeserver answer with the first event instead of a second one.
#[derive(Clone)]
pub struct Settle {
    store: Store,
    pending: Rc<RefCell<Pending>>,
}

impl Settle {
    /// An empty queue writing to `store`.
    pub fn new(store: Store) -> Self {
        Settle { store, pending: Rc::new(RefCell::new(Pending::default())) }
    }

    /// Queues the map rows of one bridged event and, when it was persisted, its inbox row
    /// `seq` for deletion. They are written [`FLUSH_DELAY`] after the oldest queued item, or at
    /// once when [`FLUSH_ITEMS`] are queued. Must be called inside a tokio `LocalSet`.
    pub fn push(&self, messages: Vec<MessageRow>, seq: Option<u64>) {
        if messages.is_empty() && seq.is_none() {
            return;
        }
        let mut pending = self.pending.borrow_mut();
        pending.messages.extend(messages);
        pending.done.extend(seq);
        if pending.messages.len() + pending.done.len() >= FLUSH_ITEMS {
            drop(pending);
            tokio::task::spawn_local(self.clone().flush(Duration::ZERO));
        } else if !pending.scheduled {
            pending.scheduled = true;
            drop(pending);
            tokio::task::spawn_local(self.clone().flush(FLUSH_DELAY));
        }
    }

    /// Rows and deletions queued or being written: zero once everything pushed is in the store.
    pub fn unsettled(&self) -> usize {
        let pending = self.pending.borrow();
        pending.messages.len() + pending.done.len() + pending.in_flight
    }

    /// Writes what is queued after `delay`; the delayed flush clears `scheduled`.
    async fn flush(self, delay: Duration) {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (messages, done) = {
            let mut pending = self.pending.borrow_mut();
            if !delay.is_zero() {
                pending.scheduled = false;
            }
            if pending.messages.is_empty() && pending.done.is_empty() {
                return;
            }
            pending.in_flight += 1;
            (std::mem::take(&mut pending.messages), std::mem::take(&mut pending.done))
        };
        let count = messages.len();
        let result = self.store.call(move |c| c.settle_inbox(&messages, &done)).await;
        self.pending.borrow_mut().in_flight -= 1;
        if let Err(error) = result {
            // Nothing is lost: the inbox rows stay, and the next start replays them (their
            // sends are idempotent), writing the map rows then.
            tracing::warn!(%error, messages = count, "bridged QQ events not settled in the store");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Direction, InboxRow};

    fn message(n: u64) -> MessageRow {
        MessageRow {
            portal_key: "friend:me:10002".into(),
            remote_key: format!("k{n}"),
            room_id: "!r:example.org".try_into().unwrap(),
            event_id: format!("$e{n}").try_into().unwrap(),
            direction: Direction::QqToMatrix,
            sender: "10002".into(),
            created_at: 1,
        }
    }

    fn inbox_row(seq: u64) -> InboxRow {
        InboxRow {
            seq,
            account_id: "me".into(),
            lane: "friend:me:10002".into(),
            event_json: "{}".into(),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn test_pushes_of_one_turn_settle_together_map_rows_with_their_deletions() {
        let store = Store::open_in_memory().unwrap();
        store.inbox_push((1..=4).map(inbox_row).collect()).unwrap();
        tokio::task::LocalSet::new()
            .run_until(async {
                let settle = Settle::new(store.clone());
                settle.push(vec![message(1)], Some(1));
                settle.push(vec![message(2)], Some(2));
                // A duplicate: no map row, the inbox row goes all the same.
                settle.push(vec![], Some(3));
                settle.push(vec![], None);
                assert_eq!(settle.unsettled(), 5, "two rows, three deletions");
                for _ in 0..100 {
                    if settle.unsettled() == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                assert_eq!(settle.unsettled(), 0);
            })
            .await;
        let left: Vec<u64> = store.inbox().unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(left, [4]);
        for n in [1, 2] {
            let row = store.message_by_remote("friend:me:10002", &format!("k{n}")).unwrap();
            assert_eq!(row, Some(message(n)));
        }
        assert_eq!(store.message_by_remote("friend:me:10002", "k3").unwrap(), None);
    }
}
