//! [`AccountActor`]: one QQ account — owns the policy and its three children (login, poller,
//! sender).
//!
//! Start-up: restore the stored session and relink; if that fails, a full login where the
//! configured credentials allow (password; QR needs a person). Session trouble reported by the
//! poller: relink first, then a full login, at most `max_relogins` times in a row, then
//! BAD_CREDENTIALS. A kick (121 after its one relink, or kick_message) ends in LOGGED_OUT and is
//! never answered with a new login. Children report to this actor; it tells an observer (the
//! manager that keeps metrics and the store) about states, sessions, polls, sends and QR codes.

use std::sync::Arc;

use actix::prelude::*;

use crate::account::login_actor::{
    CaptchaIssued, LoginActor, LoginError, LoginWithPassword, LoginWithQr, QrCodeIssued, Relink,
    Restore,
};
use crate::account::lookup;

mod polled;
mod restore;
mod services;
pub use crate::account::messages::{
    AccountEvent, AccountSettings, Child, Credentials, Disconnect, FetchPicture, GetAccountState,
    LogOutOfQq, LoginMethod, NotifyTyping, PictureRequest, SolveCaptcha, StopAccount,
    UploadPicture,
};
use crate::account::poller::StopReason;
use crate::account::poller_actor::{
    PollFinished, PollerActor, PollerNeedsRelink, PollerReports, PollerStopped, QqEventsReceived,
};
use crate::account::resolve::{Lookup, Resolution, Resolver};
use crate::account::sender_actor::{NewSession, QueueMessage, SendReport, SenderActor};
use crate::account::state::{self, AccountState, Signal};
use crate::webqq::client::WebQqClient;
use crate::webqq::directory::Directory;
use crate::webqq::retcode::Action;
use crate::webqq::session::Session;

/// One QQ account.
pub struct AccountActor {
    settings: AccountSettings,
    stored: Option<Session>,
    state: AccountState,
    reason: Option<String>,
    client: Option<Arc<WebQqClient>>,
    login: Option<Addr<LoginActor>>,
    poller: Option<Addr<PollerActor>>,
    sender: Option<Addr<SenderActor>>,
    pending: Vec<QueueMessage>,
    captcha: Option<tokio::sync::oneshot::Sender<String>>,
    /// The session's id tables; `None` until the directory is loaded after a login.
    resolver: Option<Resolver>,
    /// Poll batches waiting for the directory or for a lookup, in order.
    unresolved: std::collections::VecDeque<QqEventsReceived>,
    /// A lookup is in flight: later batches wait behind it.
    resolving: bool,
    /// Poll batches persisted until the bridge has them (`polled.rs`).
    polls: polled::Polls,
    relogins: u32,
    /// Failed attempts at restoring the stored session so far.
    restore_attempts: u32,
    relinked_after_kick: bool,
    pollers_started: u32,
    events: Recipient<QqEventsReceived>,
    observer: Recipient<AccountEvent>,
}

impl AccountActor {
    /// An account that will restore `stored` if given, hand events to `events` and report to
    /// `observer`.
    pub fn new(
        settings: AccountSettings,
        stored: Option<Session>,
        events: Recipient<QqEventsReceived>,
        observer: Recipient<AccountEvent>,
    ) -> Self {
        AccountActor {
            settings,
            stored,
            state: AccountState::Connecting,
            reason: None,
            client: None,
            login: None,
            poller: None,
            sender: None,
            pending: Vec::new(),
            captcha: None,
            resolver: None,
            unresolved: std::collections::VecDeque::new(),
            resolving: false,
            polls: polled::Polls::default(),
            relogins: 0,
            restore_attempts: 0,
            relinked_after_kick: false,
            pollers_started: 0,
            events,
            observer,
        }
    }

    fn signal(&mut self, signal: Signal, reason: Option<String>) {
        let next = state::next(self.state, &signal);
        if next != self.state || reason != self.reason {
            self.state = next;
            self.reason = reason.clone();
            tracing::info!(account = %self.settings.id, state = %next, reason = ?reason, "account state");
            self.observer.do_send(AccountEvent::StateChanged {
                account: self.settings.id.clone(),
                state: next,
                reason,
            });
        }
    }

    /// The login child, started when a login begins and dropped once the session is open (an
    /// idle account keeps only its poller and sender).
    fn login_actor(&mut self) -> Addr<LoginActor> {
        let permits = &self.settings.login_permits;
        self.login.get_or_insert_with(|| LoginActor::new(permits.clone()).start()).clone()
    }

    fn report_disconnect(&self, reason: Disconnect) {
        self.observer
            .do_send(AccountEvent::Disconnected { account: self.settings.id.clone(), reason });
    }

    fn report_login(&self, method: LoginMethod, ok: bool) {
        self.observer.do_send(AccountEvent::LoginFinished {
            account: self.settings.id.clone(),
            method,
            ok,
        });
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.signal(Signal::LoginStarted, None);
        let Some(session) = self.stored.take() else {
            self.full_login(ctx);
            return;
        };
        let kept = session.clone();
        let request = Restore { config: self.settings.client.clone(), session: Box::new(session) };
        let login = self.login_actor();
        ctx.wait(async move { login.send(request).await }.into_actor(self).map(|answer, act, ctx| {
            match flatten(answer) {
                Ok(client) => {
                    act.restore_attempts = 0;
                    act.report_login(LoginMethod::Restore, true);
                    act.logged_in(client, ctx);
                }
                Err(error) => {
                    act.report_login(LoginMethod::Restore, false);
                    act.restore_attempts = act.restore_attempts.saturating_add(1);
                    if let Some(delay) = restore::restore_again(&error, act.restore_attempts) {
                        tracing::info!(account = %act.settings.id, %error, attempt = act.restore_attempts, "stored session not reached; trying it again");
                        act.stored = Some(kept);
                        ctx.run_later(delay, |act, ctx| act.connect(ctx));
                        return;
                    }
                    act.restore_attempts = 0;
                    tracing::info!(account = %act.settings.id, %error, "stored session not accepted");
                    act.full_login(ctx);
                }
            }
        }));
    }

    fn full_login(&mut self, ctx: &mut Context<Self>) {
        let config = self.settings.client.clone();
        let login = self.login_actor();
        let (method, request) = match self.settings.credentials.clone() {
            Credentials::Password(password) => {
                let msg = LoginWithPassword {
                    config,
                    qq: self.settings.qq,
                    password,
                    captchas: ctx.address().recipient(),
                };
                (
                    LoginMethod::Password,
                    futures_util::FutureExt::boxed_local(async move { login.send(msg).await }),
                )
            }
            Credentials::Qr => {
                self.signal(Signal::QrIssued, Some("scan the QR code with QQ".into()));
                let msg = LoginWithQr {
                    config,
                    qr_codes: ctx.address().recipient(),
                    scanned: ctx.address().recipient(),
                };
                (
                    LoginMethod::Qr,
                    futures_util::FutureExt::boxed_local(async move { login.send(msg).await }),
                )
            }
            Credentials::SessionOnly => {
                self.signal(
                    Signal::CredentialsRejected,
                    Some("the stored session expired; log in again".into()),
                );
                return;
            }
        };
        // Spawned, not awaited with `ctx.wait`: a full login may wait for a person, and the
        // captcha and QR images it produces arrive here as messages meanwhile.
        ctx.spawn(request.into_actor(self).map(move |answer, act, ctx| match flatten(answer) {
            Ok(client) => {
                act.report_login(method, true);
                act.logged_in(client, ctx);
            }
            Err(error) => {
                act.report_login(method, false);
                act.login_failed(&error, ctx);
            }
        }));
    }

    fn login_failed(&mut self, error: &LoginError, ctx: &mut Context<Self>) {
        let transient = matches!(error, LoginError::Webqq(e) if e.is_transient());
        if transient {
            // Network trouble is not a credentials problem: keep retrying with capped, jittered
            // backoff (the bench showed 10k simultaneous logins misread as BAD_CREDENTIALS).
            self.relogins = self.relogins.saturating_add(1);
            self.signal(Signal::TransientFailure, Some(error.to_string()));
            let delay = self.settings.backoff.delay(self.relogins, rand::random::<f64>());
            ctx.run_later(delay, |act, ctx| act.connect(ctx));
        } else if matches!(error, LoginError::Webqq(e) if e.action() == Action::Relogin)
            && self.relogins < self.settings.max_relogins
        {
            // A wrong captcha text or a stale login page (ptlogin codes 4, 5, 7, 24): the flow
            // starts again from check, with a new captcha if one is needed.
            self.relogins += 1;
            self.signal(Signal::LoginStarted, Some(error.to_string()));
            self.full_login(ctx);
        } else {
            self.signal(Signal::CredentialsRejected, Some(error.to_string()));
        }
    }

    fn logged_in(&mut self, client: Arc<WebQqClient>, ctx: &mut Context<Self>) {
        self.relogins = 0;
        self.login = None;
        // A new session has new uins: events wait for its directory.
        self.resolver = None;
        self.captcha = None;
        self.client = Some(client.clone());
        if let Some(session) = client.session() {
            self.observer.do_send(AccountEvent::SessionSaved {
                account: self.settings.id.clone(),
                session: Box::new(session),
            });
        }
        self.signal(Signal::LoggedIn, None);
        // Polling starts first (RELIABILITY.md §1.7: keep the gap short); the directory for the
        // sender follows.
        self.start_poller(client.clone(), ctx);
        let directory_client = client.clone();
        let permits = self.settings.login_permits.clone();
        let account = self.settings.id.clone();
        let load = restore::load_directory(directory_client, permits, account);
        ctx.spawn(load.into_actor(self).map(move |directory, act, ctx| {
            let directory = directory.unwrap_or_else(|error| {
                tracing::warn!(account = %act.settings.id, %error, "contact lists not loaded");
                Directory::default()
            });
            let directory = Arc::new(directory);
            act.resolver = Some(Resolver::new((*directory).clone(), act.settings.qq));
            act.start_sender(client, directory, ctx);
            act.resolve_next(ctx);
        }));
    }

    fn start_poller(&mut self, client: Arc<WebQqClient>, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let reports = PollerReports {
            events: me.clone().recipient(),
            finished: me.clone().recipient(),
            relink: me.clone().recipient(),
            stopped: me.recipient(),
        };
        self.pollers_started += 1;
        if self.pollers_started > 1 {
            self.observer.do_send(AccountEvent::ChildRestarted {
                account: self.settings.id.clone(),
                child: Child::Poller,
            });
        }
        self.poller = Some(
            PollerActor::new(self.settings.id.clone(), client, self.settings.backoff, reports)
                .persisting(self.polls.log.clone())
                .start(),
        );
    }

    fn start_sender(
        &mut self,
        client: Arc<WebQqClient>,
        directory: Arc<Directory>,
        ctx: &mut Context<Self>,
    ) {
        if let Some(sender) = &self.sender {
            // A new login replaced the session: the sender keeps its queue and goes on with the
            // new one. A sender left on the old client would retry its refused messages there
            // until it gave up, and they would be lost (the chaos run's seed 11).
            sender.do_send(NewSession { client, directory });
            for message in self.pending.drain(..) {
                sender.do_send(message);
            }
            return;
        }
        let sender =
            SenderActor::new(client, directory, self.settings.send, ctx.address().recipient())
                .start();
        for message in self.pending.drain(..) {
            sender.do_send(message);
        }
        self.sender = Some(sender);
    }
}

impl AccountActor {
    /// Queues a poll batch for resolution; batches leave in the order they came.
    fn enqueue_batch(&mut self, batch: QqEventsReceived, ctx: &mut Context<Self>) {
        self.unresolved.push_back(batch);
        self.resolve_next(ctx);
    }

    /// Resolves queued batches while no lookup is in flight and the directory is there.
    fn resolve_next(&mut self, ctx: &mut Context<Self>) {
        while !self.resolving && self.resolver.is_some() {
            let Some(batch) = self.unresolved.pop_front() else { return };
            if self.polled_in_other_session(&batch) {
                continue;
            }
            self.resolve_from(batch, 0, ctx);
        }
    }

    /// Resolves `batch` from event `next` on, and hands it on when done; a lookup suspends it
    /// (and the queue behind it) until the answer is in.
    fn resolve_from(
        &mut self,
        mut batch: QqEventsReceived,
        mut next: usize,
        ctx: &mut Context<Self>,
    ) {
        let Some(resolver) = &self.resolver else {
            self.unresolved.push_front(batch);
            return;
        };
        while let Some(event) = batch.events.get(next) {
            match resolver.resolve(event) {
                Resolution::Done(resolved) => {
                    batch.resolved.extend(resolved);
                    next += 1;
                }
                Resolution::Lookup(lookup) => return self.look_up(lookup, batch, next, ctx),
            }
        }
        self.events.do_send(batch);
    }

    fn look_up(
        &mut self,
        lookup: Lookup,
        batch: QqEventsReceived,
        next: usize,
        ctx: &mut Context<Self>,
    ) {
        let Some(client) = self.client.clone() else {
            if let Some(resolver) = self.resolver.as_mut() {
                resolver.lookup_failed(lookup);
            }
            return self.resolve_from(batch, next, ctx);
        };
        self.resolving = true;
        ctx.spawn(async move { lookup::learn(&client, lookup).await }.into_actor(self).map(
            move |learned, act, ctx| {
                if let Some(resolver) = act.resolver.as_mut() {
                    match learned {
                        Ok(lookup::Learned::Person(uin, qq)) => resolver.learn_person(uin, qq),
                        Ok(lookup::Learned::Members(gid, names)) => resolver.learn_group_members(gid, names),
                        Ok(lookup::Learned::GroupNumber(gid, number)) => resolver.learn_group_number(gid, number),
                        Err(error) => {
                            tracing::warn!(account = %act.settings.id, %error, ?lookup, "lookup failed; the event goes on without it");
                            resolver.lookup_failed(lookup);
                        }
                    }
                }
                act.resolving = false;
                act.resolve_from(batch, next, ctx);
                act.resolve_next(ctx);
            },
        ));
    }
}

fn flatten<T>(answer: Result<Result<T, LoginError>, MailboxError>) -> Result<T, LoginError> {
    answer.unwrap_or_else(|_| Err(LoginError::QrFailed("the login actor stopped".into())))
}

impl Actor for AccountActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.replay_polled(ctx, |act, ctx| act.connect(ctx));
    }
}

impl Handler<PollFinished> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: PollFinished, _: &mut Context<Self>) {
        use crate::account::poller::PollOutcome;
        match msg.outcome {
            PollOutcome::Ok | PollOutcome::Empty => self.signal(Signal::PollOk, None),
            PollOutcome::HttpError | PollOutcome::Timeout | PollOutcome::DecodeError => {
                if self.state == AccountState::Connected {
                    self.report_disconnect(Disconnect::Network);
                }
                self.signal(
                    Signal::TransientFailure,
                    Some(format!("{} polls failed in a row", msg.consecutive_failures)),
                );
            }
            PollOutcome::Retcode => {}
        }
        self.observer
            .do_send(AccountEvent::Poll { account: self.settings.id.clone(), poll: Arc::new(msg) });
    }
}

impl Handler<PollerNeedsRelink> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: PollerNeedsRelink, ctx: &mut Context<Self>) {
        self.poller = None;
        if msg.after_kick {
            // At most one relink for 121 in the account's life (RELIABILITY.md §1.6): a second
            // kick means another client holds the account, and fighting it would kick it in turn.
            if self.relinked_after_kick {
                self.sender = None;
                self.report_disconnect(Disconnect::Kicked);
                self.signal(
                    Signal::Kicked,
                    Some("logged in elsewhere; log in again to resume".into()),
                );
                return;
            }
            self.relinked_after_kick = true;
        }
        self.report_disconnect(Disconnect::SessionExpired);
        self.signal(Signal::SessionLost, Some("the session was dropped; relinking".into()));
        let Some(client) = self.client.clone() else {
            self.full_login(ctx);
            return;
        };
        let login = self.login_actor();
        let request = Relink { client: client.clone() };
        ctx.wait(async move { login.send(request).await }.into_actor(self).map(move |answer, act, ctx| {
            match flatten(answer) {
                Ok(()) => {
                    act.report_login(LoginMethod::Relink, true);
                    if let Some(session) = client.session() {
                        act.observer.do_send(AccountEvent::SessionSaved { account: act.settings.id.clone(), session: Box::new(session) });
                    }
                    act.signal(Signal::LoggedIn, None);
                    act.start_poller(client, ctx);
                }
                Err(error) => {
                    act.report_login(LoginMethod::Relink, false);
                    if matches!(&error, LoginError::Webqq(e) if e.action() == Action::LoggedInElsewhere) {
                        act.report_disconnect(Disconnect::Kicked);
                        act.signal(Signal::Kicked, Some("logged in elsewhere".into()));
                    } else if act.relogins >= act.settings.max_relogins {
                        act.signal(Signal::CredentialsRejected, Some(format!("relink failed: {error}")));
                    } else {
                        act.relogins += 1;
                        act.full_login(ctx);
                    }
                }
            }
        }));
    }
}

impl Handler<PollerStopped> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: PollerStopped, _: &mut Context<Self>) {
        self.poller = None;
        match msg.reason {
            StopReason::Kicked => {
                self.sender = None;
                self.report_disconnect(Disconnect::Kicked);
                self.signal(
                    Signal::Kicked,
                    Some("logged in elsewhere; log in again to resume".into()),
                );
            }
            StopReason::NeedsPerson(reason) => {
                self.signal(Signal::CredentialsRejected, Some(reason))
            }
        }
    }
}

impl Handler<QrCodeIssued> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: QrCodeIssued, _: &mut Context<Self>) {
        self.signal(Signal::QrIssued, Some("scan the QR code with QQ".into()));
        self.observer
            .do_send(AccountEvent::QrCode { account: self.settings.id.clone(), png: msg.png });
    }
}

impl Handler<QqEventsReceived> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: QqEventsReceived, ctx: &mut Context<Self>) {
        self.enqueue_batch(msg, ctx);
    }
}

impl Handler<CaptchaIssued> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: CaptchaIssued, _: &mut Context<Self>) {
        self.captcha = Some(msg.answer);
        self.signal(Signal::CaptchaIssued, Some("type the captcha text".into()));
        self.observer
            .do_send(AccountEvent::Captcha { account: self.settings.id.clone(), image: msg.image });
    }
}

impl Handler<SolveCaptcha> for AccountActor {
    type Result = bool;

    fn handle(&mut self, msg: SolveCaptcha, _: &mut Context<Self>) -> bool {
        let Some(answer) = self.captcha.take() else { return false };
        if answer.send(msg.text).is_err() {
            return false;
        }
        self.signal(Signal::LoginStarted, None);
        true
    }
}

impl Handler<SendReport> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: SendReport, _: &mut Context<Self>) {
        self.observer
            .do_send(AccountEvent::Send { account: self.settings.id.clone(), report: msg });
    }
}

impl Handler<QueueMessage> for AccountActor {
    type Result = ResponseFuture<u64>;

    fn handle(&mut self, msg: QueueMessage, _: &mut Context<Self>) -> Self::Result {
        match &self.sender {
            Some(sender) => {
                let sender = sender.clone();
                Box::pin(async move { sender.send(msg).await.unwrap_or(0) })
            }
            None => {
                // Not connected yet: held in order and handed to the sender when it starts.
                self.pending.push(msg);
                Box::pin(async { 0 })
            }
        }
    }
}

impl Handler<GetAccountState> for AccountActor {
    type Result = MessageResult<GetAccountState>;

    fn handle(&mut self, _: GetAccountState, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.state, self.reason.clone()))
    }
}

impl Handler<StopAccount> for AccountActor {
    type Result = ();

    fn handle(&mut self, _: StopAccount, ctx: &mut Context<Self>) {
        self.poller = None;
        self.sender = None;
        self.login = None;
        ctx.stop();
    }
}
