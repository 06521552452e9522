//! Tests of the cookie jar: RFC 6265 matching, the protocol's cookies, both saved forms.

use reqwest::cookie::CookieStore as _;

use super::*;

fn url(u: &str) -> url::Url {
    url::Url::parse(u).unwrap()
}

fn jar_with(from: &str, headers: &[&str]) -> CookieJar {
    let jar = CookieJar::new();
    for h in headers {
        jar.store_set_cookie(h, &url(from));
    }
    jar
}

#[test]
fn test_domain_match() {
    let cases = [
        ("qq.com", "qq.com", true),
        ("d1.web2.qq.com", "qq.com", true),
        ("d1.web2.qq.com", "web2.qq.com", true),
        ("w.qq.com", "web2.qq.com", false),
        ("xqq.com", "qq.com", false),
        ("qq.com", "d1.web2.qq.com", false),
        ("1.2.3.4", "2.3.4", false),
        ("1.2.3.4", "1.2.3.4", true),
    ];
    for (host, domain, want) in cases {
        assert_eq!(domain_match(host, domain), want, "{host} vs {domain}");
    }
}

#[test]
fn test_path_match_and_default_path() {
    let cases = [
        ("/channel/poll2", "/", true),
        ("/channel/poll2", "/channel", true),
        ("/channel/poll2", "/channel/", true),
        ("/channels", "/channel", false),
        ("/channel", "/channel", true),
        ("/", "/channel", false),
        ("", "/", true),
    ];
    for (request, cookie, want) in cases {
        assert_eq!(path_match(request, cookie), want, "{request} vs {cookie}");
    }
    let defaults = [("/", "/"), ("", "/"), ("/login", "/"), ("/cgi-bin/xlogin", "/cgi-bin")];
    for (request, want) in defaults {
        assert_eq!(default_path(request), want, "{request}");
    }
}

#[test]
fn test_which_cookies_are_sent_where() {
    // (set by, Set-Cookie, request URL, expected Cookie header)
    let cases: [(&str, &str, &str, Option<&str>); 11] = [
        // protocol §1.6: login success sets skey on qq.com, superkey on ptlogin2.qq.com.
        (
            "https://ssl.ptlogin2.qq.com/login",
            "skey=@a; Domain=qq.com; Path=/",
            "http://d1.web2.qq.com/channel/poll2",
            Some("skey=@a"),
        ),
        (
            "https://ssl.ptlogin2.qq.com/login",
            "superkey=k; Domain=ptlogin2.qq.com; Path=/",
            "http://d1.web2.qq.com/channel/poll2",
            None,
        ),
        (
            "https://ssl.ptlogin2.qq.com/login",
            "superkey=k; Domain=ptlogin2.qq.com; Path=/",
            "https://ssl.ptlogin2.qq.com/pt4_auth",
            Some("superkey=k"),
        ),
        // qrsig: no Domain attribute, so only the host that set it gets it back.
        (
            "https://ssl.ptlogin2.qq.com/ptqrshow",
            "qrsig=q; Path=/",
            "https://ssl.ptlogin2.qq.com/ptqrlogin",
            Some("qrsig=q"),
        ),
        (
            "https://ssl.ptlogin2.qq.com/ptqrshow",
            "qrsig=q; Path=/",
            "https://xui.ptlogin2.qq.com/x",
            None,
        ),
        // A Domain that does not cover the sender is refused, so is a bare top-level name.
        ("http://s.web2.qq.com/api", "x=1; Domain=example.com", "http://example.com/", None),
        ("http://s.web2.qq.com/api", "x=1; Domain=com", "http://s.web2.qq.com/api", None),
        // Secure only on https.
        (
            "https://ssl.ptlogin2.qq.com/login",
            "s=1; Domain=qq.com; Secure",
            "http://d1.web2.qq.com/",
            None,
        ),
        (
            "https://ssl.ptlogin2.qq.com/login",
            "s=1; Domain=qq.com; Secure",
            "https://w.qq.com/",
            Some("s=1"),
        ),
        // Path scoping, and the default path is the sender's directory.
        (
            "http://d1.web2.qq.com/channel/login2",
            "c=1; Domain=qq.com",
            "http://d1.web2.qq.com/channel/poll2",
            Some("c=1"),
        ),
        (
            "http://d1.web2.qq.com/channel/login2",
            "c=1; Domain=qq.com",
            "http://d1.web2.qq.com/proxy.html",
            None,
        ),
    ];
    for (from, header, to, want) in cases {
        let jar = jar_with(from, &[header]);
        assert_eq!(jar.header_for(&url(to)).as_deref(), want, "{header} from {from} to {to}");
    }
}

#[test]
fn test_replacement_deletion_and_order() {
    let from = "https://ssl.ptlogin2.qq.com/login";
    let poll = url("http://d1.web2.qq.com/channel/poll2");
    let jar = jar_with(from, &["a=1; Domain=qq.com; Path=/", "b=2; Domain=qq.com; Path=/"]);
    jar.store_set_cookie("a=3; Domain=.QQ.com; Path=/", &url(from));
    assert_eq!(jar.header_for(&poll).as_deref(), Some("a=3; b=2"));
    // A longer path goes first.
    jar.store_set_cookie("c=4; Domain=qq.com; Path=/channel", &url(from));
    assert_eq!(jar.header_for(&poll).as_deref(), Some("c=4; a=3; b=2"));
    let deletions = [
        "a=; Domain=qq.com; Path=/; Max-Age=0",
        "b=; Domain=qq.com; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        "c=; Domain=qq.com; Path=/channel; Max-Age=-5",
    ];
    for d in deletions {
        jar.store_set_cookie(d, &url(from));
    }
    assert_eq!(jar.header_for(&poll), None);
    // Max-Age wins over a past Expires; an unreadable Expires keeps a session cookie.
    jar.store_set_cookie(
        "m=1; Domain=qq.com; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        &url(from),
    );
    jar.store_set_cookie("o=2; Domain=qq.com; Expires=someday", &url(from));
    assert_eq!(jar.header_for(&poll).as_deref(), Some("m=1; o=2"));
    // Garbage headers do nothing.
    for junk in ["", "=v", ";;;", "no-equals-sign"] {
        jar.store_set_cookie(junk, &url(from));
    }
    assert_eq!(jar.header_for(&poll).as_deref(), Some("m=1; o=2"));
}

#[test]
fn test_protocol_cookies() {
    let jar = jar_with(
        "http://ptlogin4.web2.qq.com/check_sig",
        &[
            "ptwebqq=pt1; Path=/; Domain=qq.com",
            "p_skey=ps; Path=/; Domain=web2.qq.com",
            "p_uin=o0123; Path=/; Domain=web2.qq.com",
            "uin=o0123; Path=/; Domain=qq.com",
        ],
    );
    assert_eq!(jar.get("ptwebqq", "qq.com").as_deref(), Some("pt1"));
    // §7.7: p_skey/p_uin copied to w.qq.com for get_offpic2.
    let offpic = url("http://w.qq.com/d/channel/get_offpic2");
    assert_eq!(jar.header_for(&offpic).as_deref(), Some("ptwebqq=pt1; uin=o0123"));
    jar.set("p_skey", &jar.get("p_skey", "web2.qq.com").unwrap(), "w.qq.com");
    jar.set("p_uin", &jar.get("p_uin", "web2.qq.com").unwrap(), "w.qq.com");
    assert_eq!(
        jar.header_for(&offpic).as_deref(),
        Some("ptwebqq=pt1; uin=o0123; p_skey=ps; p_uin=o0123")
    );
    // Retcode 116 rotates ptwebqq in place.
    jar.set("ptwebqq", "pt2", "qq.com");
    assert_eq!(jar.get("ptwebqq", "qq.com").as_deref(), Some("pt2"));
    // get falls back to any domain; remove drops every copy.
    assert_eq!(jar.get("p_skey", "ptlogin2.qq.com").as_deref(), Some("ps"));
    jar.remove("p_skey");
    assert_eq!(jar.get("p_skey", "w.qq.com"), None);
    assert!(!format!("{jar:?}").contains("pt2"), "values stay out of Debug");
}

#[test]
fn test_domains_and_persistence() {
    let jar = CookieJar::new();
    let login = url("https://ssl.ptlogin2.qq.com/login");
    let headers = [
        HeaderValue::from_static("skey=@abc; Domain=qq.com; Path=/"),
        HeaderValue::from_static("superkey=xyz; Domain=ptlogin2.qq.com; Path=/"),
        HeaderValue::from_static(
            "odd=1; Domain=qq.com; Path=/; Expires=Thu, 01-Jan-1970 00:00:00 GMT",
        ),
        HeaderValue::from_static("later=2; Path=/cgi-bin; Max-Age=3600; Secure"),
    ];
    jar.set_cookies(&mut headers.iter(), &login);
    let channel = url("http://d1.web2.qq.com/channel/poll2");
    assert_eq!(jar.cookies(&channel).unwrap().to_str().unwrap(), "skey=@abc");
    jar.set("ptwebqq", "p1", "qq.com");
    let json = jar.to_json().unwrap();
    let restored = CookieJar::from_json(&json).unwrap();
    assert_eq!(restored.to_json().unwrap(), json);
    assert_eq!(restored.get("superkey", "ptlogin2.qq.com").as_deref(), Some("xyz"));
    let cgi = url("https://ssl.ptlogin2.qq.com/cgi-bin/x");
    assert_eq!(
        restored.header_for(&cgi).as_deref(),
        Some("later=2; skey=@abc; superkey=xyz; ptwebqq=p1")
    );
    restored.remove("skey");
    assert_eq!(restored.get("skey", "qq.com"), None);
    assert!(CookieJar::from_json("not json").is_err());
}

#[test]
fn test_loads_cookie_store_json() {
    // The form older versions saved (cookie_store 0.22, save_incl_expired_and_nonpersistent).
    let legacy = r#"[
  {
    "raw_cookie": "skey=@abc; Path=/; Domain=qq.com",
    "path": ["/", true],
    "domain": {"Suffix": "qq.com"},
    "expires": "SessionEnd"
  },
  {
    "raw_cookie": "qrsig=q1; Path=/",
    "path": ["/", true],
    "domain": {"HostOnly": "ssl.ptlogin2.qq.com"},
    "expires": "SessionEnd"
  },
  {
    "raw_cookie": "keep=1; Secure; Path=/; Expires=Tue, 03 Aug 2100 00:38:37 GMT",
    "path": ["/", true],
    "domain": {"Suffix": "qq.com"},
    "expires": {"AtUtc": "2100-08-03T00:38:37Z"}
  },
  {
    "raw_cookie": "gone=1; Path=/; Expires=Thu, 03 Aug 2000 00:38:37 GMT",
    "path": ["/", true],
    "domain": {"Suffix": "qq.com"},
    "expires": {"AtUtc": "2000-08-03T00:38:37Z"}
  }
]
"#;
    let jar = CookieJar::from_json(legacy).unwrap();
    let ptlogin = url("https://ssl.ptlogin2.qq.com/ptqrlogin");
    assert_eq!(jar.header_for(&ptlogin).as_deref(), Some("skey=@abc; qrsig=q1; keep=1"));
    let poll = url("http://d1.web2.qq.com/channel/poll2");
    assert_eq!(jar.header_for(&poll).as_deref(), Some("skey=@abc"));
    assert_eq!(jar.get("gone", "qq.com"), None);
    assert_eq!(
        CookieJar::from_json(&jar.to_json().unwrap()).unwrap().to_json().unwrap(),
        jar.to_json().unwrap()
    );
}

#[test]
fn test_rfc3339_unix() {
    let cases = [
        ("1970-01-01T00:00:00Z", Some(0)),
        ("2000-08-03T00:38:37Z", Some(965_263_117)),
        ("2100-08-03T00:38:37.123Z", Some(4_120_936_717)),
        ("2024-02-29T12:00:00Z", Some(1_709_208_000)),
        ("1969-12-31T23:59:59Z", None),
        ("2000-13-03T00:38:37Z", None),
        ("2000-08-03", None),
        ("garbage", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(rfc3339_unix(text), want, "{text}");
    }
}
