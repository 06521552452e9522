//! The PostgreSQL backend (sync `postgres` client, no TLS: loopback or a unix socket), and
//! [`ScratchDatabase`], a throwaway database for tests. Connection passwords never reach errors.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use postgres::config::Host;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};

use super::StoreError;
use super::backend::{Backend, Value};
use super::migrations;

/// The environment variable naming a PostgreSQL server for tests (`scripts/postgres.sh start`
/// prints a suitable URL); each test creates and drops its own database there.
pub const TEST_POSTGRES_URL_ENV: &str = "QQBRIDGE_TEST_POSTGRES_URL";

/// How long connecting may take when the URL sets no `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Key of the advisory lock held while migrating, so two processes never migrate at once.
const MIGRATION_LOCK: i64 = 0x7171_6272_6964_6765; // "qqbridge"

/// One PostgreSQL connection, owned by the store thread (the sync client runs its own small
/// runtime, so it must never be called on a tokio thread).
pub(crate) struct PostgresBackend {
    client: Client,
    /// Kept to reconnect after the server closed the connection (a PostgreSQL restart).
    config: Config,
    /// Between `BEGIN` and `COMMIT` / `ROLLBACK`: a lost connection is then not replaced, or
    /// the rest of the transaction would run on a new connection outside it.
    in_transaction: bool,
    /// A connection-level error was seen: reconnect before the next call.
    broken: bool,
    /// Statements prepared on this connection, by SQL text (one round trip less per call).
    statements: HashMap<String, Statement>,
    target: String,
    password: Option<String>,
}

/// A parsed URL: the driver config, what to call it in errors, and the password to scrub.
pub(crate) struct Target {
    config: Config,
    label: String,
    password: Option<String>,
}

impl Target {
    /// Parses `url` (`postgres://user:password@host:port/db?…` or `key=value` form). The error
    /// never quotes the URL.
    pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
        let mut config = Config::from_str(url)
            .map_err(|_| StoreError::InvalidUrl { reason: String::from("does not parse") })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => String::from("localhost"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("?");
        let db = config.get_dbname().unwrap_or(user);
        let label = format!("postgres {user}@{host}:{port}/{db}");
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Ok(Target { config, label, password })
    }

    /// What to call the server in errors and logs: `postgres user@host:port/database`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The error text of `e` (with its causes), the password replaced by `***`.
    fn error(&self, context: &'static str, e: &postgres::Error) -> StoreError {
        pg_error(&self.label, self.password.as_deref(), context, e)
    }
}

fn pg_error(
    target: &str,
    password: Option<&str>,
    context: &'static str,
    e: &postgres::Error,
) -> StoreError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(password) = password {
        message = message.replace(password, "***");
    }
    StoreError::Postgres {
        target: target.to_owned(),
        context,
        message,
        code: e.code().map(|c| c.code().to_owned()),
    }
}

impl PostgresBackend {
    /// Connects (no TLS). Blocks: call it on the store thread, never on a tokio thread.
    pub(crate) fn connect(target: Target) -> Result<PostgresBackend, StoreError> {
        let client = target.config.connect(NoTls).map_err(|e| target.error("connect", &e))?;
        Ok(PostgresBackend {
            client,
            config: target.config,
            in_transaction: false,
            broken: false,
            statements: HashMap::new(),
            target: target.label,
            password: target.password,
        })
    }

    fn err(&self, context: &'static str) -> impl Fn(postgres::Error) -> StoreError + '_ {
        move |e| pg_error(&self.target, self.password.as_deref(), context, &e)
    }

    /// [`pg_error`], noting a connection-level failure (no SQLSTATE: reset, closed, IO) so the
    /// next call outside a transaction reconnects; the client may not know it is closed yet.
    fn fail(&mut self, context: &'static str, e: &postgres::Error) -> StoreError {
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        if e.code().is_none() && (e.is_closed() || io) {
            self.broken = true;
        }
        pg_error(&self.target, self.password.as_deref(), context, e)
    }

    /// Reconnects when the server has closed the connection, so a PostgreSQL restart costs
    /// the calls that were in flight, not the store. Inside a transaction it fails instead (the
    /// transaction is lost; the caller's `ROLLBACK` ends it and the next call reconnects).
    fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if !self.broken && !self.client.is_closed() {
            return Ok(());
        }
        if self.in_transaction {
            return Err(StoreError::Postgres {
                target: self.target.clone(),
                context: "transaction",
                message: String::from("connection lost inside a transaction"),
                code: None,
            });
        }
        self.statements.clear();
        let client = self.config.connect(NoTls).map_err(self.err("reconnect"))?;
        self.broken = false;
        tracing::info!(store = %self.target, "store reconnected to PostgreSQL");
        self.client = client;
        Ok(())
    }

    fn statement(&mut self, context: &'static str, sql: &str) -> Result<Statement, StoreError> {
        self.ensure_connected()?;
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(|e| self.fail(context, &e))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // The column's type decides the encoding: PostgreSQL infers each `$N` from its use.
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::BOOL => (*v != 0).to_sql(ty, out),
            Value::Int(v) => v.to_sql(ty, out),
            Value::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Bool(b) => i64::from(*b).to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT2, Type::INT4, Type::INT8, Type::BOOL, Type::TEXT, Type::VARCHAR].contains(ty)
    }

    postgres::types::to_sql_checked!();
}

fn from_row(row: &postgres::Row) -> Result<Vec<Value>, postgres::Error> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, |v| Value::Int(v.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map_or(Value::Null, |v| Value::Int(v.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool)
        } else {
            // TEXT and friends; any other type fails here with a FromSql error naming the column.
            row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
        };
        values.push(value);
    }
    Ok(values)
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Backend for PostgresBackend {
    fn execute(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(context, sql)?;
        let result = self.client.execute(&statement, &refs(params));
        result.map_err(|e| self.fail(context, &e))
    }

    fn query(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let statement = self.statement(context, sql)?;
        let rows =
            self.client.query(&statement, &refs(params)).map_err(|e| self.fail(context, &e))?;
        rows.iter().map(from_row).collect::<Result<_, _>>().map_err(self.err(context))
    }

    fn batch(&mut self, context: &'static str, sql: &str) -> Result<(), StoreError> {
        if sql == "COMMIT" || sql == "ROLLBACK" {
            self.in_transaction = false;
            if (self.broken || self.client.is_closed()) && sql == "ROLLBACK" {
                // Nothing to roll back: the server ended the transaction with the connection.
                return Ok(());
            }
        } else {
            self.ensure_connected()?;
        }
        let result = self.client.batch_execute(sql);
        if result.is_err() || sql.contains("CREATE") || sql.contains("ALTER") {
            // A schema change can invalidate prepared statements' result types.
            self.statements.clear();
        }
        result.map_err(|e| self.fail(context, &e))
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.batch("begin", "BEGIN")?;
        self.in_transaction = true;
        Ok(())
    }

    fn lock_for_migration(&mut self) -> Result<(), StoreError> {
        let sql = format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})");
        self.batch("lock for migration", &sql)
    }

    fn migrations(&self) -> &'static [&'static str] {
        migrations::POSTGRES
    }

    fn describe(&self) -> &str {
        &self.target
    }
}

/// A fresh database `qqbt_<random>` on a test server, dropped (with its connections) when this
/// is dropped. For tests: the store suite and the integration harness. The admin connection
/// runs on its own short-lived thread, so this may be created from async tests too.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates a database on the server of `admin_url` (a URL whose user may `CREATE DATABASE`).
    /// Blocks for one connection and one statement.
    pub fn create(admin_url: &str) -> Result<ScratchDatabase, StoreError> {
        let name = scratch_name();
        let mut url = url::Url::parse(admin_url).map_err(|_| StoreError::InvalidUrl {
            reason: String::from("not a postgres:// URL"),
        })?;
        url.set_path(&format!("/{name}"));
        admin(admin_url, format!("CREATE DATABASE {name}"))?;
        Ok(ScratchDatabase { admin_url: admin_url.to_owned(), name, url: url.into() })
    }

    /// [`ScratchDatabase::create`] on the server named by [`TEST_POSTGRES_URL_ENV`]; `None`
    /// when the variable is unset or empty.
    pub fn from_env() -> Option<Result<ScratchDatabase, StoreError>> {
        let url = std::env::var(TEST_POSTGRES_URL_ENV).ok().filter(|u| !u.is_empty())?;
        Some(ScratchDatabase::create(&url))
    }

    /// The URL of the scratch database (for [`super::Store::open_postgres`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = admin(&self.admin_url, sql) {
            tracing::warn!(database = %self.name, %error, "scratch database not dropped");
        }
    }
}

/// Runs one statement on its own thread and connection (CREATE / DROP DATABASE cannot run in a
/// transaction, and the caller may be a tokio thread).
fn admin(admin_url: &str, sql: String) -> Result<(), StoreError> {
    let target = Target::parse(admin_url)?;
    let work = move || -> Result<(), StoreError> {
        let mut backend = PostgresBackend::connect(target)?;
        backend.batch("scratch database", &sql)
    };
    std::thread::spawn(work).join().unwrap_or(Err(StoreError::Closed))
}

fn scratch_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("qqbt_{}_{nanos}_{n}", std::process::id())
}
