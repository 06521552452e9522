//! `GET https://ssl.captcha.qq.com/getimage` (older `captcha.qq.com`): the captcha picture.
//!
//! Protocol §1.2.2. Serves a JPEG showing the code `/check` chose and sets `verifysession`
//! (domain `qq.com`). A number without a pending check gets a fresh, meaningless picture.

use crate::emulator::http::{Reply, Req, SetCookie};
use crate::emulator::images::{captcha_jpeg, random_captcha_code};
use crate::emulator::session::{lock, random_hex};
use crate::emulator::state::Shared;
use crate::webqq::QqNumber;

/// Answers the picture.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let verifysession = random_hex(64);
    let qq = req.param("uin").and_then(|u| u.trim().parse::<QqNumber>().ok());
    let code = qq
        .and_then(|qq| {
            lock(&shared.login).captcha_shown(qq, req.param("cap_cd"), verifysession.clone())
        })
        .unwrap_or_else(random_captcha_code);
    Reply::image("image/jpeg", captcha_jpeg(&code)).set_cookies([SetCookie::new(
        "verifysession",
        verifysession,
        "qq.com",
    )])
}
