//! `GET http://d(1).web2.qq.com/channel/get_c2cmsg_sig2`: the signature for a temporary chat.
//!
//! Protocol §2.5. An empty `value` means no permission. Mojo cached it 300 s per
//! (id, to_uin, service_type).

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_result,
};
use crate::webqq::{Error, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetC2cmsgSig2 {
    /// The group's gid (service_type 0) or the did (service_type 1).
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub id: u64,
    /// The member's uin.
    pub to_uin: Uin,
    /// 0 group, 1 discussion.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub service_type: u64,
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

/// The answer's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2cSig {
    /// Always 0 in captures.
    #[serde(default, rename = "type")]
    pub kind: i64,
    /// The signature (`group_sig` of send_sess_msg2); empty = not allowed.
    pub value: String,
    /// Allowed content kinds.
    #[serde(default)]
    pub flags: serde_json::Value,
}

impl Endpoint for GetC2cmsgSig2 {
    const NAME: &'static str = "get_c2cmsg_sig2";
    const PATH: &'static str = "/channel/get_c2cmsg_sig2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = C2cSig;

    fn params(&self) -> Params {
        let mut params = vec![
            ("id", self.id.to_string()),
            ("to_uin", self.to_uin.to_string()),
            ("service_type", self.service_type.to_string()),
        ];
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}
