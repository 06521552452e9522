//! The thin async side of bridge state (MATRIX.md §6.5): account states go into the plain
//! [`StateTracker`] (`bridge/state.rs`); its pushes are POSTed to `homeserver.status_endpoint`
//! (retried 2 → 64 s, a newer state of the account cancelling older retries) and its notices
//! posted in the owner's management room with the state under `fi.mau.bridge_state`. A timer
//! task releases held states when their hold ends.
//!
//! Failures surface as logs only: a push that fails six times is dropped (the next change is
//! pushed anyway), and a notice that cannot be posted is logged by `tell_owner`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::account::state::AccountState;
use crate::bridge::state::{BridgeState, Output, StateTracker, bridge_state};
use crate::matrix::client::MatrixClient;
use crate::webqq::session::unix_now;

use super::{Bridge, BridgeSettings};

/// First retry delay of a failed push; doubled up to [`PUSH_RETRY_MAX`] (MATRIX.md §6.5).
const PUSH_RETRY_FIRST: Duration = Duration::from_secs(2);

/// Last retry delay of a failed push; after it the push is dropped.
const PUSH_RETRY_MAX: Duration = Duration::from_secs(64);

/// The bridge's state memory and its pusher.
pub(super) struct StateHub {
    tracker: Mutex<StateTracker>,
    matrix: MatrixClient,
    endpoint: Option<url::Url>,
    /// Per account, the number of its latest push: an older push stops retrying.
    generations: Mutex<HashMap<String, u64>>,
    /// Wakes the timer task when a new hold starts.
    wake: tokio::sync::Notify,
    timer_started: AtomicBool,
}

impl StateHub {
    /// A hub for `settings.status`, pushing with `matrix`'s `as_token`. No IO.
    pub(super) fn new(settings: &BridgeSettings, matrix: &MatrixClient) -> StateHub {
        let endpoint = settings.status.endpoint.as_deref().and_then(|u| url::Url::parse(u).ok());
        StateHub {
            tracker: Mutex::new(StateTracker::new(settings.status.clone())),
            matrix: matrix.clone(),
            endpoint,
            generations: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            timer_started: AtomicBool::new(false),
        }
    }

    /// Every account's latest state, as the GET endpoint serves it.
    pub(super) fn current(&self) -> Vec<BridgeState> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner).current()
    }

    /// POSTs `state` in the background, retrying while it is the account's latest push.
    fn push(self: &Arc<Self>, state: BridgeState) {
        let Some(url) = self.endpoint.clone() else { return };
        let generation = {
            let mut generations = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
            let counter = generations.entry(state.remote_name.clone()).or_default();
            *counter = counter.wrapping_add(1);
            *counter
        };
        let hub = self.clone();
        tokio::spawn(async move {
            let body = serde_json::to_value(&state).unwrap_or_default();
            let mut delay = PUSH_RETRY_FIRST;
            loop {
                let latest = hub
                    .generations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&state.remote_name)
                    .copied();
                if latest != Some(generation) {
                    return;
                }
                match hub.matrix.post_bridge_state(&url, &body).await {
                    Ok(()) => {
                        tracing::debug!(account = %state.remote_name, state = state.state_event.as_str(), "bridge state pushed");
                        return;
                    }
                    Err(error) if delay <= PUSH_RETRY_MAX => {
                        tracing::debug!(account = %state.remote_name, %error, retry_in_s = delay.as_secs(), "bridge state push failed");
                        tokio::time::sleep(delay).await;
                        delay = delay.saturating_mul(2);
                    }
                    Err(error) => {
                        tracing::warn!(account = %state.remote_name, %error, "bridge state push dropped after retries");
                        return;
                    }
                }
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
        let qq = self.account_number(account).map_or(0, |qq| qq.get());
        let observed = bridge_state(account, qq, state, reason, unix_now());
        let outputs = self
            .states
            .tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(observed, Instant::now());
        self.ensure_state_timer();
        self.states.wake.notify_one();
        self.dispatch_states(outputs).await;
    }

    /// Every account's latest bridge state as JSON (`GET …/com.qqbridge/bridge_state`).
    pub fn bridge_states_json(&self) -> serde_json::Value {
        serde_json::json!({ "states": self.states.current() })
    }

    async fn dispatch_states(&self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Push(state) => self.states.push(state),
                Output::Notice(state) => self.tell_state(&state).await,
            }
        }
    }

    /// Starts the task that releases held states, once. It holds only a weak reference, so it
    /// ends with the bridge.
    fn ensure_state_timer(self: &Arc<Self>) {
        if self.states.timer_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(bridge) = weak.upgrade() else { return };
                let deadline = bridge
                    .states
                    .tracker
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .next_deadline();
                let states = bridge.states.clone();
                drop(bridge);
                match deadline {
                    Some(at) => {
                        tokio::select! {
                            () = tokio::time::sleep_until(at.into()) => {}
                            () = states.wake.notified() => continue,
                        }
                    }
                    None => {
                        // Wakes now and then to notice that the bridge is gone.
                        let idle = tokio::time::sleep(Duration::from_secs(60));
                        tokio::select! {
                            () = idle => continue,
                            () = states.wake.notified() => continue,
                        }
                    }
                }
                let Some(bridge) = weak.upgrade() else { return };
                let outputs = bridge
                    .states
                    .tracker
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .tick(Instant::now());
                bridge.dispatch_states(outputs).await;
            }
        });
    }
}
