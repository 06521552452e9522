//! `GET http://web2.qq.com/cgi-bin/get_group_pic`: fetch a group or discussion picture.
//!
//! Protocol §2.18 "Receiving". The `server` of a `cface` element is passed as `rip`/`rport`
//! parameters to this host, never connected to (RELIABILITY.md §2, media fetch).

use serde::{Deserialize, Serialize};

use crate::webqq::api::getimage::image_answer;
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, cache_buster};
use crate::webqq::{Error, Uin};

/// The request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetGroupPic {
    /// 0 group, 1 discussion.
    #[serde(rename = "type", deserialize_with = "crate::webqq::id::lax_u64")]
    pub kind: u64,
    /// The group code or the did.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub gid: u64,
    /// The sender's uin (`send_uin`).
    pub uin: Uin,
    /// The image server's IP, from the element's `server`.
    pub rip: String,
    /// The image server's port.
    pub rport: String,
    /// The element's `file_id`.
    #[serde(deserialize_with = "crate::webqq::id::lax_u64")]
    pub fid: u64,
    /// The element's `name`.
    pub pic: String,
    /// The vfwebqq token.
    pub vfwebqq: String,
}

impl Endpoint for GetGroupPic {
    const NAME: &'static str = "get_group_pic";
    const PATH: &'static str = "/cgi-bin/get_group_pic";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Web2;
    /// The image bytes.
    type Answer = Vec<u8>;

    fn params(&self) -> Params {
        vec![
            ("type", self.kind.to_string()),
            ("gid", self.gid.to_string()),
            ("uin", self.uin.to_string()),
            ("rip", self.rip.clone()),
            ("rport", self.rport.clone()),
            ("fid", self.fid.to_string()),
            ("pic", self.pic.clone()),
            ("vfwebqq", self.vfwebqq.clone()),
            ("t", cache_buster()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        image_answer(Self::NAME, raw)
    }
}
