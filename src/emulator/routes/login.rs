//! `GET https://ssl.ptlogin2.qq.com/login`: the password login.
//!
//! Protocol §1.2.5 and §6.3. Verifies `p` with scheme A (MD5 chain) or scheme B (RSA + TEA,
//! checked without the RSA key, §1.2.4 emulator note) against the salt and code `/check` issued.
//! Wrong password 3, wrong captcha 4, stale check `('4','2',…,'页面过期')`, locked 19, banned 71.

use tokio::time::Instant;

use crate::emulator::http::{Reply, Req};
use crate::emulator::ptui;
use crate::emulator::routes::common::{check_ptlogin, check_sig_url, login_cookies};
use crate::emulator::session::lock;
use crate::emulator::state::{Shared, read};
use crate::webqq::QqNumber;
use crate::webqq::crypto::{self, CryptoError, PasswordInput};

/// Answers a login.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let u = req.param("u").unwrap_or_default().to_owned();
    if let Some(refused) = check_ptlogin(shared, req, &u) {
        return refused;
    }
    let Ok(qq) = u.trim().parse::<QqNumber>() else {
        return Reply::js(ptui::failure(3, &u));
    };
    let (account, nick) = {
        let world = read(&shared.world);
        (world.account(qq).cloned(), world.nick(qq))
    };
    let Some(account) = account else {
        return Reply::js(ptui::failure(3, &u));
    };
    let now = Instant::now();
    let Some(record) = lock(&shared.login).check(qq, now).cloned() else {
        return Reply::js(ptui::cb(4, 2, "", "页面过期，请重试。*", &u));
    };
    let given_code = req.param("verifycode").unwrap_or_default();
    if !given_code.eq_ignore_ascii_case(&record.code) {
        return Reply::js(ptui::failure(4, &u));
    }
    if record.captcha {
        // The getimage cookie (or the 2015 field) must name the captcha shown (protocol §1.2.2).
        let session = req
            .param("pt_verifysession_v1")
            .filter(|s| !s.is_empty())
            .or(req.cookie("verifysession"));
        if record.verifysession.is_empty() || session != Some(record.verifysession.as_str()) {
            return Reply::js(ptui::failure(4, &u));
        }
    }
    let Ok(md5) = PasswordInput::detect(account.password.expose()).md5() else {
        return Reply::js(ptui::failure(3, &u));
    };
    let p = req.param("p").unwrap_or_default();
    match crypto::detect_and_verify(p, md5, &record.salt, &record.code) {
        Ok(_) => {}
        Err(CryptoError::CodeMismatch) => return Reply::js(ptui::failure(4, &u)),
        Err(_) => {
            lock(&shared.login).drop_check(qq);
            return Reply::js(ptui::failure(3, &u));
        }
    }
    if account.banned {
        return Reply::js(ptui::failure(71, &u));
    }
    if account.locked {
        return Reply::js(ptui::failure(19, &u));
    }
    let auth = {
        let mut login = lock(&shared.login);
        login.drop_check(qq);
        login.new_auth(qq, now)
    };
    tracing::info!(account = %qq, "password login");
    Reply::js(ptui::success(&check_sig_url(&auth, "login", 1), &nick))
        .set_cookies(login_cookies(&auth))
}
