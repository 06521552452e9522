//! `GET http://s.web2.qq.com/api/get_friend_info2`: a friend's profile.
//!
//! Protocol §2.15. The answer has the same shape as get_self_info2 (without `account` in the
//! SmartQQ era).

use serde::{Deserialize, Serialize};

use crate::webqq::api::get_self_info2::Profile;
use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_result,
};
use crate::webqq::{Error, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetFriendInfo2 {
    /// The friend's uin.
    pub tuin: Uin,
    /// vfwebqq, clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

impl Endpoint for GetFriendInfo2 {
    const NAME: &'static str = "get_friend_info2";
    const PATH: &'static str = "/api/get_friend_info2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = Profile;

    fn params(&self) -> Params {
        let mut params = vec![("tuin", self.tuin.to_string())];
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}
