//! `GET https://ssl.ptlogin2.qq.com/ptqrshow`: the QR code to scan (SmartQQ).
//!
//! Protocol §1.3.1. Returns a PNG and sets the cookie `qrsig` (domain `ptlogin2.qq.com`); its
//! [`crate::webqq::hash::hash33`] is the `ptqrtoken` of `ptqrlogin`. Lifetime about 2 minutes.

use crate::webqq::Error;
use crate::webqq::api::getimage::image_answer;
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer};

/// The QR image request.
#[derive(Clone, Debug)]
pub struct PtqrShow {
    /// A real random float (a constant `t` was reported to give unusable codes).
    pub t: String,
}

impl Endpoint for PtqrShow {
    const NAME: &'static str = "ptqrshow";
    const PATH: &'static str = "/ptqrshow";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Ptlogin;
    /// The PNG bytes.
    type Answer = Vec<u8>;

    fn params(&self) -> Params {
        vec![
            ("appid", crate::webqq::hosts::APPID.into()),
            ("e", "0".into()),
            ("l", "M".into()),
            ("s", "5".into()),
            ("d", "72".into()),
            ("v", "4".into()),
            ("t", self.t.clone()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        image_answer(Self::NAME, raw)
    }
}
