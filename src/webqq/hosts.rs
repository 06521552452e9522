//! The real host names, proxy-page Referers, Origins and User-Agent the web client used.
//!
//! Protocol §0.1 (hosts) and §0.4 (headers). The client always addresses these names; to reach the
//! emulator it only overrides name resolution. The emulator routes on the same names.

/// ptlogin: check, login, ptqrshow, ptqrlogin, pt4_auth (always HTTPS).
pub const PTLOGIN: &str = "ssl.ptlogin2.qq.com";
/// The ptlogin UI page that sets `pt_login_sig`.
pub const PTLOGIN_UI: &str = "ui.ptlogin2.qq.com";
/// The 2018 `xlogin` UI page.
pub const PTLOGIN_XUI: &str = "xui.ptlogin2.qq.com";
/// The logout host of the SmartQQ era (`ptlogin2.qq.com/logout`).
pub const PTLOGIN_LOGOUT: &str = "ptlogin2.qq.com";
/// Captcha images.
pub const CAPTCHA: &str = "ssl.captcha.qq.com";
/// The pre-2013 captcha host.
pub const CAPTCHA_OLD: &str = "captcha.qq.com";
/// The usual `check_sig` redirect target.
pub const CHECK_SIG: &str = "ptlogin4.web2.qq.com";
/// The 2013 channel host.
pub const CHANNEL_D: &str = "d.web2.qq.com";
/// The SmartQQ channel host (from about 2015-11).
pub const CHANNEL_D1: &str = "d1.web2.qq.com";
/// The info host.
pub const INFO: &str = "s.web2.qq.com";
/// Group custom-face uploads.
pub const UPLOAD: &str = "up.web2.qq.com";
/// Buddy offline-picture uploads.
pub const OFFLINE_UPLOAD: &str = "weboffline.ftn.qq.com";
/// The web page host of the 2013 era (group pictures).
pub const WEB2: &str = "web2.qq.com";
/// The SmartQQ web page host (offline-picture proxy).
pub const W: &str = "w.qq.com";
/// The avatar host.
pub const FACE: &str = "face1.qun.qq.com";

/// Every host name the client may address; the emulator serves all of them.
pub const ALL: [&str; 15] = [
    PTLOGIN,
    PTLOGIN_UI,
    PTLOGIN_XUI,
    PTLOGIN_LOGOUT,
    CAPTCHA,
    CAPTCHA_OLD,
    CHECK_SIG,
    CHANNEL_D,
    CHANNEL_D1,
    INFO,
    UPLOAD,
    OFFLINE_UPLOAD,
    WEB2,
    W,
    FACE,
];

/// The desktop-browser User-Agent sent on every request (protocol §0.4: 100101 without one).
pub const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                              (KHTML, like Gecko) Chrome/56.0.2924.87 Safari/537.36";

/// The SmartQQ login UI page; also the Referer of every ptlogin call.
pub const LOGIN_UI_URL: &str = "https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=16&mibao_css=m_webqq&appid=501004106&enable_qlogin=0&no_verifyimg=1&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html&f_url=loginerroralert&strong_login=1&login_state=10&t=20131024001";

/// The ptlogin application id of w.qq.com (protocol §0.1).
pub const APPID: &str = "501004106";

/// `u1` of check and login: where ptlogin sends the browser afterwards.
pub const U1_PROXY: &str = "http://w.qq.com/proxy.html?login2qq=1&webqq_type=10";

/// Referer for `d.web2.qq.com` (2013-09 … 2015).
pub const REFERER_D: &str = "http://d.web2.qq.com/proxy.html?v=20130916001&callback=1&id=2";
/// Referer for `d1.web2.qq.com` (SmartQQ).
pub const REFERER_D1: &str = "http://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2";
/// Referer for `s.web2.qq.com`.
pub const REFERER_S: &str = "http://s.web2.qq.com/proxy.html?v=20130916001&callback=1&id=1";
/// Referer for picture fetches.
pub const REFERER_PICTURE: &str = "http://w.qq.com/";
/// Referer for uploads (with Origin [`ORIGIN_UPLOAD`]).
pub const REFERER_UPLOAD: &str = "http://web2.qq.com/webqq.html";
/// Origin for uploads.
pub const ORIGIN_UPLOAD: &str = "http://web2.qq.com";

/// Which channel host a session talks to (protocol §0.1 eras).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `d.web2.qq.com`, the 2013 password era.
    D,
    /// `d1.web2.qq.com`, the SmartQQ era.
    D1,
}

impl Channel {
    /// The host name.
    pub fn host(self) -> &'static str {
        match self {
            Channel::D => CHANNEL_D,
            Channel::D1 => CHANNEL_D1,
        }
    }

    /// The proxy-page Referer the server expected for this host.
    pub fn referer(self) -> &'static str {
        match self {
            Channel::D => REFERER_D,
            Channel::D1 => REFERER_D1,
        }
    }

    /// The Origin sent on POSTs.
    pub fn origin(self) -> &'static str {
        match self {
            Channel::D => "http://d.web2.qq.com",
            Channel::D1 => "http://d1.web2.qq.com",
        }
    }
}

/// Whether a Referer is one the proxy page of `host` would have sent (what the emulator checks).
pub fn referer_matches(host: &str, referer: &str) -> bool {
    let Ok(url) = url::Url::parse(referer) else {
        return false;
    };
    let path = url.path();
    match host {
        CHANNEL_D | CHANNEL_D1 | INFO => {
            // The d and s proxy pages were interchangeable in practice (protocol §0.4: pandolia
            // and ScienJus used the d1 Referer for s.web2 calls), so any of the three hosts' proxy
            // pages is accepted, as is the w.qq.com page.
            let known = [CHANNEL_D, CHANNEL_D1, INFO, W];
            url.host_str().is_some_and(|h| known.contains(&h))
                && (path.ends_with("proxy.html") || path.ends_with("cfproxy.html") || path == "/")
        }
        _ => url.host_str().is_some(),
    }
}
