//! Scripted faults (control API `POST /_emulator/faults`): which requests they hit (endpoint,
//! account, count, time window, probability) and what they do. Matching is pure given the
//! fault's seed; `server.rs` and the routes apply the effect.

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
    /// Hit each matching request with this probability (0.0–1.0); absent = every matching
    /// request. A request the fault spares may still be hit by a later fault. `count` counts
    /// hits, not matches.
    #[serde(default)]
    pub ratio: Option<f64>,
    /// Seed of the draws behind `ratio`, so a run can be repeated; absent = from the clock.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The effect.
    pub kind: FaultKind,
}

#[derive(Debug)]
struct Active {
    id: u64,
    spec: FaultSpec,
    remaining: Option<u32>,
    until: Option<Instant>,
    /// splitmix64 state for the `ratio` draws.
    rng: u64,
}

/// The next draw of a splitmix64 generator, uniform in [0, 1).
fn draw(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits fill an f64 mantissa exactly.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
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
        let rng = spec.seed.unwrap_or_else(clock_seed) ^ self.next_id.wrapping_mul(0x2545_F491);
        self.active.push(Active { id: self.next_id, spec, remaining, until, rng });
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
        let hit = self.active.iter_mut().find_map(|f| {
            let matches = (f.spec.endpoint == "*" || f.spec.endpoint == endpoint)
                && f.spec.account.is_none_or(|a| Some(a.get()) == account);
            (matches && f.spec.ratio.is_none_or(|r| draw(&mut f.rng) < r)).then_some(f)
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
    fn test_fault_ratio_hits_about_that_share() {
        let now = Instant::now();
        for (ratio, low, high) in [(0.2, 1700, 2300), (0.0, 0, 0), (1.0, 10_000, 10_000)] {
            let mut faults = Faults::default();
            let kind = r#"{"http_status":502}"#;
            let json =
                format!(r#"{{"endpoint":"poll2","seconds":60,"ratio":{ratio},"kind":{kind}}}"#);
            faults.add(spec(&json), now);
            let hits = (0..10_000).filter(|_| faults.take("poll2", None, now).is_some()).count();
            assert!((low..=high).contains(&hits), "ratio {ratio}: {hits} hits of 10000");
        }
    }

    #[test]
    fn test_fault_ratio_seeded_is_repeatable_and_falls_through() {
        let now = Instant::now();
        let run = |seed: u64| {
            let mut faults = Faults::default();
            let kind = r#"{"reset":true}"#;
            let first = format!(
                r#"{{"endpoint":"*","seconds":60,"ratio":0.5,"seed":{seed},"kind":{kind}}}"#
            );
            faults.add(spec(&first), now);
            faults.add(spec(r#"{"endpoint":"*","seconds":60,"kind":{"delay_ms":1}}"#), now);
            (0..200).map(|_| faults.take("send_qun_msg2", None, now)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        // A request the first fault spares goes on to the second one, never to none.
        assert!(a.iter().all(Option::is_some));
        let resets = a.iter().filter(|k| **k == Some(FaultKind::Reset(true))).count();
        assert!((60..=140).contains(&resets), "{resets} resets of 200");
        // `count` counts hits: 5 hits, however many requests are spared on the way.
        let mut faults = Faults::default();
        faults.add(spec(r#"{"endpoint":"*","count":5,"ratio":0.1,"kind":{"empty":true}}"#), now);
        assert_eq!((0..10_000).filter(|_| faults.take("poll2", None, now).is_some()).count(), 5);
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
