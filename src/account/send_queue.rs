//! [`SendQueue`]: the account's outgoing messages — one FIFO per chat, paced, retried or marked
//! uncertain. Pure: the caller passes `now` (time since the queue was made) and the results.
//!
//! Ordering: within a chat, a message is sent only after the one before it has its outcome; chats
//! take turns. Pacing: at most one send per `min_interval` per account (protocol §5.5: Mojo's
//! 3 s after accounts were blocked for sending fast); a 1202 doubles the interval for a while
//! (runs of 1202 meant "slow down"). Retries (RELIABILITY.md §1.5): only when the request surely
//! did not reach QQ (connection refused, session refused before processing) — up to
//! `max_retries`; a 1202, a 5xx or a timeout after the request was sent is **uncertain** and never
//! resent blindly, since the message may have been delivered.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::webqq::api::send::SendAnswer;
use crate::webqq::content::Content;
use crate::webqq::retcode::Action;
use crate::webqq::{Did, Error, GroupNumber, QqNumber};

/// A chat, by stable id.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ChatKey {
    /// A friend, by QQ number.
    Friend(QqNumber),
    /// A group, by group number.
    Group(GroupNumber),
    /// A discussion of this account.
    Discussion(Did),
}

/// Pacing and retry settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPolicy {
    /// Minimum time between two sends of the account.
    pub min_interval: Duration,
    /// Retries of a message that surely did not reach QQ.
    pub max_retries: u32,
    /// Wait before such a retry (doubled per attempt).
    pub retry_backoff: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            min_interval: Duration::from_secs(3),
            max_retries: 3,
            retry_backoff: Duration::from_secs(2),
        }
    }
}

/// The final or intermediate outcome of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// QQ accepted it (retcode 0, or 100100 which means sent).
    Delivered,
    /// It surely did not arrive; it will be tried again after the delay.
    WillRetry {
        /// Why the attempt failed.
        reason: String,
        /// When the next attempt may go.
        after: Duration,
    },
    /// It may or may not have arrived; not resent.
    Uncertain {
        /// Why.
        reason: String,
    },
    /// It did not arrive and will not be retried.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A message queued for QQ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The queue's id for it, increasing.
    pub id: u64,
    /// Where it goes.
    pub chat: ChatKey,
    /// What it says.
    pub content: Content,
    /// Attempts made so far.
    pub attempts: u32,
}

/// What the sender should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this message now and report its result with [`SendQueue::on_result`].
    Send(Outgoing),
    /// Nothing may go before this much time has passed.
    Wait(Duration),
    /// Nothing is queued (or the only candidates are in flight).
    Idle,
}

/// The per-account outgoing queue.
#[derive(Clone, Debug, Default)]
pub struct SendQueue {
    policy: SendPolicy,
    chats: BTreeMap<ChatKey, VecDeque<Outgoing>>,
    not_before: BTreeMap<ChatKey, Duration>,
    in_flight: Option<(ChatKey, u64)>,
    last_sent: Option<Duration>,
    slow_until: Duration,
    next_id: u64,
    turn: Option<ChatKey>,
}

impl SendQueue {
    /// An empty queue with this policy.
    pub fn new(policy: SendPolicy) -> Self {
        SendQueue { policy, ..SendQueue::default() }
    }

    /// Queues a message; returns its id.
    pub fn push(&mut self, chat: ChatKey, content: Content) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.chats.entry(chat).or_default().push_back(Outgoing { id, chat, content, attempts: 0 });
        id
    }

    /// A new session took over (a relink or a new login): every queued message gets a fresh
    /// retry budget and may go at once. Messages refused by the old session surely did not
    /// reach QQ (that is why they wait), so trying them on the new one resends nothing.
    pub fn new_session(&mut self) {
        for queue in self.chats.values_mut() {
            for message in queue.iter_mut() {
                message.attempts = 0;
            }
        }
        self.not_before.clear();
    }

    /// Messages waiting, in flight included (`qqbridge_send_queue_messages`).
    pub fn depth(&self) -> usize {
        self.chats.values().map(VecDeque::len).sum()
    }

    fn interval(&self, now: Duration) -> Duration {
        if now < self.slow_until { self.policy.min_interval * 2 } else { self.policy.min_interval }
    }

    /// The next message to send at `now`, honouring order, pacing and retry delays.
    pub fn next(&mut self, now: Duration) -> Next {
        if self.in_flight.is_some() {
            return Next::Idle;
        }
        if let Some(last) = self.last_sent {
            let ready_at = last + self.interval(now);
            if now < ready_at && self.depth() > 0 {
                return Next::Wait(ready_at - now);
            }
        }
        // Round robin: start after the chat that went last.
        let keys: Vec<ChatKey> = self.chats.keys().copied().collect();
        let start = self.turn.and_then(|t| keys.iter().position(|k| *k > t)).unwrap_or(0);
        let mut soonest: Option<Duration> = None;
        for key in keys.iter().cycle().skip(start).take(keys.len()) {
            let Some(head) = self.chats.get(key).and_then(VecDeque::front) else {
                continue;
            };
            let not_before = self.not_before.get(key).copied().unwrap_or_default();
            if now >= not_before {
                self.in_flight = Some((*key, head.id));
                self.turn = Some(*key);
                return Next::Send(head.clone());
            }
            soonest = Some(soonest.map_or(not_before - now, |s: Duration| s.min(not_before - now)));
        }
        soonest.map_or(Next::Idle, Next::Wait)
    }

    /// Records the result of sending message `id` at `now`; returns its outcome. A `WillRetry`
    /// keeps it at the head of its chat; every other outcome removes it.
    pub fn on_result(
        &mut self,
        id: u64,
        result: &Result<SendAnswer, Error>,
        now: Duration,
    ) -> SendOutcome {
        let Some((chat, in_flight)) = self.in_flight.take() else {
            return SendOutcome::Failed { reason: "no send in flight".into() };
        };
        if in_flight != id {
            self.in_flight = Some((chat, in_flight));
            return SendOutcome::Failed {
                reason: format!("message {id} is not the one in flight"),
            };
        }
        self.last_sent = Some(now);
        let outcome = classify(result);
        let outcome = match outcome {
            SendOutcome::WillRetry { reason, .. } => {
                let attempts = self.bump_attempts(chat);
                if attempts > self.policy.max_retries {
                    SendOutcome::Failed {
                        reason: format!("{reason} (gave up after {attempts} attempts)"),
                    }
                } else {
                    let after =
                        self.policy.retry_backoff.saturating_mul(1 << (attempts - 1).min(16));
                    self.not_before.insert(chat, now + after);
                    return SendOutcome::WillRetry { reason, after };
                }
            }
            other => other,
        };
        if matches!(&outcome, SendOutcome::Uncertain { .. })
            && result.as_ref().err().is_some_and(|e| e.action() == Action::RateLimited)
        {
            self.slow_until = now + self.policy.min_interval * 10;
        }
        if let Some(queue) = self.chats.get_mut(&chat) {
            queue.pop_front();
            if queue.is_empty() {
                self.chats.remove(&chat);
                self.not_before.remove(&chat);
            }
        }
        outcome
    }

    fn bump_attempts(&mut self, chat: ChatKey) -> u32 {
        self.chats
            .get_mut(&chat)
            .and_then(VecDeque::front_mut)
            .map(|head| {
                head.attempts += 1;
                head.attempts
            })
            .unwrap_or(u32::MAX)
    }
}

/// Maps a send result to its outcome (RELIABILITY.md §1.5).
fn classify(result: &Result<SendAnswer, Error>) -> SendOutcome {
    let Err(error) = result else {
        return SendOutcome::Delivered;
    };
    let reason = error.to_string();
    match error {
        // Refused before a byte was sent: surely not delivered.
        Error::Network { source, .. } if source.is_connect() => {
            SendOutcome::WillRetry { reason, after: Duration::ZERO }
        }
        Error::Network { .. } | Error::TooLarge { .. } | Error::Decode { .. } => {
            SendOutcome::Uncertain { reason }
        }
        Error::HttpStatus { status, .. } if *status >= 500 => SendOutcome::Uncertain { reason },
        _ => match error.action() {
            Action::RateLimited => SendOutcome::Uncertain { reason },
            // The session was refused (103, 108, 121, …): the server did not take the message.
            Action::ProbeSession | Action::Relink | Action::Relogin | Action::LoggedInElsewhere => {
                SendOutcome::WillRetry { reason, after: Duration::ZERO }
            }
            Action::Ok => SendOutcome::Delivered,
            _ => SendOutcome::Failed { reason },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::retcode::Retcode;

    const FRIEND: ChatKey = ChatKey::Friend(QqNumber::new(10002));
    const GROUP: ChatKey = ChatKey::Group(GroupNumber::new(346_167_134));

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn retcode(code: i64) -> Result<SendAnswer, Error> {
        Err(Error::Retcode {
            endpoint: "send_buddy_msg2",
            retcode: Retcode(code),
            new_ptwebqq: None,
        })
    }

    fn send_next(queue: &mut SendQueue, now: Duration) -> Outgoing {
        match queue.next(now) {
            Next::Send(message) => message,
            other => panic!("expected a send at {now:?}, got {other:?}"),
        }
    }

    #[test]
    fn test_order_within_a_chat_and_pacing() {
        let mut queue = SendQueue::new(SendPolicy::default());
        let a = queue.push(FRIEND, Content::text("a"));
        let b = queue.push(FRIEND, Content::text("b"));
        assert_eq!(queue.depth(), 2);
        assert_eq!(send_next(&mut queue, secs(0)).id, a);
        assert_eq!(queue.next(secs(0)), Next::Idle, "one in flight at a time");
        assert_eq!(queue.on_result(a, &Ok(SendAnswer::Sent), secs(1)), SendOutcome::Delivered);
        assert_eq!(queue.next(secs(2)), Next::Wait(secs(2)), "3 s between sends");
        assert_eq!(send_next(&mut queue, secs(4)).id, b);
        queue.on_result(b, &Ok(SendAnswer::SentAnyway), secs(4));
        assert_eq!(queue.depth(), 0);
        assert_eq!(queue.next(secs(10)), Next::Idle);
    }

    #[test]
    fn test_chats_take_turns() {
        let mut queue =
            SendQueue::new(SendPolicy { min_interval: Duration::ZERO, ..SendPolicy::default() });
        queue.push(FRIEND, Content::text("f1"));
        queue.push(FRIEND, Content::text("f2"));
        queue.push(GROUP, Content::text("g1"));
        let mut order = Vec::new();
        for t in 0..3 {
            let message = send_next(&mut queue, secs(t));
            order.push(message.content.plain_text());
            queue.on_result(message.id, &Ok(SendAnswer::Sent), secs(t));
        }
        assert_eq!(order, ["f1", "g1", "f2"]);
    }

    #[test]
    fn test_1202_is_uncertain_not_resent_and_slows_down() {
        let mut queue = SendQueue::new(SendPolicy::default());
        let a = queue.push(FRIEND, Content::text("a"));
        queue.push(FRIEND, Content::text("b"));
        send_next(&mut queue, secs(0));
        assert!(matches!(
            queue.on_result(a, &retcode(1202), secs(0)),
            SendOutcome::Uncertain { .. }
        ));
        assert_eq!(queue.next(secs(3)), Next::Wait(secs(3)), "interval doubled after 1202");
        assert_eq!(send_next(&mut queue, secs(6)).content.plain_text(), "b");
    }

    #[test]
    fn test_session_refusal_retries_then_gives_up() {
        let policy =
            SendPolicy { min_interval: Duration::ZERO, max_retries: 2, retry_backoff: secs(2) };
        let mut queue = SendQueue::new(policy);
        let a = queue.push(FRIEND, Content::text("a"));
        send_next(&mut queue, secs(0));
        assert!(
            matches!(queue.on_result(a, &retcode(103), secs(0)), SendOutcome::WillRetry { after, .. } if after == secs(2))
        );
        assert_eq!(queue.next(secs(1)), Next::Wait(secs(1)));
        send_next(&mut queue, secs(2));
        assert!(
            matches!(queue.on_result(a, &retcode(108), secs(2)), SendOutcome::WillRetry { after, .. } if after == secs(4))
        );
        send_next(&mut queue, secs(6));
        assert!(matches!(queue.on_result(a, &retcode(108), secs(6)), SendOutcome::Failed { .. }));
        assert_eq!(queue.depth(), 0);
    }

    #[test]
    fn test_a_new_session_gives_refused_messages_a_fresh_budget() {
        let policy =
            SendPolicy { min_interval: Duration::ZERO, max_retries: 1, retry_backoff: secs(60) };
        let mut queue = SendQueue::new(policy);
        let a = queue.push(FRIEND, Content::text("a"));
        queue.push(FRIEND, Content::text("b"));
        send_next(&mut queue, secs(0));
        assert!(matches!(
            queue.on_result(a, &retcode(103), secs(0)),
            SendOutcome::WillRetry { .. }
        ));
        assert_eq!(queue.next(secs(1)), Next::Wait(secs(59)), "the old session's backoff");
        queue.new_session();
        let again = send_next(&mut queue, secs(1));
        assert_eq!((again.id, again.attempts), (a, 0), "at once, budget restored");
        // One more refusal is within the restored budget: retried, not failed.
        assert!(matches!(
            queue.on_result(a, &retcode(108), secs(1)),
            SendOutcome::WillRetry { .. }
        ));
        assert_eq!(queue.depth(), 2);
    }

    #[test]
    fn test_other_failures() {
        let mut queue =
            SendQueue::new(SendPolicy { min_interval: Duration::ZERO, ..SendPolicy::default() });
        let a = queue.push(GROUP, Content::text("a"));
        send_next(&mut queue, secs(0));
        let server = Err(Error::HttpStatus { endpoint: "send_qun_msg2", status: 502 });
        assert!(matches!(queue.on_result(a, &server, secs(0)), SendOutcome::Uncertain { .. }));
        let b = queue.push(GROUP, Content::text("b"));
        send_next(&mut queue, secs(1));
        assert!(matches!(queue.on_result(b, &retcode(60), secs(1)), SendOutcome::Failed { .. }));
        assert!(matches!(queue.on_result(99, &retcode(0), secs(1)), SendOutcome::Failed { .. }));
    }
}
