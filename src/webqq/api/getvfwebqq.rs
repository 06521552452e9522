//! `GET http://s.web2.qq.com/api/getvfwebqq`: the working vfwebqq of the SmartQQ era.
//!
//! Protocol §1.3.5. In SmartQQ this value, not login2's, is the one the info calls accept.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, cache_buster, decode_result,
};
use crate::webqq::{ClientId, Error};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetVfwebqq {
    /// The ptwebqq cookie (a secret; only ever sent to the server).
    pub ptwebqq: String,
    /// The client id.
    pub clientid: ClientId,
    /// Empty before login2.
    #[serde(default)]
    pub psessionid: String,
}

/// The answer's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfwebqqResult {
    /// The vfwebqq token.
    pub vfwebqq: String,
}

impl Endpoint for GetVfwebqq {
    const NAME: &'static str = "getvfwebqq";
    const PATH: &'static str = "/api/getvfwebqq";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = VfwebqqResult;

    fn params(&self) -> Params {
        vec![
            ("ptwebqq", self.ptwebqq.clone()),
            ("clientid", self.clientid.to_string()),
            ("psessionid", self.psessionid.clone()),
            ("t", cache_buster()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}
