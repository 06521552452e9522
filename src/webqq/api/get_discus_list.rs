//! `GET http://s.web2.qq.com/api/get_discus_list`: the discussions of the account.
//!
//! Protocol §2.9.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{
    Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery, decode_result,
};
use crate::webqq::{Did, Error};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetDiscusList {
    /// clientid, psessionid, vfwebqq.
    #[serde(flatten)]
    pub session: SessionQuery,
}

/// One discussion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscussionEntry {
    /// Its name (may be empty in SmartQQ captures).
    #[serde(default)]
    pub name: String,
    /// Its id.
    pub did: Did,
}

/// The answer's `result`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscussionList {
    /// The discussions.
    #[serde(default)]
    pub dnamelist: Vec<DiscussionEntry>,
}

impl Endpoint for GetDiscusList {
    const NAME: &'static str = "get_discus_list";
    const PATH: &'static str = "/api/get_discus_list";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Info;
    type Answer = DiscussionList;

    fn params(&self) -> Params {
        let mut params = Vec::new();
        self.session.push_to(&mut params);
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}
