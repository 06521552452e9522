//! `POST http://s.web2.qq.com/api/get_group_name_list_mask2`: the groups of the account.
//!
//! Protocol §2.7. `gid` is the send target and the group messages' `from_uin`; `code` is for
//! get_group_info_ext2. Needs the same hash as the friend list since mid-2014.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, decode_result, r_json};
use crate::webqq::{Error, Gid, GroupCode};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetGroupNameListMask2 {
    /// The vfwebqq token.
    pub vfwebqq: String,
    /// The list hash (protocol §3).
    #[serde(default)]
    pub hash: String,
}

/// One group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Flags (meaning unknown).
    #[serde(default)]
    pub flag: i64,
    /// The group name (HTML-entity escaped).
    pub name: String,
    /// Per-session send id.
    pub gid: Gid,
    /// The info-call code.
    pub code: GroupCode,
}

/// One group markname (the owner's private name for a group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMarkEntry {
    /// The group's gid.
    pub uin: Gid,
    /// The markname.
    pub markname: String,
}

/// The answer's `result`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupList {
    /// Message-mask settings (format never observed; kept raw).
    #[serde(default)]
    pub gmasklist: Vec<serde_json::Value>,
    /// The groups.
    #[serde(default)]
    pub gnamelist: Vec<GroupEntry>,
    /// Group marknames.
    #[serde(default)]
    pub gmarklist: Vec<GroupMarkEntry>,
}

impl Endpoint for GetGroupNameListMask2 {
    const NAME: &'static str = "get_group_name_list_mask2";
    const PATH: &'static str = "/api/get_group_name_list_mask2";
    const METHOD: Method = Method::Post;
    const HOST: HostKind = HostKind::Info;
    type Answer = GroupList;

    fn params(&self) -> Params {
        vec![("r", r_json(self))]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_seed_group_list_decodes() {
        let body =
            include_str!("../../../tests/fixtures/webqq/get_group_name_list_mask2/seed.json");
        let raw =
            RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() };
        let list = GetGroupNameListMask2::decode(&raw).unwrap();
        assert_eq!(list.gnamelist[0].gid.get(), 2_559_225_925);
        assert_eq!(list.gnamelist[0].code.get(), 3_483_368_056);
        assert_eq!(list.gnamelist[0].name, "qqbot群");
    }
}
