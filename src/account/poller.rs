//! [`Poller`]: what the poller does after each poll2 answer. Pure: no IO, no clock, no randomness
//! of its own (the jitter is passed in), so every policy below is unit-tested.
//!
//! Policy (protocol §6.1, §7.1; RELIABILITY.md §1.6):
//! - events → deliver them, poll again at once; idle (102, 502/504, empty 0) → poll again at once;
//!   116 → poll again (the client already stored the new ptwebqq);
//! - network errors, 5xx, undecodable bodies, 1202 → back off, exponential with **full jitter**,
//!   capped; the failure streak is reported for metrics;
//! - 103 or a suspicious empty answer → probe once with get_online_buddies2; if it happens again
//!   before a good poll → relink;
//! - 100, 108, 109, 110, 100000, 100012, 120 … → relink (the account actor falls back to a full
//!   login when relink fails, at most `max_relogins` times);
//! - 121 → one relink in the poller's lifetime, then stop as kicked: never a login loop that would
//!   kick the other client in turn;
//! - wrong hash, banned, frozen → stop, a person must act;
//! - unexplained retcodes: more than [`UNKNOWN_RETCODE_LIMIT`] in a row → treated as session
//!   trouble (relink) and reported as UNKNOWN_ERROR.

use std::time::Duration;

use crate::webqq::Error;
use crate::webqq::api::poll2::PollAnswer;
use crate::webqq::event::PollEvent;
use crate::webqq::retcode::Action;

/// Unexplained retcodes tolerated in a row before the session is treated as broken (Mojo used 3).
pub const UNKNOWN_RETCODE_LIMIT: u32 = 3;

/// Backoff bounds for transient failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's upper bound.
    pub initial: Duration,
    /// The cap (RELIABILITY.md §1.6: 5 minutes).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// Full jitter: a uniformly random delay in `[0, min(max, initial · 2^(failures-1))]`, with
    /// `jitter` in `[0, 1)` supplied by the caller.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let ceiling = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Why the poller stops for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Logged in elsewhere (121 after its one relink) or a kick_message.
    Kicked,
    /// A person must act (wrong hash with every variant, banned, frozen, captcha required).
    NeedsPerson(String),
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum PollStep {
    /// Hand these events on in order, then poll again at once.
    Deliver(Vec<PollEvent>),
    /// Poll again at once.
    Repoll,
    /// Wait, then poll again.
    Backoff(Duration),
    /// Call get_online_buddies2 once, then poll again.
    Probe,
    /// Reopen the session (relink; the account actor falls back to a full login).
    Relink,
    /// 121: reopen the session once; the account allows this once in its lifetime, since a
    /// second kick means another client really holds the account.
    RelinkAfterKick,
    /// Stop polling.
    Stop(StopReason),
}

/// The outcome label of one poll, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollOutcome {
    /// Events arrived.
    Ok,
    /// Idle answer.
    Empty,
    /// HTTP status error.
    HttpError,
    /// Network error or timeout.
    Timeout,
    /// Undecodable body.
    DecodeError,
    /// A non-zero retcode.
    Retcode,
}

/// The poller's decisions for one session.
#[derive(Clone, Debug, Default)]
pub struct Poller {
    backoff: Backoff,
    failures: u32,
    probed: bool,
    unknown_in_a_row: u32,
    relinked_for_121: bool,
}

impl Poller {
    /// A poller with these backoff bounds.
    pub fn new(backoff: Backoff) -> Self {
        Poller { backoff, ..Poller::default() }
    }

    /// The current failure streak (`qqbridge_poll_consecutive_failures`).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Decides the next step from one poll's result. `jitter` is a uniform sample in `[0, 1)`.
    pub fn on_answer(
        &mut self,
        answer: Result<PollAnswer, Error>,
        jitter: f64,
    ) -> (PollStep, PollOutcome) {
        match answer {
            Ok(PollAnswer::Events(events)) => {
                // A kick_message is delivered like any event (the owner should see its reason);
                // the caller asks `ends_session` and stops afterwards.
                self.healthy();
                (PollStep::Deliver(events), PollOutcome::Ok)
            }
            Ok(PollAnswer::Idle) => {
                self.healthy();
                (PollStep::Repoll, PollOutcome::Empty)
            }
            Ok(PollAnswer::Suspicious) => (self.probe_or_relink(), PollOutcome::Empty),
            Err(error) => self.on_error(&error, jitter),
        }
    }

    /// Whether a delivered batch ends the session (a kick_message, protocol §4.5).
    pub fn ends_session(events: &[PollEvent]) -> bool {
        events.iter().any(|e| matches!(e, PollEvent::KickMessage(_)))
    }

    fn healthy(&mut self) {
        self.failures = 0;
        self.probed = false;
        self.unknown_in_a_row = 0;
    }

    fn probe_or_relink(&mut self) -> PollStep {
        if self.probed {
            self.probed = false;
            PollStep::Relink
        } else {
            self.probed = true;
            PollStep::Probe
        }
    }

    fn on_error(&mut self, error: &Error, jitter: f64) -> (PollStep, PollOutcome) {
        let outcome = match error {
            Error::HttpStatus { .. } => PollOutcome::HttpError,
            Error::Decode { .. } | Error::TooLarge { .. } => PollOutcome::DecodeError,
            Error::Retcode { .. } => PollOutcome::Retcode,
            _ => PollOutcome::Timeout,
        };
        let step = match error.action() {
            Action::Ok | Action::Repoll | Action::RefreshPtwebqq => PollStep::Repoll,
            Action::Transient | Action::RateLimited => {
                self.failures = self.failures.saturating_add(1);
                PollStep::Backoff(self.backoff.delay(self.failures, jitter))
            }
            Action::ProbeSession => self.probe_or_relink(),
            Action::Relink | Action::Relogin => PollStep::Relink,
            Action::LoggedInElsewhere => {
                if self.relinked_for_121 {
                    PollStep::Stop(StopReason::Kicked)
                } else {
                    self.relinked_for_121 = true;
                    PollStep::RelinkAfterKick
                }
            }
            // 100001 / 100006 in a poll: pandolia ignored them for a while (protocol §6.1).
            Action::RefreshLists => self.count_unknown(),
            Action::Unknown => self.count_unknown(),
            Action::WrongHash | Action::Fatal => {
                PollStep::Stop(StopReason::NeedsPerson(error.to_string()))
            }
        };
        (step, outcome)
    }

    fn count_unknown(&mut self) -> PollStep {
        self.unknown_in_a_row = self.unknown_in_a_row.saturating_add(1);
        if self.unknown_in_a_row > UNKNOWN_RETCODE_LIMIT {
            self.unknown_in_a_row = 0;
            PollStep::Relink
        } else {
            PollStep::Repoll
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::retcode::Retcode;

    fn retcode(code: i64) -> Result<PollAnswer, Error> {
        Err(Error::Retcode { endpoint: "poll2", retcode: Retcode(code), new_ptwebqq: None })
    }

    fn http(status: u16) -> Result<PollAnswer, Error> {
        Err(Error::HttpStatus { endpoint: "poll2", status })
    }

    fn steps(poller: &mut Poller, answers: Vec<Result<PollAnswer, Error>>) -> Vec<PollStep> {
        answers.into_iter().map(|a| poller.on_answer(a, 1.0).0).collect()
    }

    #[test]
    fn test_idle_and_rotation_repoll_at_once() {
        let mut poller = Poller::default();
        let got = steps(&mut poller, vec![Ok(PollAnswer::Idle), retcode(116), retcode(102)]);
        assert_eq!(got, vec![PollStep::Repoll, PollStep::Repoll, PollStep::Repoll]);
    }

    #[test]
    fn test_transient_failures_back_off_exponentially_and_reset() {
        let mut poller =
            Poller::new(Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(5) });
        let got = steps(
            &mut poller,
            vec![http(500), http(500), http(500), http(500), Ok(PollAnswer::Idle), http(500)],
        );
        let secs = |s: u64| PollStep::Backoff(Duration::from_secs(s));
        assert_eq!(got, vec![secs(1), secs(2), secs(4), secs(5), PollStep::Repoll, secs(1)]);
        assert_eq!(poller.consecutive_failures(), 1);
    }

    #[test]
    fn test_full_jitter_scales_the_ceiling() {
        let backoff = Backoff { initial: Duration::from_secs(2), max: Duration::from_secs(300) };
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(4));
        assert_eq!(backoff.delay(3, 0.0), Duration::ZERO);
        assert_eq!(backoff.delay(40, 1.0), Duration::from_secs(300));
    }

    #[test]
    fn test_103_probes_once_then_relinks() {
        let mut poller = Poller::default();
        let got = steps(
            &mut poller,
            vec![retcode(103), retcode(103), retcode(103), Ok(PollAnswer::Idle), retcode(103)],
        );
        assert_eq!(
            got,
            vec![
                PollStep::Probe,
                PollStep::Relink,
                PollStep::Probe,
                PollStep::Repoll,
                PollStep::Probe
            ]
        );
    }

    #[test]
    fn test_121_relinks_once_then_stops_for_good() {
        let mut poller = Poller::default();
        let got = steps(&mut poller, vec![retcode(121), Ok(PollAnswer::Idle), retcode(121)]);
        assert_eq!(
            got,
            vec![PollStep::RelinkAfterKick, PollStep::Repoll, PollStep::Stop(StopReason::Kicked)]
        );
    }

    #[test]
    fn test_session_loss_relinks_and_fatal_stops() {
        let mut poller = Poller::default();
        assert_eq!(
            steps(&mut poller, vec![retcode(108), retcode(100_012)]),
            vec![PollStep::Relink, PollStep::Relink]
        );
        let (step, outcome) = poller.on_answer(retcode(60), 0.5);
        assert!(matches!(step, PollStep::Stop(StopReason::NeedsPerson(_))));
        assert_eq!(outcome, PollOutcome::Retcode);
    }

    #[test]
    fn test_unknown_retcodes_tolerated_up_to_the_limit() {
        let mut poller = Poller::default();
        let got =
            steps(&mut poller, vec![retcode(4242), retcode(4242), retcode(4242), retcode(4242)]);
        assert_eq!(
            got,
            vec![PollStep::Repoll, PollStep::Repoll, PollStep::Repoll, PollStep::Relink]
        );
    }

    #[test]
    fn test_outcomes_for_metrics() {
        let mut poller = Poller::default();
        assert_eq!(poller.on_answer(Ok(PollAnswer::Idle), 0.0).1, PollOutcome::Empty);
        assert_eq!(poller.on_answer(http(502), 0.0).1, PollOutcome::HttpError);
        let decode = Err(Error::Decode { endpoint: "poll2", reason: "x".into() });
        assert_eq!(poller.on_answer(decode, 0.0).1, PollOutcome::DecodeError);
    }
}
