//! `GET http://d(1).web2.qq.com/channel/input_notify2`: tell a friend "I am typing".
//!
//! Protocol §2.17. Answers `{"retcode":0,"result":"ok"}` (or just retcode 0).

use serde::{Deserialize, Serialize};

use crate::webqq::Error;
use crate::webqq::Uin;
use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_envelope,
};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputNotify2 {
    /// The friend's uin.
    pub to_uin: Uin,
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

impl Endpoint for InputNotify2 {
    const NAME: &'static str = "input_notify2";
    const PATH: &'static str = "/channel/input_notify2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = ();

    fn params(&self) -> Params {
        let mut params = vec![("to_uin", self.to_uin.to_string())];
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_envelope::<serde_json::Value>(Self::NAME, raw).map(|_| ())
    }
}
