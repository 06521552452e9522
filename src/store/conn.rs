//! [`Conn`]: the store's queries on whichever backend the store thread owns; migrations,
//! transactions, sessions, account states and poll leases. Parameterised SQL only (RELIABILITY.md §3).

use std::time::Duration;

use super::StoreError;
use super::backend::{Backend, Row, Value};
use super::rows::AccountStateRow;
use crate::webqq::session::{Session, unix_now};

/// The connection of the store thread. Reached only through [`super::Store`]: its sync methods
/// forward one call each, and [`super::Store::call`] hands a closure a `&mut Conn` for a sequence
/// of calls (or a [`Conn::transaction`]). Every method does blocking IO.
pub struct Conn {
    db: Box<dyn Backend>,
    in_transaction: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("store", &self.db.describe()).finish_non_exhaustive()
    }
}

impl Conn {
    /// Wraps an open backend and applies its pending migrations.
    pub(crate) fn new(db: Box<dyn Backend>) -> Result<Conn, StoreError> {
        let mut conn = Conn { db, in_transaction: false };
        conn.migrate()?;
        Ok(conn)
    }

    /// What the store is: a file path, or host, port, database and user (no password).
    pub fn describe(&self) -> &str {
        self.db.describe()
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back on `Err`. The
    /// write lock is held from the start (SQLite `BEGIN IMMEDIATE`), so read-then-write inside is
    /// safe against other processes. Nested calls join the outer transaction.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.in_transaction {
            return f(self);
        }
        self.db.begin()?;
        self.in_transaction = true;
        let result = f(self);
        self.in_transaction = false;
        let result = result.and_then(|value| self.db.batch("commit", "COMMIT").map(|()| value));
        if result.is_err() {
            // Also after a failed COMMIT: a transaction left open would swallow every later
            // statement of this connection.
            if let Err(rollback) = self.db.batch("rollback", "ROLLBACK") {
                tracing::debug!(error = %rollback, "store rollback failed");
            }
        }
        result
    }

    /// Applies every migration above the stored version, each in its own transaction that holds
    /// the migration lock, so two processes opening one database at once cannot both apply one.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let migrations = self.db.migrations();
        loop {
            let done = self.transaction(|conn| {
                conn.db.lock_for_migration()?;
                conn.db.batch(
                    "create schema_version",
                    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
                )?;
                let current = match conn.version()? {
                    Some(v) => v,
                    None => {
                        conn.exec(
                            "init schema version",
                            "INSERT INTO schema_version VALUES (0)",
                            &[],
                        )?;
                        0
                    }
                };
                let index = usize::try_from(current).unwrap_or(usize::MAX);
                if index > migrations.len() {
                    return Err(StoreError::TooNew {
                        store: conn.describe().to_owned(),
                        found: current,
                        known: migrations.len(),
                    });
                }
                let Some(migration) = migrations.get(index) else {
                    return Ok(true);
                };
                conn.db.batch("apply migration", migration)?;
                conn.exec(
                    "record schema version",
                    "UPDATE schema_version SET version = $1",
                    &[Value::Int(current.saturating_add(1))],
                )?;
                Ok(false)
            })?;
            if done {
                return Ok(());
            }
        }
    }

    fn version(&mut self) -> Result<Option<i64>, StoreError> {
        let row = self.one(
            "schema_version",
            "read schema version",
            "SELECT version FROM schema_version",
            &[],
        )?;
        row.map(|r| r.int(0)).transpose()
    }

    /// The schema version applied (equals the backend's migration count after open).
    pub fn schema_version(&mut self) -> Result<usize, StoreError> {
        Ok(self.version()?.and_then(|v| usize::try_from(v).ok()).unwrap_or(0))
    }

    /// Runs one statement; rows changed.
    pub(crate) fn exec(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, StoreError> {
        self.db.execute(context, sql, params)
    }

    /// Runs a query; its rows, labelled with `table` for decode errors.
    pub(crate) fn rows(
        &mut self,
        table: &'static str,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Row>, StoreError> {
        let rows = self.db.query(context, sql, params)?;
        Ok(rows.into_iter().map(|values| Row { table, values }).collect())
    }

    /// Runs a query expected to return at most one row; its first row.
    pub(crate) fn one(
        &mut self,
        table: &'static str,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(table, context, sql, params)?.into_iter().next())
    }

    /// Runs raw SQL without parameters (tests only).
    #[cfg(test)]
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.db.batch("batch", sql)
    }

    /// Stores (or replaces) the session of `account_id`, secrets included.
    pub fn save_session(&mut self, account_id: &str, session: &Session) -> Result<(), StoreError> {
        let qq = column_qq(account_id, session.qq.get())?;
        let json = serde_json::to_string(session).map_err(|e| StoreError::CorruptSession {
            account_id: account_id.to_owned(),
            reason: json_reason(&e),
        })?;
        self.exec(
            "save session",
            "INSERT INTO sessions (account_id, qq, session_json, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id) DO UPDATE SET
                 qq = excluded.qq, session_json = excluded.session_json,
                 updated_at = excluded.updated_at",
            &[account_id.into(), qq.into(), json.into(), now().into()],
        )?;
        Ok(())
    }

    /// The stored session of `account_id`; `None` when there is none. A row that does not
    /// decode is [`StoreError::CorruptSession`] (its text is never quoted: it holds secrets).
    pub fn load_session(&mut self, account_id: &str) -> Result<Option<Session>, StoreError> {
        let row = self.one(
            "sessions",
            "load session",
            "SELECT session_json FROM sessions WHERE account_id = $1",
            &[account_id.into()],
        )?;
        match row {
            Some(row) => decode_session(account_id, &row.text(0)?).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes the session of `account_id` (after a logout or kick); `true` if there was one.
    pub fn delete_session(&mut self, account_id: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete session",
            "DELETE FROM sessions WHERE account_id = $1",
            &[account_id.into()],
        )?;
        Ok(n > 0)
    }

    /// Every stored session, ordered by account id, for restore at start. A row that does not
    /// decode is skipped with a warning (that account simply needs a new login) so one bad
    /// row cannot block every other account.
    pub fn load_all_sessions(&mut self) -> Result<Vec<(String, Session)>, StoreError> {
        let rows = self.rows(
            "sessions",
            "load sessions",
            "SELECT account_id, session_json FROM sessions ORDER BY account_id",
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let account_id = row.text(0)?;
            match row.text(1).and_then(|json| decode_session(&account_id, &json)) {
                Ok(session) => out.push((account_id, session)),
                Err(e) => tracing::warn!(account = %account_id, error = %e, "skipping session"),
            }
        }
        Ok(out)
    }

    /// Records the last known state of an account (replacing the previous one).
    pub fn set_account_state(
        &mut self,
        account_id: &str,
        qq: u64,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let qq = column_qq(account_id, qq)?;
        self.exec(
            "set account state",
            "INSERT INTO accounts (account_id, qq, state, reason, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id) DO UPDATE SET
                 qq = excluded.qq, state = excluded.state, reason = excluded.reason,
                 updated_at = excluded.updated_at",
            &[account_id.into(), qq.into(), state.into(), reason.into(), now().into()],
        )?;
        Ok(())
    }

    /// Every recorded account state, ordered by account id.
    pub fn account_states(&mut self) -> Result<Vec<AccountStateRow>, StoreError> {
        let rows = self.rows(
            "accounts",
            "read account states",
            "SELECT account_id, qq, state, reason, updated_at FROM accounts ORDER BY account_id",
            &[],
        )?;
        rows.iter()
            .map(|row| {
                Ok(AccountStateRow {
                    account_id: row.text(0)?,
                    qq: row.uint(1)?,
                    state: row.text(2)?,
                    reason: row.opt_text(3)?,
                    updated_at: row.uint(4)?,
                })
            })
            .collect()
    }

    /// Takes (or renews) the poll lease of `account_id` for `holder` until `now` + `ttl`
    /// (`now` in Unix seconds). `true` if `holder` holds it now; `false` if another holder's
    /// lease has not expired. Holders renew well before `ttl` runs out; a crashed holder's lease
    /// lapses after `ttl`.
    pub fn acquire_lease_at(
        &mut self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
        now: u64,
    ) -> Result<bool, StoreError> {
        let now = to_i64(now);
        let expires_at = now.saturating_add(to_i64(ttl.as_secs().max(1)));
        // One statement, so two processes racing for the lease cannot both win: the update
        // happens only when the row is ours already or has expired.
        let changed = self.exec(
            "acquire lease",
            "INSERT INTO poll_lease (account_id, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (account_id) DO UPDATE SET
                 holder = excluded.holder, expires_at = excluded.expires_at
             WHERE poll_lease.holder = excluded.holder OR poll_lease.expires_at <= $4",
            &[account_id.into(), holder.into(), expires_at.into(), now.into()],
        )?;
        Ok(changed > 0)
    }

    /// The current holder of `account_id`'s lease, expired or not; `None` when there is none.
    pub fn lease_holder(&mut self, account_id: &str) -> Result<Option<String>, StoreError> {
        let row = self.one(
            "poll_lease",
            "read lease",
            "SELECT holder FROM poll_lease WHERE account_id = $1",
            &[account_id.into()],
        )?;
        row.map(|r| r.text(0)).transpose()
    }

    /// Takes `account_id`'s lease from `dead`, a holder known to be gone, for `holder`; `false`
    /// when `dead` no longer holds it (someone else took it first).
    pub fn take_over_lease(
        &mut self,
        account_id: &str,
        dead: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let expires_at = now().saturating_add(to_i64(ttl.as_secs().max(1)));
        let n = self.exec(
            "take over lease",
            "UPDATE poll_lease SET holder = $1, expires_at = $2 WHERE account_id = $3 AND holder = $4",
            &[holder.into(), expires_at.into(), account_id.into(), dead.into()],
        )?;
        Ok(n > 0)
    }

    /// Gives up the lease of `account_id` if `holder` holds it; `true` if it did.
    pub fn release_lease(&mut self, account_id: &str, holder: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "release lease",
            "DELETE FROM poll_lease WHERE account_id = $1 AND holder = $2",
            &[account_id.into(), holder.into()],
        )?;
        Ok(n > 0)
    }
}

/// Now, Unix seconds, as a column value.
pub(crate) fn now() -> i64 {
    to_i64(unix_now())
}

/// `n` as a BIGINT, saturating (times and sizes never come near `i64::MAX`).
pub(crate) fn to_i64(n: u64) -> i64 {
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
