//! The secrets the emulator handed out ([`Issued`]): every session cookie, `ptsigx`,
//! `psessionid` and `vfwebqq` it answered with, so that a leak check (issue 6, "Security") can
//! grep everything a bridge wrote for them. Read through the control API (`GET secrets`).

use std::collections::{HashSet, VecDeque};

use serde_json::Value;

use crate::emulator::http::Reply;

/// Secrets remembered; the oldest are forgotten beyond it (a long chaos run logs in often).
const MAX_ISSUED: usize = 50_000;

/// Values shorter than this are not secrets worth checking (and would match by accident).
const MIN_LEN: usize = 8;

/// Cookies whose values are credentials (protocol §1.6); `pt2gguin`, `uin` and `superuin` only
/// name the account.
const SECRET_COOKIES: &[&str] =
    &["skey", "p_skey", "ptwebqq", "pt4_token", "superkey", "supertoken", "ptcz", "verifysession"];

/// Answer fields that are credentials (login2, getvfwebqq; protocol §1.4).
const SECRET_FIELDS: &[&str] = &["psessionid", "vfwebqq"];

/// The issued secrets, oldest first, without repeats.
#[derive(Debug, Default)]
pub(crate) struct Issued {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Issued {
    /// Remembers the secrets of one answer: its credential cookies, a `ptsigx` in its redirect
    /// and credential fields of a JSON `result`.
    pub(crate) fn record_reply(&mut self, reply: &Reply) {
        for cookie in &reply.cookies {
            if !cookie.delete && SECRET_COOKIES.contains(&cookie.name) {
                self.record(&cookie.value);
            }
        }
        if let Some(url) = reply.location.as_deref().and_then(|l| url::Url::parse(l).ok()) {
            for (key, value) in url.query_pairs() {
                if key == "ptsigx" {
                    self.record(&value);
                }
            }
        }
        let json = match reply.body.first() {
            Some(b'{') => serde_json::from_slice::<Value>(&reply.body).ok(),
            _ => None,
        };
        if let Some(value) = json {
            for field in SECRET_FIELDS {
                if let Some(text) =
                    value.pointer(&format!("/result/{field}")).and_then(Value::as_str)
                {
                    self.record(text);
                }
            }
        }
    }

    /// Remembers one secret.
    pub(crate) fn record(&mut self, secret: &str) {
        if secret.len() < MIN_LEN || self.seen.contains(secret) {
            return;
        }
        if self.order.len() >= MAX_ISSUED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(secret.to_owned());
        self.order.push_back(secret.to_owned());
    }

    /// Every remembered secret, oldest first.
    pub(crate) fn all(&self) -> Vec<String> {
        self.order.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::emulator::http::SetCookie;

    #[test]
    fn test_records_credential_cookies_redirect_and_fields_only() {
        let mut issued = Issued::default();
        let reply =
            Reply::redirect("http://x.qq.com/check_sig?uin=1&ptsigx=abcdef0123456789".into())
                .set_cookies([
                    SetCookie::new("skey", "@skeyvalue1", "qq.com"),
                    SetCookie::new("pt2gguin", "o0000010001", "qq.com"),
                    SetCookie::new("ptwebqq", "short", "qq.com"),
                ]);
        issued.record_reply(&reply);
        let body = json!({"retcode": 0, "result": {"psessionid": "8368046764001d6f", "vfwebqq": "vf0123456789", "uin": 10001}});
        issued.record_reply(&Reply::json(&body));
        issued.record_reply(&Reply::json(&body));
        assert_eq!(
            issued.all(),
            ["@skeyvalue1", "abcdef0123456789", "8368046764001d6f", "vf0123456789"]
        );
        assert_eq!(Reply::nginx(StatusCode::NOT_FOUND).cookies.len(), 0);
    }

    #[test]
    fn test_memory_is_bounded() {
        let mut issued = Issued::default();
        for i in 0..MAX_ISSUED + 10 {
            issued.record(&format!("secret-{i:08}"));
        }
        let all = issued.all();
        assert_eq!(all.len(), MAX_ISSUED);
        assert_eq!(all[0], "secret-00000010");
        assert_eq!(issued.seen.len(), MAX_ISSUED);
    }
}
