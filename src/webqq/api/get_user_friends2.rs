//! `POST http://s.web2.qq.com/api/get_user_friends2`: friends, marknames and categories.
//!
//! Protocol §2.6 and §3. Needs `hash = H(own uin, ptwebqq)`; a wrong hash answers 50 and the
//! client tries the next variant. Missing cookies or User-Agent answer 100101 (seed).

use serde::{Deserialize, Serialize};

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, decode_result, r_json};
use crate::webqq::{Error, Uin};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetUserFriends2 {
    /// The vfwebqq token.
    pub vfwebqq: String,
    /// The friend-list hash (protocol §3).
    pub hash: String,
    /// The 2013–2014 page also sent `"h":"hello"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<String>,
}

/// One entry of `friends`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendEntry {
    /// Flags (meaning unknown).
    #[serde(default)]
    pub flag: i64,
    /// The friend's uin.
    pub uin: Uin,
    /// The category index (0 = the default "My friends").
    #[serde(default)]
    pub categories: u32,
}

/// One entry of `marknames` (the owner's private name for a friend).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarknameEntry {
    /// The friend's uin.
    pub uin: Uin,
    /// The markname (HTML-entity escaped, protocol §5.6).
    pub markname: String,
    /// Always 0 in captures.
    #[serde(default, rename = "type")]
    pub kind: i64,
}

/// One entry of `categories`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryEntry {
    /// The index referenced by [`FriendEntry::categories`].
    pub index: u32,
    /// Display order.
    #[serde(default)]
    pub sort: u32,
    /// The name.
    pub name: String,
}

/// One entry of `info` (nick and avatar id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendInfoEntry {
    /// Avatar id.
    #[serde(default)]
    pub face: u64,
    /// Flags (meaning unknown).
    #[serde(default)]
    pub flag: i64,
    /// The nickname (HTML-entity escaped).
    pub nick: String,
    /// The friend's uin.
    pub uin: Uin,
}

/// One entry of `vipinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipEntry {
    /// VIP level.
    #[serde(default)]
    pub vip_level: i64,
    /// The person's uin.
    pub u: Uin,
    /// 0 or 1.
    #[serde(default)]
    pub is_vip: i64,
}

/// The answer's `result`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendList {
    /// Friends with their category.
    #[serde(default)]
    pub friends: Vec<FriendEntry>,
    /// Marknames.
    #[serde(default)]
    pub marknames: Vec<MarknameEntry>,
    /// Categories (index 0 is normally not listed).
    #[serde(default)]
    pub categories: Vec<CategoryEntry>,
    /// VIP flags.
    #[serde(default)]
    pub vipinfo: Vec<VipEntry>,
    /// Nicks and avatars.
    #[serde(default)]
    pub info: Vec<FriendInfoEntry>,
}

impl Endpoint for GetUserFriends2 {
    const NAME: &'static str = "get_user_friends2";
    const PATH: &'static str = "/api/get_user_friends2";
    const METHOD: Method = Method::Post;
    const HOST: HostKind = HostKind::Info;
    type Answer = FriendList;

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
    fn test_seed_and_reference_friend_lists_decode() {
        for body in [
            include_str!("../../../tests/fixtures/webqq/get_user_friends2/seed.json"),
            include_str!("../../../tests/fixtures/webqq/get_user_friends2/reference.json"),
        ] {
            let raw = RawAnswer {
                status: 200,
                location: None,
                content_type: None,
                body: body.as_bytes(),
            };
            let list = GetUserFriends2::decode(&raw).unwrap();
            assert_eq!(list.friends[0].uin.get(), 2_440_652_742);
            assert_eq!(list.info[0].nick, "呼吸 (糗百)");
            assert_eq!(list.categories.len(), 2);
            let again = serde_json::to_value(&list).unwrap();
            let original: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(again, original["result"]);
        }
    }
}
