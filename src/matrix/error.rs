//! [`Error`]: what a homeserver call can end in, with the classifiers callers branch on
//! (`is_transient`, `is_rate_limited`, `errcode`, `retry_after`). No message carries a token or a
//! query string.

use std::time::Duration;

/// A failed homeserver call made by [`crate::matrix::client::MatrixClient`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The homeserver answered with a non-2xx status; `errcode`/`message` come from its Matrix
    /// error body when it had one.
    #[error("homeserver answered {status} {}: {message}", errcode.as_deref().unwrap_or("(no errcode)"))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The Matrix `errcode` (`M_FORBIDDEN`, …), if the body was a Matrix error.
        errcode: Option<String>,
        /// The body's `error` text (truncated), or a note that there was none.
        message: String,
        /// How long the homeserver asked us to wait (`retry_after_ms` or `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// No HTTP answer: connection refused or reset, DNS, TLS, timeout. The URL is stripped.
    #[error("homeserver unreachable: {0}")]
    Network(#[source] Transport),
    /// A 2xx answer whose body ruma could not read.
    #[error("unexpected answer from the homeserver: {0}")]
    Decode(String),
    /// The request could not be built (a bug or an unsupported endpoint version).
    #[error("could not build the request: {0}")]
    Build(String),
    /// The answer's body was over `limit` bytes; reading stopped there.
    #[error("answer over the {limit}-byte limit")]
    TooLarge {
        /// The cap that was hit, in bytes.
        limit: usize,
    },
    /// `wait_for_homeserver` gave up at its deadline; `last` is the last failure.
    #[error("homeserver did not answer before the deadline: {last}")]
    Unreachable {
        /// The last error seen.
        last: Box<Error>,
    },
    /// The homeserver answered something the spec does not allow (e.g. an invalid mxc URI).
    #[error("invalid answer from the homeserver: {0}")]
    Invalid(String),
}

/// What failed underneath an [`Error::Network`].
#[derive(Debug, thiserror::Error)]
pub enum Transport {
    /// reqwest's (https homeservers, media downloads); built without its URL.
    #[error(transparent)]
    Http(reqwest::Error),
    /// The plain-http keep-alive client's (`matrix::client`).
    #[error(transparent)]
    Io(std::io::Error),
}

impl Error {
    /// Worth retrying as is: a 429, a 502/503/504, or no HTTP answer at all (MATRIX.md §3).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Error::Network(_) | Error::Unreachable { .. } => true,
            Error::Decode(_) | Error::Build(_) | Error::TooLarge { .. } | Error::Invalid(_) => {
                false
            }
        }
    }

    /// The homeserver rate-limited us (429 or `M_LIMIT_EXCEEDED`).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::Api { status: 429, .. }) || self.errcode() == Some("M_LIMIT_EXCEEDED")
    }

    /// The Matrix `errcode` of an [`Error::Api`] answer, if any.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            Error::Api { errcode, .. } => errcode.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of an [`Error::Api`] answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the homeserver asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, errcode: Option<&str>) -> Error {
        Error::Api {
            status,
            errcode: errcode.map(str::to_owned),
            message: "m".to_owned(),
            retry_after: None,
        }
    }

    #[test]
    fn test_classifiers() {
        let cases: &[(Error, bool, bool, Option<&str>)] = &[
            (api(429, Some("M_LIMIT_EXCEEDED")), true, true, Some("M_LIMIT_EXCEEDED")),
            (api(400, Some("M_LIMIT_EXCEEDED")), false, true, Some("M_LIMIT_EXCEEDED")),
            (api(502, None), true, false, None),
            (api(503, None), true, false, None),
            (api(504, None), true, false, None),
            (api(500, Some("M_UNKNOWN")), false, false, Some("M_UNKNOWN")),
            (api(403, Some("M_FORBIDDEN")), false, false, Some("M_FORBIDDEN")),
            (Error::Decode("x".to_owned()), false, false, None),
            (Error::TooLarge { limit: 3 }, false, false, None),
        ];
        for (error, transient, limited, code) in cases {
            assert_eq!(error.is_transient(), *transient, "{error}");
            assert_eq!(error.is_rate_limited(), *limited, "{error}");
            assert_eq!(error.errcode(), *code, "{error}");
        }
    }

    #[test]
    fn test_display_names_status_and_errcode() {
        assert_eq!(
            api(403, Some("M_FORBIDDEN")).to_string(),
            "homeserver answered 403 M_FORBIDDEN: m"
        );
    }
}
