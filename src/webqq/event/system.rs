//! The system events of poll2: `system_message` (friend requests, protocol §4.8) and `sys_g_msg`
//! (group system messages, protocol §4.9), with their sub-types.

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::webqq::id::{Gid, GroupCode, GroupNumber, MsgId, QqNumber, Uin};

use super::blank_as_none;

/// `system_message`: friend requests and their outcomes (protocol §4.8). One struct for every
/// `type`: members a kind does not carry are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemMessage {
    /// The wire `type`.
    #[serde(rename = "type")]
    pub kind: SystemKind,
    /// Sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The other person's uin.
    pub from_uin: Uin,
    /// Seen as `""`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uiuin: Option<String>,
    /// The other person's QQ number (`verify_required`, `added_buddy_sig`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<QqNumber>,
    /// The request text (`verify_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// Seen as 1 (`verify_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<i64>,
    /// Numeric online status (protocol §0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<i64>,
    /// Client type (protocol §0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_type: Option<i64>,
    /// A binary-ish signature (`added_buddy_sig`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// Friend category (`verify_pass`, `verify_pass_add`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
}

/// The `type` of a [`SystemMessage`]; unknown kinds keep their string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SystemKind {
    /// Someone asks to add you (`verify_required`).
    VerifyRequired,
    /// Someone added you (`added_buddy_sig`).
    AddedBuddySig,
    /// Your request was accepted (`verify_pass`).
    VerifyPass,
    /// Your request was accepted and they added you back (`verify_pass_add`).
    VerifyPassAdd,
    /// Any other kind, as received.
    Other(String),
}

impl SystemKind {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            SystemKind::VerifyRequired => "verify_required",
            SystemKind::AddedBuddySig => "added_buddy_sig",
            SystemKind::VerifyPass => "verify_pass",
            SystemKind::VerifyPassAdd => "verify_pass_add",
            SystemKind::Other(kind) => kind,
        }
    }
}

impl Serialize for SystemKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SystemKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(deserializer)?.as_str() {
            "verify_required" => SystemKind::VerifyRequired,
            "added_buddy_sig" => SystemKind::AddedBuddySig,
            "verify_pass" => SystemKind::VerifyPass,
            "verify_pass_add" => SystemKind::VerifyPassAdd,
            other => SystemKind::Other(other.to_owned()),
        })
    }
}

/// A `t_*` member of `sys_g_msg` (`t_new_member`, `t_old_member`, …): the person's real QQ
/// number, or `""` when the server left it blank (as in the protocol's `group_join` sample).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RealNumber {
    /// The QQ number.
    Number(QqNumber),
    /// `""` on the wire.
    Blank,
}

impl RealNumber {
    /// The QQ number, if given.
    pub fn number(self) -> Option<QqNumber> {
        match self {
            RealNumber::Number(number) => Some(number),
            RealNumber::Blank => None,
        }
    }
}

impl Serialize for RealNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RealNumber::Number(number) => number.serialize(serializer),
            RealNumber::Blank => serializer.serialize_str(""),
        }
    }
}

impl<'de> Deserialize<'de> for RealNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) if s.trim().is_empty() => Ok(RealNumber::Blank),
            other => QqNumber::deserialize(other).map(RealNumber::Number).map_err(D::Error::custom),
        }
    }
}

/// `sys_g_msg`: a group system message (protocol §4.9): common members plus a [`SysGroupKind`]
/// chosen by the wire `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysGroupMessage {
    /// Sequence number.
    pub msg_id: MsgId,
    /// The group's gid.
    pub from_uin: Gid,
    /// Our own uin.
    pub to_uin: Uin,
    /// Second id.
    pub msg_id2: Option<MsgId>,
    /// 33–38 or 44, by sub-type.
    pub msg_type: Option<i64>,
    /// An IPv4 as a 32-bit integer.
    pub reply_ip: Option<u64>,
    /// The group code.
    pub gcode: Option<GroupCode>,
    /// The group number (a permanent key); `""` reads as `None`.
    pub t_gcode: Option<GroupNumber>,
    /// What happened, with the sub-type's own members.
    pub kind: SysGroupKind,
}

/// The `type` of a [`SysGroupMessage`] and its members (protocol §4.9 table). Serialized with
/// the `type` tag inside the value, next to the common members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SysGroupKind {
    /// A group you own was created (msg_type 38).
    GroupCreate {
        /// The owner.
        #[serde(skip_serializing_if = "Option::is_none")]
        owner_uin: Option<Uin>,
    },
    /// A member joined; when `new_member` is you, you joined a new group (msg_type 33).
    GroupJoin {
        /// 3 seen.
        #[serde(skip_serializing_if = "Option::is_none")]
        op_type: Option<i64>,
        /// The new member.
        new_member: Uin,
        /// The new member's QQ number, often blank.
        #[serde(skip_serializing_if = "Option::is_none")]
        t_new_member: Option<RealNumber>,
        /// The admin who let them in.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_uin: Option<Uin>,
        /// The admin's nick.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_nick: Option<String>,
    },
    /// A member left (`op_type` 2) or was removed (3); when it is you, drop the group (msg_type 34).
    GroupLeave {
        /// 2 = left, 3 = removed (inferred from samples).
        #[serde(skip_serializing_if = "Option::is_none")]
        op_type: Option<i64>,
        /// The member who left.
        old_member: Uin,
        /// Their QQ number, often blank.
        #[serde(skip_serializing_if = "Option::is_none")]
        t_old_member: Option<RealNumber>,
        /// The admin who removed them.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_uin: Option<Uin>,
        /// The admin's QQ number.
        #[serde(skip_serializing_if = "Option::is_none")]
        t_admin_uin: Option<RealNumber>,
        /// The admin's nick.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_nick: Option<String>,
    },
    /// Someone asks to join; you are an admin (msg_type 35).
    GroupRequestJoin {
        /// The requester.
        request_uin: Uin,
        /// The requester's QQ number.
        #[serde(skip_serializing_if = "Option::is_none")]
        t_request_uin: Option<RealNumber>,
        /// The request text.
        #[serde(skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
    },
    /// Your join request was accepted (msg_type 36).
    GroupRequestJoinAgree {
        /// The admin who accepted.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_uin: Option<Uin>,
        /// The admin's message.
        #[serde(skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
        /// You, as the new member.
        #[serde(skip_serializing_if = "Option::is_none")]
        new_member: Option<Uin>,
        /// Your QQ number.
        #[serde(skip_serializing_if = "Option::is_none")]
        t_new_member: Option<RealNumber>,
    },
    /// Your join request was refused (msg_type 37).
    GroupRequestJoinDeny {
        /// The admin who refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_uin: Option<Uin>,
        /// The admin's message.
        #[serde(skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
        /// You.
        #[serde(skip_serializing_if = "Option::is_none")]
        old_member: Option<Uin>,
    },
    /// Admin rights granted (`op_type` 1) or revoked (0) (msg_type 44).
    GroupAdminOp {
        /// 1 = set, 0 = unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        op_type: Option<i64>,
        /// The member concerned.
        uin: Uin,
        /// Their QQ number.
        #[serde(skip_serializing_if = "Option::is_none")]
        t_uin: Option<RealNumber>,
        /// Member flags (meaning unknown).
        #[serde(skip_serializing_if = "Option::is_none")]
        uin_flag: Option<i64>,
    },
    /// Any other `type`, kept so it re-encodes: `raw` holds the value's members other than the
    /// common ones and `type`.
    #[serde(skip)]
    Other {
        /// The wire `type`.
        sub_type: String,
        /// The sub-type's own members.
        raw: Map<String, Value>,
    },
}

impl SysGroupKind {
    const KNOWN: [&'static str; 7] = [
        "group_create",
        "group_join",
        "group_leave",
        "group_request_join",
        "group_request_join_agree",
        "group_request_join_deny",
        "group_admin_op",
    ];
}

/// The members every `sys_g_msg` value carries, for (de)serializing [`SysGroupMessage`].
#[derive(Serialize, Deserialize)]
struct Common {
    msg_id: MsgId,
    from_uin: Gid,
    to_uin: Uin,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg_id2: Option<MsgId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_ip: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gcode: Option<GroupCode>,
    #[serde(default, deserialize_with = "blank_as_none", skip_serializing_if = "Option::is_none")]
    t_gcode: Option<GroupNumber>,
}

impl Common {
    const MEMBERS: [&'static str; 8] =
        ["msg_id", "from_uin", "to_uin", "msg_id2", "msg_type", "reply_ip", "gcode", "t_gcode"];
}

impl Serialize for SysGroupMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let common = Common {
            msg_id: self.msg_id,
            from_uin: self.from_uin,
            to_uin: self.to_uin,
            msg_id2: self.msg_id2,
            msg_type: self.msg_type,
            reply_ip: self.reply_ip,
            gcode: self.gcode,
            t_gcode: self.t_gcode,
        };
        let mut object = match &self.kind {
            SysGroupKind::Other { sub_type, raw } => {
                let mut object = raw.clone();
                object.insert("type".to_owned(), Value::from(sub_type.as_str()));
                object
            }
            known => match serde_json::to_value(known).map_err(S::Error::custom)? {
                Value::Object(object) => object,
                _ => return Err(S::Error::custom("sys_g_msg kind is not an object")),
            },
        };
        if let Value::Object(members) = serde_json::to_value(common).map_err(S::Error::custom)? {
            object.extend(members);
        }
        object.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SysGroupMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let common = Common::deserialize(&value).map_err(|e| e.to_string());
        let kind = decode_kind(&value);
        // Like serde's derive, report a wrong member before a missing one, so the member-probing
        // in `event::decode` names the right culprit.
        let (common, kind) = match (common, kind) {
            (Ok(common), Ok(kind)) => (common, kind),
            (Err(a), Err(b)) if a.starts_with("missing field") => return Err(D::Error::custom(b)),
            (Err(error), _) | (_, Err(error)) => return Err(D::Error::custom(error)),
        };
        Ok(SysGroupMessage {
            msg_id: common.msg_id,
            from_uin: common.from_uin,
            to_uin: common.to_uin,
            msg_id2: common.msg_id2,
            msg_type: common.msg_type,
            reply_ip: common.reply_ip,
            gcode: common.gcode,
            t_gcode: common.t_gcode,
            kind,
        })
    }
}

/// The sub-type of a `sys_g_msg` value; unknown `type`s become [`SysGroupKind::Other`].
fn decode_kind(value: &Value) -> Result<SysGroupKind, String> {
    let Some(sub_type) = value.get("type") else {
        return Err("missing field `type`".to_owned());
    };
    let sub_type = sub_type.as_str().ok_or("`type` is not a string")?;
    if SysGroupKind::KNOWN.contains(&sub_type) {
        return SysGroupKind::deserialize(value).map_err(|e| e.to_string());
    }
    let mut raw = value.as_object().cloned().unwrap_or_default();
    raw.retain(|key, _| !Common::MEMBERS.contains(&key.as_str()) && key != "type");
    Ok(SysGroupKind::Other { sub_type: sub_type.to_owned(), raw })
}
