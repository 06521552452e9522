//! [`Error`]: everything a WebQQ call can fail with, and the classifiers callers use.

use crate::webqq::retcode::{Action, Retcode};

/// A failed WebQQ call or a login step that did not succeed.
///
/// Messages never contain URLs with query strings, cookies or tokens: WebQQ puts `psessionid` and
/// `vfwebqq` into query strings, so transport errors are stripped of their URL before wrapping.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection failed, timed out or was reset before a complete answer arrived.
    #[error("network error on {endpoint}: {source}")]
    Network {
        /// The endpoint path (no host, no query).
        endpoint: &'static str,
        /// The transport error, URL removed.
        #[source]
        source: TransportError,
    },
    /// The server answered with an HTTP status the endpoint does not expect (502/504 on poll2 are
    /// handled by the poll itself and never reach here).
    #[error("http status {status} on {endpoint}")]
    HttpStatus {
        /// The endpoint path.
        endpoint: &'static str,
        /// The status code.
        status: u16,
    },
    /// The answer body exceeded the cap for that endpoint.
    #[error("answer from {endpoint} is larger than {limit} bytes")]
    TooLarge {
        /// The endpoint path.
        endpoint: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// The body could not be decoded (not JSON, truncated, wrong shape, not a JS call).
    #[error("undecodable answer from {endpoint}: {reason}")]
    Decode {
        /// The endpoint path.
        endpoint: &'static str,
        /// What was wrong, with a short excerpt of the body when it is safe to show.
        reason: String,
    },
    /// The server answered with a non-zero `retcode` (or `errCode`).
    #[error("{endpoint} answered retcode {retcode}")]
    Retcode {
        /// The endpoint path.
        endpoint: &'static str,
        /// The code and its classification.
        retcode: Retcode,
        /// The `p` member of a 116 answer: the new ptwebqq (a secret).
        new_ptwebqq: Option<crate::webqq::Secret<String>>,
    },
    /// ptlogin refused the login (`ptuiCB` code other than 0).
    #[error("login refused with code {code}: {message}")]
    LoginRefused {
        /// The ptuiCB code (protocol §6.3).
        code: u32,
        /// The second ptuiCB field (e.g. 2 = page expired with code 4).
        sub: u32,
        /// The server's message text, as sent.
        message: String,
    },
    /// The account is frozen and must be unlocked on the security site (a code-0 answer whose URL
    /// points at `aq.qq.com`).
    #[error("account must be unlocked on the QQ security site")]
    AccountLocked,
    /// A step of the login flow was called out of order or without its input.
    #[error("login flow: {0}")]
    Flow(&'static str),
    /// A configuration value given to the client is not usable.
    #[error("client configuration: {0}")]
    Config(String),
    /// A local picture or file could not be read for an upload.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The local path.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a connection failed: reqwest's own error, or one of the long-poll exchange's.
#[derive(Debug)]
pub struct TransportError(Transport);

#[derive(Debug)]
enum Transport {
    Http(reqwest::Error),
    Own { kind: TransportKind, io: Option<std::io::Error> },
}

/// What went wrong on the long-poll exchange's own connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Name resolution or TCP connect failed (nothing was sent).
    Connect,
    /// The connect or the whole exchange timed out.
    Timeout,
    /// The connection failed or closed before the answer was complete.
    Closed,
    /// The server's bytes are not an HTTP/1.x answer.
    Protocol,
}

impl TransportError {
    /// The connection was never established, so the request surely did not reach the server.
    pub fn is_connect(&self) -> bool {
        match &self.0 {
            Transport::Http(e) => e.is_connect(),
            Transport::Own { kind, .. } => *kind == TransportKind::Connect,
        }
    }

    /// A timeout (connect or whole request).
    pub fn is_timeout(&self) -> bool {
        match &self.0 {
            Transport::Http(e) => e.is_timeout(),
            Transport::Own { kind, .. } => *kind == TransportKind::Timeout,
        }
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Transport::Http(e) => e.fmt(f),
            Transport::Own { kind, io } => {
                let what = match kind {
                    TransportKind::Connect => "error trying to connect",
                    TransportKind::Timeout => "operation timed out",
                    TransportKind::Closed => "connection closed before the answer was complete",
                    TransportKind::Protocol => "malformed http answer",
                };
                match io {
                    Some(io) => write!(f, "{what}: {io}"),
                    None => f.write_str(what),
                }
            }
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Transport::Http(e) => e.source(),
            Transport::Own { io, .. } => {
                io.as_ref().map(|e| e as &(dyn std::error::Error + 'static))
            }
        }
    }
}

impl Error {
    /// Wraps a transport error, removing the URL (which may carry session tokens).
    pub fn network(endpoint: &'static str, source: reqwest::Error) -> Self {
        Error::Network { endpoint, source: TransportError(Transport::Http(source.without_url())) }
    }

    /// A transport failure of the long-poll exchange (`longpoll.rs`), which has no URL to leak.
    pub fn transport(
        endpoint: &'static str,
        kind: TransportKind,
        io: Option<std::io::Error>,
    ) -> Self {
        Error::Network { endpoint, source: TransportError(Transport::Own { kind, io }) }
    }

    /// Builds a decode error with a safe excerpt of the offending body.
    pub fn decode(endpoint: &'static str, reason: impl std::fmt::Display, body: &[u8]) -> Self {
        let excerpt: String = String::from_utf8_lossy(&body[..body.len().min(80)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Error::Decode { endpoint, reason: format!("{reason} (body starts {excerpt:?})") }
    }

    /// The retcode, when the server answered with one.
    pub fn retcode(&self) -> Option<Retcode> {
        match self {
            Error::Retcode { retcode, .. } => Some(*retcode),
            _ => None,
        }
    }

    /// What a client should do about this error (protocol §6).
    pub fn action(&self) -> Action {
        match self {
            Error::Network { .. } | Error::TooLarge { .. } | Error::Decode { .. } => {
                Action::Transient
            }
            Error::HttpStatus { status, .. } if *status >= 500 || *status == 404 => {
                Action::Transient
            }
            Error::HttpStatus { .. } => Action::Fatal,
            Error::Retcode { retcode, .. } => retcode.action(),
            Error::LoginRefused { code, .. } => crate::webqq::retcode::ptui_action(*code),
            Error::AccountLocked => Action::Fatal,
            Error::Flow(_) | Error::Config(_) | Error::Io { .. } => Action::Fatal,
        }
    }

    /// A network error, a 5xx or an undecodable body: try again after a backoff.
    pub fn is_transient(&self) -> bool {
        matches!(self.action(), Action::Transient | Action::RateLimited)
    }

    /// The session is no longer accepted: relink, then log in again.
    pub fn needs_relogin(&self) -> bool {
        matches!(self.action(), Action::Relink | Action::Relogin | Action::ProbeSession)
    }

    /// The account was logged in elsewhere (121) and must not be logged in again automatically.
    pub fn is_kicked(&self) -> bool {
        matches!(self.action(), Action::LoggedInElsewhere)
    }
}
