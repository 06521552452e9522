//! What an account actor is told and what it tells: its settings, the commands it answers
//! ([`StopAccount`], [`SolveCaptcha`], [`GetAccountState`]) and the [`AccountEvent`]s it reports
//! to its observer.

use std::sync::Arc;

use actix::prelude::*;

use crate::account::poller::Backoff;
use crate::account::poller_actor::PollFinished;
use crate::account::send_queue::SendPolicy;
use crate::account::sender_actor::SendReport;
use crate::account::state::AccountState;
use crate::webqq::client::ClientConfig;
use crate::webqq::session::Session;
use crate::webqq::{QqNumber, Secret};

/// How an account may log in without a stored session.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Password login (captcha accounts need a person).
    Password(Secret<String>),
    /// QR login: the code goes to the observer for a person to scan.
    Qr,
    /// Only restore a stored session; anything else needs a person.
    SessionOnly,
}

/// Everything an account actor needs to know.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// Short id for logs and metrics.
    pub id: String,
    /// The QQ number.
    pub qq: QqNumber,
    /// How to log in without a stored session.
    pub credentials: Credentials,
    /// How to reach QQ.
    pub client: ClientConfig,
    /// Poll backoff bounds.
    pub backoff: Backoff,
    /// Sender pacing and retries.
    pub send: SendPolicy,
    /// Full logins tried in a row after relinks fail.
    pub max_relogins: u32,
    /// Turns for login network work, shared by every account of the process.
    pub login_permits: Arc<tokio::sync::Semaphore>,
}

/// Which child a restart was of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// The login actor.
    Login,
    /// The poller.
    Poller,
    /// The sender.
    Sender,
}

/// Why a session ended, for the disconnect counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// Polls failed for network reasons (the session may survive).
    Network,
    /// The server dropped the session; a relink or relogin follows.
    SessionExpired,
    /// Logged in elsewhere (121 after its relink, or kick_message).
    Kicked,
}

/// How a login was made, for the login funnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    /// A stored session was restored and relinked.
    Restore,
    /// The live session was relinked.
    Relink,
    /// A password login.
    Password,
    /// A QR login.
    Qr,
}

/// Event: what happened to an account, for its observer. Sent by `AccountActor`.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum AccountEvent {
    /// The state changed.
    StateChanged {
        /// The account id.
        account: String,
        /// The new state.
        state: AccountState,
        /// Why, in words a person understands.
        reason: Option<String>,
    },
    /// A session is open: store it for the next restart.
    SessionSaved {
        /// The account id.
        account: String,
        /// The session (secrets inside).
        session: Box<Session>,
    },
    /// A login attempt ended.
    LoginFinished {
        /// The account id.
        account: String,
        /// How.
        method: LoginMethod,
        /// Whether it worked.
        ok: bool,
    },
    /// A QR code waits to be scanned.
    QrCode {
        /// The account id.
        account: String,
        /// The PNG.
        png: Vec<u8>,
    },
    /// The QR code was scanned; the phone must confirm.
    QrScanned {
        /// The account id.
        account: String,
    },
    /// A captcha waits to be typed; answer with [`SolveCaptcha`].
    Captcha {
        /// The account id.
        account: String,
        /// The image (JPEG).
        image: Vec<u8>,
    },
    /// A session ended or was interrupted.
    Disconnected {
        /// The account id.
        account: String,
        /// Why.
        reason: Disconnect,
    },
    /// A poll finished.
    Poll {
        /// The account id.
        account: String,
        /// What happened.
        poll: Arc<PollFinished>,
    },
    /// A queued message has an outcome.
    Send {
        /// The account id.
        account: String,
        /// What happened.
        report: SendReport,
    },
    /// A child was started again.
    ChildRestarted {
        /// The account id.
        account: String,
        /// Which.
        child: Child,
    },
}

/// Query: the account's state and the reason for it. Answered by `AccountActor`.
#[derive(Message)]
#[rtype(result = "(AccountState, Option<String>)")]
pub struct GetAccountState;

/// Command: the text of the captcha the account waits for. Answers `false` when no captcha is
/// waiting (it expired, or the login moved on).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct SolveCaptcha {
    /// What the person read in the image.
    pub text: String,
}

/// Command: stop the account (children first). Its session stays stored for the next start.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccount;

/// Command: end the session on QQ (logout2, protocol §1.5), then stop like [`StopAccount`].
/// Best effort: answers QQ's refusal or silence (after `timeout`) as an error; the account
/// stops either way.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct LogOutOfQq {
    /// How long QQ may take to answer.
    pub timeout: std::time::Duration,
}

/// What picture of a received message to download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PictureRequest {
    /// A group or discussion picture.
    Group {
        /// `{GUID}.jpg`-style name.
        name: String,
        /// The file id.
        file_id: u64,
        /// The element's `ip:port` (a parameter, never connected to).
        server: String,
    },
    /// A buddy custom face.
    CustomFace {
        /// The file name.
        name: String,
    },
    /// A buddy offline picture.
    Offline {
        /// The server path.
        file_path: String,
    },
}

/// Query: download a picture of a message this session received. Answered by `AccountActor`
/// with the bytes, or why not.
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, String>")]
pub struct FetchPicture {
    /// The message's coordinates.
    pub origin: crate::account::resolve::Origin,
    /// Which picture.
    pub picture: PictureRequest,
}

/// Command: upload a picture for a message to `chat`. Answered by `AccountActor` with the content
/// segment that shows it (to queue with [`crate::account::sender_actor::QueueMessage`]), or why
/// not.
#[derive(Message)]
#[rtype(result = "Result<crate::webqq::content::Segment, String>")]
pub struct UploadPicture {
    /// Where the message goes (a friend picture is uploaded for that friend).
    pub chat: crate::account::send_queue::ChatKey,
    /// A file name with the right extension.
    pub file_name: String,
    /// The image.
    pub bytes: Vec<u8>,
}

/// Command: tell friend `to` that the account is typing (input_notify2, protocol §2.17).
/// Best effort: a failure is logged, never retried (typing is stale a second later).
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifyTyping {
    /// The friend.
    pub to: QqNumber,
}
