//! Scripted faults (control API `POST /_emulator/faults`): which requests they hit and what
//! they do. Matching is pure; `server.rs` and the routes apply the effect.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::webqq::QqNumber;

/// What a fault does to the request it hits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Answer this HTTP status with the front proxy's HTML page (502/504/404, protocol §6.2).
    HttpStatus(u16),
    /// Send the headers and part of the body, then drop the connection.
    Reset(bool),
    /// Wait this many milliseconds before handling.
    DelayMs(u64),
    /// Send the body in small chunks this many milliseconds apart.
    SlowBodyMs(u64),
    /// Answer this retcode at once: 116 carries a new `p` and rotates the session's ptwebqq,
    /// 121 carries `"t":"0"`, others `"errmsg":""`.
    Retcode(i64),
    /// Deliver a kick_message to the session and end it (protocol §4.5).
    Kick(bool),
    /// The session is invalid from now on (103 / 108).
    Expire(bool),
    /// The idle SmartQQ form: retcode 0 and no result (protocol §2.3).
    Empty(bool),
}

/// A fault as the control API receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Endpoint label (`poll2`, `send_buddy_msg2`, `getvfwebqq`, …) or `*` for all.
    pub endpoint: String,
    /// Only requests of this account (by the `uin`/`p_uin`/`superuin` cookie or session).
    #[serde(default)]
    pub account: Option<QqNumber>,
    /// Hit at most this many requests. Default 1 when `seconds` is absent too.
    #[serde(default)]
    pub count: Option<u32>,
    /// Stay active this many seconds from now.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// The effect.
    pub kind: FaultKind,
}

#[derive(Debug)]
struct Active {
    id: u64,
    spec: FaultSpec,
    remaining: Option<u32>,
    until: Option<Instant>,
}

/// The active faults, in the order they were added (the oldest matching one wins).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    next_id: u64,
    active: Vec<Active>,
}

impl Faults {
    /// Adds a fault; returns its id.
    pub(crate) fn add(&mut self, spec: FaultSpec, now: Instant) -> u64 {
        self.next_id += 1;
        let until = spec.seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()).map(|d| now + d);
        let remaining = match (spec.count, until) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(1),
        };
        self.active.push(Active { id: self.next_id, spec, remaining, until });
        self.next_id
    }

    /// Removes every fault.
    pub(crate) fn clear(&mut self) {
        self.active.clear();
    }

    /// The fault that hits a request to `endpoint` from `account`, consuming one use.
    pub(crate) fn take(
        &mut self,
        endpoint: &str,
        account: Option<u64>,
        now: Instant,
    ) -> Option<FaultKind> {
        self.active.retain(|f| f.until.is_none_or(|u| now < u) && f.remaining != Some(0));
        let hit = self.active.iter_mut().find(|f| {
            (f.spec.endpoint == "*" || f.spec.endpoint == endpoint)
                && f.spec.account.is_none_or(|a| Some(a.get()) == account)
        })?;
        if let Some(n) = hit.remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
        Some(hit.spec.kind.clone())
    }

    /// The active faults for the state report: (id, spec, remaining uses).
    pub(crate) fn list(&self) -> Vec<(u64, FaultSpec, Option<u32>)> {
        self.active.iter().map(|f| (f.id, f.spec.clone(), f.remaining)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn test_fault_json_forms() {
        let f = spec(r#"{"endpoint":"poll2","kind":{"http_status":502}}"#);
        assert_eq!(f.kind, FaultKind::HttpStatus(502));
        assert_eq!(spec(r#"{"endpoint":"*","kind":{"reset":true}}"#).kind, FaultKind::Reset(true));
        assert_eq!(
            spec(r#"{"endpoint":"poll2","account":"10001","count":2,"kind":{"retcode":116}}"#)
                .account,
            Some(QqNumber::new(10001))
        );
        assert!(
            serde_json::from_str::<FaultSpec>(r#"{"endpoint":"x","kind":{"boom":1}}"#).is_err()
        );
    }

    #[test]
    fn test_fault_matching_counts_and_windows() {
        let now = Instant::now();
        let mut faults = Faults::default();
        faults.add(spec(r#"{"endpoint":"poll2","account":10001,"kind":{"retcode":103}}"#), now);
        faults.add(spec(r#"{"endpoint":"*","count":2,"kind":{"delay_ms":5}}"#), now);
        faults
            .add(spec(r#"{"endpoint":"send_buddy_msg2","seconds":10,"kind":{"empty":true}}"#), now);
        // Another account's poll skips the first fault and hits the wildcard.
        assert_eq!(faults.take("poll2", Some(10002), now), Some(FaultKind::DelayMs(5)));
        assert_eq!(faults.take("poll2", Some(10001), now), Some(FaultKind::Retcode(103)));
        // The default count of one is used up.
        assert_eq!(faults.take("poll2", Some(10001), now), Some(FaultKind::DelayMs(5)));
        assert_eq!(faults.take("poll2", Some(10001), now), None);
        let t = now + Duration::from_secs(5);
        assert_eq!(faults.take("send_buddy_msg2", None, t), Some(FaultKind::Empty(true)));
        assert_eq!(faults.take("send_buddy_msg2", None, t), Some(FaultKind::Empty(true)));
        assert_eq!(faults.take("send_buddy_msg2", None, now + Duration::from_secs(11)), None);
        assert!(faults.list().is_empty());
    }
}
