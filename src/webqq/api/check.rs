//! `GET https://ssl.ptlogin2.qq.com/check`: is a captcha needed, and which salt to hash with.
//!
//! Protocol §1.2.1. The answer is a JavaScript call, `ptui_checkVC(…)`, with 2, 3 or 5 arguments
//! depending on the era. The client sets the cookie `chkuin=<QQ>` itself before calling.

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, body_text};
use crate::webqq::jscall::{latin1_bytes, parse_call};
use crate::webqq::{Error, QqNumber};

/// The check request.
#[derive(Clone, Debug)]
pub struct Check {
    /// The account being logged in.
    pub uin: QqNumber,
    /// `pt_login_sig` from the login page, or empty.
    pub login_sig: String,
    /// A random float, as the page sent.
    pub r: String,
}

/// What check answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckAnswer {
    /// Field 1: a captcha image must be fetched and typed by a person.
    pub need_captcha: bool,
    /// Field 2: the ready verify code (starts with `!`) or, with a captcha, the `cap_cd`.
    pub code: String,
    /// Field 3: the 8-byte salt (the big-endian QQ number, or random with `rand_salt`).
    pub salt: Option<[u8; 8]>,
    /// Field 4 (2015 form): `pt_verifysession`, sent back as `pt_verifysession_v1`.
    pub verifysession: Option<String>,
    /// Field 5 (2015 form): `isRandSalt`, sent back as `pt_randsalt`.
    pub rand_salt: Option<String>,
}

impl CheckAnswer {
    /// The JavaScript text ptlogin answers with (the emulator's encoder): the 2-argument form
    /// without a salt; with one, the salt then the 2015 fields that are present.
    pub fn to_js(&self) -> String {
        let flag = if self.need_captcha { "'1'" } else { "'0'" };
        let mut args = vec![flag.to_owned(), js_quote(&self.code)];
        // An empty third argument would read back as a bad salt: omit it instead (§1.2.1).
        if let Some(salt) = &self.salt {
            args.push(format!("'{}'", crate::webqq::jscall::js_hex_escape(salt)));
            let extra = match (&self.verifysession, &self.rand_salt) {
                (vs, Some(rs)) => vec![vs.as_deref().unwrap_or_default(), rs.as_str()],
                (Some(vs), None) => vec![vs.as_str()],
                (None, None) => Vec::new(),
            };
            args.extend(extra.into_iter().map(js_quote));
        }
        // Unlike ptuiCB, ptui_checkVC had no space before its last argument.
        format!("ptui_checkVC({});", args.join(","))
    }
}

/// A single-quoted JavaScript string with `'` and `\` escaped.
fn js_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Endpoint for Check {
    const NAME: &'static str = "check";
    const PATH: &'static str = "/check";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Ptlogin;
    type Answer = CheckAnswer;

    fn params(&self) -> Params {
        vec![
            ("pt_tea", "1".into()),
            ("uin", self.uin.to_string()),
            ("appid", crate::webqq::hosts::APPID.into()),
            ("js_ver", "10233".into()),
            ("js_type", "0".into()),
            ("login_sig", self.login_sig.clone()),
            ("u1", "http://w.qq.com/proxy.html".into()),
            ("r", self.r.clone()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        if raw.status != 200 {
            return Err(Error::HttpStatus { endpoint: Self::NAME, status: raw.status });
        }
        let text = body_text(Self::NAME, raw)?;
        let args = parse_call(text, "ptui_checkVC")
            .ok_or_else(|| Error::decode(Self::NAME, "not a ptui_checkVC call", raw.body))?;
        let (Some(flag), Some(code)) = (args.first(), args.get(1)) else {
            return Err(Error::decode(
                Self::NAME,
                "ptui_checkVC with fewer than 2 fields",
                raw.body,
            ));
        };
        let salt = match args.get(2) {
            None => None,
            Some(text) => {
                let bytes = latin1_bytes(text)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .ok_or_else(|| Error::decode(Self::NAME, "salt is not 8 bytes", raw.body))?;
                Some(bytes)
            }
        };
        Ok(CheckAnswer {
            need_captcha: flag == "1",
            code: code.clone(),
            salt,
            verifysession: args.get(3).cloned(),
            rand_salt: args.get(4).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(text: &str) -> Result<CheckAnswer, Error> {
        Check::decode(&RawAnswer {
            status: 200,
            location: None,
            content_type: None,
            body: text.as_bytes(),
        })
    }

    #[test]
    fn test_all_three_forms() {
        let old = decode("ptui_checkVC('0','!IJG');").unwrap();
        assert_eq!((old.need_captcha, old.code.as_str(), old.salt), (false, "!IJG", None));
        let seed = decode(
            r"ptui_checkVC('1','4GJSgm18Bw-8yw5JGKpSOXH-0idqvaCU','\x00\x00\x00\x00\xa5\x13\xed\x18');",
        )
        .unwrap();
        assert!(seed.need_captcha);
        assert_eq!(seed.salt, Some([0, 0, 0, 0, 0xa5, 0x13, 0xed, 0x18]));
        let new = decode(
            r"ptui_checkVC('0','!ZDP','\x96\x00\xb9\xd6\xcf\x87\xae\xf4','34bfca26f1c4','1');",
        )
        .unwrap();
        assert_eq!(new.verifysession.as_deref(), Some("34bfca26f1c4"));
        assert_eq!(new.rand_salt.as_deref(), Some("1"));
        assert_eq!(decode(&new.to_js()).unwrap(), new);
        assert!(decode("ptui_checkVC('0','!A','\\x00');").is_err());
        assert!(decode("<html>").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn test_any_body_never_panics(
            text in prop_oneof!["ptui_checkVC\\(('(\\\\x[0-9a-f]{2}|[0-9!A-Z]){0,9}',?){0,6}\\);?", "(?s).{0,64}"],
        ) {
            if let Ok(answer) = decode(&text) {
                prop_assert_eq!(decode(&answer.to_js()).unwrap(), answer);
            }
        }

        #[test]
        fn test_to_js_round_trips(
            need_captcha in any::<bool>(),
            code in "(?s).{0,12}",
            salt in prop::option::of(any::<[u8; 8]>()),
            session in prop::option::of(("(?s).{0,12}", "[01]")),
        ) {
            // The 4- and 5-argument forms always carry a salt (protocol §1.2.1).
            let session = session.filter(|_| salt.is_some());
            let answer = CheckAnswer {
                need_captcha,
                code,
                salt,
                verifysession: session.as_ref().map(|s| s.0.clone()),
                rand_salt: session.map(|s| s.1),
            };
            prop_assert_eq!(decode(&answer.to_js()).unwrap(), answer);
        }
    }
}
