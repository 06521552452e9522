//! `GET http://d(1).web2.qq.com/channel/get_discu_info`: a discussion's members.
//!
//! Protocol §2.9. Unlike groups, discussions expose each member's real QQ number as `ruin`.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_result,
};
use crate::webqq::{Did, Error, QqNumber, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetDiscuInfo {
    /// The discussion.
    pub did: Did,
    /// vfwebqq, clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

/// `info.mem_list[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscuMember {
    /// Per-session uin.
    pub mem_uin: Uin,
    /// The real QQ number.
    pub ruin: QqNumber,
}

/// `info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscuInfo {
    /// The discussion id.
    pub did: Did,
    /// The owner's uin.
    #[serde(default)]
    pub discu_owner: Option<Uin>,
    /// The name (may be empty).
    #[serde(default)]
    pub discu_name: String,
    /// A small counter; members changed when it changes.
    #[serde(default)]
    pub info_seq: u64,
    /// Members.
    #[serde(default)]
    pub mem_list: Vec<DiscuMember>,
}

/// `mem_status[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscuMemberStatus {
    /// Per-session uin.
    pub uin: Uin,
    /// Status string (protocol §0.5).
    pub status: String,
    /// Client type.
    #[serde(default)]
    pub client_type: i64,
}

/// `mem_info[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscuMemberInfo {
    /// Per-session uin.
    pub uin: Uin,
    /// Nickname.
    pub nick: String,
}

/// The answer's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscuDetails {
    /// The discussion.
    pub info: DiscuInfo,
    /// Online members (may be empty).
    #[serde(default)]
    pub mem_status: Vec<DiscuMemberStatus>,
    /// Nicknames.
    #[serde(default)]
    pub mem_info: Vec<DiscuMemberInfo>,
}

impl Endpoint for GetDiscuInfo {
    const NAME: &'static str = "get_discu_info";
    const PATH: &'static str = "/channel/get_discu_info";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = DiscuDetails;

    fn params(&self) -> Params {
        let mut params = vec![("did", self.did.to_string())];
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reference_discussion_decodes() {
        let body = include_str!("../../../tests/fixtures/webqq/get_discu_info/reference.json");
        let raw =
            RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() };
        let details = GetDiscuInfo::decode(&raw).unwrap();
        assert_eq!(details.info.mem_list[0].ruin.get(), 21_984_709);
        let again = serde_json::to_value(&details).unwrap();
        let original: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(again, original["result"]);
    }
}
