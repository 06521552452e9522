//! `GET http://d(1).web2.qq.com/channel/get_gface_sig2`: key and signature for sending pictures.
//!
//! Protocol §2.18 step 3. Cached per session; sent as `key`/`sig` with a `cface` content element.

use serde::{Deserialize, Serialize};

use crate::webqq::Error;
use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_result,
};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetGfaceSig2 {
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

/// The answer's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GfaceSig {
    /// 0 in captures.
    #[serde(default)]
    pub reply: i64,
    /// Sent as `key`.
    pub gface_key: String,
    /// Sent as `sig`.
    pub gface_sig: String,
}

impl Endpoint for GetGfaceSig2 {
    const NAME: &'static str = "get_gface_sig2";
    const PATH: &'static str = "/channel/get_gface_sig2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = GfaceSig;

    fn params(&self) -> Params {
        let mut params = Vec::new();
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}
