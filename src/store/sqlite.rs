//! The SQLite backend (rusqlite, bundled): opening with safe file modes and WAL; statements with
//! `$N` placeholders bound by position. The default store (RELIABILITY.md §2 for the modes).

use std::borrow::Cow;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::StoreError;
use super::backend::{Backend, Value};
use super::migrations;

/// How long a write waits for another connection's lock before failing with a busy error
/// ([`StoreError::is_busy`]). Writes are single small rows, so a longer wait means trouble.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Mode of the database directory: owner only (it holds session secrets, RELIABILITY.md §2).
pub const DIR_MODE: u32 = 0o700;

/// Mode of the database file and its `-wal` / `-shm` companions.
pub const FILE_MODE: u32 = 0o600;

/// One SQLite connection, owned by the store thread.
pub(crate) struct SqliteBackend {
    conn: Connection,
    /// Shown in errors; `:memory:` for an in-memory database.
    path: PathBuf,
    label: String,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path`: creates missing parent directories
    /// with mode 0700, tightens an existing parent directory and the file (plus `-wal`/`-shm`)
    /// to 0700/0600 and enables WAL. Migrations are applied by the caller. Errors name the path.
    pub(crate) fn open(path: &Path) -> Result<SqliteBackend, StoreError> {
        let io_err = |source| StoreError::Open { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(io_err)?;
            tighten(dir, DIR_MODE).map_err(io_err)?;
        }
        // Creating the file ourselves, before SQLite does, is what gives it 0600 from the
        // first byte on; SQLite then creates `-wal` and `-shm` with the same mode.
        OpenOptions::new().create(true).append(true).mode(FILE_MODE).open(path).map_err(io_err)?;
        tighten(path, FILE_MODE).map_err(io_err)?;
        let conn = Connection::open(path).map_err(sql_err(path, "open"))?;
        let backend = SqliteBackend::new(conn, path.to_owned());
        backend.configure(true)?;
        Ok(backend)
    }

    /// A private in-memory database (tests). Does no file IO.
    pub(crate) fn open_in_memory() -> Result<SqliteBackend, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(sql_err(&path, "open"))?;
        let backend = SqliteBackend::new(conn, path);
        backend.configure(false)?;
        Ok(backend)
    }

    fn new(conn: Connection, path: PathBuf) -> SqliteBackend {
        let label = path.display().to_string();
        SqliteBackend { conn, path, label }
    }

    /// Runs after every open: the companions appear with the first WAL write, so they are
    /// checked again here.
    pub(crate) fn tighten_companions(&self) -> Result<(), StoreError> {
        for suffix in ["-wal", "-shm"] {
            let mut companion = self.path.as_os_str().to_owned();
            companion.push(suffix);
            let companion = PathBuf::from(companion);
            if companion.exists() {
                tighten(&companion, FILE_MODE)
                    .map_err(|source| StoreError::Open { path: self.path.clone(), source })?;
            }
        }
        Ok(())
    }

    fn configure(&self, wal: bool) -> Result<(), StoreError> {
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err(&self.path, "set busy timeout"))?;
        if wal {
            // WAL lets readers (a status query) run beside the writer, and survives a kill -9
            // without a rollback journal dance (RELIABILITY.md §1.7: restarts must be fast).
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(sql_err(&self.path, "enable WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(path = %self.path.display(), mode, "store is not in WAL mode");
            }
            // With WAL, NORMAL syncs at checkpoints only: a crash of the process loses nothing,
            // a power loss at most the last few state writes (a re-login), and starting 1,000
            // accounts no longer waits for ~3,000 fsyncs (the restore bench went 3.8 s → 2.0 s).
            self.conn
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(sql_err(&self.path, "set synchronous = NORMAL"))?;
        }
        Ok(())
    }

    /// Shortens the busy timeout (tests provoke a busy error without a 2 s wait).
    #[cfg(test)]
    pub(crate) fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(timeout).map_err(sql_err(&self.path, "set busy timeout"))
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        })
    }
}

/// `$N` → `?N`: both are valid SQLite, but `$N` is a *named* parameter numbered by first
/// appearance, while `?N` is numbered by `N`, which is what PostgreSQL's `$N` means. Runs for
/// every statement, so it works on bytes (a `$` is ASCII: the cuts are char boundaries).
fn numbered(sql: &str) -> Cow<'_, str> {
    let bytes = sql.as_bytes();
    let placeholder =
        |i: usize| bytes.get(i) == Some(&b'$') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
    if !(0..bytes.len()).any(placeholder) {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut start = 0;
    for i in (0..bytes.len()).filter(|i| placeholder(*i)) {
        out.push_str(sql.get(start..i).unwrap_or_default());
        out.push('?');
        start = i + 1;
    }
    out.push_str(sql.get(start..).unwrap_or_default());
    Cow::Owned(out)
}

fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        // Our columns are TEXT or INTEGER; a REAL or BLOB means a hand-edited file: keep it
        // readable as text so the row decoder reports it instead of us guessing.
        ValueRef::Real(v) => Value::Text(v.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

impl Backend for SqliteBackend {
    fn execute(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(&numbered(sql)).map_err(sql_err(&self.path, context))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(sql_err(&self.path, context))?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn query(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(&numbered(sql)).map_err(sql_err(&self.path, context))?;
        let width = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(sql_err(&self.path, context))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql_err(&self.path, context))? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_sqlite(row.get_ref(i).map_err(sql_err(&self.path, context))?));
            }
            out.push(values);
        }
        Ok(out)
    }

    fn batch(&mut self, context: &'static str, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(sql_err(&self.path, context))
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock now: a deferred transaction that reads, then writes,
        // fails with SQLITE_BUSY (no busy timeout applies) when another writer got in between.
        self.batch("begin", "BEGIN IMMEDIATE")
    }

    fn lock_for_migration(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn migrations(&self) -> &'static [&'static str] {
        migrations::SQLITE
    }

    fn describe(&self) -> &str {
        &self.label
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Conn, Store};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn test_placeholders_become_numbered() {
        let cases = [
            ("SELECT $1, $2", "SELECT ?1, ?2"),
            ("WHERE a = $10 OR b <= $2", "WHERE a = ?10 OR b <= ?2"),
            ("SELECT '$' || $1", "SELECT '$' || ?1"),
            ("no params", "no params"),
            ("SELECT 'é$' || $3 || '$'", "SELECT 'é$' || ?3 || '$'"),
            ("$1$2", "?1?2"),
        ];
        for (sql, want) in cases {
            assert_eq!(numbered(sql), want, "{sql}");
        }
    }

    #[test]
    fn test_file_is_0600_and_new_dir_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("var/nested/qqbridge.sqlite3");
        let store = Store::open_sqlite(&path).unwrap();
        store.kv_set("k", "v").unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
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
        drop(Store::open_sqlite(&path).unwrap());
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o775)).unwrap();
        drop(Store::open_sqlite(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn test_unusable_path_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        for path in [file.join("db.sqlite3"), tmp.path().to_owned()] {
            let err = Store::open_sqlite(&path).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("cannot open store "), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
    }

    #[test]
    fn test_version_1_database_migrates_forward_keeping_its_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        // A database as the previous release left it: schema version 1, INTEGER version column.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(migrations::SQLITE_V1_SESSIONS_ACCOUNTS_LEASES).unwrap();
        old.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1);
             INSERT INTO accounts VALUES ('a', 10001, 'CONNECTED', NULL, 1700000000);
             INSERT INTO poll_lease VALUES ('a', 'host-1', 4000000000);",
        )
        .unwrap();
        drop(old);
        let store = Store::open_sqlite(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::SQLITE.len());
        let states = store.account_states().unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!((states[0].qq, states[0].updated_at), (10001, 1_700_000_000));
        assert!(!store.acquire_lease("a", "host-2", Duration::from_secs(30)).unwrap());
        assert!(store.mark_txn_processed("1").unwrap(), "the new tables exist");
    }

    #[test]
    fn test_busy_is_classified() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let backend = SqliteBackend::open(&path).unwrap();
        backend.set_busy_timeout(Duration::from_millis(10)).unwrap();
        let mut conn = Conn::new(Box::new(backend)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = conn.set_account_state("a", 10001, "CONNECTED", None).unwrap_err();
        assert!(err.is_busy(), "{err}");
        let err = conn.transaction(|c| c.kv_set("k", "v")).unwrap_err();
        assert!(err.is_busy(), "{err}");
        other.execute_batch("COMMIT").unwrap();
        conn.transaction(|c| c.kv_set("k", "v")).unwrap();
        assert_eq!(conn.kv_get("k").unwrap().as_deref(), Some("v"));
    }
}
