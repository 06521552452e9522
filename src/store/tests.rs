//! The store suite: every test runs on SQLite, and on PostgreSQL too when
//! `QQBRIDGE_TEST_POSTGRES_URL` is set (each test in its own scratch database).

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomId};

use super::*;
use crate::webqq::hash::HashVariant;
use crate::webqq::hosts::Channel;
use crate::webqq::session::Session;
use crate::webqq::{ClientId, QqNumber, Secret, Uin};

/// One backend under test: a store, and how to open another connection to the same database.
pub(super) struct Fixture {
    pub(super) name: &'static str,
    pub(super) store: Store,
    target: Target,
    _dir: Option<tempfile::TempDir>,
}

enum Target {
    Sqlite(PathBuf),
    Postgres(ScratchDatabase),
}

impl Fixture {
    pub(super) fn reopen(&self) -> Store {
        match &self.target {
            Target::Sqlite(path) => Store::open_sqlite(path).unwrap(),
            Target::Postgres(db) => Store::open_postgres(db.url()).unwrap(),
        }
    }
}

/// SQLite in a temp file; PostgreSQL in a scratch database when the environment names a server
/// (a server that is named but unreachable fails the test).
pub(super) fn fixtures() -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let mut out = vec![Fixture {
        name: "sqlite",
        store: Store::open_sqlite(&path).unwrap(),
        target: Target::Sqlite(path),
        _dir: Some(dir),
    }];
    if let Some(db) = ScratchDatabase::from_env() {
        let db = db.unwrap();
        out.push(Fixture {
            name: "postgres",
            store: Store::open_postgres(db.url()).unwrap(),
            target: Target::Postgres(db),
            _dir: None,
        });
    }
    out
}

fn session(qq: u64, token: &str) -> Session {
    Session {
        qq: QqNumber::new(qq),
        uin: Uin::new(qq),
        channel: Channel::D1,
        clientid: ClientId::SMARTQQ,
        psessionid: Secret::new(format!("ps-{token}")),
        vfwebqq: Secret::new(format!("vf-{token}")),
        ptwebqq: Secret::new(format!("pt-{token}")),
        hash_variant: HashVariant::Ecok,
        cookies: Secret::new(format!("[{{\"name\":\"skey\",\"value\":\"{token}\"}}]")),
        nick: "小明".into(),
        opened_at: 1_700_000_000,
        last_msg_id: 42,
    }
}

pub(super) fn room(n: u32) -> OwnedRoomId {
    OwnedRoomId::try_from(format!("!room{n}:example.org")).unwrap()
}

pub(super) fn event(n: u32) -> OwnedEventId {
    OwnedEventId::try_from(format!("$event{n}")).unwrap()
}

fn portal(key: &str, account: Option<&str>, room_n: Option<u32>) -> Portal {
    Portal {
        portal_key: key.to_owned(),
        kind: key.split(':').next().unwrap().to_owned(),
        account_id: account.map(str::to_owned),
        remote_id: key.rsplit(':').next().unwrap().to_owned(),
        room_id: room_n.map(room),
        name: Some("群 <b>&amp;".to_owned()),
        topic: None,
        avatar_url: Some(OwnedMxcUri::from("mxc://example.org/abc")),
        encrypted: false,
        created_at: 1_700_000_000,
    }
}

#[test]
fn test_migration_lists_have_one_version_per_backend() {
    assert_eq!(migrations::SQLITE.len(), migrations::POSTGRES.len());
    for f in fixtures() {
        assert_eq!(f.store.schema_version().unwrap(), migrations::SQLITE.len(), "{}", f.name);
    }
}

#[test]
fn test_session_round_trips_with_secrets() {
    for f in fixtures() {
        let store = &f.store;
        assert_eq!(store.load_session("a").unwrap(), None, "{}", f.name);
        let s = session(10001, "s3cret");
        store.save_session("a", &s).unwrap();
        let loaded = store.load_session("a").unwrap().unwrap();
        assert_eq!(loaded, s, "{}", f.name);
        assert_eq!(loaded.psessionid.expose(), "ps-s3cret");

        let newer = session(10001, "rotated");
        store.save_session("a", &newer).unwrap();
        store.save_session("b", &session(10002, "b")).unwrap();
        let all = store.load_all_sessions().unwrap();
        let ids: Vec<_> = all.iter().map(|(id, s)| (id.as_str(), s.qq.get())).collect();
        assert_eq!(ids, [("a", 10001), ("b", 10002)], "{}", f.name);
        assert_eq!(all[0].1, newer);

        assert!(store.delete_session("a").unwrap());
        assert!(!store.delete_session("a").unwrap(), "{}", f.name);
        assert_eq!(store.load_session("a").unwrap(), None);
    }
}

#[test]
fn test_corrupt_session_is_reported_without_its_text_and_skipped() {
    for f in fixtures() {
        f.store.save_session("good", &session(10001, "x")).unwrap();
        f.store
            .blocking_call(|c| {
                c.batch("INSERT INTO sessions VALUES ('bad', 10002, '{\"psessionid\": \"hunter2\"}', 0)")
            })
            .unwrap();
        let err = f.store.load_session("bad").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("account bad"), "{}: {text}", f.name);
        assert!(!text.contains("hunter2"), "{}: {text}", f.name);
        let all = f.store.load_all_sessions().unwrap();
        assert_eq!(all.len(), 1, "{}", f.name);
        assert_eq!(all[0].0, "good");
    }
}

#[test]
fn test_account_states_are_upserted() {
    for f in fixtures() {
        let store = &f.store;
        store.set_account_state("b", 10002, "CONNECTING", None).unwrap();
        store.set_account_state("a", 10001, "CONNECTED", None).unwrap();
        store.set_account_state("b", 10002, "LOGGED_OUT", Some("qq-kicked")).unwrap();
        let rows: Vec<_> = store
            .account_states()
            .unwrap()
            .into_iter()
            .map(|r| (r.account_id, r.qq, r.state, r.reason))
            .collect();
        assert_eq!(
            rows,
            [
                ("a".to_owned(), 10001, "CONNECTED".to_owned(), None),
                ("b".to_owned(), 10002, "LOGGED_OUT".to_owned(), Some("qq-kicked".to_owned())),
            ],
            "{}",
            f.name
        );
        let err = store.set_account_state("c", u64::MAX, "CONNECTED", None).unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
    }
}

#[test]
fn test_lease_is_exclusive_until_it_expires() {
    for f in fixtures() {
        let store = &f.store;
        let ttl = Duration::from_secs(30);
        // (who, at second, expected result)
        let steps = [
            ("p1", 1000, true),  // free: taken
            ("p2", 1001, false), // held by p1
            ("p1", 1010, true),  // renewal by the holder: now until 1040
            ("p2", 1039, false), // still p1's
            ("p2", 1040, true),  // expired: taken over
            ("p1", 1041, false), // p1 lost it
        ];
        for (holder, at, expected) in steps {
            let got = store.acquire_lease_at("a", holder, ttl, at).unwrap();
            assert_eq!(got, expected, "{}: {holder} at {at}", f.name);
        }
        assert!(store.acquire_lease_at("b", "p1", ttl, 1041).unwrap(), "leases are per account");
        assert!(!store.release_lease("a", "p1").unwrap(), "p1 does not hold a");
        assert!(store.release_lease("a", "p2").unwrap());
        assert!(store.acquire_lease_at("a", "p1", ttl, 1042).unwrap(), "released: free again");
        // A second connection (another process) sees the same lease.
        let other = f.reopen();
        assert!(store.acquire_lease("c", "host-1", ttl).unwrap());
        assert!(!other.acquire_lease("c", "host-2", ttl).unwrap(), "{}", f.name);
        assert!(store.release_lease("c", "host-1").unwrap());
        assert!(other.acquire_lease("c", "host-2", ttl).unwrap());
    }
}

#[test]
fn test_txn_is_processed_once_also_after_a_restart() {
    for f in fixtures() {
        assert!(!f.store.is_txn_processed("17").unwrap());
        assert!(f.store.mark_txn_processed("17").unwrap(), "{}: first time", f.name);
        assert!(!f.store.mark_txn_processed("17").unwrap(), "{}: replay", f.name);
        assert!(f.store.mark_txn_processed("q5X_-abc").unwrap(), "ids are opaque strings");
        let Fixture { store, .. } = &f;
        drop(store.clone());
        let reopened = f.reopen();
        assert!(reopened.is_txn_processed("17").unwrap(), "{}", f.name);
        assert!(!reopened.mark_txn_processed("17").unwrap(), "{}: replay after restart", f.name);
        // "18" is not "greater than 17 so done": ids are compared for equality only.
        assert!(reopened.mark_txn_processed("18").unwrap());
    }
}

#[test]
fn test_concurrent_marks_of_one_txn_give_exactly_one_true() {
    for f in fixtures() {
        // Two connections (as two processes would have), each marking the same 50 ids.
        let stores = [f.store.clone(), f.reopen()];
        let barrier = Arc::new(Barrier::new(stores.len()));
        let handles: Vec<_> = stores
            .into_iter()
            .map(|store| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..50)
                        .map(|i| store.mark_txn_processed(&format!("t{i}")).unwrap())
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        let results: Vec<Vec<bool>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for i in 0..50 {
            let wins = results.iter().filter(|r| r[i]).count();
            assert_eq!(wins, 1, "{}: txn t{i} marked new {wins} times", f.name);
        }
    }
}

#[test]
fn test_old_txns_are_pruned() {
    for f in fixtures() {
        f.store
            .blocking_call(|c| {
                assert!(c.mark_txn_processed_at("old", 1000)?);
                assert!(c.mark_txn_processed_at("new", 2000)?);
                Ok(())
            })
            .unwrap();
        let pruned = f.store.blocking_call(|c| c.prune_txns_before(1500)).unwrap();
        assert_eq!(pruned, 1, "{}", f.name);
        assert!(!f.store.is_txn_processed("old").unwrap());
        assert!(f.store.is_txn_processed("new").unwrap());
        assert_eq!(f.store.prune_txns_older_than(Duration::from_secs(60)).unwrap(), 1);
    }
}

#[test]
fn test_portals_round_trip_and_are_found_by_room() {
    for f in fixtures() {
        let store = &f.store;
        let friend = portal("friend:a:10002", Some("a"), Some(1));
        let group = portal("group:20001", None, None);
        store.upsert_portal(&friend).unwrap();
        store.upsert_portal(&group).unwrap();
        store.upsert_portal(&portal("friend:b:10003", Some("b"), Some(3))).unwrap();
        assert_eq!(store.portal("friend:a:10002").unwrap(), Some(friend.clone()), "{}", f.name);
        assert_eq!(store.portal("group:20001").unwrap(), Some(group.clone()));
        assert_eq!(store.portal("group:404").unwrap(), None);
        assert_eq!(store.portal_by_room(&room(1)).unwrap(), Some(friend.clone()));
        assert_eq!(store.portal_by_room(&room(9)).unwrap(), None);

        // The room is created later: the upsert fills it in and keeps created_at.
        let mut created = group.clone();
        created.room_id = Some(room(2));
        created.encrypted = true;
        created.created_at = 1_800_000_000;
        store.upsert_portal(&created).unwrap();
        let stored = store.portal_by_room(&room(2)).unwrap().unwrap();
        assert!(stored.encrypted, "{}", f.name);
        assert_eq!(stored.created_at, group.created_at, "{}: created_at kept", f.name);

        let keys = |ps: Vec<Portal>| ps.into_iter().map(|p| p.portal_key).collect::<Vec<_>>();
        assert_eq!(
            keys(store.portals().unwrap()),
            ["friend:a:10002", "friend:b:10003", "group:20001"]
        );
        assert_eq!(keys(store.portals_of_account("a").unwrap()), ["friend:a:10002"]);

        // One room cannot be two portals.
        let err = store.upsert_portal(&portal("friend:a:10009", Some("a"), Some(1))).unwrap_err();
        assert!(!err.is_busy(), "{}: {err}", f.name);

        assert!(store.delete_portal("friend:b:10003").unwrap());
        assert!(!store.delete_portal("friend:b:10003").unwrap(), "{}", f.name);
        assert_eq!(store.portals().unwrap().len(), 2);

        store.set_space("a", &room(7)).unwrap();
        store.set_space("a", &room(8)).unwrap();
        assert_eq!(store.space("a").unwrap(), Some(room(8)), "{}", f.name);
        assert_eq!(store.space("b").unwrap(), None);
    }
}

#[test]
fn test_ghosts_and_their_rooms() {
    for f in fixtures() {
        let store = &f.store;
        let qq = QqNumber::new(4_294_967_296_123);
        assert_eq!(store.ghost(qq).unwrap(), None);
        let mut ghost = Ghost {
            qq,
            registered: false,
            displayname: None,
            avatar_hash: None,
            avatar_url: None,
            updated_at: 0,
        };
        store.upsert_ghost(&ghost).unwrap();
        ghost.registered = true;
        ghost.displayname = Some("\u{2068}小明\u{2069}".to_owned());
        ghost.avatar_hash = Some("ab12".to_owned());
        ghost.avatar_url = Some(OwnedMxcUri::from("mxc://example.org/av"));
        store.upsert_ghost(&ghost).unwrap();
        let stored = store.ghost(qq).unwrap().unwrap();
        assert!(stored.updated_at > 1_700_000_000, "{}: set by the store", f.name);
        assert_eq!(stored, Ghost { updated_at: stored.updated_at, ..ghost }, "{}", f.name);

        assert!(store.add_ghost_room(qq, &room(2)).unwrap());
        assert!(store.add_ghost_room(qq, &room(1)).unwrap());
        assert!(!store.add_ghost_room(qq, &room(1)).unwrap(), "{}: already known", f.name);
        assert!(store.is_ghost_in_room(qq, &room(1)).unwrap());
        assert!(!store.is_ghost_in_room(QqNumber::new(10001), &room(1)).unwrap());
        assert_eq!(store.ghost_rooms(qq).unwrap(), [room(1), room(2)]);
        assert!(store.remove_ghost_room(qq, &room(1)).unwrap());
        assert!(!store.remove_ghost_room(qq, &room(1)).unwrap());
        assert_eq!(store.ghost_rooms(qq).unwrap(), [room(2)], "{}", f.name);

        let err = store.ghost(QqNumber::new(u64::MAX)).unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
    }
}

#[test]
fn test_media_and_bridge_state() {
    for f in fixtures() {
        let store = &f.store;
        let media = Media {
            content_hash: "sha256:00ff".to_owned(),
            mxc: OwnedMxcUri::from("mxc://example.org/pic"),
            content_type: Some("image/png".to_owned()),
            size: 5_000_000_000,
        };
        assert_eq!(store.media("sha256:00ff").unwrap(), None);
        store.put_media(&media).unwrap();
        store.put_media(&media).unwrap();
        assert_eq!(store.media("sha256:00ff").unwrap(), Some(media), "{}", f.name);

        assert_eq!(store.kv_get("bot_registered").unwrap(), None);
        store.kv_set("bot_registered", "1").unwrap();
        store.kv_set("bot_registered", "yes").unwrap();
        assert_eq!(store.kv_get("bot_registered").unwrap().as_deref(), Some("yes"), "{}", f.name);
        assert!(store.kv_delete("bot_registered").unwrap());
        assert!(!store.kv_delete("bot_registered").unwrap());
    }
}

#[test]
fn test_message_map_is_idempotent_and_found_both_ways() {
    for f in fixtures() {
        let store = &f.store;
        let row = |remote: &str, event_n: u32, at: u64| MessageRow {
            portal_key: "friend:a:10002".to_owned(),
            remote_key: remote.to_owned(),
            room_id: room(1),
            event_id: event(event_n),
            direction: Direction::QqToMatrix,
            sender: "10002".to_owned(),
            created_at: at,
        };
        assert!(store.insert_message(&row("m1", 1, 100)).unwrap(), "{}", f.name);
        // A retry after a crash must not remap the QQ message to a second event.
        assert!(!store.insert_message(&row("m1", 9, 101)).unwrap(), "{}", f.name);
        assert_eq!(
            store.message_by_remote("friend:a:10002", "m1").unwrap(),
            Some(row("m1", 1, 100))
        );
        assert_eq!(store.message_by_remote("friend:a:99", "m1").unwrap(), None);
        assert_eq!(store.message_by_event(&room(1), &event(1)).unwrap(), Some(row("m1", 1, 100)));
        assert_eq!(store.message_by_event(&room(2), &event(1)).unwrap(), None, "other room");
        assert_eq!(store.message_by_event(&room(1), &event(9)).unwrap(), None);

        // One Matrix event split into two QQ parts: the first part answers.
        let part = |key: &str, at| {
            let mut r = row(key, 5, at);
            r.direction = Direction::MatrixToQq;
            r.sender = "@alice:example.org".to_owned();
            assert!(store.insert_message(&r).unwrap());
            r
        };
        let first = part("e5#0", 200);
        part("e5#1", 200);
        assert_eq!(store.message_by_event(&room(1), &event(5)).unwrap(), Some(first), "{}", f.name);

        // Excerpts for reply quotes: replaced by an edit, scoped to their room, and deleted
        // with the portal.
        let excerpt = |text: &str| Excerpt {
            portal_key: "friend:a:10002".to_owned(),
            sender_name: "Alice <b>".to_owned(),
            text: text.to_owned(),
        };
        let (r1, e1) = (room(1), event(1));
        store.blocking_call(move |c| c.put_excerpt(&r1, &e1, &excerpt("first"))).unwrap();
        let (r1, e1) = (room(1), event(1));
        store.blocking_call(move |c| c.put_excerpt(&r1, &e1, &excerpt("edited 你"))).unwrap();
        let read = |r: u32, e: u32| {
            let (r, e) = (room(r), event(e));
            store.blocking_call(move |c| c.excerpt(&r, &e)).unwrap()
        };
        assert_eq!(read(1, 1), Some(excerpt("edited 你")), "{}", f.name);
        assert_eq!(read(2, 1), None, "{}: another room", f.name);
        store.upsert_portal(&portal("friend:a:10002", Some("a"), Some(1))).unwrap();
        assert!(store.blocking_call(|c| c.set_portal_encrypted("friend:a:10002", true)).unwrap());
        assert!(store.portal("friend:a:10002").unwrap().unwrap().encrypted, "{}", f.name);
        assert!(!store.blocking_call(|c| c.set_portal_encrypted("friend:x:1", true)).unwrap());

        assert!(store.delete_portal("friend:a:10002").is_ok());
        assert_eq!(store.message_by_remote("friend:a:10002", "m1").unwrap(), None, "{}", f.name);
        assert_eq!(read(1, 1), None, "{}: deleted with the portal", f.name);
    }
}

#[test]
fn test_transaction_rolls_back_on_error() {
    for f in fixtures() {
        let result: Result<(), StoreError> = f.store.blocking_call(|c| {
            c.transaction(|c| {
                c.mark_txn_processed("t1")?;
                c.kv_set("k", "v")?;
                Err(StoreError::Closed)
            })
        });
        assert!(matches!(result, Err(StoreError::Closed)));
        assert!(!f.store.is_txn_processed("t1").unwrap(), "{}: rolled back", f.name);
        assert_eq!(f.store.kv_get("k").unwrap(), None);
        let done = f.store.blocking_call(|c| c.transaction(|c| c.mark_txn_processed("t1")));
        assert!(done.unwrap());
        assert!(f.store.is_txn_processed("t1").unwrap(), "{}: committed", f.name);
    }
}

#[test]
fn test_reopen_keeps_data_and_newer_schema_is_refused() {
    for f in fixtures() {
        f.store.save_session("a", &session(10001, "x")).unwrap();
        for _ in 0..2 {
            let store = f.reopen();
            assert_eq!(store.schema_version().unwrap(), migrations::SQLITE.len(), "{}", f.name);
            assert_eq!(store.load_session("a").unwrap(), Some(session(10001, "x")));
        }
        f.store.blocking_call(|c| c.batch("UPDATE schema_version SET version = 99")).unwrap();
        let err = match &f.target {
            Target::Sqlite(path) => Store::open_sqlite(path).unwrap_err(),
            Target::Postgres(db) => Store::open_postgres(db.url()).unwrap_err(),
        };
        assert!(err.to_string().contains("schema version 99 is newer"), "{}: {err}", f.name);
    }
}

#[tokio::test]
async fn test_async_callers_use_call_from_a_runtime_thread() {
    // The sync postgres client panics when driven on a runtime thread; the store thread is
    // what makes opening and calling from here safe.
    for f in fixtures() {
        let store = f.reopen();
        let fresh = store.call(|c| c.mark_txn_processed("async-1")).await.unwrap();
        assert!(fresh, "{}", f.name);
        assert!(!store.call(|c| c.mark_txn_processed("async-1")).await.unwrap());
        assert!(store.is_txn_processed("async-1").unwrap(), "{}", f.name);
    }
}

#[test]
fn test_postgres_errors_never_show_the_password() {
    let cases = [
        // Nothing listens on port 1: a connection error.
        "postgres://bridge:hunter2-pw@127.0.0.1:1/qqbridge?connect_timeout=2",
        // Does not parse at all.
        "postgres://bridge:hunter2-pw@127.0.0.1:notaport/qqbridge",
        "host=127.0.0.1 port=1 user=bridge password=hunter2-pw connect_timeout=2",
        "host=127.0.0.1 port=1 user=bridge password=hunter2-pw sslmode=bogus",
    ];
    for url in cases {
        let err = Store::open_postgres(url).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{url}: {text}");
        assert!(!err.is_busy());
    }
    let err = Store::open_postgres(cases[0]).unwrap_err();
    assert!(err.to_string().contains("bridge@127.0.0.1:1/qqbridge"), "{err}");
}

#[test]
fn test_busy_classification_covers_postgres_lock_errors() {
    let pg = |code: Option<&str>| StoreError::Postgres {
        target: "t".into(),
        context: "c",
        message: "m".into(),
        code: code.map(str::to_owned),
    };
    assert!(pg(Some("40001")).is_busy());
    assert!(pg(Some("55P03")).is_busy());
    assert!(!pg(Some("23505")).is_busy(), "unique violation is not busy");
    assert!(!pg(None).is_busy());
    assert!(!StoreError::Closed.is_busy());
}

#[test]
fn test_postgres_store_survives_a_dropped_connection() {
    for f in fixtures().into_iter().filter(|f| f.name == "postgres") {
        let pid = f
            .store
            .blocking_call(|c| c.one("pid", "pid", "SELECT pg_backend_pid()", &[])?.unwrap().int(0))
            .unwrap();
        let killer = f.reopen();
        // With a timeout, terminate waits until the backend is gone (PostgreSQL 14+).
        let killed = killer
            .blocking_call(move |c| {
                let sql = format!("SELECT pg_terminate_backend({pid}, 5000)");
                c.one("kill", "kill", &sql, &[])?.unwrap().bool(0)
            })
            .unwrap();
        assert!(killed);
        // The call that meets the dead connection may fail; the store must recover after it.
        let first = f.store.kv_set("k", "v");
        if let Err(e) = &first {
            assert!(!e.to_string().is_empty());
        }
        f.store.kv_set("k", "v2").unwrap();
        assert_eq!(f.store.kv_get("k").unwrap().as_deref(), Some("v2"));

        // Lost inside a transaction: the rest must not run on a new connection outside it.
        let result = f.store.blocking_call(move |c| {
            c.transaction(|c| {
                c.kv_set("t1", "1")?;
                let pid = c.one("pid", "pid", "SELECT pg_backend_pid()", &[])?.unwrap().int(0)?;
                killer.blocking_call(move |k| {
                    let sql = format!("SELECT pg_terminate_backend({pid}, 5000)");
                    k.one("kill", "kill", &sql, &[]).map(drop)
                })?;
                // A caller that ignores the first failure must still not write outside.
                let _ = c.kv_set("t2", "2");
                c.kv_set("t3", "3")
            })
        });
        assert!(result.is_err(), "the transaction cannot have committed");
        assert_eq!(f.store.kv_get("t1").unwrap(), None, "rolled back with the connection");
        for key in ["t2", "t3"] {
            assert_eq!(f.store.kv_get(key).unwrap(), None, "{key} ran outside the transaction");
        }
    }
}
