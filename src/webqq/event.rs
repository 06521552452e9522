//! poll2 events: [`PollEvent`], a closed enum over every `poll_type` of protocol §4, their value
//! structs, and [`decode_poll_result`], which never loses a batch to one bad event.
//! Shared by the client (decode) and the emulator (build and serialize the exact wire shape).

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::webqq::content::Content;
use crate::webqq::id::{Did, Gid, GroupCode, GroupNumber, MsgId, QqNumber, Uin, lax_u64};

mod file;
mod system;

pub use file::{FileInfo, FileMessage, FilesrvTransfer, NotifyOffFile, PushOffFile};
pub use system::{RealNumber, SysGroupKind, SysGroupMessage, SystemKind, SystemMessage};

/// The longest `reason` an [`PollEvent::Unknown`] carries, in bytes.
const MAX_REASON_BYTES: usize = 300;

/// Objects with more members than this are not probed for the failing member's name.
const MAX_PROBED_MEMBERS: usize = 64;

/// One element of a poll2 `result` array: `{"poll_type": ..., "value": {...}}` (protocol §4).
///
/// Era-dependent members (2013 "fat" values vs SmartQQ "slim" ones, §4 intro) are `Option` and
/// omitted on serialize when `None`, so both eras round-trip. Unknown extra members are dropped,
/// except where a variant keeps its raw value ([`PollEvent::Tips`], [`PollEvent::Unknown`],
/// [`SysGroupKind::Other`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollEvent {
    /// `message`: a buddy message (§4.1).
    Message(BuddyMessage),
    /// `group_message` (§4.2).
    GroupMessage(GroupMessage),
    /// `discu_message`: a discussion message (§4.3).
    DiscuMessage(DiscuMessage),
    /// `sess_message`: a temporary chat via a group or discussion (§4.4).
    SessMessage(SessMessage),
    /// `kick_message`: the session is dead (§4.5).
    KickMessage(KickMessage),
    /// `buddies_status_change` (§4.6).
    BuddiesStatusChange(BuddiesStatusChange),
    /// `input_notify`: a buddy is typing (§4.7).
    InputNotify(BuddyNotice),
    /// `shake_message`: a buddy shook the window (§4.7).
    ShakeMessage(BuddyNotice),
    /// `system_message`: friend requests and confirmations (§4.8).
    SystemMessage(SystemMessage),
    /// `sys_g_msg`: group system messages (§4.9).
    SysGroupMessage(SysGroupMessage),
    /// `buddylist_change`: refresh the friend list (§4.10).
    BuddylistChange(BuddylistChange),
    /// `group_web_message`: shared-file and web-app notices in a group (§4.11).
    GroupWebMessage(GroupWebMessage),
    /// `notify_offfile` (§4.12).
    NotifyOffFile(NotifyOffFile),
    /// `push_offfile` (§4.12).
    PushOffFile(PushOffFile),
    /// `file_message` (§4.12).
    FileMessage(FileMessage),
    /// `filesrv_transfer` (§4.12).
    FilesrvTransfer(FilesrvTransfer),
    /// `tips`: listed in a 2015 note, never seen with a value (§4.13); kept raw.
    Tips(Value),
    /// An unknown `poll_type`, or a known one whose value did not decode.
    Unknown {
        /// The `poll_type` string, or `""` when the element had none.
        poll_type: String,
        /// The whole element as received; serialized back unchanged.
        raw: Value,
        /// Why it is unknown, naming the failing member when it could be found.
        reason: String,
    },
}

/// `message`: a buddy message (protocol §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuddyMessage {
    /// Per-sender sequence number.
    pub msg_id: MsgId,
    /// The buddy's uin (reply target `to`); our own uin for a send from another device (§7.6).
    pub from_uin: Uin,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id, 2013 only; part of the dedupe key when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 9 in 2013, 0 in SmartQQ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// Unix seconds.
    #[serde(deserialize_with = "lax_u64")]
    pub time: u64,
    /// The message.
    pub content: Content,
}

/// `group_message` (protocol §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMessage {
    /// Per-sender sequence number.
    pub msg_id: MsgId,
    /// The group's gid (reply target `group_uin`).
    pub from_uin: Gid,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 43 in 2013, 32 for magic faces, 0 or 4 in SmartQQ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// The group code in 2013; in SmartQQ the same value as `from_uin` (protocol §0.2).
    pub group_code: GroupCode,
    /// The member who wrote it.
    pub send_uin: Uin,
    /// Per-group message sequence, 2013 only (gaps mean lost messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Unix seconds.
    #[serde(deserialize_with = "lax_u64")]
    pub time: u64,
    /// The group number, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info_seq: Option<GroupNumber>,
    /// The group number, on magic-face messages (`msg_type` 32); `""` reads as `None`.
    #[serde(default, deserialize_with = "blank_as_none", skip_serializing_if = "Option::is_none")]
    pub t_gcode: Option<GroupNumber>,
    /// The message.
    pub content: Content,
}

/// `discu_message` (protocol §4.3). The SmartQQ form is assumed slim (no sample exists).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscuMessage {
    /// Per-sender sequence number.
    pub msg_id: MsgId,
    /// The constant 10000 ("system") in 2013.
    pub from_uin: Uin,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 42 in 2013.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// The discussion (reply target).
    pub did: Did,
    /// The member who wrote it.
    pub send_uin: Uin,
    /// Per-discussion sequence, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Unix seconds.
    #[serde(deserialize_with = "lax_u64")]
    pub time: u64,
    /// A small counter (not a group number) that changes with the member list (lwqq).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info_seq: Option<u64>,
    /// The message.
    pub content: Content,
}

/// `sess_message`: a temporary chat (protocol §4.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessMessage {
    /// Per-sender sequence number.
    pub msg_id: MsgId,
    /// The sender's uin (reply `to`).
    pub from_uin: Uin,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 140 in 2013.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer, 2013 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// Unix seconds.
    #[serde(deserialize_with = "lax_u64")]
    pub time: u64,
    /// A gid or a did depending on `service_type`: read it through [`SessMessage::source`].
    #[serde(default, deserialize_with = "lax_opt_u64", skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The sender's real QQ number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruin: Option<QqNumber>,
    /// 0 = via a group, 1 = via a discussion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<u32>,
    /// Capability flags (`{"text":1,"pic":1,...}`), kept raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Value>,
    /// The message.
    pub content: Content,
}

/// Where a temporary chat comes from: the `id` of a [`SessMessage`], typed by `service_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessSource {
    /// `service_type` 0: via a group.
    Group(Gid),
    /// `service_type` 1: via a discussion.
    Discussion(Did),
}

impl SessMessage {
    /// The group or discussion the chat goes through; `None` if `id` or `service_type` is
    /// missing or the service type is unknown. Needed for `get_c2cmsg_sig2` (protocol §2.5).
    pub fn source(&self) -> Option<SessSource> {
        match (self.service_type?, self.id?) {
            (0, id) => Some(SessSource::Group(Gid::new(id))),
            (1, id) => Some(SessSource::Discussion(Did::new(id))),
            _ => None,
        }
    }
}

/// `kick_message`: the session is dead (protocol §4.5).
///
/// Every member is optional and a value that does not decode still yields a (default) kick:
/// losing a kick to a decode error would leave the client polling a dead session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickMessage {
    /// Sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<MsgId>,
    /// The constant 10000 ("system").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_uin: Option<Uin>,
    /// Our own uin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_uin: Option<Uin>,
    /// Second id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 48.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// Usually 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// 1 when `reason` should be shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_reason: Option<i64>,
    /// A human-readable reason (e.g. logged in elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl KickMessage {
    /// The reason to show the user, when `show_reason` is 1 and a reason is present.
    pub fn shown_reason(&self) -> Option<&str> {
        self.reason.as_deref().filter(|_| self.show_reason == Some(1))
    }
}

/// `buddies_status_change` (protocol §4.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuddiesStatusChange {
    /// The buddy.
    pub uin: Uin,
    /// A status string (`online`, `away`, `busy`, `silent`, `hidden`, `callme`, `offline`,
    /// protocol §0.5); kept as a string so new values pass through.
    pub status: String,
    /// The buddy's client type (§0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_type: Option<i64>,
}

/// The value of `input_notify` and `shake_message` (protocol §4.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuddyNotice {
    /// Sequence number.
    pub msg_id: MsgId,
    /// The buddy.
    pub from_uin: Uin,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 121 for input_notify, 9 for shake_message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer (4294967295 seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// Unix seconds; absent in the samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// `buddylist_change` (protocol §4.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuddylistChange {
    /// New friends.
    #[serde(default)]
    pub added_friends: Vec<FriendRef>,
    /// Removed friends.
    #[serde(default)]
    pub removed_friends: Vec<FriendRef>,
}

/// A friend entry of [`BuddylistChange`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRef {
    /// The friend category index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groupid: Option<i64>,
    /// The friend.
    pub uin: Uin,
}

/// `group_web_message` (protocol §4.11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupWebMessage {
    /// Sequence number.
    pub msg_id: MsgId,
    /// The group's gid.
    pub from_uin: Gid,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 45.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// The group code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_code: Option<GroupCode>,
    /// Seen as 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_type: Option<i64>,
    /// Seen as 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
    /// The member who shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_uin: Option<Uin>,
    /// Unix seconds; absent in the sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// The notice as XML (`<n t="t" s="共享文件"/>`…); other payloads were binary-ish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xml: Option<String>,
}

impl PollEvent {
    /// The wire `poll_type` of this event (for `Unknown`, the one received).
    pub fn poll_type(&self) -> &str {
        match self {
            PollEvent::Message(_) => "message",
            PollEvent::GroupMessage(_) => "group_message",
            PollEvent::DiscuMessage(_) => "discu_message",
            PollEvent::SessMessage(_) => "sess_message",
            PollEvent::KickMessage(_) => "kick_message",
            PollEvent::BuddiesStatusChange(_) => "buddies_status_change",
            PollEvent::InputNotify(_) => "input_notify",
            PollEvent::ShakeMessage(_) => "shake_message",
            PollEvent::SystemMessage(_) => "system_message",
            PollEvent::SysGroupMessage(_) => "sys_g_msg",
            PollEvent::BuddylistChange(_) => "buddylist_change",
            PollEvent::GroupWebMessage(_) => "group_web_message",
            PollEvent::NotifyOffFile(_) => "notify_offfile",
            PollEvent::PushOffFile(_) => "push_offfile",
            PollEvent::FileMessage(_) => "file_message",
            PollEvent::FilesrvTransfer(_) => "filesrv_transfer",
            PollEvent::Tips(_) => "tips",
            PollEvent::Unknown { poll_type, .. } => poll_type,
        }
    }

    /// Decodes one `result` element; never fails and never panics. Anything that does not decode
    /// becomes [`PollEvent::Unknown`] with the element kept raw, except `kick_message` (see
    /// [`KickMessage`]).
    pub fn from_wire(element: &Value) -> PollEvent {
        let unknown = |poll_type: &str, reason: String| PollEvent::Unknown {
            poll_type: poll_type.to_owned(),
            raw: element.clone(),
            reason,
        };
        let Some(object) = element.as_object() else {
            return unknown("", "event is not an object".to_owned());
        };
        let Some(poll_type) = object.get("poll_type").and_then(Value::as_str) else {
            return unknown("", "missing or non-string `poll_type`".to_owned());
        };
        let Some(value) = object.get("value") else {
            return unknown(poll_type, "missing `value`".to_owned());
        };
        let decoded = match poll_type {
            "message" => decode(value).map(PollEvent::Message),
            "group_message" => decode(value).map(PollEvent::GroupMessage),
            "discu_message" => decode(value).map(PollEvent::DiscuMessage),
            "sess_message" => decode(value).map(PollEvent::SessMessage),
            "kick_message" => Ok(PollEvent::KickMessage(decode(value).unwrap_or_default())),
            "buddies_status_change" => decode(value).map(PollEvent::BuddiesStatusChange),
            "input_notify" => decode(value).map(PollEvent::InputNotify),
            "shake_message" => decode(value).map(PollEvent::ShakeMessage),
            "system_message" => decode(value).map(PollEvent::SystemMessage),
            "sys_g_msg" => decode(value).map(PollEvent::SysGroupMessage),
            "buddylist_change" => decode(value).map(PollEvent::BuddylistChange),
            "group_web_message" => decode(value).map(PollEvent::GroupWebMessage),
            "notify_offfile" => decode(value).map(PollEvent::NotifyOffFile),
            "push_offfile" => decode(value).map(PollEvent::PushOffFile),
            "file_message" => decode(value).map(PollEvent::FileMessage),
            "filesrv_transfer" => decode(value).map(PollEvent::FilesrvTransfer),
            "tips" => Ok(PollEvent::Tips(value.clone())),
            _ => Err("unknown poll_type".to_owned()),
        };
        decoded.unwrap_or_else(|reason| unknown(poll_type, reason))
    }
}

/// Decodes the `result` member of a poll2 answer (protocol §2.3, §4).
///
/// Each element is decoded on its own ([`PollEvent::from_wire`]): a bad one becomes `Unknown`,
/// the others still come out, in wire order. A `result` that is not an array (missing, `null`,
/// an object, a string) gives an empty list: SmartQQ answered idle polls with retcode 0 and no
/// usable result (§2.3). Checking `retcode` is the caller's job.
pub fn decode_poll_result(result: &Value) -> Vec<PollEvent> {
    result
        .as_array()
        .map(|items| items.iter().map(PollEvent::from_wire).collect())
        .unwrap_or_default()
}

impl Serialize for PollEvent {
    /// `{"poll_type": ..., "value": {...}}`; `Unknown` re-emits its raw element unchanged.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let poll_type = self.poll_type();
        match self {
            PollEvent::Message(v) => envelope(serializer, poll_type, v),
            PollEvent::GroupMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::DiscuMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::SessMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::KickMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::BuddiesStatusChange(v) => envelope(serializer, poll_type, v),
            PollEvent::InputNotify(v) | PollEvent::ShakeMessage(v) => {
                envelope(serializer, poll_type, v)
            }
            PollEvent::SystemMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::SysGroupMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::BuddylistChange(v) => envelope(serializer, poll_type, v),
            PollEvent::GroupWebMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::NotifyOffFile(v) => envelope(serializer, poll_type, v),
            PollEvent::PushOffFile(v) => envelope(serializer, poll_type, v),
            PollEvent::FileMessage(v) => envelope(serializer, poll_type, v),
            PollEvent::FilesrvTransfer(v) => envelope(serializer, poll_type, v),
            PollEvent::Tips(v) => envelope(serializer, poll_type, v),
            PollEvent::Unknown { raw, .. } => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for PollEvent {
    /// [`PollEvent::from_wire`] semantics: any JSON value is accepted.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|value| PollEvent::from_wire(&value))
    }
}

fn envelope<S: Serializer, T: Serialize>(
    serializer: S,
    poll_type: &str,
    value: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("poll_type", poll_type)?;
    map.serialize_entry("value", value)?;
    map.end()
}

/// Decodes a value, or says why not. serde's message rarely names the member at fault, so on
/// failure each member is removed in turn: the one whose removal cures the error, or turns it
/// into "missing field" for that member, is named in the reason.
fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    // Derived structs would also accept a positional array; the wire only ever has objects.
    if !value.is_object() {
        return Err("value is not an object".to_owned());
    }
    let error = match T::deserialize(value) {
        Ok(decoded) => return Ok(decoded),
        Err(error) => error.to_string(),
    };
    // A missing member is already named by serde.
    let probe = !error.starts_with("missing field");
    let object = value.as_object().filter(|o| probe && o.len() <= MAX_PROBED_MEMBERS);
    let culprit = object.and_then(|object| {
        object.keys().find(|key| {
            let mut probe = object.clone();
            probe.remove(key.as_str());
            match T::deserialize(&Value::Object(probe)) {
                Ok(_) => true,
                Err(error) => error.to_string() == format!("missing field `{key}`"),
            }
        })
    });
    let reason = match culprit {
        Some(key) if !error.contains(&format!("`{key}`")) => format!("field `{key}`: {error}"),
        _ => error,
    };
    Err(truncate(reason, MAX_REASON_BYTES))
}

fn truncate(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An optional `u64` written as a number or a decimal string (protocol §0.3).
fn lax_opt_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Lax(#[serde(deserialize_with = "lax_u64")] u64);
    Ok(Option::<Lax>::deserialize(deserializer)?.map(|lax| lax.0))
}

/// An optional member where `null` and a blank string mean "absent" (`t_gcode`, protocol §4.9).
fn blank_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        other => T::deserialize(other).map(Some).map_err(D::Error::custom),
    }
}

#[cfg(test)]
mod tests;
