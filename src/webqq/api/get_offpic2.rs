//! `GET http://d(1).web2.qq.com/channel/get_offpic2`: fetch a buddy's offline picture.
//!
//! Protocol §2.18 "Receiving". Success is a 302 to an image server (addressed by IP in the real
//! service); failure is a 200 with `{"retcode":103}`. The redirect is returned, not followed: the
//! caller checks the target against its media policy before fetching it.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_envelope,
};
use crate::webqq::{Error, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetOffpic2 {
    /// The `file_path` of the `offpic` content element.
    pub file_path: String,
    /// The sender's uin.
    pub f_uin: Uin,
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

impl Endpoint for GetOffpic2 {
    const NAME: &'static str = "get_offpic2";
    const PATH: &'static str = "/channel/get_offpic2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    /// The image URL to fetch.
    type Answer = String;

    fn params(&self) -> Params {
        let mut params =
            vec![("file_path", self.file_path.clone()), ("f_uin", self.f_uin.to_string())];
        if let Some(clientid) = self.session.clientid {
            params.push(("clientid", clientid.to_string()));
        }
        if let Some(psessionid) = &self.session.psessionid {
            params.push(("psessionid", psessionid.clone()));
        }
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        if matches!(raw.status, 301 | 302 | 303 | 307) {
            return raw
                .location
                .map(str::to_owned)
                .ok_or_else(|| Error::decode(Self::NAME, "redirect without Location", raw.body));
        }
        // A 200 is the JSON failure form; decoding it yields the retcode error.
        decode_envelope::<serde_json::Value>(Self::NAME, raw)?;
        Err(Error::decode(Self::NAME, "neither a redirect nor an error", raw.body))
    }
}
