//! [`Store`] on SQLite (rusqlite, bundled): opening with safe file modes, WAL and migrations;
//! sessions, account states and poll leases. Parameterised SQL only (RELIABILITY.md §3).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::migrations::MIGRATIONS;
use super::{AccountStateRow, StoreError};
use crate::webqq::session::{Session, unix_now};

/// How long a write waits for another connection's lock before failing with a busy error
/// ([`StoreError::is_busy`]). Writes are single small rows, so a longer wait means trouble.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Mode of the database directory: owner only (it holds session secrets, RELIABILITY.md §2).
pub const DIR_MODE: u32 = 0o700;

/// Mode of the database file and its `-wal` / `-shm` companions.
pub const FILE_MODE: u32 = 0o600;

/// The SQLite store. One connection; `Send` but not `Sync`: share it behind a mutex or own it in
/// one actor. Every method does blocking disk IO (see the module doc of `store`).
pub struct Store {
    conn: Connection,
    /// Shown in errors; `:memory:` for [`Store::open_in_memory`].
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`: creates missing parent directories
    /// with mode 0700, tightens an existing parent directory and the file (plus `-wal`/`-shm`)
    /// to 0700/0600, enables WAL and applies pending migrations. Errors name the path.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let io_err = |source| StoreError::Open { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(io_err)?;
            tighten(dir, DIR_MODE).map_err(io_err)?;
        }
        // Creating the file ourselves, before SQLite does, is what gives it 0600 from the
        // first byte on; SQLite then creates `-wal` and `-shm` with the same mode.
        OpenOptions::new().create(true).append(true).mode(FILE_MODE).open(path).map_err(io_err)?;
        tighten(path, FILE_MODE).map_err(io_err)?;
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: path.to_owned(),
            context: "open",
            source,
        })?;
        let mut store = Store { conn, path: path.to_owned() };
        store.configure(true)?;
        store.migrate()?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            let companion = PathBuf::from(companion);
            if companion.exists() {
                tighten(&companion, FILE_MODE).map_err(io_err)?;
            }
        }
        Ok(store)
    }

    /// A private in-memory database with the full schema, for tests. Does no file IO.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            context: "open",
            source,
        })?;
        let mut store = Store { conn, path };
        store.configure(false)?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err<'a>(&'a self, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
        sql_err(&self.path, context)
    }

    fn configure(&self, wal: bool) -> Result<(), StoreError> {
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(self.err("set busy timeout"))?;
        if wal {
            // WAL lets readers (a status query) run beside the writer, and survives a kill -9
            // without a rollback journal dance (RELIABILITY.md §1.7: restarts must be fast).
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(self.err("enable WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(path = %self.path.display(), mode, "store is not in WAL mode");
            }
            // With WAL, NORMAL syncs at checkpoints only: a crash of the process loses nothing,
            // a power loss at most the last few state writes (a re-login), and starting 1,000
            // accounts no longer waits for ~3,000 fsyncs (the restore bench went 3.8 s → 2.0 s).
            self.conn
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(self.err("set synchronous = NORMAL"))?;
        }
        Ok(())
    }

    /// Applies every migration above the stored version, each in its own immediate
    /// transaction, so two processes opening one file at once cannot both apply one.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let (conn, path) = (&mut self.conn, self.path.as_path());
        let sql = |context| sql_err(path, context);
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(sql("create schema_version"))?;
        loop {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("begin migration"))?;
            let current: Option<i64> = tx
                .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
                .optional()
                .map_err(sql("read schema version"))?;
            let current = match current {
                Some(v) => v,
                None => {
                    tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])
                        .map_err(sql("init schema version"))?;
                    0
                }
            };
            let index = usize::try_from(current).unwrap_or(usize::MAX);
            if index > MIGRATIONS.len() {
                return Err(StoreError::TooNew {
                    path: path.to_owned(),
                    found: current,
                    known: MIGRATIONS.len(),
                });
            }
            let Some(migration) = MIGRATIONS.get(index) else {
                tx.commit().map_err(sql("end migration"))?;
                return Ok(());
            };
            tx.execute_batch(migration).map_err(sql("apply migration"))?;
            tx.execute("UPDATE schema_version SET version = ?1", params![current + 1])
                .map_err(sql("record schema version"))?;
            tx.commit().map_err(sql("commit migration"))?;
        }
    }

    /// The schema version applied (equals `migrations::MIGRATIONS.len()` after open).
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let v: i64 = self
            .conn
            .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
            .map_err(self.err("read schema version"))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Stores (or replaces) the session of `account_id`, secrets included.
    pub fn save_session(&self, account_id: &str, session: &Session) -> Result<(), StoreError> {
        let qq = column_qq(account_id, session.qq.get())?;
        let json = serde_json::to_string(session).map_err(|e| StoreError::CorruptSession {
            account_id: account_id.to_owned(),
            reason: json_reason(&e),
        })?;
        self.conn
            .execute(
                "INSERT INTO sessions (account_id, qq, session_json, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account_id) DO UPDATE SET
                     qq = excluded.qq, session_json = excluded.session_json,
                     updated_at = excluded.updated_at",
                params![account_id, qq, json, now()],
            )
            .map_err(self.err("save session"))?;
        Ok(())
    }

    /// The stored session of `account_id`; `None` when there is none. A row that does not
    /// decode is [`StoreError::CorruptSession`] (its text is never quoted: it holds secrets).
    pub fn load_session(&self, account_id: &str) -> Result<Option<Session>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT session_json FROM sessions WHERE account_id = ?1",
                params![account_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err("load session"))?;
        json.map(|json| decode_session(account_id, &json)).transpose()
    }

    /// Deletes the session of `account_id` (after a logout or kick); `true` if there was one.
    pub fn delete_session(&self, account_id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM sessions WHERE account_id = ?1", params![account_id])
            .map_err(self.err("delete session"))?;
        Ok(n > 0)
    }

    /// Every stored session, ordered by account id, for restore at start. A row that does not
    /// decode is skipped with a warning (that account simply needs a new login) so one bad
    /// row cannot block every other account.
    pub fn load_all_sessions(&self) -> Result<Vec<(String, Session)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT account_id, session_json FROM sessions ORDER BY account_id")
            .map_err(self.err("load sessions"))?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(self.err("load sessions"))?;
        let mut out = Vec::new();
        for row in rows {
            let (account_id, json) = row.map_err(self.err("load sessions"))?;
            match decode_session(&account_id, &json) {
                Ok(session) => out.push((account_id, session)),
                Err(e) => tracing::warn!(account = %account_id, error = %e, "skipping session"),
            }
        }
        Ok(out)
    }

    /// Records the last known state of an account (replacing the previous one).
    pub fn set_account_state(
        &self,
        account_id: &str,
        qq: u64,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let qq = column_qq(account_id, qq)?;
        self.conn
            .execute(
                "INSERT INTO accounts (account_id, qq, state, reason, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (account_id) DO UPDATE SET
                     qq = excluded.qq, state = excluded.state, reason = excluded.reason,
                     updated_at = excluded.updated_at",
                params![account_id, qq, state, reason, now()],
            )
            .map_err(self.err("set account state"))?;
        Ok(())
    }

    /// Every recorded account state, ordered by account id.
    pub fn account_states(&self) -> Result<Vec<AccountStateRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT account_id, qq, state, reason, updated_at FROM accounts
                 ORDER BY account_id",
            )
            .map_err(self.err("read account states"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(AccountStateRow {
                    account_id: row.get(0)?,
                    qq: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    state: row.get(2)?,
                    reason: row.get(3)?,
                    updated_at: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                })
            })
            .map_err(self.err("read account states"))?;
        rows.collect::<Result<_, _>>().map_err(self.err("read account states"))
    }

    /// Takes (or renews) the poll lease of `account_id` for `holder` until now + `ttl`.
    /// `true` if `holder` holds it now; `false` if another holder's lease has not expired.
    /// Holders renew well before `ttl` runs out; a crashed holder's lease lapses after `ttl`.
    pub fn acquire_lease(
        &self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.acquire_lease_at(account_id, holder, ttl, unix_now())
    }

    /// [`Store::acquire_lease`] at a given time (`now`, Unix seconds), for deterministic tests.
    pub fn acquire_lease_at(
        &self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
        now: u64,
    ) -> Result<bool, StoreError> {
        let now = to_i64(now);
        let expires_at = now.saturating_add(to_i64(ttl.as_secs().max(1)));
        // One statement, so two processes racing for the lease cannot both win: the update
        // happens only when the row is ours already or has expired.
        let changed = self
            .conn
            .execute(
                "INSERT INTO poll_lease (account_id, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id) DO UPDATE SET
                     holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE poll_lease.holder = excluded.holder OR poll_lease.expires_at <= ?4",
                params![account_id, holder, expires_at, now],
            )
            .map_err(self.err("acquire lease"))?;
        Ok(changed > 0)
    }

    /// Gives up the lease of `account_id` if `holder` holds it; `true` if it did.
    pub fn release_lease(&self, account_id: &str, holder: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM poll_lease WHERE account_id = ?1 AND holder = ?2",
                params![account_id, holder],
            )
            .map_err(self.err("release lease"))?;
        Ok(n > 0)
    }
}

fn sql_err<'a>(
    path: &'a Path,
    context: &'static str,
) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite { path: path.to_owned(), context, source }
}

/// Removes group and other permission bits from `path` (owner bits are set to `mode`'s).
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current != mode {
        if current & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = current, "tightening store permissions");
        }
        std::fs::set_permissions(path, Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn now() -> i64 {
    to_i64(unix_now())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn column_qq(account_id: &str, qq: u64) -> Result<i64, StoreError> {
    i64::try_from(qq).map_err(|_| StoreError::OutOfRange { account_id: account_id.to_owned(), qq })
}

fn decode_session(account_id: &str, json: &str) -> Result<Session, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::CorruptSession {
        account_id: account_id.to_owned(),
        reason: json_reason(&e),
    })
}

/// A serde_json error without its message, which may quote the (secret) value.
fn json_reason(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "io error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "fields do not match a session",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::hash::HashVariant;
    use crate::webqq::hosts::Channel;
    use crate::webqq::{ClientId, QqNumber, Secret, Uin};

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

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn test_session_round_trips_with_secrets() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.load_session("a").unwrap(), None);
        let s = session(10001, "s3cret");
        store.save_session("a", &s).unwrap();
        let loaded = store.load_session("a").unwrap().unwrap();
        assert_eq!(loaded, s);
        assert_eq!(loaded.psessionid.expose(), "ps-s3cret");
        assert_eq!(loaded.cookies.expose(), s.cookies.expose());

        let newer = session(10001, "rotated");
        store.save_session("a", &newer).unwrap();
        store.save_session("b", &session(10002, "b")).unwrap();
        let all = store.load_all_sessions().unwrap();
        let ids: Vec<_> = all.iter().map(|(id, s)| (id.as_str(), s.qq.get())).collect();
        assert_eq!(ids, [("a", 10001), ("b", 10002)]);
        assert_eq!(all[0].1, newer);

        assert!(store.delete_session("a").unwrap());
        assert!(!store.delete_session("a").unwrap());
        assert_eq!(store.load_session("a").unwrap(), None);
    }

    #[test]
    fn test_corrupt_session_is_reported_without_its_text_and_skipped() {
        let store = Store::open_in_memory().unwrap();
        store.save_session("good", &session(10001, "x")).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO sessions VALUES ('bad', 10002, '{\"psessionid\": \"hunter2\"}', 0)",
                [],
            )
            .unwrap();
        let err = store.load_session("bad").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("account bad"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let all = store.load_all_sessions().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "good");
    }

    #[test]
    fn test_file_is_0600_and_new_dir_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("var/nested/qqbridge.sqlite3");
        let store = Store::open(&path).unwrap();
        store.save_session("a", &session(10001, "x")).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&tmp.path().join("var")), 0o700);
        for suffix in ["-wal", "-shm"] {
            let companion = PathBuf::from(format!("{}{suffix}", path.display()));
            assert!(companion.exists(), "{} missing: not in WAL mode?", companion.display());
            assert_eq!(mode(&companion), 0o600, "{}", companion.display());
        }
    }

    #[test]
    fn test_open_tightens_loose_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("var");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("db.sqlite3");
        drop(Store::open(&path).unwrap());
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o775)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn test_reopen_keeps_data_and_migrations_run_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len());
        store.save_session("a", &session(10001, "x")).unwrap();
        store.set_account_state("a", 10001, "CONNECTED", None).unwrap();
        drop(store);
        for _ in 0..2 {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len());
            assert_eq!(store.load_session("a").unwrap(), Some(session(10001, "x")));
            assert_eq!(store.account_states().unwrap().len(), 1);
        }
        let mut store = Store::open(&path).unwrap();
        store.migrate().unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn test_newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let store = Store::open(&path).unwrap();
        store.conn.execute("UPDATE schema_version SET version = 99", []).unwrap();
        drop(store);
        let err = Store::open(&path).unwrap_err();
        assert!(err.to_string().contains("schema version 99 is newer"), "{err}");
        assert!(err.to_string().contains("db.sqlite3"), "{err}");
    }

    #[test]
    fn test_account_states_are_upserted() {
        let store = Store::open_in_memory().unwrap();
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
            ]
        );
        let err = store.set_account_state("c", u64::MAX, "CONNECTED", None).unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
    }

    #[test]
    fn test_lease_is_exclusive_until_it_expires() {
        let store = Store::open_in_memory().unwrap();
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
            assert_eq!(got, expected, "{holder} at {at}");
        }
        assert!(store.acquire_lease_at("b", "p1", ttl, 1041).unwrap(), "leases are per account");
        assert!(!store.release_lease("a", "p1").unwrap(), "p1 does not hold a");
        assert!(store.release_lease("a", "p2").unwrap());
        assert!(store.acquire_lease_at("a", "p1", ttl, 1042).unwrap(), "released: free again");
        assert!(store.acquire_lease("c", "p1", ttl).unwrap());
        assert!(!store.acquire_lease("c", "p2", ttl).unwrap());
    }

    #[test]
    fn test_lease_is_exclusive_across_connections() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let (one, two) = (Store::open(&path).unwrap(), Store::open(&path).unwrap());
        let ttl = Duration::from_secs(60);
        assert!(one.acquire_lease("a", "host-1", ttl).unwrap());
        assert!(!two.acquire_lease("a", "host-2", ttl).unwrap());
        assert!(one.release_lease("a", "host-1").unwrap());
        assert!(two.acquire_lease("a", "host-2", ttl).unwrap());
    }

    #[test]
    fn test_unusable_path_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        for path in [file.join("db.sqlite3"), tmp.path().to_owned()] {
            let err = Store::open(&path).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("cannot open store "), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
    }

    #[test]
    fn test_busy_is_classified() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let store = Store::open(&path).unwrap();
        store.conn.busy_timeout(Duration::from_millis(10)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = store.set_account_state("a", 10001, "CONNECTED", None).unwrap_err();
        assert!(err.is_busy(), "{err}");
        assert!(!StoreError::OutOfRange { account_id: "a".into(), qq: 1 }.is_busy());
    }
}
