//! `GET https://ptlogin2.qq.com/logout`: end the ptlogin login (protocol §1.5, SmartQQ form).
//!
//! Forgets the login named by the `skey` cookie and expires the login cookies. The body is not
//! documented; clients ignore it.

use crate::emulator::http::{Reply, Req, SetCookie};
use crate::emulator::session::lock;
use crate::emulator::state::Shared;

/// Answers a logout.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(skey) = req.cookie("skey") {
        lock(&shared.login).remove_auth(skey);
    }
    Reply::js(String::new()).set_cookies([
        SetCookie::delete("skey", "qq.com"),
        SetCookie::delete("ptwebqq", "qq.com"),
        SetCookie::delete("supertoken", "ptlogin2.qq.com"),
    ])
}
