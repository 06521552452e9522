//! The thin async side of bridge state (MATRIX.md §6.5): account states and the bridge's
//! global state go into the plain [`StateTracker`] (`bridge/state.rs`); its pushes are POSTed
//! to `homeserver.status_endpoint` (retried 2 → 64 s, a newer push of the same state cancelling
//! older retries) and its notices posted in the owner's management room with the state under
//! `fi.mau.bridge_state`. A timer task releases held states when their hold ends and pushes
//! every state again before its TTL runs out.
//!
//! Failures surface as logs only: a push that fails six times is dropped (the next change or
//! refresh is pushed anyway), and a notice that cannot be posted is logged by `tell_owner`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::account::state::AccountState;
use crate::bridge::state::{
    BridgeState, GlobalEvent, GlobalState, Output, StateTracker, StatusSettings, bridge_state,
};
use crate::matrix::client::MatrixClient;
use crate::webqq::session::unix_now;

use super::{Bridge, BridgeSettings};

/// First retry delay of a failed push; doubled up to [`PUSH_RETRY_MAX`] (MATRIX.md §6.5).
const PUSH_RETRY_FIRST: Duration = Duration::from_secs(2);

/// Last retry delay of a failed push; after it the push is dropped.
const PUSH_RETRY_MAX: Duration = Duration::from_secs(64);

/// The generation key of the global state's pushes (no account id contains a NUL).
const GLOBAL_KEY: &str = "\0global";

/// Where pushes go: one POST of a JSON body, `Err` with a reason when it was not taken.
pub(super) type PushSink =
    Arc<dyn Fn(serde_json::Value) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Who tells states in the management rooms (the bridge, once it runs).
pub(super) type NoticeSink = Arc<dyn Fn(BridgeState) -> BoxFuture<'static, ()> + Send + Sync>;

/// Now on tokio's clock (paused in tests), as the tracker's `Instant`.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The bridge's state memory, its pusher and its timer.
pub(super) struct StateHub {
    tracker: Mutex<StateTracker>,
    sink: Option<PushSink>,
    notices: OnceLock<NoticeSink>,
    /// Per account (and [`GLOBAL_KEY`]), the number of its latest push: an older push stops
    /// retrying.
    generations: Mutex<HashMap<String, u64>>,
    /// Wakes the timer task when a new hold or push changes its next deadline.
    wake: tokio::sync::Notify,
    timer_started: AtomicBool,
}

impl StateHub {
    /// A hub for `settings.status`, pushing with `matrix`'s `as_token`. No IO.
    pub(super) fn new(settings: &BridgeSettings, matrix: &MatrixClient) -> StateHub {
        let endpoint = settings.status.endpoint.as_deref().and_then(|u| url::Url::parse(u).ok());
        let sink = endpoint.map(|url| {
            let matrix = matrix.clone();
            let sink: PushSink = Arc::new(move |body| {
                let (matrix, url) = (matrix.clone(), url.clone());
                Box::pin(async move {
                    matrix.post_bridge_state(&url, &body).await.map_err(|e| e.to_string())
                })
            });
            sink
        });
        StateHub::with_sink(settings.status.clone(), sink)
    }

    /// A hub pushing to `sink` (none: nothing is pushed). No IO.
    pub(super) fn with_sink(status: StatusSettings, sink: Option<PushSink>) -> StateHub {
        StateHub {
            tracker: Mutex::new(StateTracker::new(status)),
            sink,
            notices: OnceLock::new(),
            generations: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            timer_started: AtomicBool::new(false),
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, StateTracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every account's latest state, as the GET endpoint serves it.
    pub(super) fn current(&self) -> Vec<BridgeState> {
        self.tracker().current()
    }

    /// The latest state of `account`; `None` when it was never seen.
    pub(super) fn state_of(&self, account: &str) -> Option<BridgeState> {
        self.tracker().state_of(account)
    }

    /// The last global state pushed.
    pub(super) fn global(&self) -> Option<GlobalState> {
        self.tracker().global()
    }

    /// Records `state`; pushes and tells what the tracker says.
    pub(super) async fn observe(self: &Arc<Self>, state: BridgeState) {
        let outputs = self.tracker().observe(state, now());
        self.after_change(outputs).await;
    }

    /// Sets the bridge's own state; pushed at once with every login's state.
    pub(super) async fn set_global(self: &Arc<Self>, event: GlobalEvent) {
        let outputs = self.tracker().set_global(event, now(), unix_now());
        self.after_change(outputs).await;
    }

    /// Forgets `account` (logged out): a last LOGGED_OUT push, no refresh any more.
    pub(super) async fn forget(self: &Arc<Self>, account: &str) {
        let outputs = self.tracker().forget(account, unix_now(), now());
        self.after_change(outputs).await;
    }

    async fn after_change(self: &Arc<Self>, outputs: Vec<Output>) {
        self.ensure_timer();
        self.wake.notify_one();
        self.dispatch(outputs).await;
    }

    async fn dispatch(self: &Arc<Self>, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Push(state) => {
                    let key = state.remote_name.clone();
                    self.push(key, state.state_event.as_str(), serde_json::to_value(&state));
                }
                Output::PushGlobal(state) => {
                    let name = state.bridge_state.state_event.as_str();
                    self.push(GLOBAL_KEY.to_owned(), name, serde_json::to_value(&state));
                }
                Output::Notice(state) => {
                    let sink = self.notices.get().cloned();
                    if let Some(sink) = sink {
                        sink(state).await;
                    }
                }
            }
        }
    }

    /// POSTs `body` in the background, retrying while it is `key`'s latest push.
    fn push(
        self: &Arc<Self>,
        key: String,
        name: &'static str,
        body: Result<serde_json::Value, serde_json::Error>,
    ) {
        let Some(sink) = self.sink.clone() else { return };
        let body = match body {
            Ok(body) => body,
            Err(error) => return tracing::warn!(%error, "bridge state not serialised"),
        };
        let generation = {
            let mut generations = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
            let counter = generations.entry(key.clone()).or_default();
            *counter = counter.wrapping_add(1);
            *counter
        };
        let hub = self.clone();
        tokio::spawn(async move {
            let mut delay = PUSH_RETRY_FIRST;
            loop {
                let latest = hub
                    .generations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&key)
                    .copied();
                if latest != Some(generation) {
                    return;
                }
                let account = key.trim_start_matches('\0');
                match sink(body.clone()).await {
                    Ok(()) => {
                        tracing::debug!(%account, state = name, "bridge state pushed");
                        return;
                    }
                    Err(error) if delay <= PUSH_RETRY_MAX => {
                        tracing::debug!(%account, %error, retry_in_s = delay.as_secs(), "bridge state push failed");
                        tokio::time::sleep(delay).await;
                        delay = delay.saturating_mul(2);
                    }
                    Err(error) => {
                        tracing::warn!(%account, %error, "bridge state push dropped after retries");
                        return;
                    }
                }
            }
        });
    }

    /// Starts the task that releases held states and refreshes pushed ones, once. It holds
    /// only a weak reference, so it ends with the hub.
    fn ensure_timer(self: &Arc<Self>) {
        if self.timer_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(hub) = weak.upgrade() else { return };
                let deadline = {
                    let tracker = hub.tracker();
                    [tracker.next_deadline(), tracker.next_refresh()].into_iter().flatten().min()
                };
                // Wakes now and then without a deadline, to notice that the hub is gone.
                let at = deadline.unwrap_or_else(|| now() + Duration::from_secs(60));
                let woken = {
                    let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(at));
                    tokio::select! {
                        () = sleep => false,
                        () = hub.wake.notified() => true,
                    }
                };
                if woken {
                    continue;
                }
                let outputs = {
                    let mut tracker = hub.tracker();
                    let mut outputs = tracker.tick(now());
                    outputs.extend(tracker.refresh(now(), unix_now()));
                    outputs
                };
                hub.dispatch(outputs).await;
            }
        });
    }
}

impl Bridge {
    /// Feeds the account's new state into the bridge state: pushes, notices and the GET
    /// endpoint follow (MATRIX.md §6.5). Returns once the immediate notices are posted.
    pub(super) async fn observe_state(
        self: &Arc<Self>,
        account: &str,
        state: AccountState,
        reason: Option<&str>,
    ) {
        self.ensure_state_notices();
        let qq = self.account_number(account).map_or(0, |qq| qq.get());
        let observed = bridge_state(account, qq, state, reason, unix_now());
        self.states.observe(observed).await;
    }

    /// Sets the bridge's global state (bridgev2: STARTING at start-up, RUNNING once the
    /// appservice is up), pushed with every login's state and refreshed before its TTL ends.
    pub async fn set_global_state(self: &Arc<Self>, event: GlobalEvent) {
        self.states.set_global(event).await;
    }

    /// Forgets the bridge state of `account`, logged out by its owner: a last LOGGED_OUT
    /// push; it is no longer served nor refreshed.
    pub async fn forget_account_state(&self, account: &str) {
        self.states.forget(account).await;
    }

    /// The latest bridge state of `account`; `None` when it was never seen.
    pub fn bridge_state_of(&self, account: &str) -> Option<BridgeState> {
        self.states.state_of(account)
    }

    /// The last global state pushed; `None` before the first.
    pub fn global_state(&self) -> Option<GlobalState> {
        self.states.global()
    }

    /// Every account's latest bridge state, and the last global state pushed (`null` before
    /// the first), as JSON (`GET …/com.qqbridge/bridge_state`).
    pub fn bridge_states_json(&self) -> serde_json::Value {
        serde_json::json!({ "states": self.states.current(), "global": self.states.global() })
    }

    /// Makes the hub tell states in the management rooms through this bridge (weakly held).
    fn ensure_state_notices(self: &Arc<Self>) {
        if self.states.notices.get().is_some() {
            return;
        }
        let weak = Arc::downgrade(self);
        let sink: NoticeSink = Arc::new(move |state| {
            let weak = weak.clone();
            Box::pin(async move {
                if let Some(bridge) = weak.upgrade() {
                    bridge.tell_state(&state).await;
                }
            })
        });
        // A second caller racing here sets the same kind of sink: either is fine.
        let _ = self.states.notices.set(sink);
    }
}

#[cfg(test)]
mod tests;
