//! `GET https://ui.ptlogin2.qq.com/cgi-bin/login?…`: the login UI page.
//!
//! Protocol §1.1. It sets the `pt_login_sig` cookie (2015+); before that the page embedded
//! `g_login_sig=encodeURIComponent("…")`. Many clients sent `login_sig=` empty and still logged in.

use crate::webqq::Error;
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, body_text};

/// The login UI page request (fixed parameters of the w.qq.com page).
#[derive(Clone, Debug, Default)]
pub struct LoginPage;

impl Endpoint for LoginPage {
    const NAME: &'static str = "login_page";
    const PATH: &'static str = "/cgi-bin/login";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::PtloginUi;
    /// The `g_login_sig` embedded in the page, if any (older pages).
    type Answer = Option<String>;

    fn params(&self) -> Params {
        vec![
            ("daid", "164".into()),
            ("target", "self".into()),
            ("style", "16".into()),
            ("mibao_css", "m_webqq".into()),
            ("appid", crate::webqq::hosts::APPID.into()),
            ("enable_qlogin", "0".into()),
            ("no_verifyimg", "1".into()),
            ("s_url", "http://w.qq.com/proxy.html".into()),
            ("f_url", "loginerroralert".into()),
            ("strong_login", "1".into()),
            ("login_state", "10".into()),
            ("t", "20131024001".into()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        if raw.status != 200 {
            return Err(Error::HttpStatus { endpoint: Self::NAME, status: raw.status });
        }
        let page = body_text(Self::NAME, raw)?;
        Ok(embedded_login_sig(page))
    }
}

/// Extracts `g_login_sig=encodeURIComponent("…")` from an old login page.
pub fn embedded_login_sig(page: &str) -> Option<String> {
    let start = page.find("g_login_sig=encodeURIComponent(\"")? + 32;
    let rest = page.get(start..)?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_embedded_login_sig() {
        let page = r#"var g_login_sig=encodeURIComponent("abc*DEF");var g_style=16;"#;
        assert_eq!(super::embedded_login_sig(page).as_deref(), Some("abc*DEF"));
        assert_eq!(super::embedded_login_sig("<html></html>"), None);
    }
}
