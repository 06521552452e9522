//! `GET https://ssl.ptlogin2.qq.com/check`: does this QQ number need a captcha?
//!
//! Protocol §1.2.1. Answers `ptui_checkVC` in the 2013 (three fields) or 2015 (five fields) form;
//! the salt is the 8-byte big-endian QQ number; accounts with `captcha: true` get flag `'1'`.

use tokio::time::Instant;

use crate::emulator::auth::CheckRecord;
use crate::emulator::http::{Reply, Req};
use crate::emulator::images::random_captcha_code;
use crate::emulator::ptui;
use crate::emulator::routes::common::check_ptlogin;
use crate::emulator::session::{lock, random_hex};
use crate::emulator::state::{Shared, read};
use crate::webqq::QqNumber;

/// Answers a check.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let uin_text = req.param("uin").unwrap_or_default().to_owned();
    if let Some(refused) = check_ptlogin(shared, req, &uin_text) {
        return refused;
    }
    let Ok(qq) = uin_text.trim().parse::<QqNumber>() else {
        return Reply::js(ptui::failure(7, &uin_text));
    };
    let captcha = read(&shared.world).account(qq).is_some_and(|a| a.captcha);
    let form_2015 = read(&shared.options).check_2015_form;
    let salt = ptui::qq_salt(qq.get());
    let (code, cap_cd, verifysession) = if captcha {
        (random_captcha_code(), random_hex(32), String::new())
    } else {
        // A ready-made code such as `!IJG` (protocol §1.2.1 field 2).
        let code: String = random_captcha_code().chars().take(3).collect();
        (format!("!{code}"), String::new(), if form_2015 { random_hex(64) } else { String::new() })
    };
    // With a captcha, field 2 is the opaque cap_cd for getimage, not the code.
    let shown = if captcha { cap_cd.clone() } else { code.clone() };
    let record = CheckRecord {
        salt,
        code,
        captcha,
        cap_cd,
        verifysession: verifysession.clone(),
        created: Instant::now(),
    };
    lock(&shared.login).put_check(qq, record);
    let vs = form_2015.then_some(verifysession.as_str());
    Reply::js(ptui::check_vc(captcha, &shown, &salt, vs))
}
