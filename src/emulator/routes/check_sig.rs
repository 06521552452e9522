//! `GET http://ptlogin4.web2.qq.com/check_sig`: turn a ptlogin login into web cookies.
//!
//! Protocol §1.2.6, §1.3.4, §1.6: sets `ptwebqq` (qq.com) and `p_skey`, `p_uin`, `pt4_token`
//! (web2.qq.com) and answers 302 to `s_url` (the proxy page). An unknown `ptsigx` gets an HTML
//! error page and no cookies.

use crate::emulator::http::{Reply, Req, SetCookie};
use crate::emulator::session::{lock, random_hex};
use crate::emulator::state::Shared;

/// Where to go when `s_url` is missing or not a qq.com page.
const DEFAULT_S_URL: &str = "http://w.qq.com/proxy.html?login2qq=1&webqq_type=10";

/// Answers check_sig.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let ptsigx = req.param("ptsigx").unwrap_or_default();
    let uin = req.param("uin").and_then(|u| u.trim().parse::<u64>().ok());
    let found = {
        let mut login = lock(&shared.login);
        let found = login
            .by_ptsigx(ptsigx)
            .filter(|a| uin.is_none_or(|u| u == a.account.get()))
            .map(|a| (a.skey.clone(), a.account, a.ptwebqq.clone()));
        if let Some((skey, _, None)) = &found {
            login.set_ptwebqq(skey, random_hex(64));
        }
        found.and_then(|(skey, account, _)| {
            login.by_ptsigx(ptsigx).and_then(|a| a.ptwebqq.clone()).map(|p| (skey, account, p))
        })
    };
    let Some((_, account, ptwebqq)) = found else {
        return Reply::html("<html><body>登录失败，请重新登录。</body></html>".to_owned());
    };
    let s_url = req
        .param("s_url")
        .filter(|u| {
            url::Url::parse(u)
                .ok()
                .and_then(|p| p.host_str().map(|h| h == "qq.com" || h.ends_with(".qq.com")))
                .unwrap_or(false)
        })
        .unwrap_or(DEFAULT_S_URL)
        .to_owned();
    let o_uin = format!("o{:010}", account.get());
    Reply::redirect(s_url).set_cookies([
        SetCookie::new("ptwebqq", ptwebqq, "qq.com"),
        SetCookie::new("p_skey", random_hex(44), "web2.qq.com"),
        SetCookie::new("p_uin", o_uin, "web2.qq.com"),
        SetCookie::new("pt4_token", random_hex(40), "web2.qq.com"),
    ])
}
