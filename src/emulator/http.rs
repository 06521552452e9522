//! The emulator's own request and reply types: a fully read request ([`Req`]) with query, form,
//! cookie and `r` helpers, and a [`Reply`] that `server.rs` turns into a hyper response.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::Value;

/// A request as the handlers see it: body already read (and capped), host without port.
#[derive(Debug)]
pub(crate) struct Req {
    /// GET, POST, …
    pub method: Method,
    /// The `Host` header, lowercased, port stripped.
    pub host: String,
    /// The path, without query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// All request headers.
    pub headers: HeaderMap,
    /// Cookies from every `Cookie` header, in order.
    pub cookies: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// Came in over TLS.
    pub tls: bool,
    /// The peer address (never logged with secrets).
    pub peer: SocketAddr,
}

/// Splits `name=value; name2=value2` cookie headers.
fn parse_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

impl Req {
    /// Builds a request from hyper parts and the read body.
    pub(crate) fn new(
        parts: http::request::Parts,
        body: Bytes,
        tls: bool,
        peer: SocketAddr,
    ) -> Req {
        let host_header = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.host())
            .unwrap_or("");
        let host = strip_port(host_header).to_ascii_lowercase();
        let query = parts
            .uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let cookies = parse_cookies(&parts.headers);
        Req {
            method: parts.method,
            host,
            path: parts.uri.path().to_owned(),
            query,
            headers: parts.headers,
            cookies,
            body,
            tls,
            peer,
        }
    }

    /// The first query parameter of that name.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The urlencoded form fields of the body (empty when the body is not a form).
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// A form field, falling back to the query (2013 pages repeated fields, protocol §0.3).
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.param(name).map(str::to_owned))
    }

    /// The `r` form field parsed as a JSON object (protocol §0.3). `None` when missing or not an
    /// object.
    pub(crate) fn r(&self) -> Option<serde_json::Map<String, Value>> {
        let text = self.field("r")?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// The last cookie of that name (a later, more specific one wins, as browsers order them).
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A header as text.
    pub(crate) fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The host part of the Referer, lowercased.
    pub(crate) fn referer_host(&self) -> Option<String> {
        let referer = self.header(header::REFERER)?;
        let url = url::Url::parse(referer).ok()?;
        url.host_str().map(str::to_ascii_lowercase)
    }

    /// The account the request claims to be from: the `uin` / `p_uin` / `superuin` cookie
    /// (`o0<QQ>`), used to match faults to accounts.
    pub(crate) fn cookie_account(&self) -> Option<u64> {
        ["uin", "p_uin", "superuin"].iter().find_map(|name| parse_o_uin(self.cookie(name)?))
    }
}

/// Parses the `o0<QQ>` cookie form (strip the `o` and leading zeros, protocol §1.3.3).
pub(crate) fn parse_o_uin(value: &str) -> Option<u64> {
    value.trim_start_matches(['o', 'O']).trim_start_matches('0').parse().ok()
}

/// Removes a `:port` suffix (and IPv6 brackets' port).
pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A `Set-Cookie` to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SetCookie {
    /// Cookie name.
    pub name: &'static str,
    /// Cookie value (may be a secret: never logged).
    pub value: String,
    /// The `Domain` attribute (protocol §1.6), e.g. `qq.com`.
    pub domain: &'static str,
    /// Expire at once (deletion).
    pub delete: bool,
}

impl SetCookie {
    /// A session cookie for `domain`, path `/`.
    pub(crate) fn new(name: &'static str, value: impl Into<String>, domain: &'static str) -> Self {
        Self { name, value: value.into(), domain, delete: false }
    }

    /// A deletion of `name` on `domain`.
    pub(crate) fn delete(name: &'static str, domain: &'static str) -> Self {
        Self { name, value: String::new(), domain, delete: true }
    }

    /// The header value.
    pub(crate) fn header_value(&self) -> String {
        let mut v = format!("{}={}; Path=/; Domain={}", self.name, self.value, self.domain);
        if self.delete {
            v.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        }
        v
    }
}

/// What a handler answers.
#[derive(Debug)]
pub(crate) struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
    /// Cookies to set.
    pub cookies: Vec<SetCookie>,
    /// `Location` for redirects.
    pub location: Option<String>,
}

impl Reply {
    fn with(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply { status, content_type, body: body.into(), cookies: Vec::new(), location: None }
    }

    /// A JSON answer. The real servers said `text/plain; charset=utf-8` for most of them
    /// (protocol §7.12: Content-Type was not reliable).
    pub(crate) fn json(value: &Value) -> Reply {
        Reply::with(StatusCode::OK, "text/plain; charset=utf-8", value.to_string())
    }

    /// `{"retcode":<code>,"errmsg":""}`.
    pub(crate) fn retcode(code: i64) -> Reply {
        Reply::json(&serde_json::json!({"retcode": code, "errmsg": ""}))
    }

    /// `{"retcode":0,"result":<result>}`.
    pub(crate) fn ok(result: Value) -> Reply {
        Reply::json(&serde_json::json!({"retcode": 0, "result": result}))
    }

    /// A JavaScript answer (ptlogin's `ptuiCB(...)`).
    pub(crate) fn js(text: String) -> Reply {
        Reply::with(StatusCode::OK, "application/javascript; charset=utf-8", text)
    }

    /// An HTML page.
    pub(crate) fn html(text: String) -> Reply {
        Reply::with(StatusCode::OK, "text/html; charset=utf-8", text)
    }

    /// An image.
    pub(crate) fn image(content_type: &'static str, bytes: Bytes) -> Reply {
        Reply::with(StatusCode::OK, content_type, bytes)
    }

    /// A 302 redirect.
    pub(crate) fn redirect(location: String) -> Reply {
        let mut r = Reply::with(StatusCode::FOUND, "text/html; charset=utf-8", "");
        r.location = Some(location);
        r
    }

    /// A control-API JSON answer with a status.
    pub(crate) fn control(status: StatusCode, value: &Value) -> Reply {
        Reply::with(status, "application/json", value.to_string())
    }

    /// The front proxy's HTML error page (nginx style) for any status (protocol §6.2).
    pub(crate) fn nginx(status: StatusCode) -> Reply {
        let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
        let body = format!(
            "<html>\r\n<head><title>{line}</title></head>\r\n<body bgcolor=\"white\">\r\n<center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        );
        Reply::with(status, "text/html", body)
    }

    /// Adds cookies.
    pub(crate) fn set_cookies(mut self, cookies: impl IntoIterator<Item = SetCookie>) -> Reply {
        self.cookies.extend(cookies);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_strip_port_and_o_uin() {
        assert_eq!(strip_port("d1.web2.qq.com:8443"), "d1.web2.qq.com");
        assert_eq!(strip_port("s.web2.qq.com"), "s.web2.qq.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(parse_o_uin("o0123774072"), Some(123_774_072));
        assert_eq!(parse_o_uin("o"), None);
    }

    #[test]
    fn test_req_helpers() {
        let (mut parts, ()) = http::Request::builder()
            .uri("/channel/poll2?t=1&clientid=5")
            .header("Host", "D1.web2.qq.com:80")
            .header("Cookie", "a=1; ptwebqq=abc")
            .header("Cookie", "uin=o0010001")
            .body(())
            .unwrap()
            .into_parts();
        parts.method = Method::POST;
        let body = Bytes::from_static(b"r=%7B%22clientid%22%3A%2253999199%22%7D&psessionid=x");
        let req = Req::new(parts, body, false, "127.0.0.1:1".parse().unwrap());
        assert_eq!(req.host, "d1.web2.qq.com");
        assert_eq!(req.param("t"), Some("1"));
        assert_eq!(req.cookie("ptwebqq"), Some("abc"));
        assert_eq!(req.cookie_account(), Some(10001));
        assert_eq!(req.r().unwrap()["clientid"], "53999199");
        assert_eq!(req.field("psessionid").as_deref(), Some("x"));
        assert_eq!(req.field("clientid").as_deref(), Some("5"));
    }

    #[test]
    fn test_set_cookie_header() {
        assert_eq!(
            SetCookie::new("ptwebqq", "ab", "qq.com").header_value(),
            "ptwebqq=ab; Path=/; Domain=qq.com"
        );
        assert!(SetCookie::delete("skey", "qq.com").header_value().contains("1970"));
    }
}
