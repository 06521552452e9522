//! [`BotError`]: what starting or using the bot's own Matrix client ([`super::BotClient`]) can end
//! in. No variant ever carries an access token, the as_token or the store passphrase.

use std::path::PathBuf;

use ruma::{OwnedEventId, OwnedRoomId};

/// A failure of the bot's encryption-capable client. Messages are lowercase and name the file,
/// room or step they are about; tokens never appear in them.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// A setting cannot be used (an unusable homeserver URL, a user id of another server).
    #[error("invalid bot settings: {0}")]
    Settings(String),
    /// The device file or its directory could not be read, written or given its mode.
    #[error("bot device file {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The device file exists but is not a device file of this bridge (corrupt or hand-edited):
    /// remove it (the bot then logs in again with a new device) or restore it from a backup.
    #[error("bot device file {} is unreadable: {reason}", path.display())]
    CorruptDeviceFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (a JSON error or a missing field); never its content.
        reason: String,
    },
    /// The homeserver refused the appservice login of the bot (`POST /login`).
    #[error("bot login refused: homeserver answered {status} {}: {message}", errcode.as_deref().unwrap_or("(no errcode)"))]
    Login {
        /// The HTTP status.
        status: u16,
        /// The Matrix `errcode`, if the body was a Matrix error.
        errcode: Option<String>,
        /// The body's `error` text, truncated.
        message: String,
    },
    /// No HTTP answer to a request the bot made itself (connection refused, timeout); the URL is
    /// stripped.
    #[error("homeserver unreachable: {0}")]
    Network(String),
    /// A matrix-sdk call failed; `errcode` is the Matrix error code when the homeserver sent one.
    #[error("{context} failed: {message}")]
    Sdk {
        /// The step that failed (`"sync"`, `"send message"`, …).
        context: &'static str,
        /// The Matrix `errcode` (`M_UNKNOWN_TOKEN`, `M_FORBIDDEN`, …), if any.
        errcode: Option<String>,
        /// The error text.
        message: String,
    },
    /// The bot's client does not know the room: the bot is not (yet) joined to it.
    #[error("the bot is not in room {0}")]
    UnknownRoom(OwnedRoomId),
    /// An event given to [`super::BotClient::decrypt`] is not an `m.room.encrypted` event.
    #[error("not an encrypted room event: {0}")]
    NotEncrypted(String),
    /// The room key of an encrypted event did not arrive in time (or never will).
    #[error("cannot decrypt event {event_id} in {room_id}: {reason}")]
    Undecryptable {
        /// The room.
        room_id: OwnedRoomId,
        /// The event.
        event_id: OwnedEventId,
        /// Why (matrix-sdk's unable-to-decrypt reason).
        reason: String,
    },
    /// The client was stopped ([`super::BotClient::stop`] or the shutdown future).
    #[error("the bot client is stopped")]
    Stopped,
}

impl BotError {
    /// The Matrix `errcode` the homeserver answered with, if this error carries one.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            BotError::Login { errcode, .. } | BotError::Sdk { errcode, .. } => errcode.as_deref(),
            _ => None,
        }
    }

    /// Whether the homeserver no longer accepts the device's access token (`M_UNKNOWN_TOKEN`):
    /// the device is gone and a new login is needed.
    pub fn is_unknown_token(&self) -> bool {
        self.errcode() == Some("M_UNKNOWN_TOKEN")
    }

    /// Wraps a matrix-sdk error with the step it failed in.
    pub(super) fn sdk(context: &'static str, error: &matrix_sdk::Error) -> BotError {
        let errcode = error.client_api_error_kind().map(|kind| kind.errcode().to_string());
        BotError::Sdk { context, errcode, message: error.to_string() }
    }

    /// Wraps a matrix-sdk HTTP error with the step it failed in.
    pub(super) fn http(context: &'static str, error: &matrix_sdk::HttpError) -> BotError {
        let errcode = error.client_api_error_kind().map(|kind| kind.errcode().to_string());
        BotError::Sdk { context, errcode, message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_errcode_classifies_unknown_token() {
        let login = BotError::Login {
            status: 401,
            errcode: Some("M_UNKNOWN_TOKEN".to_owned()),
            message: "Invalid access token".to_owned(),
        };
        assert!(login.is_unknown_token());
        assert_eq!(
            login.to_string(),
            "bot login refused: homeserver answered 401 M_UNKNOWN_TOKEN: Invalid access token"
        );
        let sdk = BotError::Sdk {
            context: "sync",
            errcode: Some("M_FORBIDDEN".to_owned()),
            message: "no".to_owned(),
        };
        assert!(!sdk.is_unknown_token());
        assert_eq!(sdk.errcode(), Some("M_FORBIDDEN"));
        assert_eq!(BotError::Stopped.errcode(), None);
    }
}
