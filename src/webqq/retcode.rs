//! The one place where WebQQ return codes are classified (protocol §6).
//!
//! Every caller asks [`Retcode::action`] (or [`ptui_action`] for ptlogin codes) instead of matching
//! numbers itself, so the policy in protocol §6.1 / §6.3 and RELIABILITY.md §1.6 lives here only.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a client does about an answer (protocol §6.1, "What a good client does").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Success: process the result.
    Ok,
    /// Nothing happened (poll2 102, HTTP 502/504): poll again at once.
    Repoll,
    /// The server rotated ptwebqq (116): store the new value, poll again.
    RefreshPtwebqq,
    /// Possibly a session that skipped the warm-up (103 once, or a retcode 0 with `errmsg`):
    /// call `get_online_buddies2` once, then poll again; if it persists, relogin.
    ProbeSession,
    /// The channel was lost (120): relink (login2 with the old psessionid), then a full login.
    Relink,
    /// The session is gone (100, 108, 109, 110, 100000, 100012 on send, …): full login.
    Relogin,
    /// 121: logged in elsewhere / dropped. At most one relink, never an automatic login loop.
    LoggedInElsewhere,
    /// 1202 and friends: the server is overloaded or rate limiting; the send may have been
    /// delivered. Do not resend blindly; slow down.
    RateLimited,
    /// A group list or id is stale (6, 100001, 100006): refresh the lists, carry on.
    RefreshLists,
    /// 50: the friend-list hash was refused; try the next hash variant.
    WrongHash,
    /// Network trouble, a 5xx or an undecodable body: back off and retry.
    Transient,
    /// A person must act (banned, frozen, captcha required, wrong password).
    Fatal,
    /// A code no source explains: count it; several in a row are treated as session trouble.
    Unknown,
}

/// A JSON `retcode` (or `errCode`) from poll2 or a d/s API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Retcode(pub i64);

impl Retcode {
    /// Success.
    pub const OK: Retcode = Retcode(0);
    /// poll2 held its time and nothing happened.
    pub const NO_EVENT: Retcode = Retcode(102);
    /// Session or cookies not valid.
    pub const SESSION_INVALID: Retcode = Retcode(103);
    /// Cookies missing.
    pub const COOKIES_MISSING: Retcode = Retcode(108);
    /// ptwebqq rotation; the answer carries `p`.
    pub const PTWEBQQ_ROTATED: Retcode = Retcode(116);
    /// Logged in elsewhere / channel dropped.
    pub const LOGGED_IN_ELSEWHERE: Retcode = Retcode(121);
    /// Send "might have failed" (often delivered).
    pub const SEND_UNCERTAIN: Retcode = Retcode(1202);
    /// Wrong friend-list hash.
    pub const WRONG_HASH: Retcode = Retcode(50);
    /// Wrong gcode (a gid was passed).
    pub const WRONG_GCODE: Retcode = Retcode(6);
    /// Group id is wrong.
    pub const WRONG_GROUP: Retcode = Retcode(100001);
    /// Missing cookies or User-Agent on the friend list.
    pub const NO_COOKIES_OR_UA: Retcode = Retcode(100101);
    /// Send reported an error but the message was in fact delivered (protocol §6.1).
    pub const SENT_ANYWAY: Retcode = Retcode(100100);

    /// The policy for this code, as protocol §6.1 gives it.
    pub fn action(self) -> Action {
        match self.0 {
            0 => Action::Ok,
            102 => Action::Repoll,
            116 => Action::RefreshPtwebqq,
            103 | 101 => Action::ProbeSession,
            120 => Action::Relink,
            121 => Action::LoggedInElsewhere,
            100 | 108 | 109 | 110 | 112 | 113 | 115 | 122 | 100_000 | 100_012 | 100_101 => {
                Action::Relogin
            }
            1202 => Action::RateLimited,
            6 | 100_001 | 100_006 => Action::RefreshLists,
            50 => Action::WrongHash,
            60 | 100_110 => Action::Fatal,
            // 100003 was accepted as non-fatal, 100100 means "sent anyway" (protocol §6.1).
            100_003 | 100_100 => Action::Ok,
            _ => Action::Unknown,
        }
    }

    /// A stable label for metrics: the code itself when protocol §6.1 lists it, else `other`.
    pub fn metric_label(self) -> &'static str {
        match self.0 {
            0 => "0",
            6 => "6",
            50 => "50",
            60 => "60",
            100 => "100",
            101 => "101",
            102 => "102",
            103 => "103",
            108 => "108",
            109 => "109",
            110 => "110",
            112 => "112",
            113 => "113",
            114 => "114",
            115 => "115",
            116 => "116",
            120 => "120",
            121 => "121",
            122 => "122",
            1202 => "1202",
            100_000 => "100000",
            100_001 => "100001",
            100_003 => "100003",
            100_006 => "100006",
            100_012 => "100012",
            100_100 => "100100",
            100_101 => "100101",
            100_110 => "100110",
            _ => "other",
        }
    }
}

impl fmt::Display for Retcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The policy for a ptlogin `ptuiCB` code (protocol §6.3).
pub fn ptui_action(code: u32) -> Action {
    match code {
        0 => Action::Ok,
        // Server busy, "please try again", too many logins from this IP: wait and retry.
        1 | 6 | 8 => Action::Transient,
        // Wrong verify code, verification failed, page expired: restart from check.
        4 | 5 => Action::Relogin,
        // Bad parameters or cookies: a client bug or a stale flow; restart once.
        7 | 24 => Action::Relogin,
        // QR states are handled by the QR flow itself; reaching here means it expired.
        65 => Action::Relogin,
        66 | 67 => Action::Repoll,
        // Expired number, wrong password, frozen, banned, extra verification: a person must act.
        2 | 3 | 19 | 71 | 10005 | 10006 => Action::Fatal,
        _ => Action::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: i64, expected: Action) {
        assert_eq!(Retcode(code).action(), expected, "retcode {code}");
    }

    #[test]
    fn test_retcode_actions_follow_protocol_table() {
        check(0, Action::Ok);
        check(102, Action::Repoll);
        check(116, Action::RefreshPtwebqq);
        check(103, Action::ProbeSession);
        check(108, Action::Relogin);
        check(100, Action::Relogin);
        check(120, Action::Relink);
        check(121, Action::LoggedInElsewhere);
        check(1202, Action::RateLimited);
        check(100_100, Action::Ok);
        check(100_001, Action::RefreshLists);
        check(50, Action::WrongHash);
        check(100_012, Action::Relogin);
        check(4242, Action::Unknown);
    }

    #[test]
    fn test_metric_labels_are_bounded() {
        assert_eq!(Retcode(121).metric_label(), "121");
        assert_eq!(Retcode(-7).metric_label(), "other");
        assert_eq!(Retcode(999_999).metric_label(), "other");
    }

    #[test]
    fn test_ptui_actions() {
        assert_eq!(ptui_action(3), Action::Fatal);
        assert_eq!(ptui_action(4), Action::Relogin);
        assert_eq!(ptui_action(66), Action::Repoll);
        assert_eq!(ptui_action(1), Action::Transient);
        assert_eq!(ptui_action(12345), Action::Unknown);
    }
}
