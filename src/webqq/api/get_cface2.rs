//! `GET http://d(1).web2.qq.com/channel/get_cface2`: fetch a buddy's custom face picture.
//!
//! Protocol §2.18 "Receiving" (`["cface","<name>.jpg",""]` elements).

use serde::{Deserialize, Serialize};

use crate::webqq::api::getimage::image_answer;
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, SessionQuery};
use crate::webqq::{Error, MsgId, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetCface2 {
    /// The message's msg_id.
    pub lcid: MsgId,
    /// The picture's name.
    pub guid: String,
    /// The sender's uin.
    pub to: Uin,
    /// clientid, psessionid.
    #[serde(flatten)]
    pub session: SessionQuery,
}

impl Endpoint for GetCface2 {
    const NAME: &'static str = "get_cface2";
    const PATH: &'static str = "/channel/get_cface2";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Channel;
    /// The image bytes.
    type Answer = Vec<u8>;

    fn params(&self) -> Params {
        let mut params = vec![
            ("lcid", self.lcid.to_string()),
            ("guid", self.guid.clone()),
            ("to", self.to.to_string()),
            ("count", "5".into()),
            ("time", "1".into()),
        ];
        if let Some(clientid) = self.session.clientid {
            params.push(("clientid", clientid.to_string()));
        }
        if let Some(psessionid) = &self.session.psessionid {
            params.push(("psessionid", psessionid.clone()));
        }
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        image_answer(Self::NAME, raw)
    }
}
