//! `GET http://d(1).web2.qq.com/channel/logout2`: end the channel session (2013 logout).
//!
//! Protocol §1.5. Answers `{"retcode":0,"result":"ok"}` (or just retcode 0).

use serde::{Deserialize, Serialize};

use crate::webqq::Error;
use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_envelope,
};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Logout2 {
    /// Always empty.
    #[serde(default)]
    pub ids: String,
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

impl Endpoint for Logout2 {
    const NAME: &'static str = "logout2";
    const PATH: &'static str = "/channel/logout2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = ();

    fn params(&self) -> Params {
        let mut params = vec![("ids", self.ids.clone())];
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_envelope::<serde_json::Value>(Self::NAME, raw).map(|_| ())
    }
}
