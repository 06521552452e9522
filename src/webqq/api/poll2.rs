//! `POST http://d(1).web2.qq.com/channel/poll2`: the long poll.
//!
//! Protocol §2.3 (request, idle forms) and §4 (events). One poll per session at a time (§7.1):
//! a second poller steals the first one's events. The server holds the request up to about 60 s.

use serde::{Deserialize, Serialize};

use crate::webqq::api::{Endpoint, Envelope, HostKind, Method, Params, RawAnswer, r_json};
use crate::webqq::event::{PollEvent, decode_poll_result};
use crate::webqq::retcode::Retcode;
use crate::webqq::{ClientId, Error, Secret};

/// The largest poll2 answer read (RELIABILITY.md §2: body caps everywhere).
pub const MAX_POLL_BYTES: usize = 4 * 1024 * 1024;

/// The `r` object of poll2, in either era's form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Poll2 {
    /// SmartQQ form: the ptwebqq cookie; absent in the 2013 form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptwebqq: Option<String>,
    /// The client id.
    pub clientid: ClientId,
    /// The session token.
    pub psessionid: String,
    /// `""` (SmartQQ) or `0` (2013).
    #[serde(default)]
    pub key: serde_json::Value,
    /// 2013 form only: `[]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<serde_json::Value>>,
}

impl Poll2 {
    /// The SmartQQ body: `{"ptwebqq","clientid","psessionid","key":""}`.
    pub fn smartqq(ptwebqq: &str, clientid: ClientId, psessionid: &str) -> Self {
        Poll2 {
            ptwebqq: Some(ptwebqq.to_owned()),
            clientid,
            psessionid: psessionid.to_owned(),
            key: serde_json::Value::String(String::new()),
            ids: None,
        }
    }

    /// The 2013 body: `{"clientid","psessionid","key":0,"ids":[]}` plus the form fields.
    pub fn web2013(clientid: ClientId, psessionid: &str) -> Self {
        Poll2 {
            ptwebqq: None,
            clientid,
            psessionid: psessionid.to_owned(),
            key: serde_json::Value::from(0),
            ids: Some(Vec::new()),
        }
    }
}

/// What one poll returned.
#[derive(Clone, Debug, PartialEq)]
pub enum PollAnswer {
    /// One or more events, in the order of the answer.
    Events(Vec<PollEvent>),
    /// Nothing happened: 102, HTTP 502/504 from the front proxy, or an idle retcode 0.
    Idle,
    /// Retcode 0 with `"errmsg":"error"` and no result (2018): probe the session
    /// (protocol §6.1).
    Suspicious,
}

impl Endpoint for Poll2 {
    const NAME: &'static str = "poll2";
    const PATH: &'static str = "/channel/poll2";
    const METHOD: Method = Method::Post;
    const HOST: HostKind = HostKind::Channel;
    type Answer = PollAnswer;

    fn params(&self) -> Params {
        let mut params = vec![("r", r_json(self))];
        if self.ptwebqq.is_none() {
            params.push(("clientid", self.clientid.to_string()));
            params.push(("psessionid", self.psessionid.clone()));
        }
        params
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        // The front proxy gave up holding the request: the same as 102 (protocol §6.2).
        if matches!(raw.status, 502 | 504) {
            return Ok(PollAnswer::Idle);
        }
        if raw.status != 200 {
            return Err(Error::HttpStatus { endpoint: Self::NAME, status: raw.status });
        }
        // serde would read a top-level array positionally and blame its first element.
        if raw.body.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::decode(Self::NAME, "not a JSON object", raw.body));
        }
        let envelope: Envelope<serde_json::Value> =
            serde_json::from_slice(raw.body).map_err(|e| Error::decode(Self::NAME, e, raw.body))?;
        let Some(code) = envelope.code() else {
            return Err(Error::decode(Self::NAME, "neither retcode nor errCode", raw.body));
        };
        match code {
            0 => {
                let events = envelope.result.as_ref().map(decode_poll_result).unwrap_or_default();
                if !events.is_empty() {
                    Ok(PollAnswer::Events(events))
                } else if envelope.errmsg.as_deref() == Some("error") {
                    Ok(PollAnswer::Suspicious)
                } else {
                    Ok(PollAnswer::Idle)
                }
            }
            102 => Ok(PollAnswer::Idle),
            other => Err(Error::Retcode {
                endpoint: Self::NAME,
                retcode: Retcode(other),
                new_ptwebqq: envelope.p.map(Secret::new),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::webqq::content::tests::arb_json;
    use crate::webqq::retcode::Action;

    fn decode(status: u16, body: &str) -> Result<PollAnswer, Error> {
        Poll2::decode(&RawAnswer {
            status,
            location: None,
            content_type: None,
            body: body.as_bytes(),
        })
    }

    #[test]
    fn test_idle_forms() {
        assert_eq!(decode(200, r#"{"retcode":102,"errmsg":""}"#).unwrap(), PollAnswer::Idle);
        assert_eq!(decode(504, "<html>").unwrap(), PollAnswer::Idle);
        assert_eq!(decode(200, r#"{"retcode":0}"#).unwrap(), PollAnswer::Idle);
        assert_eq!(decode(200, r#"{"retcode":0,"result":[]}"#).unwrap(), PollAnswer::Idle);
        assert_eq!(
            decode(200, r#"{"retcode":0,"retmsg":"ok","errmsg":"error"}"#).unwrap(),
            PollAnswer::Suspicious
        );
    }

    #[test]
    fn test_error_forms() {
        let rotated = decode(200, r#"{"retcode":116,"p":"newvalue"}"#).unwrap_err();
        assert_eq!(rotated.action(), Action::RefreshPtwebqq);
        let Error::Retcode { new_ptwebqq: Some(p), .. } = rotated else { panic!("no p") };
        assert_eq!(p.expose(), "newvalue");
        assert!(decode(200, r#"{"retcode":121,"t":"0"}"#).unwrap_err().is_kicked());
        assert!(decode(200, "{\"retcode\":0,\"result\":[").unwrap_err().is_transient());
        assert!(decode(500, "").unwrap_err().is_transient());
        for not_object in ["", "  ", "[{\"retcode\":0}]", "<html>", "0"] {
            let error = decode(200, not_object).unwrap_err();
            assert!(error.to_string().contains("not a JSON object"), "{not_object}: {error}");
            assert!(error.is_transient());
        }
    }

    #[test]
    fn test_bodies_of_both_eras() {
        let smart = Poll2::smartqq("pt", ClientId::SMARTQQ, "ps");
        assert_eq!(
            smart.params(),
            vec![(
                "r",
                r#"{"ptwebqq":"pt","clientid":53999199,"psessionid":"ps","key":""}"#.to_owned()
            )]
        );
        let old = Poll2::web2013(ClientId::new(77_663_518), "ps");
        let params = old.params();
        assert_eq!(params[0].1, r#"{"clientid":77663518,"psessionid":"ps","key":0,"ids":[]}"#);
        assert_eq!(params.len(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn test_any_body_and_status_never_panic(
            status in prop_oneof![Just(200u16), Just(502), Just(504), any::<u16>()],
            body in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let answer = Poll2::decode(&RawAnswer {
                status,
                location: None,
                content_type: None,
                body: &body,
            });
            if let Ok(PollAnswer::Events(events)) = answer {
                prop_assert!(!events.is_empty());
            }
        }

        #[test]
        fn test_any_envelope_is_classified_by_its_code(
            code in prop_oneof![Just(0i64), Just(102), Just(116), Just(121), any::<i64>()],
            errcode_form in any::<bool>(),
            result in arb_json(),
            errmsg in prop_oneof![Just("error"), Just(""), Just("ok")],
        ) {
            let key = if errcode_form { "errCode" } else { "retcode" };
            let body = json!({ key: code, "result": result, "errmsg": errmsg }).to_string();
            let answer = decode(200, &body);
            // From the text, not `result`: serde_json's float parsing may change a last digit.
            let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
            let events = decode_poll_result(&parsed["result"]);
            match (code, answer) {
                (0, Ok(PollAnswer::Events(got))) => prop_assert_eq!(got, events),
                (0, Ok(PollAnswer::Suspicious)) => {
                    prop_assert!(events.is_empty() && errmsg == "error");
                }
                (0, Ok(PollAnswer::Idle)) => prop_assert!(events.is_empty() && errmsg != "error"),
                (102, Ok(PollAnswer::Idle)) => {}
                (code, Err(error)) if code != 0 && code != 102 => {
                    prop_assert_eq!(error.retcode(), Some(Retcode(code)));
                }
                (code, other) => prop_assert!(false, "retcode {} gave {:?}", code, other),
            }
        }
    }
}
