//! `POST http://d(1).web2.qq.com/channel/send_buddy_msg2`: send a buddy (friend) message.
//!
//! Protocol §2.4. Target `to` = the friend's uin in this session.

use serde::{Deserialize, Serialize};

use crate::webqq::api::send::{SendAnswer, SendCommon, decode_send};
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, r_json};
use crate::webqq::{Error, Uin};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendBuddyMsg2 {
    /// The friend's uin.
    pub to: Uin,
    /// Content, face, clientid, msg_id, psessionid.
    #[serde(flatten)]
    pub common: SendCommon,
}

impl Endpoint for SendBuddyMsg2 {
    const NAME: &'static str = "send_buddy_msg2";
    const PATH: &'static str = "/channel/send_buddy_msg2";
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
