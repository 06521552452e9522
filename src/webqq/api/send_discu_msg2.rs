//! `POST http://d(1).web2.qq.com/channel/send_discu_msg2`: send a discussion message.
//!
//! Protocol §2.4. Target `did`; `key` and `sig` only with an uploaded custom face.

use serde::{Deserialize, Serialize};

use crate::webqq::api::send::{SendAnswer, SendCommon, decode_send};
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, r_json};
use crate::webqq::{Did, Error};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendDiscuMsg2 {
    /// The discussion id.
    pub did: Did,
    /// With a picture: `gface_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// With a picture: `gface_sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// Content, face, clientid, msg_id, psessionid.
    #[serde(flatten)]
    pub common: SendCommon,
}

impl Endpoint for SendDiscuMsg2 {
    const NAME: &'static str = "send_discu_msg2";
    const PATH: &'static str = "/channel/send_discu_msg2";
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_xhan_discussion_sample_parses() {
        let r = r#"{"did":"2006892653","content":"[\"gogo\\n\",[\"font\",{\"name\":\"宋体\",\"size\":\"10\",\"style\":[0,0,0],\"color\":\"000000\"}]]","msg_id":78330002,"clientid":"30833194","psessionid":"8368046764001d6352f9"}"#;
        let parsed: SendDiscuMsg2 = serde_json::from_str(r).unwrap();
        assert_eq!(parsed.did.get(), 2_006_892_653);
        assert_eq!(parsed.common.msg_id, 78_330_002);
        assert!(parsed.common.content.starts_with("[\"gogo\\n\""));
    }
}
