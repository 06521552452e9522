//! Poll batches persisted before their ids are resolved (RELIABILITY.md §1.2, "persisted before
//! dispatched"): a batch may wait for the directory or a lookup, and a crash then must not lose
//! it. The poller writes each batch ([`PollLog`]); the account replays what a previous run left
//! and the bridge forgets the stored batch with its resolved events' inbox rows.

use std::collections::HashMap;

use actix::prelude::*;

use super::AccountActor;
use crate::account::poll_log::PollLog;
use crate::account::poller_actor::QqEventsReceived;
use crate::store::{PolledRow, Store};
use crate::webqq::event::PollEvent;

/// The account's persisted poll batches.
#[derive(Default)]
pub(super) struct Polls {
    /// Where batches wait; `None`: in memory only.
    pub(super) log: Option<PollLog>,
    /// The polling session of each batch replayed from the store, by batch number.
    replayed: HashMap<u64, u64>,
}

impl AccountActor {
    /// This account with its poll batches persisted in `store` until the bridge has them in
    /// its inbox; batches a previous run left there are resolved first.
    pub fn persisting_polls(mut self, store: Store) -> Self {
        self.polls.log = Some(PollLog::new(store));
        self
    }

    /// Reads the batches a previous run persisted and did not resolve, queues them oldest
    /// first, then `next`s (the first poll comes after). The read does not block the arbiter;
    /// the account handles nothing else meanwhile.
    pub(super) fn replay_polled(
        &mut self,
        ctx: &mut Context<Self>,
        next: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        let Some(store) = self.polls.log.as_ref().map(|log| log.store().clone()) else {
            return next(self, ctx);
        };
        let account = self.settings.id.clone();
        let read = async move { store.call(move |c| c.polled(&account)).await };
        ctx.wait(read.into_actor(self).map(move |rows, act, ctx| {
            match rows {
                Ok(rows) => act.queue_replayed(rows),
                Err(error) => {
                    tracing::error!(account = %act.settings.id, %error, "stored poll batches not readable: not replayed");
                }
            }
            next(act, ctx);
        }));
    }

    fn queue_replayed(&mut self, rows: Vec<PolledRow>) {
        let Some(log) = self.polls.log.clone() else { return };
        for row in rows {
            log.seen(row.seq);
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
        let Some(store) = self.polls.log.as_ref().map(|log| log.store().clone()) else { return };
        let account = self.settings.id.clone();
        actix::spawn(async move {
            if let Err(error) = store.call(move |c| c.polled_done(&account, seq)).await {
                tracing::warn!(%error, "dropped poll batch left in the store");
            }
        });
    }
}
