//! ptlogin-side state: pending `check` answers (salt, verify code, captcha), QR codes and their
//! scan state, and the logins ("auths") that check_sig, getvfwebqq and login2 build on.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::emulator::session::random_hex;
use crate::webqq::QqNumber;

/// How long a check answer (salt, code) stays valid for `/login` ("页面过期", ptuiCB 4/2).
pub(crate) const CHECK_LIFETIME: Duration = Duration::from_secs(600);

/// What `/check` told a client about one QQ number.
#[derive(Clone, Debug)]
pub(crate) struct CheckRecord {
    /// The salt sent (8 bytes).
    pub salt: [u8; 8],
    /// The verify code: `!XYZ` when no captcha, else the text drawn in the captcha.
    pub code: String,
    /// A captcha is required.
    pub captcha: bool,
    /// The opaque `cap_cd` given for getimage.
    pub cap_cd: String,
    /// The `pt_verifysession` (2015 form) or the `verifysession` cookie from getimage.
    pub verifysession: String,
    /// When issued.
    pub created: Instant,
}

/// Where a QR code is in its life (protocol §1.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QrState {
    /// Shown, not scanned (66).
    Waiting,
    /// Scanned by this person, waiting for confirmation (67).
    Scanned(QqNumber),
    /// Confirmed: the next ptqrlogin succeeds (0).
    Confirmed(QqNumber),
    /// Already used for a login.
    Used,
}

/// One QR code from ptqrshow.
#[derive(Clone, Debug)]
pub(crate) struct QrCode {
    /// The `qrsig` cookie value.
    pub qrsig: String,
    /// When shown.
    pub created: Instant,
    /// Scan state.
    pub state: QrState,
    /// Order of creation (newest = highest).
    pub seq: u64,
}

/// A completed ptlogin login: the cookies it set and the tokens built on it.
#[derive(Clone, Debug)]
pub(crate) struct Auth {
    /// The account.
    pub account: QqNumber,
    /// `skey` cookie (`@` + 9 chars).
    pub skey: String,
    /// `supertoken` cookie (for pt4_auth).
    pub supertoken: String,
    /// The `ptsigx` of the check_sig URL.
    pub ptsigx: String,
    /// `ptwebqq` cookie, set by check_sig.
    pub ptwebqq: Option<String>,
    /// vfwebqq, drawn by getvfwebqq or login2.
    pub vfwebqq: Option<String>,
    /// When the ptlogin login happened.
    pub created: Instant,
}

/// All ptlogin-side state, behind one mutex in the shared state.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    checks: HashMap<QqNumber, CheckRecord>,
    qr: HashMap<String, QrCode>,
    qr_seq: u64,
    auths: HashMap<String, Auth>,
    by_ptsigx: HashMap<String, String>,
    by_ptwebqq: HashMap<String, String>,
    by_supertoken: HashMap<String, String>,
}

/// An `skey`: `@` and nine letters or digits (protocol §0.2, §8).
pub(crate) fn random_skey() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..9)
        .map(|_| {
            char::from(ALPHABET.get(rng.random_range(0..ALPHABET.len())).copied().unwrap_or(b'A'))
        })
        .collect();
    format!("@{tail}")
}

impl LoginState {
    /// Stores a check answer for `qq`, replacing the previous one.
    pub(crate) fn put_check(&mut self, qq: QqNumber, record: CheckRecord) {
        self.checks.insert(qq, record);
    }

    /// The live check answer for `qq`.
    pub(crate) fn check(&self, qq: QqNumber, now: Instant) -> Option<&CheckRecord> {
        self.checks.get(&qq).filter(|c| now.saturating_duration_since(c.created) < CHECK_LIFETIME)
    }

    /// Records the verifysession getimage set for `qq` and returns the captcha text. A given
    /// `cap_cd` must be the one `/check` handed out.
    pub(crate) fn captcha_shown(
        &mut self,
        qq: QqNumber,
        cap_cd: Option<&str>,
        verifysession: String,
    ) -> Option<String> {
        let record = self.checks.get_mut(&qq).filter(|r| cap_cd.is_none_or(|c| c == r.cap_cd))?;
        record.verifysession = verifysession;
        Some(record.code.clone())
    }

    /// The captcha texts of pending checks, by QQ number (a test hook: a person reads them).
    pub(crate) fn captcha_texts(&self) -> Vec<(QqNumber, String)> {
        self.checks.iter().filter(|(_, c)| c.captcha).map(|(q, c)| (*q, c.code.clone())).collect()
    }

    /// Forgets the check answer (used or failed logins need a new check).
    pub(crate) fn drop_check(&mut self, qq: QqNumber) {
        self.checks.remove(&qq);
    }

    /// A new QR code; old expired ones are forgotten.
    pub(crate) fn new_qr(&mut self, now: Instant, lifetime: Duration) -> QrCode {
        self.qr.retain(|_, q| now.saturating_duration_since(q.created) < lifetime * 3);
        self.qr_seq += 1;
        // The real qrsig looks like base64 with `*` and `-` (protocol §1.3.2 vector).
        let qrsig = random_hex(64);
        let code = QrCode {
            qrsig: qrsig.clone(),
            created: now,
            state: QrState::Waiting,
            seq: self.qr_seq,
        };
        self.qr.insert(qrsig, code.clone());
        code
    }

    /// The QR code for a `qrsig`.
    pub(crate) fn qr(&mut self, qrsig: &str) -> Option<&mut QrCode> {
        self.qr.get_mut(qrsig)
    }

    /// The newest QR code still waiting or scanned and not expired (what a person's phone
    /// would scan).
    pub(crate) fn newest_pending_qr(
        &mut self,
        now: Instant,
        lifetime: Duration,
    ) -> Option<&mut QrCode> {
        self.qr
            .values_mut()
            .filter(|q| {
                matches!(q.state, QrState::Waiting | QrState::Scanned(_))
                    && now.saturating_duration_since(q.created) < lifetime
            })
            .max_by_key(|q| q.seq)
    }

    /// Pending QR codes for the state report: (age, state).
    pub(crate) fn pending_qr(&self) -> Vec<(Duration, QrState)> {
        let now = Instant::now();
        self.qr
            .values()
            .filter(|q| matches!(q.state, QrState::Waiting | QrState::Scanned(_)))
            .map(|q| (now.saturating_duration_since(q.created), q.state))
            .collect()
    }

    /// Records a completed ptlogin login and returns it.
    pub(crate) fn new_auth(&mut self, account: QqNumber, now: Instant) -> Auth {
        let auth = Auth {
            account,
            skey: random_skey(),
            supertoken: rand::rng().random_range(100_000_000_u64..4_000_000_000).to_string(),
            ptsigx: random_hex(128),
            ptwebqq: None,
            vfwebqq: None,
            created: now,
        };
        self.by_ptsigx.insert(auth.ptsigx.clone(), auth.skey.clone());
        self.by_supertoken.insert(auth.supertoken.clone(), auth.skey.clone());
        self.auths.insert(auth.skey.clone(), auth.clone());
        auth
    }

    /// The auth behind a check_sig `ptsigx`.
    pub(crate) fn by_ptsigx(&mut self, ptsigx: &str) -> Option<&mut Auth> {
        let skey = self.by_ptsigx.get(ptsigx)?;
        self.auths.get_mut(skey)
    }

    /// The auth behind a `supertoken` (pt4_auth).
    pub(crate) fn by_supertoken(&self, supertoken: &str) -> Option<&Auth> {
        self.auths.get(self.by_supertoken.get(supertoken)?)
    }

    /// Sets the ptwebqq of an auth (check_sig, or a 116 rotation).
    pub(crate) fn set_ptwebqq(&mut self, skey: &str, ptwebqq: String) {
        if let Some(auth) = self.auths.get_mut(skey) {
            if let Some(old) = auth.ptwebqq.replace(ptwebqq.clone()) {
                self.by_ptwebqq.remove(&old);
            }
            self.by_ptwebqq.insert(ptwebqq, skey.to_owned());
        }
    }

    /// The auth a request's cookies name: by `skey`, else by `ptwebqq`.
    pub(crate) fn by_cookies(
        &mut self,
        skey: Option<&str>,
        ptwebqq: Option<&str>,
    ) -> Option<&mut Auth> {
        let key = match skey.filter(|s| self.auths.contains_key(*s)) {
            Some(s) => s.to_owned(),
            None => self.by_ptwebqq.get(ptwebqq?)?.clone(),
        };
        self.auths.get_mut(&key)
    }

    /// Forgets an auth (logout).
    pub(crate) fn remove_auth(&mut self, skey: &str) {
        if let Some(auth) = self.auths.remove(skey) {
            self.by_ptsigx.remove(&auth.ptsigx);
            self.by_supertoken.remove(&auth.supertoken);
            if let Some(p) = auth.ptwebqq {
                self.by_ptwebqq.remove(&p);
            }
        }
    }

    /// Forgets auths older than `ttl`.
    pub(crate) fn sweep(&mut self, now: Instant, ttl: Duration) {
        let old: Vec<String> = self
            .auths
            .values()
            .filter(|a| now.saturating_duration_since(a.created) > ttl)
            .map(|a| a.skey.clone())
            .collect();
        for skey in old {
            self.remove_auth(&skey);
        }
        self.checks.retain(|_, c| now.saturating_duration_since(c.created) < CHECK_LIFETIME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_skey_shape() {
        let s = random_skey();
        assert_eq!(s.len(), 10);
        assert!(s.starts_with('@'));
    }

    #[test]
    fn test_qr_newest_pending_and_expiry() {
        let mut st = LoginState::default();
        let t0 = Instant::now();
        let life = Duration::from_secs(120);
        let a = st.new_qr(t0, life);
        let b = st.new_qr(t0 + Duration::from_secs(1), life);
        assert_eq!(st.newest_pending_qr(t0, life).map(|q| q.qrsig.clone()), Some(b.qrsig.clone()));
        if let Some(q) = st.qr(&b.qrsig) {
            q.state = QrState::Used;
        }
        assert_eq!(st.newest_pending_qr(t0, life).map(|q| q.qrsig.clone()), Some(a.qrsig));
        assert!(st.newest_pending_qr(t0 + Duration::from_secs(200), life).is_none());
    }

    #[test]
    fn test_auth_lookup_by_cookies() {
        let mut st = LoginState::default();
        let now = Instant::now();
        let auth = st.new_auth(QqNumber::new(10001), now);
        st.set_ptwebqq(&auth.skey, "p1".to_owned());
        assert!(st.by_cookies(Some(&auth.skey), None).is_some());
        assert!(st.by_cookies(Some("@nope"), Some("p1")).is_some());
        st.set_ptwebqq(&auth.skey, "p2".to_owned());
        assert!(st.by_cookies(None, Some("p1")).is_none());
        assert!(st.by_ptsigx(&auth.ptsigx).is_some());
        st.sweep(now + Duration::from_secs(10), Duration::from_secs(5));
        assert!(st.by_cookies(Some(&auth.skey), None).is_none());
    }
}
