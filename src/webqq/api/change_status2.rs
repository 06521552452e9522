//! `GET http://d(1).web2.qq.com/channel/change_status2`: change the account's status (online, away, …).
//!
//! Protocol §2.16. Answers `{"retcode":0,"result":"ok"}` (or just retcode 0).

use serde::{Deserialize, Serialize};

use crate::webqq::Error;
use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_envelope,
};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangeStatus2 {
    /// The new status string (protocol §0.5).
    #[serde(default)]
    pub newstatus: String,
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

impl Endpoint for ChangeStatus2 {
    const NAME: &'static str = "change_status2";
    const PATH: &'static str = "/channel/change_status2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = ();

    fn params(&self) -> Params {
        let mut params = vec![("newstatus", self.newstatus.clone())];
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_envelope::<serde_json::Value>(Self::NAME, raw).map(|_| ())
    }
}
