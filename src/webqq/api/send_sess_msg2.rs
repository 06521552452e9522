//! `POST http://d(1).web2.qq.com/channel/send_sess_msg2`: a temporary-chat message.
//!
//! Protocol §2.4, §2.5. Target `to` = the member's uin; `group_sig` from get_c2cmsg_sig2;
//! `service_type` 0 = via a group, 1 = via a discussion. Cannot carry pictures (lwqq).

use serde::{Deserialize, Serialize};

use crate::webqq::api::send::{SendAnswer, SendCommon, decode_send};
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, r_json};
use crate::webqq::{Error, Uin};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendSessMsg2 {
    /// The member's uin.
    pub to: Uin,
    /// The signature from get_c2cmsg_sig2.
    pub group_sig: String,
    /// 0 via a group, 1 via a discussion.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub service_type: u64,
    /// Content, face, clientid, msg_id, psessionid.
    #[serde(flatten)]
    pub common: SendCommon,
}

impl Endpoint for SendSessMsg2 {
    const NAME: &'static str = "send_sess_msg2";
    const PATH: &'static str = "/channel/send_sess_msg2";
    const METHOD: Method = Method::Post;
    const HOST: HostKind = HostKind::Channel;
    type Answer = SendAnswer;

    fn params(&self) -> Params {
        vec![("r", r_json(self))]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_send(Self::NAME, raw)
    }
}
