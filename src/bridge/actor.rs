//! [`BridgeActor`]: receives every account's resolved poll batches, persists them in the store's
//! inbox and hands each event to its portal's lane ([`Lanes`]): one portal's events reach Matrix
//! in the order QQ delivered them while other portals go on; a homeserver outage holds a lane
//! (retrying) and a crash is recovered by replaying the inbox at start (RELIABILITY.md §1.1).
//! Store round trips per batch, not per message: one at intake (the inbox rows, the
//! duplicate check of every message and the account's persisted poll batch forgotten), one
//! behind the sends ([`Settle`]: map rows, inbox rows deleted).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::account::poller_actor::QqEventsReceived;
use crate::account::resolve::QqEvent;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::bridge::lanes::Lanes;
use crate::bridge::portal::{Bridge, BridgeError, QqOutcome};
use crate::bridge::settle::Settle;
use crate::store::{InboxRow, MessageRow, Store};

/// Portal lanes running at once: bounds the requests in flight to the homeserver.
const LANES_AT_ONCE: usize = 64;
/// First wait before bridging an event again after a transient homeserver failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between attempts while the homeserver stays unreachable.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The QQ → Matrix side of the bridge.
pub struct BridgeActor {
    bridge: Arc<Bridge>,
    store: Store,
    lanes: Lanes,
    settle: Settle,
    /// The last inbox sequence number given out.
    last_seq: std::sync::atomic::AtomicU64,
}

impl BridgeActor {
    /// An actor bridging through `bridge`, persisting QQ events in `store`'s inbox.
    pub fn new(bridge: Arc<Bridge>, store: Store) -> Self {
        let settle = Settle::new(store.clone());
        BridgeActor {
            bridge,
            store,
            lanes: Lanes::new(LANES_AT_ONCE),
            settle,
            last_seq: Default::default(),
        }
    }

    /// An inbox sequence number above every one given before, also by earlier runs.
    fn next_seq(&self) -> u64 {
        crate::store::next_seq(&self.last_seq)
    }

    /// Queues `event` on its lane; once it is bridged (or refused for good) its map rows and
    /// the deletion of its inbox row `seq`, if any, go to the write-behind queue. `unmapped`:
    /// the message was checked absent from the store's map at intake. `replayed`: persisted by
    /// an earlier run, which may have sent it.
    fn dispatch(
        &self,
        account: Arc<str>,
        lane: &str,
        seq: Option<u64>,
        event: QqEvent,
        unmapped: bool,
        replayed: bool,
    ) {
        let bridge = self.bridge.clone();
        let settle = self.settle.clone();
        self.lanes.push(
            lane,
            Box::pin(async move {
                let rows = bridge_until_done(&bridge, &account, &event, unmapped, replayed).await;
                settle.push(rows, seq);
            }),
        );
    }
}

impl Actor for BridgeActor {
    type Context = Context<Self>;

    /// Replays what a previous run persisted and did not bridge, before any new batch.
    fn started(&mut self, _: &mut Context<Self>) {
        let rows = match self.store.inbox() {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(%error, "QQ inbox not readable: events of a crashed run not replayed");
                return;
            }
        };
        if !rows.is_empty() {
            tracing::info!(
                events = rows.len(),
                "replaying QQ events not bridged before the restart"
            );
        }
        for row in rows {
            self.last_seq.fetch_max(row.seq, std::sync::atomic::Ordering::Relaxed);
            match serde_json::from_str::<QqEvent>(&row.event_json) {
                Ok(event) => self.dispatch(
                    Arc::from(row.account_id.as_str()),
                    &row.lane,
                    Some(row.seq),
                    event,
                    false,
                    true,
                ),
                Err(error) => {
                    // Written by another version of the bridge: say so, keep nothing stuck.
                    tracing::error!(seq = row.seq, account = %row.account_id, %error, "stored QQ event unreadable, dropped");
                    let _ = self.store.inbox_done(row.seq);
                }
            }
        }
    }
}

impl Handler<QqEventsReceived> for BridgeActor {
    type Result = ();

    fn handle(&mut self, msg: QqEventsReceived, ctx: &mut Context<Self>) {
        tracing::debug!(account = %msg.account, events = msg.events.len(), resolved = msg.resolved.len(), "QQ batch");
        let account: Arc<str> = Arc::from(msg.account.as_str());
        let mut rows = Vec::new();
        let mut queued = Vec::with_capacity(msg.resolved.len());
        for event in msg.resolved {
            let lane = lane_key(&account, &event);
            // Typing, presence and account states are momentary: not worth a write, and
            // stale after a restart.
            let seq = match (&event, serde_json::to_string(&event)) {
                (
                    QqEvent::Typing { .. }
                    | QqEvent::Presence { .. }
                    | QqEvent::AccountState { .. },
                    _,
                ) => None,
                (_, Ok(event_json)) => {
                    let seq = self.next_seq();
                    rows.push(InboxRow {
                        seq,
                        account_id: account.to_string(),
                        lane: lane.clone(),
                        event_json,
                    });
                    Some(seq)
                }
                (_, Err(error)) => {
                    tracing::error!(%account, %error, "QQ event not persistable; bridged from memory");
                    None
                }
            };
            queued.push((lane, seq, event));
        }
        let messages: Vec<(String, String)> = queued
            .iter()
            .filter_map(|(lane, _, event)| match event {
                // A message's lane is its portal key (`lane_key`).
                QqEvent::Message(message) => Some((lane.clone(), message.key.clone())),
                _ => None,
            })
            .collect();
        // The account's persisted poll batch leaves the store with its inbox rows.
        let polled: Vec<(String, u64)> =
            msg.polled.map(|seq| (account.to_string(), seq)).into_iter().collect();
        if rows.is_empty() && messages.is_empty() && polled.is_empty() {
            self.dispatch_batch(&account, queued, Some(Vec::new()));
            return;
        }
        // One store round trip for the batch, awaited without blocking the thread (the lanes
        // go on sending); `wait` holds the actor's next batch until this one is dispatched, so
        // batches keep their order.
        let store = self.store.clone();
        let intake = async move {
            store.call(move |c| c.inbox_push_resolved(&rows, &messages, &polled)).await
        };
        ctx.wait(intake.into_actor(self).map(move |result, actor, _| {
            let unmapped = match result {
                Ok(mapped) => Some(mapped.into_iter().map(|m| !m).collect()),
                Err(error) => {
                    tracing::error!(%account, %error, "QQ events not persisted; bridged from memory");
                    None
                }
            };
            actor.dispatch_batch(&account, queued, unmapped);
        }));
    }
}

impl BridgeActor {
    /// Dispatches a batch after its intake: `unmapped` holds, for each message of `queued` in
    /// order, whether the message map lacked it (`true`: not bridged before); `None` when the
    /// store failed: nothing persisted, and each message is checked again when its turn comes.
    fn dispatch_batch(
        &self,
        account: &Arc<str>,
        queued: Vec<(String, Option<u64>, QqEvent)>,
        unmapped: Option<Vec<bool>>,
    ) {
        let persisted = unmapped.is_some();
        let mut unmapped = unmapped.unwrap_or_default().into_iter();
        for (lane, seq, event) in queued {
            let unmapped = matches!(event, QqEvent::Message(_)) && unmapped.next().unwrap_or(false);
            self.dispatch(
                account.clone(),
                &lane,
                seq.filter(|_| persisted),
                event,
                unmapped,
                false,
            );
        }
    }
}

/// Asks the actor how much work it has in hand: events queued or being bridged, plus map rows
/// and inbox deletions not yet in the store. Zero once everything received is settled.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "usize")]
pub struct Backlog;

impl Handler<Backlog> for BridgeActor {
    type Result = usize;

    fn handle(&mut self, _: Backlog, _: &mut Context<Self>) -> usize {
        self.lanes.active() + self.lanes.pending() + self.settle.unsettled()
    }
}

/// The lane of an event: its portal, or the account's own lane for account-wide events.
fn lane_key(account: &str, event: &QqEvent) -> String {
    match event {
        QqEvent::Message(message) => ids::portal_key(account, &message.chat),
        QqEvent::Typing { from } | QqEvent::Presence { friend: from, .. } => {
            ids::portal_key(account, &ChatKey::Friend(*from))
        }
        QqEvent::MemberJoined(change) | QqEvent::MemberLeft(change) => {
            ids::portal_key(account, &ChatKey::Group(change.group))
        }
        QqEvent::Kicked { .. }
        | QqEvent::Unbridgeable { .. }
        | QqEvent::AccountState { .. }
        | QqEvent::PollGap { .. } => {
            format!("{account}#account")
        }
    }
}

/// Bridges `event` once the homeserver was found at start, waiting and trying again while the
/// failure is transient (homeserver down, 5xx, rate limit after the client's own retries): the
/// event is never dropped for an outage.
/// The message-map rows it made, to be written. A message is looked for in its room before
/// it is sent again (`recheck`), as is one `replayed` from an earlier run.
async fn bridge_until_done(
    bridge: &Arc<Bridge>,
    account: &str,
    event: &QqEvent,
    mut unmapped: bool,
    replayed: bool,
) -> Vec<MessageRow> {
    bridge.homeserver_ready().await;
    let mut delay = RETRY_FIRST;
    let mut recheck = replayed;
    loop {
        match bridge_one(bridge, account, event, unmapped, recheck).await {
            Ok(rows) => return rows,
            Err(error) if error.is_transient() => {
                recheck = true;
                tracing::warn!(%account, %error, retry_in = ?delay, "QQ event waits for the homeserver");
                // Transient errors come from Matrix calls, made after the duplicate check
                // passed; parts sent before the failure are mapped and are sent again under
                // their transaction ids, so the check is not repeated.
                unmapped = true;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
            Err(error) => {
                tracing::error!(%account, %error, "QQ event not bridged");
                return Vec::new();
            }
        }
    }
}

async fn bridge_one(
    bridge: &Arc<Bridge>,
    account: &str,
    event: &QqEvent,
    unmapped: bool,
    recheck: bool,
) -> Result<Vec<MessageRow>, BridgeError> {
    match event {
        QqEvent::Message(message) => {
            let (outcome, rows) =
                bridge.qq_message_unsettled(account, message, unmapped, recheck).await?;
            if outcome == QqOutcome::Duplicate {
                tracing::debug!(%account, key = %message.key, "QQ message already bridged");
            }
            return Ok(rows);
        }
        QqEvent::Unbridgeable { poll_type, reason } => {
            tracing::warn!(%account, %poll_type, %reason, "QQ event not bridged");
            bridge.qq_unbridgeable(account, poll_type, reason).await;
        }
        QqEvent::Kicked { reason } => {
            tracing::warn!(%account, %reason, "kicked by QQ");
            bridge.qq_kicked(account, reason).await;
        }
        QqEvent::AccountState { state, reason } => {
            bridge.qq_account_state(account, *state, reason.as_deref()).await;
        }
        QqEvent::PollGap { from, to } => bridge.qq_poll_gap(account, *from, *to).await,
        // Membership is part of the room's history: retried like a message when transient.
        QqEvent::MemberJoined(change) => bridge.qq_member_joined(account, change).await?,
        QqEvent::MemberLeft(change) => bridge.qq_member_left(account, change).await?,
        QqEvent::Presence { friend, status } => {
            if let Err(error) = bridge.qq_presence(*friend, status).await {
                tracing::debug!(%account, %friend, %error, "presence not set");
            }
        }
        QqEvent::Typing { from } => {
            // Typing is momentary: shown late it would be wrong, so it is never retried.
            if let Err(error) = bridge.qq_typing(account, *from).await {
                tracing::debug!(%account, %error, "typing not shown");
            }
        }
    }
    Ok(Vec::new())
}
