//! The accounts at the end of a process: [`DrainSends`] for a planned shutdown (the send calls
//! under way finish, nothing new starts), [`StopAccounts`] for a process that gives up.

use std::time::Duration;

use actix::prelude::*;

use super::AccountManager;
use crate::account::sender_actor::Drain;

/// Command: every account finishes the QQ send calls under way and starts no new one, waiting
/// at most `timeout` (RELIABILITY.md §1.7, a planned shutdown: a send cut by the exit would be
/// told "maybe not delivered" after the restart). Answers how many accounts were still sending
/// when the time ran out. Queued messages wait in the outbox for the next start.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DrainSends {
    /// The longest wait.
    pub timeout: Duration,
}

impl Handler<DrainSends> for AccountManager {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: DrainSends, _: &mut Context<Self>) -> Self::Result {
        let accounts: Vec<_> = self.accounts.values().cloned().collect();
        Box::pin(async move {
            let drains = accounts.iter().map(|a| tokio::time::timeout(msg.timeout, a.send(Drain)));
            let ended = futures_util::future::join_all(drains).await;
            ended.iter().filter(|drained| drained.is_err()).count()
        })
    }
}

/// Command: stops every account at once (their sessions stay stored for the next start) with
/// the threads they run on, and answers once those threads have ended: nothing is sent to QQ
/// after that. For a process that gives up after its accounts started (a failed start-up), so
/// that it does not go on sending while it exits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccounts;

impl Handler<StopAccounts> for AccountManager {
    type Result = ();

    fn handle(&mut self, _: StopAccounts, _: &mut Context<Self>) {
        for arbiter in self.arbiters.drain(..) {
            arbiter.stop();
            if arbiter.join().is_err() {
                tracing::warn!("an account thread ended with a panic");
            }
        }
        let ids: Vec<String> = self.accounts.keys().cloned().collect();
        for id in ids {
            self.forget(&id);
        }
    }
}
