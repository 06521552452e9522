//! `GET <url from ptuiCB field 3>`: check_sig, which sets the session cookies.
//!
//! Protocol §1.2.6 and §1.3.4. The URL is opaque and used verbatim. The server answers 302 to the
//! proxy page and sets `ptwebqq`, `skey`, `p_skey`, `p_uin`, `pt4_token`; the redirect is not
//! followed (its body is irrelevant) and cookies are collected from this hop.

use crate::webqq::Error;
use crate::webqq::api::RawAnswer;

/// Endpoint name for errors and metrics.
pub const NAME: &str = "check_sig";

/// Hosts a check_sig URL may point at: `ptlogin4.web2.qq.com` or another `ptloginN.*.qq.com`.
pub fn is_allowed_host(host: &str) -> bool {
    host.starts_with("ptlogin") && host.ends_with(".qq.com")
}

/// Checks a check_sig URL before calling it: it must be http(s) on a ptlogin host.
pub fn validate_url(url: &str) -> Result<url::Url, Error> {
    let parsed = url::Url::parse(url).map_err(|_| Error::Flow("check_sig URL does not parse"))?;
    let host_ok = parsed.host_str().is_some_and(is_allowed_host);
    if !matches!(parsed.scheme(), "http" | "https") || !host_ok {
        return Err(Error::Flow("check_sig URL is not on a ptlogin host"));
    }
    Ok(parsed)
}

/// Accepts a 302 (or a 200 proxy page); anything else is an error.
pub fn decode(raw: &RawAnswer<'_>) -> Result<(), Error> {
    match raw.status {
        200 | 301 | 302 | 303 => Ok(()),
        status => Err(Error::HttpStatus { endpoint: NAME, status }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_validate_url() {
        assert!(super::validate_url("http://ptlogin4.web2.qq.com/check_sig?pttype=1").is_ok());
        assert!(super::validate_url("http://evil.example/check_sig").is_err());
        assert!(super::validate_url("file:///etc/passwd").is_err());
    }
}
