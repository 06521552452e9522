//! `GET https://ssl.ptlogin2.qq.com/login`: password login (2013 – 2015).
//!
//! Protocol §1.2.5. The answer is `ptuiCB('<code>','<sub>','<url>','<n>','<message>', '<nick>');`:
//! code 0 carries the `check_sig` URL; other codes are listed in protocol §6.3. The same answer
//! shape is used by `ptqrlogin`, so [`PtuiCb`] lives here.

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, body_text};
use crate::webqq::jscall::{format_call, parse_call};
use crate::webqq::{Error, QqNumber};

/// The password login request.
#[derive(Clone, Debug)]
pub struct Login {
    /// The account.
    pub uin: QqNumber,
    /// The encrypted password (`crate::webqq::crypto`), a secret.
    pub p: crate::webqq::Secret<String>,
    /// The verify code: check's `!XXXX` or what the person read from the captcha.
    pub verifycode: String,
    /// `pt_login_sig`, or empty.
    pub login_sig: String,
    /// check's `isRandSalt` (2015 form), else empty.
    pub rand_salt: String,
    /// check's `pt_verifysession`, or the `verifysession` cookie after a captcha.
    pub verifysession: String,
    /// UI telemetry `<x>-<y>-<ms>`; any plausible value was accepted.
    pub action: String,
}

impl Endpoint for Login {
    const NAME: &'static str = "login";
    const PATH: &'static str = "/login";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Ptlogin;
    type Answer = PtuiCb;

    fn params(&self) -> Params {
        vec![
            ("u", self.uin.to_string()),
            ("p", self.p.expose().clone()),
            ("verifycode", self.verifycode.clone()),
            ("webqq_type", "10".into()),
            ("remember_uin", "1".into()),
            ("login2qq", "1".into()),
            ("aid", crate::webqq::hosts::APPID.into()),
            ("u1", crate::webqq::hosts::U1_PROXY.into()),
            ("h", "1".into()),
            ("ptredirect", "0".into()),
            ("ptlang", "2052".into()),
            ("daid", "164".into()),
            ("from_ui", "1".into()),
            ("pttype", "1".into()),
            ("dumy", String::new()),
            ("fp", "loginerroralert".into()),
            ("action", self.action.clone()),
            ("mibao_css", "m_webqq".into()),
            ("t", "1".into()),
            ("g", "1".into()),
            ("js_type", "0".into()),
            ("js_ver", "10233".into()),
            ("login_sig", self.login_sig.clone()),
            ("pt_randsalt", self.rand_salt.clone()),
            ("pt_vcode_v1", "0".into()),
            ("pt_verifysession_v1", self.verifysession.clone()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        PtuiCb::decode(Self::NAME, raw)
    }
}

/// A `ptuiCB(…)` answer of `/login` or `/ptqrlogin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtuiCb {
    /// Field 1: the result code (protocol §6.3).
    pub code: u32,
    /// Field 2: a sub-code (`4`,`2` = page expired).
    pub sub: u32,
    /// Field 3: the `check_sig` URL on success, else empty.
    pub url: String,
    /// Field 5: the message shown to the person.
    pub message: String,
    /// Field 6: the nickname on success, else the QQ number.
    pub nick: String,
}

impl PtuiCb {
    /// Decodes the JavaScript answer.
    pub fn decode(endpoint: &'static str, raw: &RawAnswer<'_>) -> Result<PtuiCb, Error> {
        if raw.status != 200 {
            return Err(Error::HttpStatus { endpoint, status: raw.status });
        }
        let text = body_text(endpoint, raw)?;
        let args = parse_call(text, "ptuiCB")
            .ok_or_else(|| Error::decode(endpoint, "not a ptuiCB call", raw.body))?;
        let field = |i: usize| args.get(i).cloned().unwrap_or_default();
        let code = field(0)
            .parse()
            .map_err(|_| Error::decode(endpoint, "ptuiCB code is not a number", raw.body))?;
        Ok(PtuiCb {
            code,
            sub: field(1).parse().unwrap_or(0),
            url: field(2),
            message: field(4),
            nick: field(5),
        })
    }

    /// The JavaScript text ptlogin answers with (the emulator's encoder).
    pub fn to_js(&self) -> String {
        let (code, sub) = (self.code.to_string(), self.sub.to_string());
        format_call("ptuiCB", &[&code, &sub, &self.url, "0", &self.message, &self.nick])
    }

    /// A success whose URL points at the security site: the account is frozen (protocol §1.2.5).
    pub fn is_account_locked(&self) -> bool {
        self.code == 0 && self.url.contains("aq.qq.com")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(text: &str) -> PtuiCb {
        PtuiCb::decode(
            "login",
            &RawAnswer { status: 200, location: None, content_type: None, body: text.as_bytes() },
        )
        .unwrap()
    }

    #[test]
    fn test_seed_ptuicb_samples() {
        let ok = decode(
            "ptuiCB('0','0','http://ptlogin4.web2.qq.com/check_sig?a=1','0','登录成功！', '呼吸 (糗百)');",
        );
        assert_eq!((ok.code, ok.nick.as_str()), (0, "呼吸 (糗百)"));
        assert_eq!(
            decode(
                "ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '2769546520');"
            )
            .code,
            3
        );
        let expired = decode("ptuiCB('4','2','','0','页面过期，请重试。*', '123774072');");
        assert_eq!((expired.code, expired.sub), (4, 2));
        assert_eq!(decode("ptuiCB('24','0','','0','x', '1');").code, 24);
        assert_eq!(decode(&expired.to_js()), expired);
        assert!(
            decode("ptuiCB('0','0','http://aq.qq.com/cn2/abnormal','0','x', 'y');")
                .is_account_locked()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn test_any_body_never_panics(
            text in prop_oneof!["ptuiCB\\(('[0-9x]{0,3}', ?){0,7}\\);?", "(?s).{0,64}"],
        ) {
            let raw = RawAnswer { status: 200, location: None, content_type: None, body: text.as_bytes() };
            if let Ok(cb) = PtuiCb::decode("login", &raw) {
                prop_assert_eq!(decode(&cb.to_js()), cb);
            }
        }

        #[test]
        fn test_to_js_round_trips(
            code in any::<u32>(),
            sub in any::<u32>(),
            url in "(?s).{0,16}",
            message in "(?s).{0,16}",
            nick in "(?s).{0,16}",
        ) {
            let cb = PtuiCb { code, sub, url, message, nick };
            prop_assert_eq!(decode(&cb.to_js()), cb);
        }
    }
}
