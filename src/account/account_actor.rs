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
    LoginActor, LoginError, LoginWithPassword, LoginWithQr, QrCodeIssued, Relink, Restore,
};
use crate::account::poller::{Backoff, StopReason};
use crate::account::poller_actor::{
    PollFinished, PollerActor, PollerNeedsRelink, PollerReports, PollerStopped, QqEventsReceived,
};
use crate::account::send_queue::SendPolicy;
use crate::account::sender_actor::{QueueMessage, SendReport, SenderActor};
use crate::account::state::{self, AccountState, Signal};
use crate::webqq::client::{ClientConfig, WebQqClient};
use crate::webqq::directory::Directory;
use crate::webqq::retcode::Action;
use crate::webqq::session::Session;
use crate::webqq::{QqNumber, Secret};

/// How an account may log in without a stored session.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Password login (captcha accounts need a person).
    Password(Secret<String>),
    /// QR login: the code goes to the observer for a person to scan.
    Qr,
    /// Only restore a stored session; anything else needs a person.
    SessionOnly,
}

/// Everything an account actor needs to know.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// Short id for logs and metrics.
    pub id: String,
    /// The QQ number.
    pub qq: QqNumber,
    /// How to log in without a stored session.
    pub credentials: Credentials,
    /// How to reach QQ.
    pub client: ClientConfig,
    /// Poll backoff bounds.
    pub backoff: Backoff,
    /// Sender pacing and retries.
    pub send: SendPolicy,
    /// Full logins tried in a row after relinks fail.
    pub max_relogins: u32,
}

/// Which child a restart was of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// The login actor.
    Login,
    /// The poller.
    Poller,
    /// The sender.
    Sender,
}

/// How a login was made, for the login funnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    /// A stored session was restored and relinked.
    Restore,
    /// The live session was relinked.
    Relink,
    /// A password login.
    Password,
    /// A QR login.
    Qr,
}

/// Event: what happened to an account, for its observer. Sent by `AccountActor`.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum AccountEvent {
    /// The state changed.
    StateChanged {
        /// The account id.
        account: String,
        /// The new state.
        state: AccountState,
        /// Why, in words a person understands.
        reason: Option<String>,
    },
    /// A session is open: store it for the next restart.
    SessionSaved {
        /// The account id.
        account: String,
        /// The session (secrets inside).
        session: Box<Session>,
    },
    /// A login attempt ended.
    LoginFinished {
        /// The account id.
        account: String,
        /// How.
        method: LoginMethod,
        /// Whether it worked.
        ok: bool,
    },
    /// A QR code waits to be scanned.
    QrCode {
        /// The account id.
        account: String,
        /// The PNG.
        png: Vec<u8>,
    },
    /// A poll finished.
    Poll {
        /// The account id.
        account: String,
        /// What happened.
        poll: Arc<PollFinished>,
    },
    /// A queued message has an outcome.
    Send {
        /// The account id.
        account: String,
        /// What happened.
        report: SendReport,
    },
    /// A child was started again.
    ChildRestarted {
        /// The account id.
        account: String,
        /// Which.
        child: Child,
    },
}

/// Query: the account's state and the reason for it. Answered by `AccountActor`.
#[derive(Message)]
#[rtype(result = "(AccountState, Option<String>)")]
pub struct GetAccountState;

/// Command: stop the account (children first). Its session stays stored for the next start.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccount;

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
    relogins: u32,
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
            relogins: 0,
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

    fn login_actor(&mut self) -> Addr<LoginActor> {
        self.login.get_or_insert_with(|| LoginActor.start()).clone()
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
        let request = Restore { config: self.settings.client.clone(), session: Box::new(session) };
        let login = self.login_actor();
        ctx.wait(async move { login.send(request).await }.into_actor(self).map(|answer, act, ctx| {
            match flatten(answer) {
                Ok(client) => {
                    act.report_login(LoginMethod::Restore, true);
                    act.logged_in(client, ctx);
                }
                Err(error) => {
                    act.report_login(LoginMethod::Restore, false);
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
                let msg = LoginWithPassword { config, qq: self.settings.qq, password };
                (
                    LoginMethod::Password,
                    futures_util::FutureExt::boxed_local(async move { login.send(msg).await }),
                )
            }
            Credentials::Qr => {
                self.signal(Signal::QrIssued, Some("scan the QR code with QQ".into()));
                let msg = LoginWithQr { config, qr_codes: ctx.address().recipient() };
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
        ctx.wait(request.into_actor(self).map(move |answer, act, ctx| match flatten(answer) {
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
        } else {
            self.signal(Signal::CredentialsRejected, Some(error.to_string()));
        }
    }

    fn logged_in(&mut self, client: Arc<WebQqClient>, ctx: &mut Context<Self>) {
        self.relogins = 0;
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
        ctx.spawn(async move { Directory::load(&directory_client).await }.into_actor(self).map(
            move |directory, act, ctx| {
                let directory = directory.unwrap_or_else(|error| {
                    tracing::warn!(account = %act.settings.id, %error, "contact lists not loaded");
                    Directory::default()
                });
                act.start_sender(client, Arc::new(directory), ctx);
            },
        ));
    }

    fn start_poller(&mut self, client: Arc<WebQqClient>, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let reports = PollerReports {
            events: self.events.clone(),
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
                .start(),
        );
    }

    fn start_sender(
        &mut self,
        client: Arc<WebQqClient>,
        directory: Arc<Directory>,
        ctx: &mut Context<Self>,
    ) {
        if let Some(old) = self.sender.take() {
            // Messages still queued in the old sender are not lost: it finishes them on the old
            // client only if that session still works; a new sender takes every new message.
            drop(old);
            self.observer.do_send(AccountEvent::ChildRestarted {
                account: self.settings.id.clone(),
                child: Child::Sender,
            });
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

fn flatten<T>(answer: Result<Result<T, LoginError>, MailboxError>) -> Result<T, LoginError> {
    answer.unwrap_or_else(|_| Err(LoginError::QrFailed("the login actor stopped".into())))
}

impl Actor for AccountActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
    }
}

impl Handler<PollFinished> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: PollFinished, _: &mut Context<Self>) {
        use crate::account::poller::PollOutcome;
        match msg.outcome {
            PollOutcome::Ok | PollOutcome::Empty => self.signal(Signal::PollOk, None),
            PollOutcome::HttpError | PollOutcome::Timeout | PollOutcome::DecodeError => {
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
                self.signal(
                    Signal::Kicked,
                    Some("logged in elsewhere; log in again to resume".into()),
                );
                return;
            }
            self.relinked_after_kick = true;
        }
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
