//! `POST http://d(1).web2.qq.com/channel/get_recent_list2`: recent conversations.
//!
//! Protocol §2.12. `type` 0 = buddy uin, 1 = group (gid per Mojo), 2 = discussion (did). No
//! history: WebQQ has no backfill endpoint.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, decode_envelope, r_json};
use crate::webqq::{ClientId, Error};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetRecentList2 {
    /// The vfwebqq token.
    pub vfwebqq: String,
    /// The client id.
    pub clientid: ClientId,
    /// The session token (ScienJus sent `""`).
    #[serde(default)]
    pub psessionid: String,
}

/// One recent conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentEntry {
    /// A uin, gid or did depending on `type`.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub uin: u64,
    /// 0 buddy, 1 group, 2 discussion.
    #[serde(rename = "type")]
    pub kind: i64,
}

impl Endpoint for GetRecentList2 {
    const NAME: &'static str = "get_recent_list2";
    const PATH: &'static str = "/channel/get_recent_list2";
    const METHOD: Method = Method::Post;
    const HOST: HostKind = HostKind::Channel;
    type Answer = Vec<RecentEntry>;

    fn params(&self) -> Params {
        vec![("r", r_json(self))]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        Ok(decode_envelope(Self::NAME, raw)?.unwrap_or_default())
    }
}
