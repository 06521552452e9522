//! [`SenderActor`]: sends the account's queued messages in order, paced, with a typed outcome each.
//!
//! A thin shell over [`SendQueue`] (ordering, pacing, retry-or-uncertain policy, documented
//! there). Targets are stable ids; the actor resolves them to this session's uins and gids through
//! the [`Directory`] the account hands it after each login. Every message ends in one
//! [`SendReport`] to the account: delivered, will retry, uncertain or failed with a reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::account::send_queue::{ChatKey, Next, Outgoing, SendOutcome, SendPolicy, SendQueue};
use crate::webqq::Error;
use crate::webqq::api::send::SendAnswer;
use crate::webqq::client::WebQqClient;
use crate::webqq::content::Content;
use crate::webqq::directory::Directory;

/// Command: queue a message for QQ. Answers its queue id. Sent by the account (and the bridge
/// through the manager's `SendVia`).
#[derive(Message)]
#[rtype(result = "u64")]
pub struct QueueMessage {
    /// Where it goes.
    pub chat: ChatKey,
    /// What it says.
    pub content: Content,
    /// Told the final outcome (never `WillRetry`). Dropped unanswered when the message is lost
    /// with its sender or account (a relink or stop before it went): the receiver then knows it
    /// may or may not have reached QQ (MATRIX.md §6.6, never silent).
    pub outcome: Option<oneshot::Sender<SendOutcome>>,
    /// Awaited just before the first QQ send call of this message, never again (the bridge
    /// marks its outbox row `sending` there: RELIABILITY.md §1.5). Dropped unrun when the
    /// message never goes out.
    pub before_send: Option<BeforeSend>,
}

/// Work to finish just before a message's first send call (see [`QueueMessage::before_send`]).
pub type BeforeSend = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

impl QueueMessage {
    /// A message nobody waits on (the account's own sends).
    pub fn new(chat: ChatKey, content: Content) -> QueueMessage {
        QueueMessage { chat, content, outcome: None, before_send: None }
    }

    /// A message and the receiver of its final outcome.
    pub fn tracked(
        chat: ChatKey,
        content: Content,
    ) -> (QueueMessage, oneshot::Receiver<SendOutcome>) {
        let (tx, rx) = oneshot::channel();
        (QueueMessage { chat, content, outcome: Some(tx), before_send: None }, rx)
    }

    /// This message with `hook` awaited just before its first send call.
    pub fn before_send(mut self, hook: BeforeSend) -> QueueMessage {
        self.before_send = Some(hook);
        self
    }
}

/// Command: go on with a new session (a new login replaced the old one). Queued messages stay
/// queued and go out on the new session; a send in flight on the old one ends as it ends. Sent by
/// the account.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewSession {
    /// The new session's client.
    pub client: Arc<WebQqClient>,
    /// Its contacts, for this session's uins and gids.
    pub directory: Arc<Directory>,
}

/// Event: the outcome of one queued message (or of one attempt, for `WillRetry`). Sent by
/// `SenderActor` to its account.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SendReport {
    /// The queue id from `QueueMessage`.
    pub id: u64,
    /// What happened.
    pub outcome: SendOutcome,
    /// How long the send call took.
    pub duration: Duration,
    /// Messages still queued.
    pub depth: usize,
}

/// Command: send nothing new, and answer once no send call is in flight (a planned shutdown,
/// RELIABILITY.md §1.7: a send cut by the exit would be told "maybe not delivered" after the
/// restart). Queued messages stay queued: their outbox rows are not marked, so the next start
/// sends them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// The outgoing side of one account.
pub struct SenderActor {
    client: Arc<WebQqClient>,
    directory: Arc<Directory>,
    queue: SendQueue,
    epoch: Instant,
    reports: Recipient<SendReport>,
    timer: Option<SpawnHandle>,
    /// Who waits for the final outcome of which queued message.
    waiting: HashMap<u64, oneshot::Sender<SendOutcome>>,
    /// What runs before the first send call of which queued message.
    before: HashMap<u64, BeforeSend>,
    /// Send calls under way.
    in_flight: usize,
    /// Set by [`Drain`]: who waits for the calls under way to end; nothing new is sent.
    draining: Option<Vec<oneshot::Sender<()>>>,
}

impl SenderActor {
    /// A sender for `client`'s session.
    pub fn new(
        client: Arc<WebQqClient>,
        directory: Arc<Directory>,
        policy: SendPolicy,
        reports: Recipient<SendReport>,
    ) -> Self {
        SenderActor {
            client,
            directory,
            queue: SendQueue::new(policy),
            epoch: Instant::now(),
            reports,
            timer: None,
            waiting: HashMap::new(),
            before: HashMap::new(),
            in_flight: 0,
            draining: None,
        }
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if self.draining.is_some() {
            if self.in_flight == 0 {
                for done in self.draining.as_mut().map(std::mem::take).unwrap_or_default() {
                    let _ = done.send(());
                }
            }
            return;
        }
        match self.queue.next(self.epoch.elapsed()) {
            Next::Idle => {}
            Next::Wait(delay) => {
                self.timer = Some(ctx.run_later(delay, |act, ctx| {
                    act.timer = None;
                    act.pump(ctx);
                }));
            }
            Next::Send(message) => self.send(message, ctx),
        }
    }

    fn send(&mut self, message: Outgoing, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let directory = self.directory.clone();
        let started = Instant::now();
        let id = message.id;
        let before = self.before.remove(&id);
        self.in_flight += 1;
        ctx.spawn(
            async move {
                if let Some(before) = before {
                    before().await;
                }
                send_one(&client, &directory, &message).await
            }
            .into_actor(self)
            .map(move |result, act, ctx| {
                act.in_flight -= 1;
                let outcome = act.queue.on_result(id, &result, act.epoch.elapsed());
                if !matches!(outcome, SendOutcome::WillRetry { .. })
                    && let Some(waiter) = act.waiting.remove(&id)
                {
                    // The waiter may have gone (a stopped bridge): nothing left to tell.
                    let _ = waiter.send(outcome.clone());
                }
                act.reports.do_send(SendReport {
                    id,
                    outcome,
                    duration: started.elapsed(),
                    depth: act.queue.depth(),
                });
                act.pump(ctx);
            }),
        );
    }
}

async fn send_one(
    client: &WebQqClient,
    directory: &Directory,
    message: &Outgoing,
) -> Result<SendAnswer, Error> {
    match message.chat {
        ChatKey::Friend(qq) => {
            let uin = directory.uin_of(qq).ok_or(Error::Flow("not a friend in this session"))?;
            client.send_buddy(uin, &message.content).await
        }
        ChatKey::Group(number) => {
            let group = directory
                .group_by_number(number)
                .ok_or(Error::Flow("not a group in this session"))?;
            client.send_group(group.gid, group.code, &message.content).await
        }
        ChatKey::Discussion(did) => client.send_discussion(did, &message.content).await,
    }
}

impl Actor for SenderActor {
    type Context = Context<Self>;
}

impl Handler<NewSession> for SenderActor {
    type Result = ();

    fn handle(&mut self, msg: NewSession, ctx: &mut Context<Self>) {
        self.client = msg.client;
        self.directory = msg.directory;
        self.queue.new_session();
        self.pump(ctx);
    }
}

impl Handler<Drain> for SenderActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        let (done, drained) = oneshot::channel();
        self.draining.get_or_insert_with(Vec::new).push(done);
        self.pump(ctx);
        Box::pin(async move {
            // An error only means the sender stopped: nothing is in flight then either.
            let _ = drained.await;
        })
    }
}

impl Handler<QueueMessage> for SenderActor {
    type Result = u64;

    fn handle(&mut self, msg: QueueMessage, ctx: &mut Context<Self>) -> u64 {
        let id = self.queue.push(msg.chat, msg.content);
        if let Some(waiter) = msg.outcome {
            self.waiting.insert(id, waiter);
        }
        if let Some(before) = msg.before_send {
            self.before.insert(id, before);
        }
        self.pump(ctx);
        id
    }
}
