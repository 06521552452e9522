//! Plain row structs the store reads and writes: account states, portals, ghosts, media and the
//! message map. No behaviour beyond naming; the SQL lives in `conn.rs` and `matrix.rs`.

use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomId};

use crate::webqq::QqNumber;

/// The last known state of one account, as [`super::Store::account_states`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountStateRow {
    /// The configured account id.
    pub account_id: String,
    /// The account's QQ number.
    pub qq: u64,
    /// The state name (e.g. `CONNECTED`, `BAD_CREDENTIALS`; RELIABILITY.md §1.6).
    pub state: String,
    /// Why it is in that state, when known (e.g. `qq-kicked`).
    pub reason: Option<String>,
    /// When the state was recorded, Unix seconds.
    pub updated_at: u64,
}

/// One portal: the Matrix room of one QQ chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    /// Built by the bridge from stable ids only (STYLE.md §6), e.g. `friend:<account>:<qq>` or
    /// `group:<group number>`; never from a per-session uin.
    pub portal_key: String,
    /// What kind of chat (`friend`, `group`, `discussion`), as the bridge names it.
    pub kind: String,
    /// The account the portal belongs to; `None` for a chat shared by every bridged account
    /// (a group portal).
    pub account_id: Option<String>,
    /// The chat's stable id on QQ as text (the friend's QQ number, the group number).
    pub remote_id: String,
    /// The room; `None` until it has been created. Unique across portals.
    pub room_id: Option<OwnedRoomId>,
    /// Room name last set by the bridge.
    pub name: Option<String>,
    /// Room topic last set by the bridge.
    pub topic: Option<String>,
    /// Room avatar last set by the bridge.
    pub avatar_url: Option<OwnedMxcUri>,
    /// Whether the room is encrypted.
    pub encrypted: bool,
    /// When the portal was first stored, Unix seconds (kept by later upserts).
    pub created_at: u64,
}

/// The puppet Matrix user of one QQ user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ghost {
    /// The QQ number it stands for (stable; the user id is built from it).
    pub qq: QqNumber,
    /// Whether `/register` succeeded (or answered `M_USER_IN_USE`).
    pub registered: bool,
    /// The display name last set.
    pub displayname: Option<String>,
    /// Hash of the QQ avatar last uploaded, to skip unchanged avatars.
    pub avatar_hash: Option<String>,
    /// The avatar last set.
    pub avatar_url: Option<OwnedMxcUri>,
    /// When the row was last written, Unix seconds (set by the store).
    pub updated_at: u64,
}

/// One uploaded file, reused when the same content is bridged again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// Hash of the content (the bridge chooses the algorithm; hex text).
    pub content_hash: String,
    /// Where it was uploaded.
    pub mxc: OwnedMxcUri,
    /// Its MIME type, when known.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

/// Which way a bridged message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from QQ (poll2), sent to Matrix.
    QqToMatrix,
    /// Received from Matrix (a transaction), sent to QQ.
    MatrixToQq,
}

impl Direction {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::QqToMatrix => "qq_to_matrix",
            Direction::MatrixToQq => "matrix_to_qq",
        }
    }

    /// Parses the stored spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "qq_to_matrix" => Some(Direction::QqToMatrix),
            "matrix_to_qq" => Some(Direction::MatrixToQq),
            _ => None,
        }
    }
}

/// One QQ message ↔ Matrix event mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    /// The portal the message belongs to ([`Portal::portal_key`]).
    pub portal_key: String,
    /// The QQ side's key, unique within the portal (built from stable ids, `msg_id`, `msg_id2`
    /// and `time`, RELIABILITY.md §1.2; the bridge adds a part suffix when one message becomes
    /// several events).
    pub remote_key: String,
    /// The room of the event.
    pub room_id: OwnedRoomId,
    /// The Matrix event.
    pub event_id: OwnedEventId,
    /// Which way it was bridged.
    pub direction: Direction,
    /// Who sent it: a QQ number for QQ → Matrix, a Matrix user id for Matrix → QQ.
    pub sender: String,
    /// When it was sent (QQ `time` or the event's timestamp), Unix seconds.
    pub created_at: u64,
}

/// What a reply quotes of a bridged message: who sent it and its first characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// The portal of the message.
    pub portal_key: String,
    /// The sender's display name as the bridge knows it.
    pub sender_name: String,
    /// The first characters of its plain text.
    pub text: String,
}
