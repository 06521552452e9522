//! [`CookieJar`]: one cookie jar across every QQ host, persistable for session restore.
//!
//! Protocol §1.6 and §7.7: keep a real jar across `qq.com`, `ptlogin2.qq.com`, `web2.qq.com` and
//! `w.qq.com`, read Set-Cookie from every hop (redirects are not followed, so each hop is a
//! response we see), tolerate odd attributes, and persist the jar for quick re-login.

use std::sync::Mutex;

use reqwest::header::HeaderValue;

use crate::webqq::Error;

/// A cookie jar shared by the HTTP client and the login flow.
///
/// Session cookies (no `Expires`) are kept when saving: WebQQ's are all of that kind, and a
/// restarted process needs them to relink. The lock is never held across an await.
#[derive(Debug, Default)]
pub struct CookieJar {
    store: Mutex<cookie_store::CookieStore>,
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a jar saved by [`CookieJar::to_json`].
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let store = cookie_store::serde::json::load_all(json.as_bytes())
            .map_err(|e| Error::Config(format!("stored cookies do not load: {e}")))?;
        Ok(CookieJar { store: Mutex::new(store) })
    }

    /// Serialises every cookie, session cookies included. The result is a secret.
    pub fn to_json(&self) -> Result<String, Error> {
        let mut out = Vec::new();
        let store = self.lock();
        cookie_store::serde::json::save_incl_expired_and_nonpersistent(&store, &mut out)
            .map_err(|e| Error::Config(format!("cookies do not serialise: {e}")))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The value of the first unexpired cookie called `name` whose domain ends with `domain`
    /// (for example `ptwebqq` on `qq.com`, `qrsig` on `ptlogin2.qq.com`).
    pub fn get(&self, name: &str, domain: &str) -> Option<String> {
        let store = self.lock();
        store
            .iter_unexpired()
            .filter(|c| c.name() == name)
            .find(|c| c.domain().is_some_and(|d| d.trim_start_matches('.').ends_with(domain)))
            .or_else(|| store.iter_unexpired().find(|c| c.name() == name))
            .map(|c| c.value().to_owned())
    }

    /// Sets a cookie as if `https://<host>/` had sent `name=value; Domain=<domain>; Path=/`.
    ///
    /// Used for the cookies the client sets itself: `chkuin` before check (protocol §1.2.1), the
    /// rotated `ptwebqq` after poll retcode 116, `p_skey`/`p_uin` copied to `w.qq.com` (§7.7).
    pub fn set(&self, name: &str, value: &str, domain: &str) {
        let Ok(url) = url::Url::parse(&format!("https://{domain}/")) else {
            return;
        };
        let raw = cookie::Cookie::build((name.to_owned(), value.to_owned()))
            .domain(domain.to_owned())
            .path("/")
            .build();
        // A refused insert (e.g. a malformed name) leaves the jar as it was; the request that
        // needed the cookie then fails with the server's own error, which says what is missing.
        let _ = self.lock().insert_raw(&raw, &url);
    }

    /// Removes every cookie called `name` (logout drops ptwebqq and skey, protocol §1.5).
    pub fn remove(&self, name: &str) {
        let mut store = self.lock();
        let doomed: Vec<(String, String)> = store
            .iter_any()
            .filter(|c| c.name() == name)
            .map(|c| {
                (c.domain().unwrap_or_default().to_owned(), c.path().unwrap_or("/").to_owned())
            })
            .collect();
        for (domain, path) in doomed {
            store.remove(&domain, &path, name);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, cookie_store::CookieStore> {
        // A poisoned lock only means another thread panicked while holding it; the store itself
        // is still a consistent map, so keep using it.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl reqwest::cookie::CookieStore for CookieJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &url::Url) {
        let cookies: Vec<cookie::Cookie<'static>> = cookie_headers
            .filter_map(|value| value.to_str().ok())
            .filter_map(|text| cookie::Cookie::parse(text.to_owned()).ok())
            .collect();
        self.lock().store_response_cookies(cookies.into_iter(), url);
    }

    fn cookies(&self, url: &url::Url) -> Option<HeaderValue> {
        let header = self
            .lock()
            .get_request_values(url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if header.is_empty() { None } else { HeaderValue::from_str(&header).ok() }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::cookie::CookieStore as _;

    use super::*;

    #[test]
    fn test_domains_and_persistence() {
        let jar = CookieJar::new();
        let login = url::Url::parse("https://ssl.ptlogin2.qq.com/login").unwrap();
        let headers = [
            HeaderValue::from_static("skey=@abc; Domain=qq.com; Path=/"),
            HeaderValue::from_static("superkey=xyz; Domain=ptlogin2.qq.com; Path=/"),
            HeaderValue::from_static(
                "odd=1; Domain=qq.com; Path=/; Expires=Thu, 01-Jan-1970 00:00:00 GMT",
            ),
        ];
        jar.set_cookies(&mut headers.iter(), &login);
        let channel = url::Url::parse("http://d1.web2.qq.com/channel/poll2").unwrap();
        let sent = jar.cookies(&channel).unwrap();
        assert_eq!(sent.to_str().unwrap(), "skey=@abc");
        jar.set("ptwebqq", "p1", "qq.com");
        assert_eq!(jar.get("ptwebqq", "qq.com").as_deref(), Some("p1"));
        let restored = CookieJar::from_json(&jar.to_json().unwrap()).unwrap();
        assert_eq!(restored.get("superkey", "ptlogin2.qq.com").as_deref(), Some("xyz"));
        assert_eq!(restored.get("skey", "qq.com").as_deref(), Some("@abc"));
        restored.remove("skey");
        assert_eq!(restored.get("skey", "qq.com"), None);
        assert!(CookieJar::from_json("not json").is_err());
    }
}
