//! The 2013 file events of poll2: `notify_offfile`, `push_offfile`, `file_message` and
//! `filesrv_transfer` (protocol §4.12, §2.19). Rarely seen; only `notify_offfile` has a sample.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::webqq::id::{MsgId, Uin};

use super::lax_opt_u64;

/// `notify_offfile`: a buddy offers an offline file (protocol §4.12).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOffFile {
    /// Sequence number.
    pub msg_id: MsgId,
    /// The buddy.
    pub from_uin: Uin,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// 9.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// Seen as 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<i64>,
    /// The file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesize: Option<u64>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// `push_offfile`: where to download an offline file (protocol §4.12, §2.19). No full sample
/// exists; members follow the field list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushOffFile {
    /// Sequence number.
    pub msg_id: MsgId,
    /// The buddy.
    pub from_uin: Uin,
    /// Our own uin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_uin: Option<Uin>,
    /// Second id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// Message subtype.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// The download key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rkey: Option<String>,
    /// The file server address; its JSON type (string or integer) is not known, so kept raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Value>,
    /// The file server port.
    #[serde(default, deserialize_with = "lax_opt_u64", skip_serializing_if = "Option::is_none")]
    pub port: Option<u64>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<u64>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// `file_message`: a direct file transfer step (protocol §4.12). No full sample exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMessage {
    /// Sequence number.
    pub msg_id: MsgId,
    /// `recv`, `refuse` or `send_ack`.
    pub mode: String,
    /// The peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_uin: Option<Uin>,
    /// Our own uin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_uin: Option<Uin>,
    /// Second id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id2: Option<MsgId>,
    /// Message subtype (`recv` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ip: Option<u64>,
    /// The wire `type` member (meaning unknown).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub file_type: Option<i64>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// The transfer session (`lcid` of `get_file2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// The file name (`recv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The peer's address (`recv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inet_ip: Option<u64>,
    /// Why it was cancelled (`refuse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_type: Option<i64>,
}

/// `filesrv_transfer`: file-server progress (protocol §4.12). No full sample exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesrvTransfer {
    /// The peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_uin: Option<Uin>,
    /// Our own uin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_uin: Option<Uin>,
    /// Number of files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
    /// The transfer session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lc_id: Option<u64>,
    /// Server time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<u64>,
    /// Operation code (meaning unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<i64>,
    /// The wire `type` member (meaning unknown).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub transfer_type: Option<i64>,
    /// Per-file state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_infos: Option<Vec<FileInfo>>,
}

/// One file of [`FilesrvTransfer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file name.
    pub file_name: String,
    /// Transfer state code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_status: Option<i64>,
    /// Progress or protocol id (meaning unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pro_id: Option<i64>,
}
