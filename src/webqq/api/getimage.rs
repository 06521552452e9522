//! `GET https://ssl.captcha.qq.com/getimage`: the captcha image.
//!
//! Protocol §1.2.2. Returns a JPEG and sets the `verifysession` cookie (domain qq.com), which is
//! sent back on `/login` as `pt_verifysession_v1`.

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer};
use crate::webqq::{Error, QqNumber};

/// The largest captcha image accepted (real ones were a few KiB).
pub const MAX_CAPTCHA_BYTES: usize = 512 * 1024;

/// The captcha image request.
#[derive(Clone, Debug)]
pub struct GetImage {
    /// The account being logged in.
    pub uin: QqNumber,
    /// The `cap_cd` from check's field 2.
    pub cap_cd: String,
    /// A random float.
    pub r: String,
}

impl Endpoint for GetImage {
    const NAME: &'static str = "getimage";
    const PATH: &'static str = "/getimage";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Captcha;
    /// The image bytes (normally JPEG).
    type Answer = Vec<u8>;

    fn params(&self) -> Params {
        vec![
            ("aid", crate::webqq::hosts::APPID.into()),
            ("r", self.r.clone()),
            ("uin", self.uin.to_string()),
            ("cap_cd", self.cap_cd.clone()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        image_answer(Self::NAME, raw)
    }
}

/// Accepts an answer that must be an image: status 200 and a body that is not JSON or HTML.
pub fn image_answer(endpoint: &'static str, raw: &RawAnswer<'_>) -> Result<Vec<u8>, Error> {
    if raw.status != 200 {
        return Err(Error::HttpStatus { endpoint, status: raw.status });
    }
    let looks_like_image = raw.body.starts_with(&[0xff, 0xd8])
        || raw.body.starts_with(b"\x89PNG")
        || raw.body.starts_with(b"GIF8")
        || raw.content_type.is_some_and(|t| t.starts_with("image/"));
    if !looks_like_image {
        return Err(Error::decode(endpoint, "not an image", raw.body));
    }
    Ok(raw.body.to_vec())
}
