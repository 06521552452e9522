//! `GET http://s.web2.qq.com/api/get_self_info2`: the account's own profile.
//!
//! Protocol §2.13. `account` is the QQ number; the `vfwebqq` in this answer was reported useless.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, cache_buster, decode_result,
};
use crate::webqq::{Error, QqNumber, Uin};

/// The request (only a cache-buster).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GetSelfInfo2;

/// A profile, as get_self_info2 and get_friend_info2 answer (fields beyond these are kept raw).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The uin of the profile's owner in this session.
    pub uin: Uin,
    /// The QQ number (self info, and older friend info answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<QqNumber>,
    /// Nickname (HTML-entity escaped).
    #[serde(default)]
    pub nick: String,
    /// Avatar id.
    #[serde(default)]
    pub face: u64,
    /// Signature (self info only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lnick: Option<String>,
    /// `male` / `female` / `unknown`.
    #[serde(default)]
    pub gender: String,
    /// Every other member, as sent (birthday, city, vip_info, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Endpoint for GetSelfInfo2 {
    const NAME: &'static str = "get_self_info2";
    const PATH: &'static str = "/api/get_self_info2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = Profile;

    fn params(&self) -> Params {
        vec![("t", cache_buster())]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reference_self_info_decodes() {
        let body = r#"{"retcode":0,"result":{"birthday":{"month":2,"year":1994,"day":7},"face":567,"phone":"","occupation":"",
 "allow":3,"college":"","uin":2993078122,"blood":0,"constel":1,"lnick":"signature text",
 "vfwebqq":"588dac74764b","homepage":"","vip_info":0,"city":"温哥华","country":"加拿大","personal":"",
 "shengxiao":10,"nick":"小黄鸡","email":"","province":"","account":2993078122,"gender":"male","mobile":""}}"#;
        let raw =
            RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() };
        let profile = GetSelfInfo2::decode(&raw).unwrap();
        assert_eq!(profile.account.map(QqNumber::get), Some(2_993_078_122));
        assert_eq!(profile.nick, "小黄鸡");
        assert_eq!(profile.extra["city"], "温哥华");
        let again = serde_json::to_value(&profile).unwrap();
        let original: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(again, original["result"]);
    }
}
