//! `POST http://d(1).web2.qq.com/channel/login2`: open the channel session (also relink).
//!
//! Protocol §1.2.7 (2013), §1.3.6 (SmartQQ), §1.4 (relink: the same call with the old
//! psessionid). Errors: 103/108 = cookies missing or stale; 112/113/115 = relink failure.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer, decode_result, r_json};
use crate::webqq::{ClientId, Error, Uin};

/// The `r` object of login2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Login2 {
    /// Initial status, `"online"`.
    pub status: String,
    /// The ptwebqq cookie.
    #[serde(default)]
    pub ptwebqq: String,
    /// The client id.
    pub clientid: ClientId,
    /// `null`/`""` for a new session; the old psessionid for a relink.
    #[serde(default)]
    pub psessionid: Option<String>,
    /// 2013 clients sent `""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwd_sig: Option<String>,
    /// Relink requests carried `"key":""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// login2's `result` (fields beyond uin/psessionid/vfwebqq are informational).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login2Result {
    /// Own uin; in the SmartQQ era equal to the QQ number.
    pub uin: Uin,
    /// The session token for every channel call (a secret).
    pub psessionid: String,
    /// The 2013 era's working vfwebqq (SmartQQ uses getvfwebqq's).
    #[serde(default)]
    pub vfwebqq: String,
    /// `"online"`.
    #[serde(default)]
    pub status: String,
    /// Client IP as an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cip: Option<u64>,
    /// Server index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Server port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u64>,
    /// Always 0 in captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_state: Option<i64>,
    /// Always 0 in captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<i64>,
}

impl Endpoint for Login2 {
    const NAME: &'static str = "login2";
    const PATH: &'static str = "/channel/login2";
    const METHOD: Method = Method::Post;
    const HOST: HostKind = HostKind::Channel;
    type Answer = Login2Result;

    fn params(&self) -> Params {
        vec![("r", r_json(self))]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        decode_result(Self::NAME, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_login2_reference_answer_decodes() {
        let body = r#"{"retcode":0,"result":{"uin":2501542492,"cip":3396791469,"index":1075,"port":49648,
 "status":"online","vfwebqq":"8e6abfdb76c9","psessionid":"8368046764001d636f6e76c9",
 "user_state":0,"f":0}}"#;
        let raw =
            RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() };
        let answer = Login2::decode(&raw).unwrap();
        assert_eq!(answer.uin.get(), 2_501_542_492);
        assert_eq!(answer.port, Some(49648));
        let err = Login2::decode(&RawAnswer { body: br#"{"retcode":108,"errmsg":""}"#, ..raw })
            .unwrap_err();
        assert!(err.needs_relogin());
    }

    #[test]
    fn test_login2_2013_body_parses() {
        let r: Login2 = serde_json::from_str(
            r#"{"status":"online","ptwebqq":"x","passwd_sig":"","clientid":"77663518","psessionid":null}"#,
        )
        .unwrap();
        assert_eq!(r.clientid.get(), 77_663_518);
        assert_eq!(r.psessionid, None);
    }
}
