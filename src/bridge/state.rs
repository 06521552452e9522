//! Bridge state per QQ login in mautrix bridgev2's vocabulary (MATRIX.md §6.5, RELIABILITY.md
//! §1.6): the mapping from account states, and [`StateTracker`], the plain state machine that
//! turns observed states into pushes and management-room notices — holds (debounce), TTLs and
//! repeats decided on a clock the caller passes in, so tests drive it with a fake one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::account::state::AccountState;
use crate::config::BridgeStatusNotices;

/// TTL of an error state, in seconds (bridgev2: an identical state is not resent within it).
pub const ERROR_TTL_SECONDS: u64 = 3600;

/// TTL of a healthy state, in seconds.
pub const OK_TTL_SECONDS: u64 = 21600;

/// A login's state, as bridgev2 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateEvent {
    /// Login, session restore or relink in progress (never pushed).
    Connecting,
    /// The last poll was answered normally.
    Connected,
    /// Network or 5xx streak, backing off.
    TransientDisconnect,
    /// Password wrong, captcha or QR needed, session unrecoverable.
    BadCredentials,
    /// Kicked, logged in elsewhere or logged out: never relogged automatically.
    LoggedOut,
    /// Unexpected retcodes.
    UnknownError,
}

impl StateEvent {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StateEvent::Connecting => "CONNECTING",
            StateEvent::Connected => "CONNECTED",
            StateEvent::TransientDisconnect => "TRANSIENT_DISCONNECT",
            StateEvent::BadCredentials => "BAD_CREDENTIALS",
            StateEvent::LoggedOut => "LOGGED_OUT",
            StateEvent::UnknownError => "UNKNOWN_ERROR",
        }
    }

    /// Whether it is an error state (told under `bridge_status_notices: errors`).
    pub fn is_error(self) -> bool {
        !matches!(self, StateEvent::Connecting | StateEvent::Connected)
    }
}

/// One login's state as pushed, served and told (bridgev2 `BridgeState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BridgeState {
    /// The state.
    pub state_event: StateEvent,
    /// When it was observed, Unix seconds.
    pub timestamp: u64,
    /// Seconds an identical state is not resent.
    pub ttl: u64,
    /// Machine-readable cause (`qq-kicked`, `qq-bad-password`, `qq-retcode-<n>`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Human-readable cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the user should do: `RELOGIN` or `RESTART`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_action: Option<&'static str>,
    /// The login's QQ number.
    pub remote_id: String,
    /// The login's account id (`accounts[].id`).
    pub remote_name: String,
}

impl BridgeState {
    /// Whether `other` says the same: state and error code (timestamps and the wording of
    /// the message aside, which changes with every failed poll of an outage).
    pub fn same_as(&self, other: &BridgeState) -> bool {
        self.state_event == other.state_event && self.error == other.error
    }
}

/// The bridge state of `account` (QQ `qq`) in `state` for `reason`, observed at `unix`.
pub fn bridge_state(
    account: &str,
    qq: u64,
    state: AccountState,
    reason: Option<&str>,
    unix: u64,
) -> BridgeState {
    let lower = reason.unwrap_or_default().to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let (state_event, error, user_action, message) = match state {
        AccountState::Connecting => (StateEvent::Connecting, None, None, None),
        AccountState::WaitingForQr => {
            (StateEvent::Connecting, None, None, Some("waiting for the QR code to be scanned"))
        }
        AccountState::WaitingForCaptcha => {
            (StateEvent::Connecting, None, None, Some("waiting for the captcha to be answered"))
        }
        AccountState::Connected => (StateEvent::Connected, None, None, None),
        AccountState::TransientDisconnect => {
            (StateEvent::TransientDisconnect, Some("qq-transient".to_owned()), None, None)
        }
        AccountState::BadCredentials => {
            let error = if has(&["password"]) {
                "qq-bad-password"
            } else if has(&["captcha", "qr"]) {
                "qq-captcha-required"
            } else if has(&["lock", "frozen", "freeze"]) {
                "qq-account-locked"
            } else {
                "qq-session-expired"
            };
            (StateEvent::BadCredentials, Some(error.to_owned()), Some("RELOGIN"), None)
        }
        AccountState::LoggedOut => {
            let error = if has(&["by the user", "logout", "logged out by you"]) {
                "qq-logged-out"
            } else {
                "qq-kicked"
            };
            (StateEvent::LoggedOut, Some(error.to_owned()), Some("RELOGIN"), None)
        }
        AccountState::UnknownError => {
            let digits: String = lower
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .take(12)
                .collect();
            let error = if digits.is_empty() {
                "qq-unknown-error".to_owned()
            } else {
                format!("qq-retcode-{digits}")
            };
            (StateEvent::UnknownError, Some(error), Some("RESTART"), None)
        }
    };
    let ttl = if state_event.is_error() { ERROR_TTL_SECONDS } else { OK_TTL_SECONDS };
    BridgeState {
        state_event,
        timestamp: unix,
        ttl,
        error,
        message: reason.map(str::to_owned).or(message.map(str::to_owned)),
        user_action,
        remote_id: qq.to_string(),
        remote_name: account.to_owned(),
    }
}

/// The management-room notice for `state`.
pub fn notice_text(state: &BridgeState) -> String {
    let account = &state.remote_name;
    let why = state.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
    let name = state.state_event.as_str();
    match state.state_event {
        StateEvent::Connecting => format!("QQ account {account} is connecting ({name}{why})."),
        StateEvent::Connected => format!("QQ account {account} is connected ({name})."),
        StateEvent::TransientDisconnect => {
            format!("QQ account {account} cannot reach QQ ({name}{why}); the bridge keeps trying.")
        }
        StateEvent::BadCredentials => format!(
            "QQ account {account} cannot log in ({name}{why}). Check the password, or answer \
             the captcha or QR code, then log in again."
        ),
        StateEvent::LoggedOut => format!(
            "QQ account {account} is logged out ({name}{why}). Log in again to resume bridging."
        ),
        StateEvent::UnknownError => {
            format!("QQ account {account} stopped on an unexpected error ({name}{why}).")
        }
    }
}

/// What the tracker asks the caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// POST this state to `homeserver.status_endpoint` (when one is set).
    Push(BridgeState),
    /// POST this global state to `homeserver.status_endpoint` (when one is set).
    PushGlobal(GlobalState),
    /// Tell the account's owner in the management room.
    Notice(BridgeState),
}

/// Per-account memory of the tracker.
#[derive(Debug)]
struct Entry {
    /// The latest observed state (served by the GET endpoint, holds or not).
    current: BridgeState,
    /// An error state waiting out its hold, since when.
    pending: Option<(BridgeState, Instant)>,
    /// The last state pushed, and when.
    pushed: Option<(BridgeState, Instant)>,
    /// The last state told in the management room.
    told: Option<StateEvent>,
}

impl Entry {
    fn new(state: &BridgeState) -> Entry {
        Entry { current: state.clone(), pending: None, pushed: None, told: None }
    }
}

/// How the tracker tells and holds (MATRIX.md §6.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSettings {
    /// `bridge.bridge_status_notices`.
    pub notices: BridgeStatusNotices,
    /// How long a TRANSIENT_DISCONNECT is held before it is told or pushed.
    pub transient_hold: Duration,
    /// How long the other error states are held.
    pub error_hold: Duration,
    /// `homeserver.status_endpoint`.
    pub endpoint: Option<String>,
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            notices: BridgeStatusNotices::Errors,
            transient_hold: Duration::from_secs(180),
            error_hold: Duration::ZERO,
            endpoint: None,
        }
    }
}

/// Observed states in, pushes and notices out. Pure: no IO, no clock of its own.
///
/// - CONNECTING is never pushed and does not end a hold (a reconnect is not a recovery).
/// - An error state is held for its hold time; if another non-error state arrives first it is
///   never told nor pushed. Once held long enough ([`StateTracker::tick`]) it goes out.
/// - A push identical to the last one ([`BridgeState::same_as`]) within its TTL is dropped.
/// - Notices follow `notices`: `errors` tells error states and the recovery after a told one;
///   `all` tells every change; a state already told is not told again.
#[derive(Debug)]
pub struct StateTracker {
    settings: StatusSettings,
    accounts: BTreeMap<String, Entry>,
    /// The last global state pushed, and when.
    global: Option<(GlobalState, Instant)>,
}

/// When a pushed state of `ttl` seconds, pushed at `at`, is pushed again: at four fifths of
/// its TTL, so the receiver never sees it expire.
fn refresh_at(at: Instant, ttl: u64) -> Instant {
    at + Duration::from_secs(ttl.saturating_mul(4) / 5)
}

impl StateTracker {
    /// A tracker with no account seen yet.
    pub fn new(settings: StatusSettings) -> StateTracker {
        StateTracker { settings, accounts: BTreeMap::new(), global: None }
    }

    /// Sets the bridge's own state at `now` (`unix` on the wall clock): pushed at once with
    /// every login's latest state.
    pub fn set_global(&mut self, event: GlobalEvent, now: Instant, unix: u64) -> Vec<Output> {
        let state = global_state(event, self.current(), unix);
        self.global = Some((state.clone(), now));
        vec![Output::PushGlobal(state)]
    }

    /// The last global state pushed.
    pub fn global(&self) -> Option<GlobalState> {
        self.global.as_ref().map(|(state, _)| state.clone())
    }

    /// Forgets `account` (logged out by its owner): its last pushed state, if any, is followed
    /// by a LOGGED_OUT push (bridgev2 does so when a login is deleted), and it is neither
    /// refreshed nor listed any more.
    /// The last login gone, a RUNNING bridge becomes UNCONFIGURED.
    pub fn forget(&mut self, account: &str, unix: u64, now: Instant) -> Vec<Output> {
        let Some(entry) = self.accounts.remove(account) else { return Vec::new() };
        let mut out = Vec::new();
        if let Some((last, _)) = entry.pushed {
            let qq = last.remote_id.parse().unwrap_or(0);
            let reason = Some("logged out by the user");
            out.push(Output::Push(bridge_state(
                account,
                qq,
                AccountState::LoggedOut,
                reason,
                unix,
            )));
        }
        if self.accounts.is_empty() && self.global_event() == Some(GlobalEvent::Running) {
            out.extend(self.set_global(GlobalEvent::Unconfigured, now, unix));
        }
        out
    }

    /// The global state's event, once one was set.
    fn global_event(&self) -> Option<GlobalEvent> {
        self.global.as_ref().map(|(state, _)| state.bridge_state.state_event)
    }

    /// Pushes again, with `unix` as timestamp, every state (the logins' and the global one)
    /// whose refresh time has come at `now`, so none expires at the receiver while it holds.
    pub fn refresh(&mut self, now: Instant, unix: u64) -> Vec<Output> {
        let mut out = Vec::new();
        for entry in self.accounts.values_mut() {
            let Some((last, at)) = entry.pushed.as_mut() else { continue };
            if now >= refresh_at(*at, last.ttl) {
                last.timestamp = unix;
                *at = now;
                out.push(Output::Push(last.clone()));
            }
        }
        let remotes = self.current();
        if let Some((global, at)) = self.global.as_mut()
            && now >= refresh_at(*at, global.bridge_state.ttl)
        {
            *global = global_state(global.bridge_state.state_event, remotes, unix);
            *at = now;
            out.push(Output::PushGlobal(global.clone()));
        }
        out
    }

    /// When the next refresh is due; `None` when nothing was pushed.
    pub fn next_refresh(&self) -> Option<Instant> {
        let accounts = self
            .accounts
            .values()
            .filter_map(|e| e.pushed.as_ref().map(|(last, at)| refresh_at(*at, last.ttl)));
        let global = self.global.as_ref().map(|(g, at)| refresh_at(*at, g.bridge_state.ttl));
        accounts.chain(global).min()
    }

    /// The latest state of `account`; `None` when it was never seen.
    pub fn state_of(&self, account: &str) -> Option<BridgeState> {
        self.accounts.get(account).map(|entry| entry.current.clone())
    }

    /// The hold of `event`.
    fn hold_of(&self, event: StateEvent) -> Duration {
        match event {
            StateEvent::TransientDisconnect => self.settings.transient_hold,
            e if e.is_error() => self.settings.error_hold,
            _ => Duration::ZERO,
        }
    }

    /// Records `state` for its account at `now`; answers what to do at once. The first login
    /// of an UNCONFIGURED bridge makes it RUNNING.
    pub fn observe(&mut self, state: BridgeState, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.accounts.is_empty() && self.global_event() == Some(GlobalEvent::Unconfigured) {
            // The first login of an UNCONFIGURED bridge: it has something to bridge now.
            let unix = state.timestamp;
            self.accounts.insert(state.remote_name.clone(), Entry::new(&state));
            out.extend(self.set_global(GlobalEvent::Running, now, unix));
        }
        out.extend(self.observe_login(state, now));
        out
    }

    fn observe_login(&mut self, state: BridgeState, now: Instant) -> Vec<Output> {
        let hold = self.hold_of(state.state_event);
        let notices = self.settings.notices;
        let entry =
            self.accounts.entry(state.remote_name.clone()).or_insert_with(|| Entry::new(&state));
        entry.current = state.clone();
        let mut out = Vec::new();
        match state.state_event {
            StateEvent::Connecting => emit(entry, notices, state, now, &mut out),
            // An error already out (pushed) is not held again: a repeat goes through the
            // TTL check at once.
            event
                if event.is_error()
                    && !hold.is_zero()
                    && !entry.pushed.as_ref().is_some_and(|(p, _)| p.same_as(&state)) =>
            {
                let since = entry.pending.as_ref().map_or(now, |(_, since)| *since);
                entry.pending = Some((state, since));
            }
            _ => {
                entry.pending = None;
                emit(entry, notices, state, now, &mut out);
            }
        }
        out
    }

    /// Releases the held states whose hold has passed at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let (transient, error) = (self.settings.transient_hold, self.settings.error_hold);
        let notices = self.settings.notices;
        for entry in self.accounts.values_mut() {
            let due = entry.pending.as_ref().is_some_and(|(state, since)| {
                let hold = if state.state_event == StateEvent::TransientDisconnect {
                    transient
                } else {
                    error
                };
                now.saturating_duration_since(*since) >= hold
            });
            if due && let Some((state, _)) = entry.pending.take() {
                emit(entry, notices, state, now, &mut out);
            }
        }
        out
    }

    /// When the next held state is due; `None` when nothing is held.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.accounts
            .values()
            .filter_map(|entry| {
                let (state, since) = entry.pending.as_ref()?;
                Some(*since + self.hold_of(state.state_event))
            })
            .min()
    }

    /// The latest observed state of every account, by account id.
    pub fn current(&self) -> Vec<BridgeState> {
        self.accounts.values().map(|entry| entry.current.clone()).collect()
    }
}

/// Pushes and tells `state` as `entry`'s memory and `notices` allow.
fn emit(
    entry: &mut Entry,
    notices: BridgeStatusNotices,
    state: BridgeState,
    now: Instant,
    out: &mut Vec<Output>,
) {
    if state.state_event != StateEvent::Connecting {
        let repeat = entry.pushed.as_ref().is_some_and(|(last, at)| {
            last.same_as(&state)
                && now.saturating_duration_since(*at) < Duration::from_secs(last.ttl)
        });
        if !repeat {
            entry.pushed = Some((state.clone(), now));
            out.push(Output::Push(state.clone()));
        }
    }
    let event = state.state_event;
    let wanted = match notices {
        BridgeStatusNotices::None => false,
        BridgeStatusNotices::Errors => {
            event.is_error()
                || (event == StateEvent::Connected && entry.told.is_some_and(StateEvent::is_error))
        }
        BridgeStatusNotices::All => true,
    };
    if wanted && entry.told != Some(event) {
        entry.told = Some(event);
        out.push(Output::Notice(state));
    }
}

mod global;
pub use global::{BridgeOwnState, GlobalEvent, GlobalState, global_state};

#[cfg(test)]
mod tests;
