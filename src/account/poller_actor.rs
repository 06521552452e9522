//! [`PollerActor`]: keeps exactly one poll2 outstanding for a session and hands events on in order.
//!
//! A thin shell over [`Poller`]: it runs the poll, feeds the answer to the component and carries
//! out the step. Events are persisted in the account's [`PollLog`] (when it has one) and go to a
//! `Recipient<QqEventsReceived>` in poll order, before the next poll is issued. Session trouble is not handled here: the poller reports `PollerNeedsRelink` or
//! `PollerStopped` to its account and stops; the account decides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;

use crate::account::poll_log::PollLog;
use crate::account::poller::{Backoff, PollOutcome, PollStep, Poller, StopReason};
use crate::webqq::api::poll2::PollAnswer;
use crate::webqq::client::WebQqClient;
use crate::webqq::event::PollEvent;

/// Event: one poll2 answer's events, in poll order. Sent by `PollerActor`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QqEventsReceived {
    /// The account's id.
    pub account: String,
    /// The events, in the order of the answer.
    pub events: Vec<PollEvent>,
    /// The same events keyed by permanent numbers, for the bridge: empty from the poller, filled
    /// in by the account (which holds the session's directory) before it hands them on.
    pub resolved: Vec<crate::account::resolve::QqEvent>,
    /// The batch's number in the store's `qq_polled` once the poller persisted it: the bridge
    /// forgets it there with the batch's inbox rows.
    pub polled: Option<u64>,
}

/// Event: one poll finished, for health reporting. Sent by `PollerActor` to its account.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PollFinished {
    /// How it ended.
    pub outcome: PollOutcome,
    /// How long it took.
    pub duration: Duration,
    /// The failure streak after it.
    pub consecutive_failures: u32,
    /// The delay before the next poll.
    pub backoff: Duration,
    /// The retcode the server answered, if any (`qqbridge_poll_retcodes_total`).
    pub retcode: Option<i64>,
    /// The poll types of the events it carried (`qqbridge_poll_events_total`).
    pub poll_types: Vec<&'static str>,
}

/// Event: the session needs a relink (or a full login). Sent by `PollerActor`, which then stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PollerNeedsRelink {
    /// The server said 121 (logged in elsewhere): the account relinks for that only once.
    pub after_kick: bool,
}

/// Event: polling ended for good. Sent by `PollerActor`, which then stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PollerStopped {
    /// Why.
    pub reason: StopReason,
}

/// Where a poller reports to.
#[derive(Clone)]
pub struct PollerReports {
    /// Decoded events.
    pub events: Recipient<QqEventsReceived>,
    /// Per-poll health.
    pub finished: Recipient<PollFinished>,
    /// Relink requests.
    pub relink: Recipient<PollerNeedsRelink>,
    /// Final stops.
    pub stopped: Recipient<PollerStopped>,
}

/// The long-poll loop of one session.
pub struct PollerActor {
    account: String,
    client: Arc<WebQqClient>,
    poller: Poller,
    reports: PollerReports,
    log: Option<PollLog>,
}

impl PollerActor {
    /// A poller for `client`'s session.
    pub fn new(
        account: String,
        client: Arc<WebQqClient>,
        backoff: Backoff,
        reports: PollerReports,
    ) -> Self {
        PollerActor { account, client, poller: Poller::new(backoff), reports, log: None }
    }

    /// This poller with each batch persisted in `log` before it is handed on.
    pub fn persisting(mut self, log: Option<PollLog>) -> Self {
        self.log = log;
        self
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let started = Instant::now();
        // `wait` keeps the actor from handling anything else while the poll is out: one poll per
        // session at a time (protocol §7.1), and events leave in poll order.
        ctx.wait(async move { client.poll().await }.into_actor(self).map(
            move |answer, act, ctx| {
                let retcode = match &answer {
                    Ok(_) => Some(0),
                    Err(error) => error.retcode().map(|r| r.0),
                };
                let poll_types = match &answer {
                    Ok(PollAnswer::Events(events)) => events
                        .iter()
                        .map(|e| crate::metrics::poll_type_label(e.poll_type()))
                        .collect(),
                    _ => Vec::new(),
                };
                let jitter = rand::rng().random::<f64>();
                let (step, outcome) = act.poller.on_answer(answer, jitter);
                let backoff = match &step {
                    PollStep::Backoff(delay) => *delay,
                    _ => Duration::ZERO,
                };
                act.reports.finished.do_send(PollFinished {
                    outcome,
                    duration: started.elapsed(),
                    consecutive_failures: act.poller.consecutive_failures(),
                    backoff,
                    retcode,
                    poll_types,
                });
                act.carry_out(step, ctx);
            },
        ));
    }

    /// Persists `events` (when there is a log and a session), hands them on, then `next`s; the
    /// next poll waits for the commit (RELIABILITY.md §1.2).
    fn deliver(
        &mut self,
        events: Vec<PollEvent>,
        next: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
        ctx: &mut Context<Self>,
    ) {
        let session = self.client.session().map(|s| s.opened_at);
        let (Some(log), Some(session), false) = (self.log.clone(), session, events.is_empty())
        else {
            self.hand_on(events, None);
            return next(self, ctx);
        };
        let (account, arrived) = (self.account.clone(), Instant::now());
        let keep = async move {
            let polled = log.keep(&account, session, &events, arrived).await;
            (events, polled)
        };
        ctx.wait(keep.into_actor(self).map(move |(events, polled), act, ctx| {
            act.hand_on(events, polled);
            next(act, ctx);
        }));
    }

    fn hand_on(&self, events: Vec<PollEvent>, polled: Option<u64>) {
        self.reports.events.do_send(QqEventsReceived {
            account: self.account.clone(),
            events,
            resolved: Vec::new(),
            polled,
        });
    }

    fn carry_out(&mut self, step: PollStep, ctx: &mut Context<Self>) {
        match step {
            PollStep::Deliver(events) => {
                let ends = Poller::ends_session(&events);
                self.deliver(
                    events,
                    move |act, ctx| {
                        if ends {
                            let reason = StopReason::Kicked;
                            act.reports.stopped.do_send(PollerStopped { reason });
                            ctx.stop();
                        } else {
                            act.poll(ctx);
                        }
                    },
                    ctx,
                );
            }
            PollStep::Repoll => self.poll(ctx),
            PollStep::Backoff(delay) => {
                ctx.run_later(delay, |act, ctx| act.poll(ctx));
            }
            PollStep::Probe => {
                let client = self.client.clone();
                ctx.wait(async move { client.online_buddies().await }.into_actor(self).map(
                    |_, act, ctx| {
                        act.poll(ctx);
                    },
                ));
            }
            PollStep::Relink | PollStep::RelinkAfterKick => {
                let after_kick = matches!(step, PollStep::RelinkAfterKick);
                self.reports.relink.do_send(PollerNeedsRelink { after_kick });
                ctx.stop();
            }
            PollStep::Stop(reason) => {
                self.reports.stopped.do_send(PollerStopped { reason });
                ctx.stop();
            }
        }
    }
}

impl Actor for PollerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.poll(ctx);
    }
}
