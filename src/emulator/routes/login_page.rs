//! `GET https://ui.ptlogin2.qq.com/cgi-bin/login` (and `xui…/cgi-bin/xlogin`): the login UI page.
//!
//! Protocol §1.1: sets the `pt_login_sig` cookie (2015+) and also embeds `g_login_sig` in the
//! page like the pre-2015 page did, so clients of either era find it.

use crate::emulator::http::{Reply, SetCookie};
use crate::emulator::session::random_hex;

/// Answers the page.
pub(crate) fn handle() -> Reply {
    let sig = random_hex(32);
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>QQ帐号登录</title><script type=\"text/javascript\">var g_pt_version=\"10233\",g_appid=encodeURIComponent(\"501004106\"),g_daid=encodeURIComponent(\"164\"),g_style=encodeURIComponent(\"16\"),g_mibao_css=encodeURIComponent(\"m_webqq\"),g_login_sig=encodeURIComponent(\"{sig}\");</script></head><body><div id=\"login\"></div></body></html>"
    );
    Reply::html(page).set_cookies([SetCookie::new("pt_login_sig", sig, "ptlogin2.qq.com")])
}
