//! Channel sessions (one per login2): tokens, the per-session uin/gid/code maps, the event queue
//! with its long-poll wake-up, and the registry that indexes sessions by psessionid and vfwebqq.
//!
//! Locks here are `std::sync` and held for a few map operations only, never across an await:
//! waiting is done on the per-session [`tokio::sync::Notify`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rand::Rng;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::webqq::{Gid, GroupCode, GroupNumber, QqNumber, Uin};

/// Events kept per session when nobody polls; older ones are dropped first. Bounds the memory of
/// 10,000 idle sessions.
pub(crate) const MAX_QUEUED_EVENTS: usize = 500;

/// Locks a std mutex, carrying on with the data when another thread panicked while holding it
/// (the emulator's maps stay usable: every update is a single insert or remove).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Random lowercase hex of `len` digits (psessionid, vfwebqq, ptwebqq, ptsigx …).
pub(crate) fn random_hex(len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(DIGITS[rng.random_range(0..16)])).collect()
}

/// A 64-bit mix (splitmix64 finaliser) for deterministic, well-spread derived ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The per-session translation between permanent numbers and session-scoped ids (protocol
/// §0.2). Filled lazily, so a session only pays for the people it has seen.
#[derive(Debug)]
pub(crate) struct UinMap {
    own: QqNumber,
    random: bool,
    uin_of: HashMap<QqNumber, Uin>,
    qq_of: HashMap<Uin, QqNumber>,
    gid_of: HashMap<GroupNumber, Gid>,
    group_of_gid: HashMap<Gid, GroupNumber>,
    code_of: HashMap<GroupNumber, GroupCode>,
    group_of_code: HashMap<GroupCode, GroupNumber>,
}

impl UinMap {
    /// A map for `own`'s session; `random` draws fresh ids, else ids equal the numbers.
    pub(crate) fn new(own: QqNumber, random: bool) -> Self {
        let mut map = Self {
            own,
            random,
            uin_of: HashMap::new(),
            qq_of: HashMap::new(),
            gid_of: HashMap::new(),
            group_of_gid: HashMap::new(),
            code_of: HashMap::new(),
            group_of_code: HashMap::new(),
        };
        // SmartQQ: your own uin from login2 is your QQ number (protocol §0.2).
        map.uin_of.insert(own, Uin::new(own.get()));
        map.qq_of.insert(Uin::new(own.get()), own);
        map
    }

    fn taken(&self, n: u64) -> bool {
        self.qq_of.contains_key(&Uin::new(n))
            || self.group_of_gid.contains_key(&Gid::new(n))
            || self.group_of_code.contains_key(&GroupCode::new(n))
    }

    fn draw(&self, mut seed: u64) -> u64 {
        let mut rng = rand::rng();
        loop {
            // Real uins and gids were 32-bit numbers of nine or ten digits.
            let n = if self.random {
                rng.random_range(100_000_000..=4_294_967_295)
            } else {
                seed = mix(seed);
                100_000_000 + seed % 4_194_967_295
            };
            if !self.taken(n) {
                return n;
            }
        }
    }

    /// The session uin of a person, drawn on first use.
    pub(crate) fn uin(&mut self, qq: QqNumber) -> Uin {
        if let Some(uin) = self.uin_of.get(&qq) {
            return *uin;
        }
        let raw = if self.random { self.draw(0) } else { qq.get() };
        let uin = Uin::new(raw);
        self.uin_of.insert(qq, uin);
        self.qq_of.insert(uin, qq);
        uin
    }

    /// The person behind a session uin, if this session handed it out.
    pub(crate) fn qq(&self, uin: Uin) -> Option<QqNumber> {
        self.qq_of.get(&uin).copied()
    }

    /// The session gid of a group, drawn on first use.
    pub(crate) fn gid(&mut self, number: GroupNumber) -> Gid {
        if let Some(gid) = self.gid_of.get(&number) {
            return *gid;
        }
        let raw = if self.random { self.draw(0) } else { number.get() };
        let gid = Gid::new(raw);
        self.gid_of.insert(number, gid);
        self.group_of_gid.insert(gid, number);
        gid
    }

    /// The group behind a gid, if this session handed it out.
    pub(crate) fn group_by_gid(&self, gid: Gid) -> Option<GroupNumber> {
        self.group_of_gid.get(&gid).copied()
    }

    /// The group code of a group, always distinct from every gid so that "gid passed as gcode"
    /// can be told apart (protocol §2.8, retcode 6).
    pub(crate) fn code(&mut self, number: GroupNumber) -> GroupCode {
        if let Some(code) = self.code_of.get(&number) {
            return *code;
        }
        self.gid(number);
        let code = GroupCode::new(self.draw(number.get() ^ self.own.get()));
        self.code_of.insert(number, code);
        self.group_of_code.insert(code, number);
        code
    }

    /// The group behind a code, if this session handed it out.
    pub(crate) fn group_by_code(&self, code: GroupCode) -> Option<GroupNumber> {
        self.group_of_code.get(&code).copied()
    }
}

/// Whether a session can still be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Normal.
    Alive,
    /// Another login of the same account replaced it: the next poll answers 121 once.
    Kicked,
    /// Gone: every call answers 103 (poll2) / 108 (login2).
    Dead,
}

/// The mutable part of a session, behind the session's mutex.
#[derive(Debug)]
pub(crate) struct SessionState {
    /// The current ptwebqq (rotated by a 116 fault).
    pub ptwebqq: String,
    /// The ptwebqq the client put into login2 (often `""` in 2017–2018, protocol §0.2).
    pub login2_ptwebqq: String,
    /// Pending poll events, oldest first.
    pub queue: VecDeque<Value>,
    /// Incremented by every poll2; a waiting poll whose number is no longer current yields.
    pub poll_generation: u64,
    /// When the session was last polled (or created).
    pub last_poll: Instant,
    /// Wall-clock time of the last poll, for the state report.
    pub last_poll_wall: SystemTime,
    /// get_online_buddies2 was called since login2 (protocol §1.3.6).
    pub warmed_up: bool,
    /// The warm-up 103 was already given once.
    pub warmup_refused: bool,
    /// See [`Liveness`].
    pub liveness: Liveness,
    /// Online status string (`online`, `away`, …).
    pub status: String,
    /// Next msg_id used for events this session receives.
    pub next_msg_id: u64,
    /// Send tokens left (rate limit).
    pub send_tokens: f64,
    /// When the send tokens were last refilled.
    pub tokens_at: Instant,
    /// The id maps.
    pub uins: UinMap,
    /// Temporary-chat signatures handed out by get_c2cmsg_sig2: sig -> (group, discussion).
    pub c2c_sigs: HashMap<String, (Option<GroupNumber>, Option<crate::webqq::Did>)>,
}

/// One channel session. Immutable tokens outside the lock, the rest inside.
#[derive(Debug)]
pub(crate) struct Session {
    /// Registry key.
    pub id: u64,
    /// The logged-in account.
    pub account: QqNumber,
    /// The clientid given to login2.
    pub clientid: u64,
    /// The session token (secret).
    pub psessionid: String,
    /// The vfwebqq (secret).
    pub vfwebqq: String,
    /// The skey cookie value of the ptlogin login behind it (secret).
    pub skey: String,
    /// `gface_key` / `gface_sig` of get_gface_sig2 (protocol §2.18).
    pub gface_key: String,
    /// See `gface_key`.
    pub gface_sig: String,
    /// The channel host login2 came through (`d.web2.qq.com` or `d1.web2.qq.com`).
    pub channel_host: String,
    /// Creation time.
    pub created: SystemTime,
    /// Mutable state.
    pub state: Mutex<SessionState>,
    /// Wakes the held poll2 of this session.
    pub notify: Notify,
}

impl Session {
    /// Locks the mutable state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Appends events and wakes the poll. Drops the oldest when over [`MAX_QUEUED_EVENTS`].
    pub(crate) fn push_events(&self, events: impl IntoIterator<Item = Value>) {
        {
            let mut st = self.lock();
            st.queue.extend(events);
            while st.queue.len() > MAX_QUEUED_EVENTS {
                if let Some(dropped) = st.queue.pop_front() {
                    tracing::debug!(account = %self.account, %dropped, "queue full: event dropped");
                }
            }
        }
        self.notify.notify_waiters();
    }

    /// Marks the session kicked or dead and wakes its poll.
    pub(crate) fn end(&self, liveness: Liveness) {
        self.lock().liveness = liveness;
        self.notify.notify_waiters();
    }
}

/// What login2 needs to create a session.
pub(crate) struct NewSession {
    pub account: QqNumber,
    pub clientid: u64,
    pub vfwebqq: String,
    pub skey: String,
    pub ptwebqq: String,
    pub login2_ptwebqq: String,
    pub channel_host: String,
    pub status: String,
    pub random_uins: bool,
    pub send_burst: f64,
}

/// Every session, indexed three ways. Behind one `RwLock`/`Mutex` in the shared state.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    next_id: u64,
    by_id: HashMap<u64, Arc<Session>>,
    by_psessionid: HashMap<String, u64>,
    by_vfwebqq: HashMap<String, u64>,
    by_account: HashMap<QqNumber, u64>,
}

impl Sessions {
    /// Creates a session; the account's previous one (if any) is returned so the caller can kick
    /// it (protocol §7.11: a second login kicks the first).
    pub(crate) fn create(&mut self, new: NewSession) -> (Arc<Session>, Option<Arc<Session>>) {
        self.next_id += 1;
        let id = self.next_id;
        let previous =
            self.by_account.get(&new.account).and_then(|old| self.by_id.get(old)).cloned();
        if let Some(old) = &previous {
            // The old session stays findable by psessionid so that its poll can get 121; its
            // vfwebqq may be reused by the new one.
            self.by_vfwebqq.remove(&old.vfwebqq);
        }
        let now = Instant::now();
        let session = Arc::new(Session {
            id,
            account: new.account,
            clientid: new.clientid,
            // A long hex blob like the real one (protocol §0.2), ending with the vfwebqq.
            psessionid: format!(
                "8368046764001d636f6e6e7365727665725f77656271714031{}{}",
                random_hex(40),
                new.vfwebqq
            ),
            vfwebqq: new.vfwebqq,
            skey: new.skey,
            gface_key: random_hex(16).to_uppercase(),
            gface_sig: random_hex(64),
            channel_host: new.channel_host,
            created: SystemTime::now(),
            state: Mutex::new(SessionState {
                ptwebqq: new.ptwebqq,
                login2_ptwebqq: new.login2_ptwebqq,
                queue: VecDeque::new(),
                poll_generation: 0,
                last_poll: now,
                last_poll_wall: SystemTime::now(),
                warmed_up: false,
                warmup_refused: false,
                liveness: Liveness::Alive,
                status: new.status,
                next_msg_id: rand::rng().random_range(1000..30000),
                send_tokens: new.send_burst,
                tokens_at: now,
                uins: UinMap::new(new.account, new.random_uins),
                c2c_sigs: HashMap::new(),
            }),
            notify: Notify::new(),
        });
        self.by_psessionid.insert(session.psessionid.clone(), id);
        self.by_vfwebqq.insert(session.vfwebqq.clone(), id);
        self.by_account.insert(new.account, id);
        self.by_id.insert(id, session.clone());
        (session, previous)
    }

    /// The session with this psessionid (kicked ones included, dead ones not).
    pub(crate) fn by_psessionid(&self, psessionid: &str) -> Option<Arc<Session>> {
        self.by_psessionid.get(psessionid).and_then(|id| self.by_id.get(id)).cloned()
    }

    /// The live session with this vfwebqq.
    pub(crate) fn by_vfwebqq(&self, vfwebqq: &str) -> Option<Arc<Session>> {
        self.by_vfwebqq.get(vfwebqq).and_then(|id| self.by_id.get(id)).cloned()
    }

    /// The current session of an account.
    pub(crate) fn of_account(&self, account: QqNumber) -> Option<Arc<Session>> {
        self.by_account.get(&account).and_then(|id| self.by_id.get(id)).cloned()
    }

    /// Every session (current and kicked).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.by_id.values()
    }

    /// Forgets a session entirely.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Arc<Session>> {
        let session = self.by_id.remove(&id)?;
        self.by_psessionid.remove(&session.psessionid);
        if self.by_vfwebqq.get(&session.vfwebqq) == Some(&id) {
            self.by_vfwebqq.remove(&session.vfwebqq);
        }
        if self.by_account.get(&session.account) == Some(&id) {
            self.by_account.remove(&session.account);
        }
        Some(session)
    }

    /// Takes a session off the account index (kicked: no longer online) without forgetting it.
    pub(crate) fn forget_account(&mut self, account: QqNumber, id: u64) {
        if self.by_account.get(&account) == Some(&id) {
            self.by_account.remove(&account);
        }
    }

    /// Removes dead sessions and those idle for longer than `ttl`; returns how many.
    pub(crate) fn sweep(&mut self, now: Instant, ttl: Duration) -> usize {
        let stale: Vec<u64> = self
            .by_id
            .values()
            .filter(|s| {
                let st = s.lock();
                st.liveness == Liveness::Dead || now.saturating_duration_since(st.last_poll) > ttl
            })
            .map(|s| s.id)
            .collect();
        for id in &stale {
            if let Some(s) = self.remove(*id) {
                s.end(Liveness::Dead);
            }
        }
        stale.len()
    }

    /// Number of sessions whose account is online (current, alive).
    pub(crate) fn online_count(&self) -> usize {
        self.by_account.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_session(account: u64, random: bool) -> NewSession {
        NewSession {
            account: QqNumber::new(account),
            clientid: 53_999_199,
            vfwebqq: random_hex(80),
            skey: "@abcdefghi".to_owned(),
            ptwebqq: random_hex(64),
            login2_ptwebqq: String::new(),
            channel_host: "d1.web2.qq.com".to_owned(),
            status: "online".to_owned(),
            random_uins: random,
            send_burst: 10.0,
        }
    }

    #[test]
    fn test_uin_map_random_is_per_session_and_reversible() {
        let own = QqNumber::new(10001);
        let mut a = UinMap::new(own, true);
        let mut b = UinMap::new(own, true);
        assert_eq!(a.uin(own).get(), 10001);
        let friend = QqNumber::new(10002);
        let ua = a.uin(friend);
        assert_eq!(a.uin(friend), ua, "stable within a session");
        assert_eq!(a.qq(ua), Some(friend));
        assert!((100_000_000..=4_294_967_295).contains(&ua.get()));
        // Two sessions almost surely differ; try several people to make a collision negligible.
        let differs = (1..20).any(|n| a.uin(QqNumber::new(n)) != b.uin(QqNumber::new(n)));
        assert!(differs);
        let g = GroupNumber::new(346_167_134);
        let gid = a.gid(g);
        let code = a.code(g);
        assert_ne!(gid.get(), code.get());
        assert_eq!(a.group_by_gid(gid), Some(g));
        assert_eq!(a.group_by_code(code), Some(g));
        assert_eq!(a.group_by_code(GroupCode::new(gid.get())), None);
    }

    #[test]
    fn test_uin_map_fixed_mode_uses_numbers() {
        let mut m = UinMap::new(QqNumber::new(1), false);
        assert_eq!(m.uin(QqNumber::new(10002)).get(), 10002);
        assert_eq!(m.gid(GroupNumber::new(777)).get(), 777);
        let code = m.code(GroupNumber::new(777));
        assert_ne!(code.get(), 777);
        let mut m2 = UinMap::new(QqNumber::new(1), false);
        assert_eq!(m2.code(GroupNumber::new(777)), code, "deterministic");
    }

    #[test]
    fn test_second_login_returns_previous_and_sweep() {
        let mut reg = Sessions::default();
        let (first, prev) = reg.create(new_session(10001, true));
        assert!(prev.is_none());
        let (second, prev) = reg.create(new_session(10001, true));
        assert_eq!(prev.map(|p| p.id), Some(first.id));
        assert_eq!(reg.of_account(QqNumber::new(10001)).map(|s| s.id), Some(second.id));
        assert!(reg.by_psessionid(&first.psessionid).is_some(), "kicked stays findable");
        assert!(reg.by_vfwebqq(&first.vfwebqq).is_none());
        first.end(Liveness::Dead);
        assert_eq!(reg.sweep(Instant::now(), Duration::from_secs(3600)), 1);
        assert!(reg.by_psessionid(&first.psessionid).is_none());
        assert_eq!(reg.online_count(), 1);
        let later = Instant::now() + Duration::from_secs(7200);
        assert_eq!(reg.sweep(later, Duration::from_secs(3600)), 1);
        assert_eq!(reg.online_count(), 0);
    }
}
