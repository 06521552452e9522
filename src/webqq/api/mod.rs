//! One file per WebQQ endpoint: its host, method and path, its request and its answer.
//!
//! Each file opens with the method and path and holds a documented request type (the `r` object or
//! the query), implementing [`Endpoint`], and its answer type. Everything here is sans-I/O wire
//! data, shared by the client (which sends requests and decodes answers) and the emulator (which
//! decodes requests and encodes answers). Protocol §2 is the reference.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::webqq::Error;
use crate::webqq::retcode::Retcode;

pub mod cface_upload;
pub mod change_status2;
pub mod check;
pub mod check_sig;
pub mod get_c2cmsg_sig2;
pub mod get_cface2;
pub mod get_discu_info;
pub mod get_discus_list;
pub mod get_friend_info2;
pub mod get_friend_uin2;
pub mod get_gface_sig2;
pub mod get_group_info_ext2;
pub mod get_group_name_list_mask2;
pub mod get_group_pic;
pub mod get_offpic2;
pub mod get_online_buddies2;
pub mod get_recent_list2;
pub mod get_self_info2;
pub mod get_single_long_nick2;
pub mod get_user_friends2;
pub mod getimage;
pub mod getvfwebqq;
pub mod input_notify2;
pub mod login;
pub mod login2;
pub mod login_page;
pub mod logout2;
pub mod poll2;
pub mod ptqrlogin;
pub mod ptqrshow;
pub mod send;
pub mod send_buddy_msg2;
pub mod send_discu_msg2;
pub mod send_qun_msg2;
pub mod send_sess_msg2;
pub mod upload_offline_pic;

/// Which host an endpoint lives on. [`HostKind::Channel`] is `d` or `d1` depending on the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// `ssl.ptlogin2.qq.com` over HTTPS.
    Ptlogin,
    /// `ui.ptlogin2.qq.com` over HTTPS.
    PtloginUi,
    /// `ssl.captcha.qq.com` over HTTPS.
    Captcha,
    /// `d.web2.qq.com` or `d1.web2.qq.com`, plain HTTP, proxy Referer of that host.
    Channel,
    /// `s.web2.qq.com`, plain HTTP, its proxy Referer.
    Info,
    /// `up.web2.qq.com` (uploads).
    Upload,
    /// `weboffline.ftn.qq.com` (offline-picture uploads).
    OfflineUpload,
    /// `web2.qq.com` (group pictures).
    Web2,
}

/// HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Query parameters only.
    Get,
    /// `application/x-www-form-urlencoded` body (or multipart for uploads).
    Post,
}

/// The parameters of one request: query pairs for GET, form pairs for POST.
pub type Params = Vec<(&'static str, String)>;

/// An answer as it came off the wire, before decoding.
#[derive(Debug)]
pub struct RawAnswer<'a> {
    /// HTTP status.
    pub status: u16,
    /// `Location` header, if any (check_sig, get_offpic2).
    pub location: Option<&'a str>,
    /// `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body, already capped.
    pub body: &'a [u8],
}

/// A WebQQ endpoint: where it lives, what it sends and how its answer is read.
pub trait Endpoint {
    /// The endpoint's name (its path's last segment), for errors, logs and metrics.
    const NAME: &'static str;
    /// The path on its host.
    const PATH: &'static str;
    /// GET or POST.
    const METHOD: Method;
    /// The host family.
    const HOST: HostKind;
    /// The decoded successful answer.
    type Answer;

    /// Query (GET) or form (POST) parameters, in the order the web page sent them.
    fn params(&self) -> Params;

    /// Decodes an answer. Most endpoints use the `{"retcode","result"}` envelope.
    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error>;
}

/// The `{"retcode": …, "result": …}` envelope almost every JSON API answered with (protocol §0.3),
/// including the late SmartQQ `{"errCode": 0, "msg": "send ok"}` form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// 0 on success; absent in the errCode form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retcode: Option<i64>,
    /// The payload on success.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    /// Often `""` or `"error!!!"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<String>,
    /// `"ok"`, seen in 2018.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retmsg: Option<String>,
    /// The new ptwebqq in a 116 answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// `"0"` in a 121 answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    /// The late SmartQQ send form's code.
    #[serde(default, rename = "errCode", skip_serializing_if = "Option::is_none")]
    pub err_code: Option<i64>,
    /// The late SmartQQ send form's message (`"send ok"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Envelope<T> {
    /// A success envelope `{"retcode":0,"result":…}`.
    pub fn ok(result: T) -> Self {
        Envelope { retcode: Some(0), result: Some(result), ..Self::empty() }
    }

    /// An error envelope `{"retcode":code,"errmsg":""}`.
    pub fn error(code: i64) -> Self {
        Envelope { retcode: Some(code), errmsg: Some(String::new()), ..Self::empty() }
    }

    fn empty() -> Self {
        Envelope {
            retcode: None,
            result: None,
            errmsg: None,
            retmsg: None,
            p: None,
            t: None,
            err_code: None,
            msg: None,
        }
    }

    /// The effective code: `retcode`, else `errCode`, else `None` (a shape with neither).
    pub fn code(&self) -> Option<i64> {
        self.retcode.or(self.err_code)
    }
}

/// Decodes a JSON envelope and returns its `result`, or the retcode as an error.
///
/// `missing_result_ok` makes a retcode-0 answer without `result` decode as `T::default()`-like
/// `None` for callers that accept it (sends answer `"ok"` or nothing at all).
pub fn decode_envelope<T: DeserializeOwned>(
    endpoint: &'static str,
    raw: &RawAnswer<'_>,
) -> Result<Option<T>, Error> {
    if raw.status != 200 {
        return Err(Error::HttpStatus { endpoint, status: raw.status });
    }
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_slice(raw.body).map_err(|e| Error::decode(endpoint, e, raw.body))?;
    let Some(code) = envelope.code() else {
        return Err(Error::decode(endpoint, "neither retcode nor errCode", raw.body));
    };
    if code != 0 {
        let retcode = Retcode(code);
        // 100100 and 100003 mean "done anyway" (protocol §6.1): report success without a result.
        if retcode.action() == crate::webqq::retcode::Action::Ok {
            return Ok(None);
        }
        return Err(Error::Retcode {
            endpoint,
            retcode,
            new_ptwebqq: envelope.p.map(crate::webqq::Secret::new),
        });
    }
    match envelope.result {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| Error::decode(endpoint, e, raw.body)),
    }
}

/// Like [`decode_envelope`] but a missing `result` is a decode error.
pub fn decode_result<T: DeserializeOwned>(
    endpoint: &'static str,
    raw: &RawAnswer<'_>,
) -> Result<T, Error> {
    decode_envelope(endpoint, raw)?
        .ok_or_else(|| Error::decode(endpoint, "retcode 0 without a result", raw.body))
}

/// Serialises an `r` object to its JSON text (the form field's value).
pub fn r_json<T: Serialize>(r: &T) -> String {
    // Serialising plain structs of strings and numbers cannot fail; an empty object is a safe
    // fallback that the server answers with a retcode rather than a crash.
    serde_json::to_string(r).unwrap_or_else(|_| String::from("{}"))
}

/// A cache-buster `t` parameter: a 13-digit millisecond timestamp, as the page sent (§0.3).
pub fn cache_buster() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    ms.to_string()
}

/// Reads a body that must be text.
pub fn body_text<'a>(endpoint: &'static str, raw: &RawAnswer<'a>) -> Result<&'a str, Error> {
    std::str::from_utf8(raw.body).map_err(|e| Error::decode(endpoint, e, raw.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(body: &str) -> RawAnswer<'_> {
        RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() }
    }

    #[test]
    fn test_envelope_forms() {
        let ok: Option<String> =
            decode_envelope("x", &raw(r#"{"retcode":0,"result":"ok"}"#)).unwrap();
        assert_eq!(ok.as_deref(), Some("ok"));
        let late: Option<String> =
            decode_envelope("x", &raw(r#"{"errCode":0,"msg":"send ok"}"#)).unwrap();
        assert_eq!(late, None);
        let sent: Option<String> =
            decode_envelope("x", &raw(r#"{"errmsg":"error!!!","retcode":100100}"#)).unwrap();
        assert_eq!(sent, None);
        let err = decode_envelope::<String>("x", &raw(r#"{"retcode":116,"p":"abc"}"#)).unwrap_err();
        assert_eq!(err.retcode(), Some(Retcode(116)));
        assert!(format!("{err:?}").contains("redacted"));
        let err = decode_envelope::<String>("x", &raw("<html>502</html>")).unwrap_err();
        assert!(err.is_transient());
        let err = decode_envelope::<String>("x", &raw(r#"{"result":1}"#)).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
    }

    #[test]
    fn test_envelope_serialises_like_the_server() {
        assert_eq!(r_json(&Envelope::ok("ok")), r#"{"retcode":0,"result":"ok"}"#);
        assert_eq!(r_json(&Envelope::<()>::error(103)), r#"{"retcode":103,"errmsg":""}"#);
    }
}

/// The session values most d/s GET calls repeat as query parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SessionQuery {
    /// The client id (absent on a few calls).
    #[serde(default)]
    pub clientid: Option<crate::webqq::ClientId>,
    /// The session token.
    #[serde(default)]
    pub psessionid: Option<String>,
    /// The vfwebqq token.
    #[serde(default)]
    pub vfwebqq: Option<String>,
}

impl SessionQuery {
    /// Appends the present members in the page's order, then the cache-buster `t`.
    pub fn push_to(&self, params: &mut Params) {
        if let Some(vfwebqq) = &self.vfwebqq {
            params.push(("vfwebqq", vfwebqq.clone()));
        }
        if let Some(clientid) = self.clientid {
            params.push(("clientid", clientid.to_string()));
        }
        if let Some(psessionid) = &self.psessionid {
            params.push(("psessionid", psessionid.clone()));
        }
        params.push(("t", cache_buster()));
    }
}
