//! The ordered, asynchronous half of Matrix → QQ: each accepted owner message becomes a [`Job`]
//! that runs after the previous job of its portal has queued its messages (pictures are
//! downloaded and uploaded first, so a text sent during a slow upload cannot overtake it), then
//! waits for the sender's outcomes and reports the message's status (MATRIX.md §6.6). The
//! appservice transaction does not wait for any of this.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ruma::{OwnedEventId, OwnedRoomId};
use tokio::sync::oneshot;

use crate::account::manager::SendVia;
use crate::account::send_queue::{ChatKey, SendOutcome};
use crate::account::sender_actor::{BeforeSend, QueueMessage};
use crate::bridge::convert::to_qq::OutgoingQq;
use crate::webqq::content::Content;

use super::Bridge;
use super::status::{SendStatus, combine};

/// How long a message may wait for QQ before the owner is told it is still pending (an account
/// reconnecting or waiting for a login holds its messages).
pub const PENDING_PATIENCE: Duration = Duration::from_secs(120);

/// How long after the homeserver was found at start a message waits for its account to run.
pub const START_GRACE: Duration = Duration::from_secs(30);

/// One accepted Matrix message on its way to QQ.
pub(super) struct Job {
    /// Its room.
    pub room: OwnedRoomId,
    /// Its event, which the notices reply to.
    pub event_id: OwnedEventId,
    /// Its portal, the unit of ordering.
    pub portal_key: String,
    /// The account that sends it.
    pub account: String,
    /// The QQ chat.
    pub chat: ChatKey,
    /// The QQ messages, in order.
    pub messages: Vec<OutgoingQq>,
}

/// One QQ message of a job once queued, or why it was not.
enum Queued {
    /// On the sender; its final outcome comes here.
    Waiting(oneshot::Receiver<SendOutcome>),
    /// Not queued.
    Refused(SendStatus),
}

impl Bridge {
    /// Runs `job` after the portal's previous job has queued its messages. Returns at once.
    pub(super) fn enqueue(self: &Arc<Self>, job: Job) {
        let (done, turn) = oneshot::channel::<()>();
        let previous = self
            .chains
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job.portal_key.clone(), turn);
        let bridge = self.clone();
        tokio::spawn(async move {
            if let Some(previous) = previous {
                // An error only means the previous job ended without a word: its turn is over.
                let _ = previous.await;
            }
            let queued = bridge.queue_job(&job).await;
            drop(done);
            bridge.finish(&job, queued).await;
        });
    }

    /// Queues the job's messages in order: pictures uploaded first; stops at an account that
    /// is not running.
    async fn queue_job(&self, job: &Job) -> Vec<Queued> {
        let mut queued = Vec::with_capacity(job.messages.len());
        for message in &job.messages {
            let content = match message {
                OutgoingQq::Text(content) => content.clone(),
                OutgoingQq::Image { mxc, caption, .. } => {
                    match self.picture_to_qq(&job.account, job.chat, mxc, caption.clone()).await {
                        Ok(content) => content,
                        Err(reason) => {
                            let status = SendStatus::failed(format!("the picture {reason}"));
                            queued.push(Queued::Refused(status));
                            continue;
                        }
                    }
                }
            };
            self.remember_echo(&job.portal_key, &content);
            match self.queue_on_account(job, content).await {
                Some(outcome) => queued.push(Queued::Waiting(outcome)),
                None => {
                    queued.push(Queued::Refused(SendStatus::not_running()));
                    break;
                }
            }
        }
        queued
    }

    /// Queues `content` of `job` on its account's sender, its outbox row marked `sending` just
    /// before the QQ send call; `None` (logged) when the account is not running.
    /// Within [`START_GRACE`] of the homeserver's arrival at start an account never seen
    /// running is waited for: accounts are still logging in then, and messages replayed from
    /// the outbox (or sent by a quick homeserver) must not fail for that. An account that ran and
    /// stopped is told at once.
    async fn queue_on_account(
        &self,
        job: &Job,
        content: Content,
    ) -> Option<oneshot::Receiver<SendOutcome>> {
        let account = job.account.as_str();
        loop {
            let (message, outcome) = QueueMessage::tracked(job.chat, content.clone());
            let message = message.before_send(self.sending_mark(job));
            let send = SendVia { account: account.to_owned(), message };
            match self.accounts.send(send).await {
                Ok(Some(_)) => {
                    let mut seen = self.seen_running.lock().unwrap_or_else(PoisonError::into_inner);
                    if !seen.contains(account) {
                        seen.insert(account.to_owned());
                    }
                    return Some(outcome);
                }
                Ok(None)
                    if self.homeserver_since().is_none_or(|since| since < START_GRACE)
                        && !self
                            .seen_running
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .contains(account) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(%account, "message for QQ not queued: the account is not running");
                    return None;
                }
            }
        }
    }

    /// The hook that marks `job`'s outbox row `sending` (RELIABILITY.md §1.5): after a crash
    /// from here on the message may be on QQ, so a restart reports it instead of resending it.
    /// The window left is the mark's own commit; a failed mark is logged and the send goes on.
    fn sending_mark(&self, job: &Job) -> BeforeSend {
        let store = self.store.clone();
        let (room, event) = (job.room.clone(), job.event_id.to_string());
        Box::new(move || {
            Box::pin(async move {
                let mark = store.call(move |c| c.outbox_sending(&room, &event)).await;
                if let Err(error) = mark {
                    tracing::warn!(%error, "sending mark not written: a crash during this send would send it again");
                }
            })
        })
    }

    /// Waits for every outcome of the job and reports its status. A message still unconfirmed
    /// after [`PENDING_PATIENCE`] gets a notice saying so, and a later success is told too.
    async fn finish(&self, job: &Job, queued: Vec<Queued>) {
        let mut statuses = Vec::with_capacity(queued.len());
        let mut told_pending = false;
        for item in queued {
            let status = match item {
                Queued::Refused(status) => status,
                Queued::Waiting(mut outcome) => {
                    let first = tokio::time::timeout(PENDING_PATIENCE, &mut outcome).await;
                    let outcome = match first {
                        Ok(outcome) => outcome.ok(),
                        Err(_) => {
                            if !told_pending {
                                told_pending = true;
                                let text = format!(
                                    "Still waiting for QQ: not confirmed after {} s (the account \
                                     may be reconnecting). You will be told how it ends.",
                                    PENDING_PATIENCE.as_secs()
                                );
                                self.notice_reply(&job.room, &job.event_id, &text).await;
                            }
                            outcome.await.ok()
                        }
                    };
                    SendStatus::from_outcome(outcome)
                }
            };
            statuses.push(status);
        }
        let status = combine(statuses);
        if told_pending && status.notice().is_none() {
            self.notice_reply(&job.room, &job.event_id, "Delivered to QQ after all.").await;
        }
        tracing::debug!(room = %job.room, event = %job.event_id, status = status.status.as_str(), "message for QQ finished");
        self.conclude(&job.room, &job.event_id, &status).await;
    }
}
