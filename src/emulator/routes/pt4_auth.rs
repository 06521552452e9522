//! `GET https://ssl.ptlogin2.qq.com/pt4_auth`: quick login from the `supertoken` cookie.
//!
//! Protocol §1.4: with `auth_token` = time33(supertoken) the answer is
//! `ptui_auth_CB('0','<check_sig URL>')` and a fresh login; otherwise `ptui_auth_CB('1','')`
//! (the failure form is not documented; design choice).

use tokio::time::Instant;

use crate::emulator::http::{Reply, Req};
use crate::emulator::ptui;
use crate::emulator::routes::common::{check_sig_url, login_cookies};
use crate::emulator::session::lock;
use crate::emulator::state::Shared;
use crate::webqq::hash::time33;

/// Answers a quick-login attempt.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let token = req.cookie("supertoken").unwrap_or_default();
    let given = req.param("auth_token").and_then(|t| t.trim().parse::<u32>().ok());
    let mut login = lock(&shared.login);
    let account = login.by_supertoken(token).map(|a| a.account);
    match account {
        Some(account) if given == Some(time33(token)) => {
            let auth = login.new_auth(account, Instant::now());
            drop(login);
            Reply::js(ptui::auth_cb(0, &check_sig_url(&auth, "login", 1)))
                .set_cookies(login_cookies(&auth))
        }
        _ => Reply::js(ptui::auth_cb(1, "")),
    }
}
