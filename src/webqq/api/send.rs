//! What the four `send_*_msg2` endpoints share: the common `r` members and the answer.
//!
//! Protocol §2.4 and §5.3–5.4. `content` is the JSON *text* of the content array (built by
//! `crate::webqq::content`), so the wire form is doubly escaped; both levels are built with a
//! serializer.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{RawAnswer, decode_envelope};
use crate::webqq::{ClientId, Error};

/// The `r` members every send carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendCommon {
    /// The content array as JSON text (protocol §5.3).
    pub content: String,
    /// Own avatar id; never validated (protocol §2.4).
    #[serde(default, deserialize_with = "crate::webqq::id::lax_u64")]
    pub face: u64,
    /// The client id.
    pub clientid: ClientId,
    /// Per-session, strictly increasing (protocol §5.4). The seed's 2013 capture omits it, so it
    /// defaults to 0 when absent.
    #[serde(default, deserialize_with = "crate::webqq::id::lax_u64")]
    pub msg_id: u64,
    /// The session token.
    pub psessionid: String,
}

/// What a send answered when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendAnswer {
    /// `{"retcode":0,"result":"ok"}` or `{"errCode":0,"msg":"send ok"}`.
    Sent,
    /// 100100 (`"error!!!"`) — the message was in fact sent (protocol §6.1).
    SentAnyway,
}

/// Decodes a send answer. 1202 comes back as an error whose action is
/// [`crate::webqq::retcode::Action::RateLimited`]: "may have been delivered, do not resend".
pub fn decode_send(endpoint: &'static str, raw: &RawAnswer<'_>) -> Result<SendAnswer, Error> {
    let body_has_100100 = raw.body.windows(6).any(|w| w == b"100100");
    decode_envelope::<serde_json::Value>(endpoint, raw)?;
    Ok(if body_has_100100 { SendAnswer::SentAnyway } else { SendAnswer::Sent })
}

/// The msg_id to start a session with: the web page's formula (protocol §5.4).
pub fn initial_msg_id(now_ms: u64) -> u64 {
    ((now_ms / 1000) % 10_000) * 10_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::retcode::Action;

    fn decode(body: &str) -> Result<SendAnswer, Error> {
        decode_send(
            "send_buddy_msg2",
            &RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() },
        )
    }

    #[test]
    fn test_send_answers() {
        assert_eq!(decode(r#"{"retcode":0,"result":"ok"}"#).unwrap(), SendAnswer::Sent);
        assert_eq!(decode(r#"{"errCode":0,"msg":"send ok"}"#).unwrap(), SendAnswer::Sent);
        assert_eq!(
            decode(r#"{"errmsg":"error!!!","retcode":100100}"#).unwrap(),
            SendAnswer::SentAnyway
        );
        assert_eq!(
            decode(r#"{"retcode":1202,"errmsg":""}"#).unwrap_err().action(),
            Action::RateLimited
        );
        assert_eq!(decode(r#"{"retcode":100012}"#).unwrap_err().action(), Action::Relogin);
        assert!(decode(r#"{"errCode":1,"errMsg":"ERROR"}"#).is_err());
    }

    #[test]
    fn test_initial_msg_id() {
        assert_eq!(initial_msg_id(1_483_846_258_123), 62_580_000);
    }
}
