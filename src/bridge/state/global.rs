//! The bridge's own state in bridgev2's vocabulary (MATRIX.md §6.5): STARTING, UNCONFIGURED,
//! RUNNING (BRIDGE_UNREACHABLE is the homeserver's to set), pushed with every login's latest
//! state under `remoteState`, as mautrix's `GlobalBridgeState`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BridgeState, ERROR_TTL_SECONDS, OK_TTL_SECONDS};

/// A global state, as bridgev2 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GlobalEvent {
    /// The process is starting; no account runs yet.
    Starting,
    /// The bridge runs but has nothing to bridge (no account configured or logged in).
    Unconfigured,
    /// The appservice is up.
    Running,
    /// The homeserver cannot reach the bridge (set by the homeserver, never by us).
    BridgeUnreachable,
}

impl GlobalEvent {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GlobalEvent::Starting => "STARTING",
            GlobalEvent::Unconfigured => "UNCONFIGURED",
            GlobalEvent::Running => "RUNNING",
            GlobalEvent::BridgeUnreachable => "BRIDGE_UNREACHABLE",
        }
    }

    /// Seconds the state holds before the receiver considers it stale.
    pub fn ttl(self) -> u64 {
        match self {
            GlobalEvent::Starting | GlobalEvent::Running => OK_TTL_SECONDS,
            GlobalEvent::Unconfigured | GlobalEvent::BridgeUnreachable => ERROR_TTL_SECONDS,
        }
    }
}

/// The bridge's own part of a [`GlobalState`] (bridgev2 `BridgeState` without a login).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BridgeOwnState {
    /// The state.
    pub state_event: GlobalEvent,
    /// When it was set (or last re-pushed), Unix seconds.
    pub timestamp: u64,
    /// Seconds it holds.
    pub ttl: u64,
    /// Who says so: always `bridge`.
    pub source: &'static str,
}

/// What the status endpoint receives for the bridge as a whole (bridgev2 `GlobalBridgeState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalState {
    /// The bridge's own state.
    #[serde(rename = "bridgeState")]
    pub bridge_state: BridgeOwnState,
    /// Every login's latest state, by login id (the account id, as the provisioning API names
    /// logins).
    #[serde(rename = "remoteState")]
    pub remote_state: BTreeMap<String, BridgeState>,
}

/// The global state `event` at `unix` with `remotes` (each login's latest state).
pub fn global_state(event: GlobalEvent, remotes: Vec<BridgeState>, unix: u64) -> GlobalState {
    GlobalState {
        bridge_state: BridgeOwnState {
            state_event: event,
            timestamp: unix,
            ttl: event.ttl(),
            source: "bridge",
        },
        remote_state: remotes.into_iter().map(|s| (s.remote_name.clone(), s)).collect(),
    }
}
