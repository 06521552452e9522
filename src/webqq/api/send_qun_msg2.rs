//! `POST http://d(1).web2.qq.com/channel/send_qun_msg2`: send a group message.
//!
//! Protocol §2.4 and §2.18. Target `group_uin` = the group's gid in this session; `group_code`,
//! `key` and `sig` only when the content carries an uploaded custom face.

use serde::{Deserialize, Serialize};

use crate::webqq::api::send::{SendAnswer, SendCommon, decode_send};
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, r_json};
use crate::webqq::{Error, Gid, GroupCode};

/// The `r` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendQunMsg2 {
    /// The group's gid.
    pub group_uin: Gid,
    /// With a picture: the group code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_code: Option<GroupCode>,
    /// With a picture: `gface_key` from get_gface_sig2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// With a picture: `gface_sig` from get_gface_sig2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// Content, face, clientid, msg_id, psessionid.
    #[serde(flatten)]
    pub common: SendCommon,
}

impl Endpoint for SendQunMsg2 {
    const NAME: &'static str = "send_qun_msg2";
    const PATH: &'static str = "/channel/send_qun_msg2";
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
    fn test_seed_group_picture_send_parses() {
        let form = include_str!("../../../tests/fixtures/webqq/send/seed_send_qun_msg2.form");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(form.trim()).unwrap();
        let r = &pairs.iter().find(|(k, _)| k == "r").unwrap().1;
        let parsed: SendQunMsg2 = serde_json::from_str(r).unwrap();
        assert_eq!(parsed.group_uin.get(), 3_395_694_957);
        assert_eq!(parsed.group_code.map(GroupCode::get), Some(3_249_019_672));
        assert_eq!(parsed.common.clientid.get(), 77_663_518);
        assert!(parsed.common.content.contains("8BD0E3BC10A7A9A71108B1B3DD84A657.jPg"));
        assert!(pairs.iter().any(|(k, v)| k == "clientid" && v == "77663518"));
    }
}
