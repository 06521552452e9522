//! [`AccountState`]: an account's state in the vocabulary Matrix bridges use, and its transitions.
//!
//! RELIABILITY.md §1.6 maps WebQQ signals to states; MATRIX.md §6.5 names them. The machine is
//! pure: the account actor feeds it [`Signal`]s and acts on the state it returns.

use std::fmt;

/// An account's state (bridgev2's names, plus the two waits that need a person).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AccountState {
    /// Login, session restore or relink in progress.
    Connecting,
    /// The last poll was answered normally.
    Connected,
    /// Network or 5xx streak; backing off.
    TransientDisconnect,
    /// Password wrong, captcha or QR needed unattended, session unrecoverable: RELOGIN.
    BadCredentials,
    /// Logged out by the user, or kicked / logged in elsewhere: never relogged automatically.
    LoggedOut,
    /// Unexpected retcodes; the code is in the reason.
    UnknownError,
    /// A QR code waits to be scanned.
    WaitingForQr,
    /// A captcha waits to be typed.
    WaitingForCaptcha,
}

impl AccountState {
    /// Every state, for one-hot metrics.
    pub const ALL: [AccountState; 8] = [
        AccountState::Connecting,
        AccountState::Connected,
        AccountState::TransientDisconnect,
        AccountState::BadCredentials,
        AccountState::LoggedOut,
        AccountState::UnknownError,
        AccountState::WaitingForQr,
        AccountState::WaitingForCaptcha,
    ];

    /// The state's name as bridges and metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Connecting => "CONNECTING",
            AccountState::Connected => "CONNECTED",
            AccountState::TransientDisconnect => "TRANSIENT_DISCONNECT",
            AccountState::BadCredentials => "BAD_CREDENTIALS",
            AccountState::LoggedOut => "LOGGED_OUT",
            AccountState::UnknownError => "UNKNOWN_ERROR",
            AccountState::WaitingForQr => "WAITING_FOR_QR",
            AccountState::WaitingForCaptcha => "WAITING_FOR_CAPTCHA",
        }
    }

    /// Whether the account stays stopped until a person acts (no automatic retries).
    pub fn is_terminal(self) -> bool {
        matches!(self, AccountState::BadCredentials | AccountState::LoggedOut)
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A login, restore or relink started.
    LoginStarted,
    /// A QR code was issued and waits for a scan.
    QrIssued,
    /// A captcha was issued and waits for its text.
    CaptchaIssued,
    /// The session is open (login2 and warm-up done).
    LoggedIn,
    /// A poll was answered normally (events or idle).
    PollOk,
    /// A transient failure (network, 5xx, undecodable body).
    TransientFailure,
    /// The server says the session is gone; a relink or relogin follows.
    SessionLost,
    /// Relink and full login failed, or credentials were refused.
    CredentialsRejected,
    /// 121 after its one relink, or a kick_message.
    Kicked,
    /// The user logged out.
    LoggedOutByUser,
    /// Too many unexplained retcodes in a row.
    UnknownRetcodes,
}

/// The state after `signal` in `state`. Terminal states only leave through a new login.
pub fn next(state: AccountState, signal: &Signal) -> AccountState {
    use AccountState as S;
    match (state, signal) {
        (_, Signal::LoginStarted) => S::Connecting,
        (_, Signal::QrIssued) => S::WaitingForQr,
        (_, Signal::CaptchaIssued) => S::WaitingForCaptcha,
        (_, Signal::LoggedIn) => S::Connected,
        (_, Signal::Kicked | Signal::LoggedOutByUser) => S::LoggedOut,
        (_, Signal::CredentialsRejected) => S::BadCredentials,
        (terminal, _) if terminal.is_terminal() => terminal,
        (_, Signal::PollOk) => S::Connected,
        (_, Signal::TransientFailure) => S::TransientDisconnect,
        (_, Signal::SessionLost) => S::Connecting,
        (_, Signal::UnknownRetcodes) => S::UnknownError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountState as S;

    fn check(start: AccountState, signals: &[Signal], expected: AccountState) {
        let end = signals.iter().fold(start, next);
        assert_eq!(end, expected, "{start} after {signals:?}");
    }

    #[test]
    fn test_transitions() {
        check(S::Connecting, &[Signal::LoggedIn, Signal::PollOk], S::Connected);
        check(S::Connected, &[Signal::TransientFailure], S::TransientDisconnect);
        check(S::TransientDisconnect, &[Signal::PollOk], S::Connected);
        check(S::Connected, &[Signal::SessionLost], S::Connecting);
        check(S::Connected, &[Signal::Kicked], S::LoggedOut);
        check(
            S::LoggedOut,
            &[Signal::PollOk, Signal::TransientFailure, Signal::SessionLost],
            S::LoggedOut,
        );
        check(S::BadCredentials, &[Signal::UnknownRetcodes], S::BadCredentials);
        check(S::BadCredentials, &[Signal::LoginStarted, Signal::QrIssued], S::WaitingForQr);
        check(S::WaitingForQr, &[Signal::LoggedIn], S::Connected);
        check(S::Connected, &[Signal::UnknownRetcodes], S::UnknownError);
        check(S::Connecting, &[Signal::CredentialsRejected], S::BadCredentials);
    }

    #[test]
    fn test_names_are_the_bridge_vocabulary() {
        let names: Vec<&str> = AccountState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names[..6],
            [
                "CONNECTING",
                "CONNECTED",
                "TRANSIENT_DISCONNECT",
                "BAD_CREDENTIALS",
                "LOGGED_OUT",
                "UNKNOWN_ERROR"
            ]
        );
    }
}
