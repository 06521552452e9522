//! [`AccountManager`]: many accounts in one process — start, add and remove them at run time,
//! spread over one arbiter per core, and turn what they report into metrics and stored state.
//!
//! The manager is the accounts' observer: sessions are written to the store when they open (so a
//! restart restores them without a login), states go to the store and to the one-hot state
//! metric, polls, logins, sends and restarts to their metrics. Store writes are short SQLite
//! statements made on the manager's own thread; a failed write is logged and counted as an
//! account event, never silently dropped.

use std::collections::BTreeMap;

use std::time::Duration;

use actix::prelude::*;
use rand::Rng;

use crate::account::account_actor::{
    AccountActor, AccountEvent, AccountSettings, Child, Credentials, Disconnect, LogOutOfQq,
    LoginMethod, StopAccount,
};
use crate::account::poller::{Backoff, PollOutcome};
use crate::account::poller_actor::QqEventsReceived;
use crate::account::resolve::QqEvent;
use crate::account::send_queue::{SendOutcome, SendPolicy};
use crate::account::state::AccountState;
use crate::metrics::{self, Metrics};
use crate::store::Store;
use crate::webqq::QqNumber;
use crate::webqq::client::ClientConfig;

mod gaps;
mod lease;
mod shutdown;
mod via;

pub use shutdown::{DrainSends, StopAccounts};
pub use via::{
    AnswerCaptcha, FetchFace, FetchPictureVia, GetDirectory, GetGroupInfo, GroupSnapshot,
    NotifyTypingVia, SendVia, UploadPictureVia,
};

/// How long a poll lease lasts without renewal: one poller per account across processes
/// (RELIABILITY.md §1.6; protocol §7.1: a second poller steals the first one's events).
pub const LEASE_TTL: Duration = Duration::from_secs(120);
/// How often held leases are renewed.
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(30);

/// What every account of the manager shares.
#[derive(Clone, Debug)]
pub struct ManagerSettings {
    /// How to reach QQ.
    pub client: ClientConfig,
    /// Poll backoff bounds.
    pub backoff: Backoff,
    /// Sender pacing and retries.
    pub send: SendPolicy,
    /// Full logins tried in a row.
    pub max_relogins: u32,
    /// Arbiters (threads) to spread accounts over.
    pub arbiters: usize,
    /// Logins, restores and relinks doing network work at once, over all accounts
    /// (`runtime.restore_concurrency`).
    pub login_concurrency: usize,
    /// Label metrics with each account's id (`metrics.per_account`); when off, every account
    /// counts under [`ALL_ACCOUNTS`] and per-account gauges are not exported.
    pub per_account: bool,
    /// Polling gaps longer than this (seconds) are told to the account's owner
    /// (`poller.gap_notice_seconds`; 0: never).
    pub gap_notice: u64,
}

/// The `account` label of every series when `metrics.per_account` is off.
pub const ALL_ACCOUNTS: &str = "all";

/// Command: start an account. Answers an error when the id is taken. Sent by `run` at start and
/// by whoever adds accounts at run time.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct AddAccount {
    /// Short id (metrics label).
    pub id: String,
    /// The QQ number.
    pub qq: QqNumber,
    /// How to log in without a stored session.
    pub credentials: Credentials,
}

/// Command: stop and forget an account (its stored session stays). Answers whether it existed.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RemoveAccount {
    /// The account id.
    pub id: String,
}

/// How long a [`LogoutAccount`] waits for QQ to confirm the logout.
pub const QQ_LOGOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Command: log an account out on QQ (best effort, at most [`QQ_LOGOUT_TIMEOUT`]), then stop
/// and forget it as [`RemoveAccount`] does. Answers `None` when there was no such account,
/// else QQ's answer: an error says why QQ did not confirm (the account is gone regardless).
#[derive(Message)]
#[rtype(result = "Option<Result<(), String>>")]
pub struct LogoutAccount {
    /// The account id.
    pub id: String,
}

/// Query: every account's state and reason.
#[derive(Message)]
#[rtype(result = "Vec<(String, AccountState, Option<String>)>")]
pub struct GetStates;

/// What a person logging an account in must see, for whoever drives the login from Matrix
/// (the bot, `bridge/commands/`).
#[derive(Clone, Debug)]
pub enum LoginPrompt {
    /// A QR code waits to be scanned.
    Qr {
        /// The account id.
        account: String,
        /// The PNG.
        png: Vec<u8>,
    },
    /// The QR code was scanned; the phone must confirm.
    QrScanned {
        /// The account id.
        account: String,
    },
    /// A captcha waits to be typed; answer with [`AnswerCaptcha`].
    Captcha {
        /// The account id.
        account: String,
        /// The image (JPEG).
        image: Vec<u8>,
    },
    /// A session opened (and is stored): whose it is.
    Session {
        /// The account id.
        account: String,
        /// The QQ number the session belongs to.
        qq: QqNumber,
        /// The nickname ptlogin reported.
        nick: String,
    },
    /// The account's state changed.
    State {
        /// The account id.
        account: String,
        /// The new state.
        state: AccountState,
        /// Why, in words a person understands.
        reason: Option<String>,
    },
}

/// Command: hand every [`LoginPrompt`] to `0` from now on (one watcher; a new one replaces it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchLogins(pub tokio::sync::mpsc::UnboundedSender<LoginPrompt>);

/// Many accounts.
pub struct AccountManager {
    settings: ManagerSettings,
    metrics: Metrics,
    store: Store,
    events: Recipient<QqEventsReceived>,
    accounts: BTreeMap<String, Addr<AccountActor>>,
    states: BTreeMap<String, (AccountState, Option<String>)>,
    numbers: BTreeMap<String, QqNumber>,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    holder: String,
    login_permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// Accounts per state (in `AccountState::ALL` order), for `metrics.per_account: false`.
    state_counts: [usize; AccountState::ALL.len()],
    /// Who drives logins from Matrix, if anyone.
    login_watcher: Option<tokio::sync::mpsc::UnboundedSender<LoginPrompt>>,
    /// Whether accounts persist their poll batches until the sink has them (the bridge).
    persist_polls: bool,
    /// Each account's last successful poll (`gaps.rs`).
    gaps: gaps::PollGaps,
}

impl AccountManager {
    /// A manager whose accounts hand their events to `events`.
    pub fn new(
        settings: ManagerSettings,
        metrics: Metrics,
        store: Store,
        events: Recipient<QqEventsReceived>,
    ) -> Self {
        AccountManager {
            metrics,
            store,
            events,
            accounts: BTreeMap::new(),
            states: BTreeMap::new(),
            numbers: BTreeMap::new(),
            arbiters: Vec::new(),
            next_arbiter: 0,
            state_counts: [0; AccountState::ALL.len()],
            login_watcher: None,
            login_permits: std::sync::Arc::new(tokio::sync::Semaphore::new(
                settings.login_concurrency.max(1),
            )),
            holder: lease::holder_name(rand::rng().random::<u32>()),
            persist_polls: false,
            gaps: gaps::PollGaps::new(settings.gap_notice),
            settings,
        }
    }

    /// Makes its accounts persist each poll batch (`qq_polled`) until the sink deletes it with
    /// its inbox rows: for the bridge, which does. A sink that never deletes them (the logger
    /// of a QQ-only run) must not turn this on, or the rows would pile up and replay forever.
    pub fn persisting_polls(mut self) -> Self {
        self.persist_polls = true;
        self
    }

    fn arbiter(&mut self) -> ArbiterHandle {
        if self.arbiters.is_empty() {
            self.arbiters = (0..self.settings.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        }
        let handle = self.arbiters[self.next_arbiter % self.arbiters.len()].handle();
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        handle
    }
}

impl Actor for AccountManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(LEASE_RENEW_INTERVAL, |act, _| {
            for id in act.accounts.keys() {
                if !matches!(act.store.acquire_lease(id, &act.holder, LEASE_TTL), Ok(true)) {
                    tracing::error!(account = %id, "poll lease lost to another process");
                }
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for id in self.accounts.keys() {
            let _ = self.store.release_lease(id, &self.holder);
        }
    }
}

impl AccountManager {
    /// Takes the lease of `account` when its holder is a process of this machine that no longer
    /// runs (a crashed or killed bridge), instead of waiting up to [`LEASE_TTL`] for it to
    /// expire. A live holder, or one on another machine, keeps it.
    fn took_over_dead_lease(&self, account: &str) -> bool {
        let id = account.to_owned();
        let Ok(Some(current)) = self.store.blocking_call(move |c| c.lease_holder(&id)) else {
            return false;
        };
        if !lease::is_dead_local_holder(&current) {
            return false;
        }
        let (id, holder) = (account.to_owned(), self.holder.clone());
        let dead = current.clone();
        let taken = self
            .store
            .blocking_call(move |c| c.take_over_lease(&id, &dead, &holder, LEASE_TTL))
            .unwrap_or(false);
        if taken {
            tracing::info!(%account, previous = %current, "poll lease taken over from a process that is gone");
        }
        taken
    }
}

impl Handler<AddAccount> for AccountManager {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: AddAccount, ctx: &mut Context<Self>) -> Self::Result {
        if self.accounts.contains_key(&msg.id) {
            return Err(format!("account {} is already running", msg.id));
        }
        match self.store.acquire_lease(&msg.id, &self.holder, LEASE_TTL) {
            Ok(true) => {}
            Ok(false) if self.took_over_dead_lease(&msg.id) => {}
            Ok(false) => {
                return Err(format!("account {} is polled by another qqbridge process", msg.id));
            }
            Err(error) => return Err(format!("account {}: {error}", msg.id)),
        }
        self.start_gaps(&msg.id);
        let stored = match self.store.load_session(&msg.id) {
            Ok(stored) => stored.filter(|s| s.qq == msg.qq),
            Err(error) => {
                tracing::warn!(account = %msg.id, %error, "stored session not readable; logging in anew");
                None
            }
        };
        let settings = AccountSettings {
            id: msg.id.clone(),
            qq: msg.qq,
            credentials: msg.credentials,
            client: self.settings.client.clone(),
            backoff: self.settings.backoff,
            send: self.settings.send,
            max_relogins: self.settings.max_relogins,
            login_permits: self.login_permits.clone(),
        };
        let events = self.events.clone();
        let observer = ctx.address().recipient();
        let arbiter = self.arbiter();
        let store = self.persist_polls.then(|| self.store.clone());
        let account = AccountActor::start_in_arbiter(&arbiter, move |_| {
            let account = AccountActor::new(settings, stored, events, observer);
            match store {
                Some(store) => account.persisting_polls(store),
                None => account,
            }
        });
        self.export_state(&msg.id, None, Some(AccountState::Connecting));
        self.states.insert(msg.id.clone(), (AccountState::Connecting, None));
        self.numbers.insert(msg.id.clone(), msg.qq);
        self.accounts.insert(msg.id, account);
        Ok(())
    }
}

impl Handler<RemoveAccount> for AccountManager {
    type Result = bool;

    fn handle(&mut self, msg: RemoveAccount, _: &mut Context<Self>) -> bool {
        let Some(account) = self.forget(&msg.id) else { return false };
        account.do_send(StopAccount);
        true
    }
}

impl Handler<LogoutAccount> for AccountManager {
    type Result = ResponseFuture<Option<Result<(), String>>>;

    fn handle(&mut self, msg: LogoutAccount, _: &mut Context<Self>) -> Self::Result {
        let account = self.forget(&msg.id);
        Box::pin(async move {
            let account = account?;
            let answer = account.send(LogOutOfQq { timeout: QQ_LOGOUT_TIMEOUT }).await;
            Some(answer.unwrap_or_else(|_| Err("the account had stopped already".to_owned())))
        })
    }
}

impl AccountManager {
    /// Drops `id` from every table (its lease released, its metrics gone); answers its actor,
    /// still running, for the caller to stop.
    fn forget(&mut self, id: &str) -> Option<Addr<AccountActor>> {
        let account = self.accounts.remove(id)?;
        if let Err(error) = self.store.release_lease(id, &self.holder) {
            tracing::warn!(account = %id, %error, "poll lease not released; it expires by itself");
        }
        if let Some((state, _)) = self.states.remove(id) {
            self.export_state(id, Some(state), None);
        }
        self.numbers.remove(id);
        self.gaps.forget(id);
        self.metrics.forget_account(id);
        Some(account)
    }
}

impl Handler<WatchLogins> for AccountManager {
    type Result = ();

    fn handle(&mut self, msg: WatchLogins, _: &mut Context<Self>) {
        self.login_watcher = Some(msg.0);
    }
}

impl Handler<GetStates> for AccountManager {
    type Result = MessageResult<GetStates>;

    fn handle(&mut self, _: GetStates, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.states
                .iter()
                .map(|(id, (state, reason))| (id.clone(), *state, reason.clone()))
                .collect(),
        )
    }
}

impl Handler<AccountEvent> for AccountManager {
    type Result = ();

    fn handle(&mut self, event: AccountEvent, _: &mut Context<Self>) {
        match event {
            AccountEvent::StateChanged { account, state, reason } => {
                let before = self.states.get(&account).map(|(state, _)| *state);
                self.export_state(&account, before, Some(state));
                if let Some(qq) = self.numbers.get(&account)
                    && let Err(error) = self.store.set_account_state(
                        &account,
                        qq.get(),
                        state.as_str(),
                        reason.as_deref(),
                    )
                {
                    tracing::warn!(%account, %error, "account state not stored");
                }
                if before != Some(state) {
                    // The bridge tells the owner what needs them and syncs contacts on connect.
                    let resolved = vec![QqEvent::AccountState { state, reason: reason.clone() }];
                    let (account, events) = (account.clone(), Vec::new());
                    let polled = None;
                    self.events.do_send(QqEventsReceived { account, events, resolved, polled });
                }
                self.prompt(LoginPrompt::State {
                    account: account.clone(),
                    state,
                    reason: reason.clone(),
                });
                self.states.insert(account, (state, reason));
            }
            AccountEvent::SessionSaved { account, session } => {
                if let Err(error) = self.store.save_session(&account, &session) {
                    tracing::error!(%account, %error, "session not stored: a restart will need a new login");
                }
                let (qq, nick) = (session.qq, session.nick.clone());
                self.prompt(LoginPrompt::Session { account, qq, nick });
            }
            AccountEvent::LoginFinished { account, method, ok } => {
                let method = match method {
                    LoginMethod::Restore => metrics::LoginMethod::Restore,
                    LoginMethod::Relink => metrics::LoginMethod::Relink,
                    LoginMethod::Password => metrics::LoginMethod::Password,
                    LoginMethod::Qr => metrics::LoginMethod::Qr,
                };
                let outcome =
                    if ok { metrics::LoginOutcome::Ok } else { metrics::LoginOutcome::Error };
                self.metrics.login(self.label(&account), method, outcome);
            }
            AccountEvent::QrCode { account, png } => {
                self.hand_to_person(&account, "qr.png", &png, "QR code waiting to be scanned");
                self.prompt(LoginPrompt::Qr { account, png });
            }
            AccountEvent::QrScanned { account } => {
                tracing::info!(%account, "QR code scanned; waiting for the phone's confirmation");
                self.prompt(LoginPrompt::QrScanned { account });
            }
            AccountEvent::Captcha { account, image } => {
                self.hand_to_person(
                    &account,
                    "captcha.jpg",
                    &image,
                    "captcha waiting: type `captcha <account> <text>` on the bridge's input",
                );
                self.prompt(LoginPrompt::Captcha { account, image });
            }
            AccountEvent::Disconnected { account, reason } => {
                let reason = match reason {
                    Disconnect::Network => metrics::DisconnectReason::Network,
                    Disconnect::SessionExpired => metrics::DisconnectReason::SessionExpired,
                    Disconnect::Kicked => metrics::DisconnectReason::Kicked,
                };
                self.metrics.disconnect(self.label(&account), reason);
            }
            AccountEvent::Poll { account, poll } => {
                let outcome = match poll.outcome {
                    PollOutcome::Ok => metrics::PollOutcome::Ok,
                    PollOutcome::Empty => metrics::PollOutcome::Empty,
                    PollOutcome::HttpError => metrics::PollOutcome::HttpError,
                    PollOutcome::Timeout => metrics::PollOutcome::Timeout,
                    PollOutcome::DecodeError => metrics::PollOutcome::DecodeError,
                    PollOutcome::Retcode => metrics::PollOutcome::Retcode,
                };
                self.metrics.poll_finished(self.label(&account), outcome, poll.duration);
                let answered = matches!(poll.outcome, PollOutcome::Ok | PollOutcome::Empty);
                let now = crate::webqq::session::unix_now();
                if answered {
                    self.poll_answered(&account, now);
                }
                if self.settings.per_account {
                    if answered {
                        self.metrics.poll_succeeded_at(&account, now);
                    }
                    self.metrics.set_consecutive_failures(&account, poll.consecutive_failures);
                    self.metrics.set_backoff(&account, poll.backoff);
                }
                if let Some(code) = poll.retcode {
                    self.metrics.retcode(code);
                }
                for poll_type in &poll.poll_types {
                    self.metrics.poll_event(poll_type);
                }
            }
            AccountEvent::Send { account, report } => {
                let outcome = match report.outcome {
                    SendOutcome::Delivered => metrics::SendOutcome::Delivered,
                    SendOutcome::WillRetry { .. } => metrics::SendOutcome::Retry,
                    SendOutcome::Uncertain { .. } => metrics::SendOutcome::Uncertain,
                    SendOutcome::Failed { .. } => metrics::SendOutcome::Failed,
                };
                self.metrics.send_finished(self.label(&account), outcome, report.duration);
                if self.settings.per_account {
                    self.metrics.set_queue_depth(&account, report.depth);
                }
            }
            AccountEvent::ChildRestarted { account, child } => {
                let child = match child {
                    Child::Login => metrics::ActorChild::Login,
                    Child::Poller => metrics::ActorChild::Poller,
                    Child::Sender => metrics::ActorChild::Sender,
                };
                self.metrics.restart(self.label(&account), child);
            }
        }
    }
}

impl AccountManager {
    /// The `account` label for `account`'s series.
    fn label<'a>(&self, account: &'a str) -> &'a str {
        if self.settings.per_account { account } else { ALL_ACCOUNTS }
    }

    /// Exports `account`'s move from `before` to `now` (`None`: added or removed): one-hot per
    /// account, or the number of accounts in each state under [`ALL_ACCOUNTS`].
    fn export_state(
        &mut self,
        account: &str,
        before: Option<AccountState>,
        now: Option<AccountState>,
    ) {
        if self.settings.per_account {
            if let Some(now) = now {
                self.metrics.set_account_state(account, state_label(now));
            }
            return;
        }
        let index = |state: AccountState| AccountState::ALL.iter().position(|s| *s == state);
        for (state, up) in before.map(|s| (s, false)).into_iter().chain(now.map(|s| (s, true))) {
            let Some(count) = index(state).and_then(|i| self.state_counts.get_mut(i)) else {
                continue;
            };
            *count = if up { count.saturating_add(1) } else { count.saturating_sub(1) };
            let count = *count;
            self.metrics.set_account_state_count(ALL_ACCOUNTS, state_label(state), count);
        }
    }

    /// Hands `prompt` to the login watcher, if there is one.
    fn prompt(&mut self, prompt: LoginPrompt) {
        if let Some(watcher) = &self.login_watcher
            && watcher.send(prompt).is_err()
        {
            self.login_watcher = None;
        }
    }

    /// Writes an image a person must act on (QR code, captcha) beside the store, readable by the
    /// owner only: whoever drives the login (the operator, until the Matrix bot does it) finds it
    /// there.
    fn hand_to_person(&self, account: &str, suffix: &str, bytes: &[u8], what: &str) {
        let dir = self
            .store
            .path()
            .and_then(std::path::Path::parent)
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let path = dir.join(format!("{account}-{suffix}"));
        match crate::store::write_private(&path, bytes) {
            Ok(()) => tracing::info!(%account, path = %path.display(), "{what}"),
            Err(error) => tracing::warn!(%account, %error, "image for the login not written"),
        }
    }
}

fn state_label(state: AccountState) -> metrics::AccountStateLabel {
    use metrics::AccountStateLabel as L;
    match state {
        AccountState::Connecting => L::Connecting,
        AccountState::Connected => L::Connected,
        AccountState::TransientDisconnect => L::TransientDisconnect,
        AccountState::BadCredentials => L::BadCredentials,
        AccountState::LoggedOut => L::LoggedOut,
        AccountState::UnknownError => L::UnknownError,
        AccountState::WaitingForQr => L::WaitingForQr,
        AccountState::WaitingForCaptcha => L::WaitingForCaptcha,
    }
}
