//! Poll batches persisted before their ids are resolved (RELIABILITY.md §1.2, "persisted before
//! dispatched"): a batch may wait for the directory or a lookup, and a crash then must not lose
//! it. The bridge forgets the stored batch with its resolved events' inbox rows.

use std::collections::HashMap;

use actix::prelude::*;

use super::AccountActor;
use crate::account::poller_actor::QqEventsReceived;
use crate::store::{PolledRow, Store};
use crate::webqq::event::PollEvent;

/// The account's persisted poll batches.
#[derive(Default)]
pub(super) struct Polls {
    /// Where batches wait; `None`: in memory only.
    store: Option<Store>,
    /// The last batch number given out.
    last_seq: u64,
    /// The polling session of each batch replayed from the store, by batch number.
    replayed: HashMap<u64, u64>,
}

impl AccountActor {
    /// This account with its poll batches persisted in `store` until the bridge has them in
    /// its inbox; batches a previous run left there are resolved first.
    pub fn persisting_polls(mut self, store: Store) -> Self {
        self.polls.store = Some(store);
        self
    }

    /// Queues the batches a previous run persisted and did not resolve, oldest first. Call
    /// before the first poll.
    pub(super) fn replay_polled(&mut self) {
        let Some(store) = &self.polls.store else { return };
        let account = self.settings.id.clone();
        let rows = match store.blocking_call(move |c| c.polled(&account)) {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(account = %self.settings.id, %error, "stored poll batches not readable: not replayed");
                return;
            }
        };
        for row in rows {
            self.polls.last_seq = self.polls.last_seq.max(row.seq);
            match serde_json::from_str::<Vec<PollEvent>>(&row.events_json) {
                Ok(events) => {
                    tracing::info!(account = %self.settings.id, events = events.len(), "replaying a poll batch not resolved before the restart");
                    self.polls.replayed.insert(row.seq, row.session);
                    self.unresolved.push_back(QqEventsReceived {
                        account: self.settings.id.clone(),
                        events,
                        resolved: Vec::new(),
                        polled: Some(row.seq),
                    });
                }
                Err(error) => {
                    tracing::error!(account = %self.settings.id, %error, "stored poll batch unreadable, dropped");
                    self.forget_polled(row.seq);
                }
            }
        }
    }

    /// Persists `batch` (when a store is set), then queues it for resolution; a failed write
    /// is logged and the batch goes on from memory.
    pub(super) fn persist_then_enqueue(
        &mut self,
        mut batch: QqEventsReceived,
        ctx: &mut Context<Self>,
    ) {
        let session = self.client.as_ref().and_then(|c| c.session()).map(|s| s.opened_at);
        let (Some(store), Some(session)) = (self.polls.store.clone(), session) else {
            return self.enqueue_batch(batch, ctx);
        };
        if batch.events.is_empty() || batch.polled.is_some() {
            return self.enqueue_batch(batch, ctx);
        }
        let events_json = match serde_json::to_string(&batch.events) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(account = %self.settings.id, %error, "poll batch not persistable; resolved from memory");
                return self.enqueue_batch(batch, ctx);
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let seq = now.max(self.polls.last_seq.saturating_add(1));
        self.polls.last_seq = seq;
        let row = PolledRow { account_id: self.settings.id.clone(), seq, session, events_json };
        // `wait`: the next batch is persisted and queued behind this one, in poll order.
        let write = async move { store.call(move |c| c.polled_push(&row)).await };
        ctx.wait(write.into_actor(self).map(move |written, act, ctx| {
            match written {
                Ok(()) => batch.polled = Some(seq),
                Err(error) => {
                    tracing::error!(account = %act.settings.id, %error, "poll batch not persisted; resolved from memory");
                }
            }
            act.enqueue_batch(batch, ctx);
        }));
    }

    /// Whether `batch` was replayed from a session other than the current one: its uins mean
    /// nothing now (a new login draws new ones, protocol §0.2), so it cannot be resolved and
    /// is dropped, logged and forgotten.
    pub(super) fn polled_in_other_session(&mut self, batch: &QqEventsReceived) -> bool {
        let Some(seq) = batch.polled else { return false };
        let Some(session) = self.polls.replayed.remove(&seq) else { return false };
        let current = self.client.as_ref().and_then(|c| c.session()).map(|s| s.opened_at);
        if current == Some(session) {
            return false;
        }
        tracing::error!(account = %self.settings.id, events = batch.events.len(), "a poll batch of an ended session was not resolved before the restart: dropped (its uins belong to that session)");
        self.forget_polled(seq);
        true
    }

    fn forget_polled(&self, seq: u64) {
        let Some(store) = self.polls.store.clone() else { return };
        let account = self.settings.id.clone();
        actix::spawn(async move {
            if let Err(error) = store.call(move |c| c.polled_done(&account, seq)).await {
                tracing::warn!(%error, "dropped poll batch left in the store");
            }
        });
    }
}
