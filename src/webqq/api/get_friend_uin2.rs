//! `GET http://s.web2.qq.com/api/get_friend_uin2`: uin (or gid) → real QQ (or group) number.
//!
//! Protocol §2.10, §7.10. `type=1` for a person, `type=4` for a group. Closed by Tencent around
//! 2017-04; heavy use could trigger captcha errors.

use serde::{Deserialize, Serialize};

use crate::webqq::Error;
use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, cache_buster, decode_result,
};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetFriendUin2 {
    /// The uin or gid to resolve.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub tuin: u64,
    /// 1 person, 4 group.
    #[serde(rename = "type", deserialize_with = "crate::webqq::id::lax_u64")]
    pub kind: u64,
    /// The vfwebqq token.
    pub vfwebqq: String,
}

/// Resolve a person (`type=1`).
pub const KIND_PERSON: u64 = 1;
/// Resolve a group (`type=4`).
pub const KIND_GROUP: u64 = 4;

/// The answer's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendUin {
    /// Always `""` in captures.
    #[serde(default)]
    pub uiuin: String,
    /// The permanent QQ or group number.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub account: u64,
    /// The uin that was asked about.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub uin: u64,
}

impl Endpoint for GetFriendUin2 {
    const NAME: &'static str = "get_friend_uin2";
    const PATH: &'static str = "/api/get_friend_uin2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = FriendUin;

    fn params(&self) -> Params {
        vec![
            ("tuin", self.tuin.to_string()),
            ("type", self.kind.to_string()),
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
    fn test_reference_answer() {
        let body = br#"{"retcode":0,"result":{"uiuin":"","account":346167134,"uin":4292540855}}"#;
        let raw = RawAnswer { status: 200, location: None, content_type: None, body };
        assert_eq!(GetFriendUin2::decode(&raw).unwrap().account, 346_167_134);
    }
}
