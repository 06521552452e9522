//! [`BridgeActor`]: receives every account's resolved poll batches, persists them in the store's
//! inbox and hands each event to its portal's lane ([`Lanes`]): one portal's events reach Matrix
//! in the order QQ delivered them while other portals go on; a homeserver outage holds a lane
//! (retrying) and a crash is recovered by replaying the inbox at start (RELIABILITY.md §1.1).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::account::poller_actor::QqEventsReceived;
use crate::account::resolve::QqEvent;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::bridge::lanes::Lanes;
use crate::bridge::portal::{Bridge, BridgeError, QqOutcome};
use crate::store::{InboxRow, Store};

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
    /// The last inbox sequence number given out.
    last_seq: u64,
}

impl BridgeActor {
    /// An actor bridging through `bridge`, persisting QQ events in `store`'s inbox.
    pub fn new(bridge: Arc<Bridge>, store: Store) -> Self {
        BridgeActor { bridge, store, lanes: Lanes::new(LANES_AT_ONCE), last_seq: 0 }
    }

    /// A sequence number above every one given before, also by earlier runs of the process
    /// (microseconds of the clock, bumped when the clock has not moved on).
    fn next_seq(&mut self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last_seq = now.max(self.last_seq.saturating_add(1));
        self.last_seq
    }

    /// Queues `event` on its lane; once it is bridged (or refused for good) its inbox row
    /// `seq`, if any, is deleted. `replayed`: persisted by an earlier run, which may have sent it.
    fn dispatch(
        &self,
        account: Arc<str>,
        lane: &str,
        seq: Option<u64>,
        event: QqEvent,
        replayed: bool,
    ) {
        let bridge = self.bridge.clone();
        let store = self.store.clone();
        self.lanes.push(
            lane,
            Box::pin(async move {
                bridge_until_done(&bridge, &account, &event, replayed).await;
                if let Some(seq) = seq
                    && let Err(error) = store.call(move |c| c.inbox_done(seq)).await
                {
                    // Harmless beyond a replay at the next start, which the message map
                    // recognises as already bridged.
                    tracing::warn!(%error, "bridged QQ event left in the inbox");
                }
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
            self.last_seq = self.last_seq.max(row.seq);
            match serde_json::from_str::<QqEvent>(&row.event_json) {
                Ok(event) => self.dispatch(
                    Arc::from(row.account_id.as_str()),
                    &row.lane,
                    Some(row.seq),
                    event,
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

    fn handle(&mut self, msg: QqEventsReceived, _: &mut Context<Self>) {
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
        let persisted = rows.is_empty()
            || match self.store.inbox_push(rows) {
                Ok(()) => true,
                Err(error) => {
                    tracing::error!(%account, %error, "QQ events not persisted; bridged from memory");
                    false
                }
            };
        for (lane, seq, event) in queued {
            self.dispatch(account.clone(), &lane, seq.filter(|_| persisted), event, false);
        }
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
        QqEvent::Kicked { .. } | QqEvent::Unbridgeable { .. } | QqEvent::AccountState { .. } => {
            format!("{account}#account")
        }
    }
}

/// Bridges `event`, waiting and trying again while the failure is transient (homeserver down,
/// 5xx, rate limit after the client's own retries): the event is never dropped for an outage.
/// A message is looked for in its room before it is sent again (`recheck`), as is one `replayed`
/// from an earlier run.
async fn bridge_until_done(bridge: &Bridge, account: &str, event: &QqEvent, replayed: bool) {
    let mut delay = RETRY_FIRST;
    let mut recheck = replayed;
    loop {
        match bridge_one(bridge, account, event, recheck).await {
            Ok(()) => return,
            Err(error) if error.is_transient() => {
                recheck = true;
                tracing::warn!(%account, %error, retry_in = ?delay, "QQ event waits for the homeserver");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
            Err(error) => {
                tracing::error!(%account, %error, "QQ event not bridged");
                return;
            }
        }
    }
}

async fn bridge_one(
    bridge: &Bridge,
    account: &str,
    event: &QqEvent,
    recheck: bool,
) -> Result<(), BridgeError> {
    match event {
        QqEvent::Message(message) => {
            if bridge.qq_message(account, message, recheck).await? == QqOutcome::Duplicate {
                tracing::debug!(%account, key = %message.key, "QQ message already bridged");
            }
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
    Ok(())
}
