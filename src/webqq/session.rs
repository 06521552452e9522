//! [`Session`]: everything a logged-in WebQQ session consists of, serialisable for restore.
//!
//! Protocol §0.2 and §1.4. A restarted process loads the stored session and relinks instead of
//! asking a person for a new QR scan, as long as the server still accepts it (about two days).

use serde::{Deserialize, Serialize};

use crate::webqq::hash::HashVariant;
use crate::webqq::hosts::Channel;
use crate::webqq::{ClientId, QqNumber, Secret, Uin};

/// A logged-in session. Every token is a [`Secret`]; the whole value must be stored with owner-only
/// permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The account's QQ number.
    pub qq: QqNumber,
    /// Own uin from login2 (equal to the QQ number in the SmartQQ era).
    pub uin: Uin,
    /// Which channel host (era) the session was opened on.
    pub channel: Channel,
    /// The client id the session was opened with.
    pub clientid: ClientId,
    /// login2's session token.
    pub psessionid: Secret<String>,
    /// The working vfwebqq (login2's in 2013, getvfwebqq's in SmartQQ).
    pub vfwebqq: Secret<String>,
    /// The ptwebqq cookie value as last known (rotated by poll retcode 116).
    pub ptwebqq: Secret<String>,
    /// The friend-list hash variant that last worked.
    pub hash_variant: HashVariant,
    /// The cookie jar as JSON (see [`crate::webqq::cookies::CookieJar::to_json`]).
    pub cookies: Secret<String>,
    /// The account's nickname as ptlogin reported it.
    #[serde(default)]
    pub nick: String,
    /// When the session was opened, Unix seconds.
    pub opened_at: u64,
    /// The last msg_id used, so a restored session keeps them strictly increasing (§5.4).
    #[serde(default)]
    pub last_msg_id: u64,
}

/// The mutable token part of a live session, kept inside the client.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tokens {
    pub(crate) qq: Option<QqNumber>,
    pub(crate) uin: Option<Uin>,
    pub(crate) psessionid: Secret<String>,
    pub(crate) vfwebqq: Secret<String>,
    pub(crate) ptwebqq: Secret<String>,
    pub(crate) nick: String,
    pub(crate) opened_at: u64,
    pub(crate) gface: Option<crate::webqq::api::get_gface_sig2::GfaceSig>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_session_round_trips_and_hides_tokens() {
        let session = Session {
            qq: QqNumber::new(10001),
            uin: Uin::new(10001),
            channel: Channel::D1,
            clientid: ClientId::SMARTQQ,
            psessionid: Secret::new("ps-secret".into()),
            vfwebqq: Secret::new("vf-secret".into()),
            ptwebqq: Secret::new("pt-secret".into()),
            hash_variant: HashVariant::Ecok,
            cookies: Secret::new("[]".into()),
            nick: "n".into(),
            opened_at: 1,
            last_msg_id: 7,
        };
        let json = serde_json::to_string(&session).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), session);
        let debug = format!("{session:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }
}
