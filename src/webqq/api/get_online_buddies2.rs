//! `GET http://d(1).web2.qq.com/channel/get_online_buddies2`: friends online now.
//!
//! Protocol §2.11, §1.3.6. Doubles as the post-login warm-up (without it the first poll2 answered
//! 103) and as the session probe after a suspicious poll answer.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_envelope,
};
use crate::webqq::{Error, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetOnlineBuddies2 {
    /// vfwebqq, clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

/// One online friend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineBuddy {
    /// The friend's uin.
    pub uin: Uin,
    /// Status string (protocol §0.5).
    pub status: String,
    /// Client type (protocol §0.5).
    #[serde(default)]
    pub client_type: i64,
}

impl Endpoint for GetOnlineBuddies2 {
    const NAME: &'static str = "get_online_buddies2";
    const PATH: &'static str = "/channel/get_online_buddies2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    type Answer = Vec<OnlineBuddy>;

    fn params(&self) -> Params {
        let mut params = Vec::new();
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        Ok(decode_envelope(Self::NAME, raw)?.unwrap_or_default())
    }
}
