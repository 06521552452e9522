//! `GET http://s.web2.qq.com/api/get_single_long_nick2`: a person's signature.
//!
//! Protocol §2.14.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, cache_buster, decode_result,
};
use crate::webqq::{Error, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetSingleLongNick2 {
    /// The person's uin.
    pub tuin: Uin,
    /// The vfwebqq token.
    pub vfwebqq: String,
}

/// One signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongNick {
    /// The person's uin.
    pub uin: Uin,
    /// The signature (HTML-entity escaped).
    pub lnick: String,
}

impl Endpoint for GetSingleLongNick2 {
    const NAME: &'static str = "get_single_long_nick2";
    const PATH: &'static str = "/api/get_single_long_nick2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = Vec<LongNick>;

    fn params(&self) -> Params {
        vec![
            ("tuin", self.tuin.to_string()),
            ("vfwebqq", self.vfwebqq.clone()),
            ("t", cache_buster()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}
