//! `GET http://s.web2.qq.com/api/get_group_info_ext2`: a group's info, members and cards.
//!
//! Protocol §2.8. Keyed by `gcode` (the group code); a gid answers retcode 6 — map gid→code
//! through the group list and retry once. `cards` is absent when nobody set a group card.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, cache_buster, decode_result,
};
use crate::webqq::{Error, Gid, GroupCode, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetGroupInfoExt2 {
    /// The group code.
    pub gcode: GroupCode,
    /// The vfwebqq token.
    pub vfwebqq: String,
}

/// `ginfo.members[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFlag {
    /// The member's uin.
    pub muin: Uin,
    /// A bitmask whose bits were never documented.
    #[serde(default)]
    pub mflag: i64,
}

/// `ginfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Avatar id.
    #[serde(default)]
    pub face: u64,
    /// The announcement (topic).
    #[serde(default)]
    pub memo: String,
    /// Category.
    #[serde(default, rename = "class")]
    pub class: i64,
    /// Unknown.
    #[serde(default)]
    pub fingermemo: String,
    /// The group code.
    pub code: GroupCode,
    /// Creation time, Unix seconds.
    #[serde(default)]
    pub createtime: u64,
    /// Flags.
    #[serde(default)]
    pub flag: i64,
    /// Level.
    #[serde(default)]
    pub level: i64,
    /// The group name (HTML-entity escaped).
    pub name: String,
    /// The per-session gid.
    pub gid: Gid,
    /// The owner's uin.
    pub owner: Uin,
    /// Members and their flags.
    #[serde(default)]
    pub members: Vec<MemberFlag>,
    /// Unknown.
    #[serde(default)]
    pub option: i64,
}

/// `minfo[]`: a member's profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Nickname (HTML-entity escaped).
    pub nick: String,
    /// Province.
    #[serde(default)]
    pub province: String,
    /// `male`, `female` or `unknown`.
    #[serde(default)]
    pub gender: String,
    /// The member's uin.
    pub uin: Uin,
    /// Country.
    #[serde(default)]
    pub country: String,
    /// City.
    #[serde(default)]
    pub city: String,
}

/// `stats[]`: a member's online status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStat {
    /// Client type (protocol §0.5).
    #[serde(default)]
    pub client_type: i64,
    /// The member's uin.
    pub uin: Uin,
    /// Numeric status (10 online … 70 silent).
    #[serde(default)]
    pub stat: i64,
}

/// `cards[]`: a member's group card (per-group nickname).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCard {
    /// The member's uin.
    pub muin: Uin,
    /// The card text.
    pub card: String,
}

/// `vipinfo[]`.
pub use crate::webqq::api::get_user_friends2::VipEntry;

/// The answer's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetails {
    /// Online status of members.
    #[serde(default)]
    pub stats: Vec<MemberStat>,
    /// Member profiles.
    #[serde(default)]
    pub minfo: Vec<MemberInfo>,
    /// The group itself.
    pub ginfo: GroupInfo,
    /// Group cards; absent when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cards: Option<Vec<MemberCard>>,
    /// VIP flags.
    #[serde(default)]
    pub vipinfo: Vec<VipEntry>,
}

impl Endpoint for GetGroupInfoExt2 {
    const NAME: &'static str = "get_group_info_ext2";
    const PATH: &'static str = "/api/get_group_info_ext2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = GroupDetails;

    fn params(&self) -> Params {
        vec![
            ("gcode", self.gcode.to_string()),
            ("vfwebqq", self.vfwebqq.clone()),
            ("t", cache_buster()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_seed_and_reference_group_info_decode() {
        for body in [
            include_str!("../../../tests/fixtures/webqq/get_group_info_ext2/seed.json"),
            include_str!("../../../tests/fixtures/webqq/get_group_info_ext2/reference.json"),
        ] {
            let raw = RawAnswer {
                status: 200,
                location: None,
                content_type: None,
                body: body.as_bytes(),
            };
            let details = GetGroupInfoExt2::decode(&raw).unwrap();
            assert_eq!(details.ginfo.name, "qqbot群");
            assert_eq!(details.ginfo.owner.get(), 2_769_546_520);
            assert!(details.minfo.iter().any(|m| m.nick == "robot"));
            let again = serde_json::to_value(&details).unwrap();
            let original: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(again, original["result"]);
        }
    }
}
