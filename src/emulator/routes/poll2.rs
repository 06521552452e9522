//! `POST http://d(1).web2.qq.com/channel/poll2`: the long poll.
//!
//! Protocol §2.3, §4, §7.1. Held up to `poll_hold` on the session's `Notify` (no lock held while
//! waiting), then the idle form. Exactly one poll per session: a newer poll ends the older one
//! at once with 102. Several queued events go out in one answer. The first poll after login2
//! without a get_online_buddies2 warm-up answers 103 once (§1.3.6). A kicked session answers
//! `{"retcode":121,"t":"0"}` once, then 103.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::emulator::http::Reply;
use crate::emulator::http::Req;
use crate::emulator::options::IdleForm;
use crate::emulator::routes::common::{NoSession, check_d, session_of_r};
use crate::emulator::session::{Liveness, Session};
use crate::emulator::state::{Shared, read};
use http::StatusCode;

/// The idle answer in the configured form.
pub(crate) fn idle(form: IdleForm) -> Reply {
    match form {
        IdleForm::Retcode102 => Reply::json(&json!({"retcode": 102, "errmsg": ""})),
        IdleForm::Empty => Reply::json(&json!({"retcode": 0, "retmsg": "ok"})),
        IdleForm::Http504 => Reply::nginx(StatusCode::GATEWAY_TIMEOUT),
    }
}

/// What one look at the session decided.
enum Step {
    Answer(Reply),
    Wait,
}

fn look(shared: &Shared, session: &Session, generation: u64, max_events: usize) -> Step {
    let mut st = session.lock();
    if st.liveness == Liveness::Dead {
        if st.queue.is_empty() {
            return Step::Answer(Reply::retcode(103));
        }
    } else if st.liveness == Liveness::Kicked {
        st.liveness = Liveness::Dead;
        return Step::Answer(Reply::json(&json!({"retcode": 121, "t": "0"})));
    }
    if !st.queue.is_empty() {
        let n = st.queue.len().min(max_events.max(1));
        let events = Value::Array(st.queue.drain(..n).collect());
        tracing::debug!(session = session.id, %events, "events taken by a poll");
        return Step::Answer(Reply::ok(events));
    }
    if st.poll_generation != generation || shared.shutting_down.load(Ordering::SeqCst) {
        return Step::Answer(Reply::retcode(102));
    }
    Step::Wait
}

/// Answers a poll, holding it while nothing happens.
pub(crate) async fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let Some(r) = req.r() else { return Reply::retcode(103) };
    let session = match session_of_r(shared, req, &r) {
        Ok(s) => s,
        Err(NoSession::Invalid) => return Reply::retcode(103),
        Err(NoSession::Kicked | NoSession::Draining) => {
            // Only the session's own poll learns that it ended (121, or the queued kick_message).
            let ps =
                crate::emulator::routes::common::member_text(&r, "psessionid").unwrap_or_default();
            match read(&shared.sessions).by_psessionid(&ps) {
                Some(s) => s,
                None => return Reply::retcode(103),
            }
        }
    };
    let options = shared.options();
    let generation = {
        let mut st = session.lock();
        st.poll_generation += 1;
        st.last_poll = Instant::now();
        st.last_poll_wall = std::time::SystemTime::now();
        if options.require_warmup
            && !st.warmed_up
            && !st.warmup_refused
            && st.liveness == Liveness::Alive
        {
            st.warmup_refused = true;
            return Reply::retcode(103);
        }
        st.poll_generation
    };
    // Wake the previous poll of this session so it yields with 102 (last poller wins, §8).
    session.notify.notify_waiters();
    let deadline = Instant::now() + options.poll_hold;
    loop {
        let notified = session.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match look(shared, &session, generation, options.max_events_per_poll) {
            Step::Answer(reply) => return reply,
            Step::Wait => {}
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => {
                return match look(shared, &session, generation, options.max_events_per_poll) {
                    Step::Answer(reply) => reply,
                    Step::Wait => idle(options.idle_form),
                };
            }
        }
    }
}
