//! What a database backend must offer the store: parameterised statements over a tiny value type,
//! explicit transactions, and its own migration list. SQL text is shared; `$1, $2, …` placeholders.

use super::StoreError;

/// One SQL value as the store binds and reads it. Columns are TEXT, BIGINT or BOOLEAN only, so
/// this is all either backend needs (PostgreSQL is strict about types; SQLite is not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// SQL NULL.
    Null,
    /// A BIGINT (SQLite INTEGER).
    Int(i64),
    /// A TEXT.
    Text(String),
    /// A BOOLEAN (SQLite stores 0 / 1).
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row. Getters fail with [`StoreError::CorruptRow`] instead of panicking when a
/// column is missing or of another type (a database edited by hand must not crash the bridge).
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) table: &'static str,
    pub(crate) values: Vec<Value>,
}

impl Row {
    fn corrupt(&self, index: usize, want: &str) -> StoreError {
        StoreError::CorruptRow {
            table: self.table,
            reason: format!("column {index} is not {want}"),
        }
    }

    /// The TEXT at `index`, or NULL as `None`.
    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.values.get(index) {
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            Some(Value::Null) => Ok(None),
            _ => Err(self.corrupt(index, "text")),
        }
    }

    /// The TEXT at `index`; NULL is an error.
    pub(crate) fn text(&self, index: usize) -> Result<String, StoreError> {
        self.opt_text(index)?.ok_or_else(|| self.corrupt(index, "non-null text"))
    }

    /// The BIGINT at `index`; NULL is an error.
    pub(crate) fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.values.get(index) {
            Some(Value::Int(v)) => Ok(*v),
            _ => Err(self.corrupt(index, "an integer")),
        }
    }

    /// The BIGINT at `index` as a non-negative number (negative values read as 0).
    pub(crate) fn uint(&self, index: usize) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.int(index)?).unwrap_or(0))
    }

    /// The BOOLEAN at `index` (SQLite's 0 / 1 included); NULL is an error.
    pub(crate) fn bool(&self, index: usize) -> Result<bool, StoreError> {
        match self.values.get(index) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Int(v)) => Ok(*v != 0),
            _ => Err(self.corrupt(index, "a boolean")),
        }
    }
}

/// A database connection the store thread owns. Every method blocks on IO. `context` names the
/// operation in errors ("save session"); errors never carry connection secrets.
pub(crate) trait Backend: Send {
    /// Runs one statement; the number of rows it changed.
    fn execute(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, StoreError>;

    /// Runs one query; every row, each column converted to a [`Value`].
    fn query(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, StoreError>;

    /// Runs several statements without parameters (migrations, `COMMIT`, `ROLLBACK`).
    fn batch(&mut self, context: &'static str, sql: &str) -> Result<(), StoreError>;

    /// Opens a transaction that holds the write lock from its start (SQLite `BEGIN IMMEDIATE`;
    /// PostgreSQL `BEGIN`), so a read-then-write inside it cannot race another process.
    fn begin(&mut self) -> Result<(), StoreError>;

    /// Inside a transaction from [`Backend::begin`]: blocks other processes migrating the same
    /// database until it ends (SQLite's write lock already does; PostgreSQL takes an advisory
    /// lock).
    fn lock_for_migration(&mut self) -> Result<(), StoreError>;

    /// This backend's migrations: entry `n` moves the schema from version `n` to `n + 1`.
    fn migrations(&self) -> &'static [&'static str];

    /// What the store is, for errors and logs: a file path, or host/port/database (never a
    /// password).
    fn describe(&self) -> &str;
}
