//! [`CookieJar`]: one compact cookie jar across every QQ host, persistable for session restore.
//!
//! Protocol §1.6 and §7.7: keep a real jar across `qq.com`, `ptlogin2.qq.com`, `web2.qq.com` and
//! `w.qq.com`, read Set-Cookie from every hop (redirects are not followed, so each hop is a
//! response we see), tolerate odd attributes, and persist the jar for quick re-login. Matching
//! follows RFC 6265 §5.1.3 (domain), §5.1.4 (path) and §5.4 (Secure, order); one process holds
//! thousands of jars, so each cookie is a single allocation.

use std::sync::Mutex;

use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::webqq::Error;

/// A cookie jar shared by the HTTP client and the login flow.
///
/// Session cookies (no `Expires`) are kept when saving: WebQQ's are all of that kind, and a
/// restarted process needs them to relink. The lock is never held across an await. `Debug` shows
/// names and domains, never values.
#[derive(Default)]
pub struct CookieJar {
    cookies: Mutex<Vec<Stored>>,
}

/// One cookie: `name`, `value`, `domain`, `path` in one boxed string.
#[derive(Clone, PartialEq, Eq)]
struct Stored {
    text: Box<str>,
    name_len: u16,
    value_len: u16,
    domain_len: u16,
    /// Unix seconds; 0 for a session cookie.
    expires: u64,
    host_only: bool,
    secure: bool,
}

/// A cookie as parsed, before it is packed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fields<'a> {
    name: &'a str,
    value: &'a str,
    /// Lower case, no leading dot.
    domain: &'a str,
    path: &'a str,
    expires: u64,
    host_only: bool,
    secure: bool,
}

impl Stored {
    /// Packs a cookie; `None` when a part is longer than 64 KiB (browsers keep 4 KiB at most).
    fn pack(f: &Fields<'_>) -> Option<Self> {
        let name_len = u16::try_from(f.name.len()).ok()?;
        let value_len = u16::try_from(f.value.len()).ok()?;
        let domain_len = u16::try_from(f.domain.len()).ok()?;
        u16::try_from(f.path.len()).ok()?;
        let text = [f.name, f.value, f.domain, f.path].concat().into_boxed_str();
        Some(Stored {
            text,
            name_len,
            value_len,
            domain_len,
            expires: f.expires,
            host_only: f.host_only,
            secure: f.secure,
        })
    }

    fn fields(&self) -> Fields<'_> {
        let (name, rest) = split(&self.text, self.name_len);
        let (value, rest) = split(rest, self.value_len);
        let (domain, path) = split(rest, self.domain_len);
        Fields {
            name,
            value,
            domain,
            path,
            expires: self.expires,
            host_only: self.host_only,
            secure: self.secure,
        }
    }

    fn name(&self) -> &str {
        self.fields().name
    }

    fn expired(&self, now: u64) -> bool {
        self.expires != 0 && self.expires <= now
    }
}

/// Splits at `at`; the lengths were taken from the same pieces, so the cut is on a boundary, and
/// `str::split_at_checked` keeps a bad cut from panicking anyway.
fn split(text: &str, at: u16) -> (&str, &str) {
    text.split_at_checked(usize::from(at)).unwrap_or((text, ""))
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cookies = self.lock();
        let mut list = f.debug_list();
        for cookie in cookies.iter() {
            let c = cookie.fields();
            list.entry(&format_args!("{}@{}{}", c.name, c.domain, c.path));
        }
        list.finish()
    }
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a jar saved by [`CookieJar::to_json`], or by older versions (cookie_store's
    /// JSON list). Cookies that expired meanwhile are dropped.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let saved: Vec<Saved<'_>> = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("stored cookies do not load: {e}")))?;
        let now = now();
        let cookies =
            saved.iter().filter_map(Saved::stored).filter(|c| !c.expired(now)).collect::<Vec<_>>();
        Ok(CookieJar { cookies: Mutex::new(cookies) })
    }

    /// Serialises every cookie, session cookies included. The result is a secret.
    pub fn to_json(&self) -> Result<String, Error> {
        let cookies = self.lock();
        let saved: Vec<SavedCookie<'_>> = cookies
            .iter()
            .map(|c| {
                let f = c.fields();
                SavedCookie {
                    name: f.name.into(),
                    value: f.value.into(),
                    domain: f.domain.into(),
                    path: f.path.into(),
                    host_only: f.host_only,
                    secure: f.secure,
                    expires: f.expires,
                }
            })
            .collect();
        serde_json::to_string(&saved)
            .map_err(|e| Error::Config(format!("cookies do not serialise: {e}")))
    }

    /// The value of the first unexpired cookie called `name` whose domain ends with `domain`
    /// (for example `ptwebqq` on `qq.com`, `qrsig` on `ptlogin2.qq.com`), else of any unexpired
    /// cookie called `name`.
    pub fn get(&self, name: &str, domain: &str) -> Option<String> {
        let now = now();
        let cookies = self.lock();
        let mut named = cookies
            .iter()
            .map(Stored::fields)
            .filter(|c| c.name == name && (c.expires == 0 || c.expires > now));
        named
            .clone()
            .find(|c| c.domain.ends_with(domain))
            .or_else(|| named.next())
            .map(|c| c.value.to_owned())
    }

    /// Sets a cookie as if `https://<host>/` had sent `name=value; Domain=<domain>; Path=/`.
    ///
    /// Used for the cookies the client sets itself: `chkuin` before check (protocol §1.2.1), the
    /// rotated `ptwebqq` after poll retcode 116, `p_skey`/`p_uin` copied to `w.qq.com` (§7.7).
    pub fn set(&self, name: &str, value: &str, domain: &str) {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        // A refused cookie (e.g. an empty name) leaves the jar as it was; the request that
        // needed it then fails with the server's own error, which says what is missing.
        if name.is_empty() || domain.is_empty() {
            return;
        }
        let fields = Fields {
            name,
            value,
            domain: &domain,
            path: "/",
            expires: 0,
            host_only: false,
            secure: false,
        };
        if let Some(stored) = Stored::pack(&fields) {
            insert(&mut self.lock(), stored);
        }
    }

    /// Removes every cookie called `name` (logout drops ptwebqq and skey, protocol §1.5).
    pub fn remove(&self, name: &str) {
        self.lock().retain(|c| c.name() != name);
    }

    /// Stores one `Set-Cookie` header value received from `url` (RFC 6265 §5.3). A cookie whose
    /// `Domain` does not cover the host is ignored; `Max-Age=0` or a past `Expires` deletes.
    pub fn store_set_cookie(&self, header: &str, url: &url::Url) {
        if let Some(host) = url.host_str() {
            self.store_set_cookie_from(header, host, url.path());
        }
    }

    /// [`CookieJar::store_set_cookie`] for an answer from `host` to a request for `path`.
    pub fn store_set_cookie_from(&self, header: &str, host: &str, path: &str) {
        let Some(parsed) = parse_set_cookie(header, host, path, now()) else {
            return;
        };
        let mut cookies = self.lock();
        match parsed {
            Parsed::Store(stored) => insert(&mut cookies, stored),
            Parsed::Delete { name, domain, path } => cookies.retain(|c| {
                let f = c.fields();
                !(f.name == name && f.domain == domain && f.path == path)
            }),
        }
    }

    /// The `Cookie` header for a request to `url` (RFC 6265 §5.4): matching cookies, longer
    /// paths first, then oldest first. `None` when no cookie matches.
    pub fn header_for(&self, url: &url::Url) -> Option<String> {
        self.header_for_parts(url.scheme() == "https", url.host_str()?, url.path())
    }

    /// [`CookieJar::header_for`] for a request to `host` `path`, over https when `secure`.
    pub fn header_for_parts(&self, secure: bool, host: &str, path: &str) -> Option<String> {
        let host = host.to_ascii_lowercase();
        let now = now();
        let cookies = self.lock();
        let mut matching: Vec<Fields<'_>> = cookies
            .iter()
            .map(Stored::fields)
            .filter(|c| (secure || !c.secure) && (c.expires == 0 || c.expires > now))
            .filter(|c| if c.host_only { host == c.domain } else { domain_match(&host, c.domain) })
            .filter(|c| path_match(path, c.path))
            .collect();
        // A stable sort keeps insertion (creation) order among equal path lengths.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let mut header = String::new();
        for c in matching {
            if !header.is_empty() {
                header.push_str("; ");
            }
            header.push_str(c.name);
            header.push('=');
            header.push_str(c.value);
        }
        if header.is_empty() { None } else { Some(header) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Stored>> {
        // A poisoned lock only means another thread panicked while holding it; every change is
        // a single push, swap or retain, so the list itself is still consistent.
        self.cookies.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl reqwest::cookie::CookieStore for CookieJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &url::Url) {
        for value in cookie_headers {
            if let Ok(text) = value.to_str() {
                self.store_set_cookie(text, url);
            }
        }
    }

    fn cookies(&self, url: &url::Url) -> Option<HeaderValue> {
        self.header_for(url).and_then(|h| HeaderValue::from_str(&h).ok())
    }
}

/// Replaces the cookie with the same name, domain and path in place (it keeps its creation
/// order, RFC 6265 §5.3 step 11), or appends it.
fn insert(cookies: &mut Vec<Stored>, stored: Stored) {
    let new = stored.fields();
    let same = cookies.iter().position(|c| {
        let old = c.fields();
        old.name == new.name && old.domain == new.domain && old.path == new.path
    });
    match same.and_then(|i| cookies.get_mut(i)) {
        Some(slot) => *slot = stored,
        None => cookies.push(stored),
    }
}

/// What one Set-Cookie header asks for.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Store(Stored),
    Delete { name: String, domain: String, path: String },
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.fields();
        write!(
            f,
            "{}@{}{} (host_only {}, secure {})",
            c.name, c.domain, c.path, c.host_only, c.secure
        )
    }
}

/// Parses a Set-Cookie header received from `host` `request_path` at unix time `now`.
fn parse_set_cookie(header: &str, host: &str, request_path: &str, now: u64) -> Option<Parsed> {
    let cookie = cookie::Cookie::parse(header).ok()?;
    let host = host.to_ascii_lowercase();
    let (domain, host_only) = match cookie.domain().map(|d| d.trim_start_matches('.')) {
        Some(d) if !d.is_empty() => {
            let d = d.to_ascii_lowercase();
            // §5.3 step 6: the Domain must cover the host that set it; a bare top-level name
            // ("com") is refused as a public suffix.
            if !(host == d || (domain_match(&host, &d) && d.contains('.'))) {
                return None;
            }
            (d, false)
        }
        _ => (host, true),
    };
    let path = match cookie.path() {
        Some(p) if p.starts_with('/') => p.to_owned(),
        _ => default_path(request_path).to_owned(),
    };
    // §5.3 step 3: Max-Age wins over Expires.
    let expires = if let Some(max_age) = cookie.max_age() {
        let seconds = max_age.whole_seconds();
        if seconds <= 0 { Some(0) } else { Some(now.saturating_add(seconds.unsigned_abs())) }
    } else {
        cookie.expires_datetime().map(|at| u64::try_from(at.unix_timestamp()).unwrap_or(0))
    };
    let name = cookie.name();
    match expires {
        Some(at) if at <= now => Some(Parsed::Delete { name: name.to_owned(), domain, path }),
        _ => {
            let fields = Fields {
                name,
                value: cookie.value(),
                domain: &domain,
                path: &path,
                expires: expires.unwrap_or(0),
                host_only,
                secure: cookie.secure().unwrap_or(false),
            };
            Stored::pack(&fields).map(Parsed::Store)
        }
    }
}

/// RFC 6265 §5.1.3: `host` is `domain` or a subdomain of it, and not an IP address.
fn domain_match(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    host.strip_suffix(domain).is_some_and(|prefix| prefix.ends_with('.'))
        && host.parse::<std::net::IpAddr>().is_err()
}

/// RFC 6265 §5.1.4: the cookie path is the request path or a directory prefix of it.
fn path_match(request: &str, cookie: &str) -> bool {
    let request = if request.is_empty() { "/" } else { request };
    match request.strip_prefix(cookie) {
        Some(rest) => rest.is_empty() || cookie.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// RFC 6265 §5.1.4: the directory of the request path.
fn default_path(request: &str) -> &str {
    match request.rfind('/') {
        Some(0) | None => "/",
        Some(i) => request.get(..i).unwrap_or("/"),
    }
}

fn now() -> u64 {
    crate::webqq::session::unix_now()
}

/// This version's saved form of one cookie.
#[derive(Debug, Serialize, Deserialize)]
struct SavedCookie<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    value: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    domain: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    path: std::borrow::Cow<'a, str>,
    host_only: bool,
    #[serde(default)]
    secure: bool,
    /// Unix seconds; 0 for a session cookie.
    #[serde(default)]
    expires: u64,
}

/// One element of a saved jar: this version's form or cookie_store 0.22's (older versions).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Saved<'a> {
    #[serde(borrow)]
    Compact(SavedCookie<'a>),
    Legacy(LegacyCookie),
}

/// cookie_store's serde form: the raw Set-Cookie text plus the resolved path, domain, expiry.
#[derive(Debug, Deserialize)]
struct LegacyCookie {
    raw_cookie: String,
    path: (String, bool),
    domain: LegacyDomain,
    expires: LegacyExpires,
}

#[derive(Debug, Deserialize)]
enum LegacyDomain {
    HostOnly(String),
    Suffix(String),
    NotPresent,
    Empty,
}

#[derive(Debug, Deserialize)]
enum LegacyExpires {
    AtUtc(String),
    SessionEnd,
}

impl Saved<'_> {
    fn stored(&self) -> Option<Stored> {
        match self {
            Saved::Compact(c) => {
                let domain = c.domain.trim_start_matches('.').to_ascii_lowercase();
                Stored::pack(&Fields {
                    name: &c.name,
                    value: &c.value,
                    domain: &domain,
                    path: &c.path,
                    expires: c.expires,
                    host_only: c.host_only,
                    secure: c.secure,
                })
            }
            Saved::Legacy(c) => {
                let raw = cookie::Cookie::parse(c.raw_cookie.as_str()).ok()?;
                let (domain, host_only) = match &c.domain {
                    LegacyDomain::HostOnly(d) => (d.as_str(), true),
                    LegacyDomain::Suffix(d) => (d.as_str(), false),
                    // cookie_store never stores these two; nothing to match them against.
                    LegacyDomain::NotPresent | LegacyDomain::Empty => return None,
                };
                let domain = domain.trim_start_matches('.').to_ascii_lowercase();
                let expires = match &c.expires {
                    LegacyExpires::SessionEnd => 0,
                    // An unreadable date keeps the cookie as a session cookie (protocol §7.7:
                    // tolerate odd expiry dates rather than lose the session).
                    LegacyExpires::AtUtc(at) => rfc3339_unix(at).unwrap_or(0),
                };
                Stored::pack(&Fields {
                    name: raw.name(),
                    value: raw.value(),
                    domain: &domain,
                    path: &c.path.0,
                    expires,
                    host_only,
                    secure: raw.secure().unwrap_or(false),
                })
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS…Z` (UTC, as cookie_store wrote it) to unix seconds; `None` when
/// malformed or before 1970.
fn rfc3339_unix(text: &str) -> Option<u64> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second.min(60);
    u64::try_from(seconds).ok()
}

#[cfg(test)]
mod tests;
