//! [`Store`]: the `Clone + Send + Sync` handle to the one thread that owns the store's connection
//! (SQLite or PostgreSQL). Commands run on that thread one at a time, in the order sent.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use ruma::{EventId, OwnedRoomId, RoomId};

use super::StoreError;
use super::backend::Backend;
use super::conn::Conn;
use super::postgres::{PostgresBackend, Target};
use super::rows::{AccountStateRow, Ghost, Media, MessageRow, Portal};
use super::sqlite::SqliteBackend;
use crate::webqq::QqNumber;
use crate::webqq::session::{Session, unix_now};

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// The store. Cheap to clone; every clone talks to the same store thread, which ends (closing
/// the connection) when the last clone is dropped.
///
/// Every method blocks the calling thread until the store thread has run it: short for one row,
/// but disk or network IO all the same. From async code use [`Store::call`], or wrap a burst of
/// calls in `tokio::task::spawn_blocking`. Never call the store from inside a closure given to
/// [`Store::call`] or [`Store::blocking_call`]: that waits on itself forever (use the `Conn`).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    label: String,
    path: Option<PathBuf>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; joining makes "dropped" mean "closed", so
        // a reopen (or a scratch database's DROP) never races the old connection.
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("store", &self.inner.label).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` on a new store thread: creates
    /// missing parent directories with mode 0700, tightens an existing parent directory and the
    /// file (plus `-wal`/`-shm`) to 0700/0600, enables WAL and applies pending migrations.
    /// Errors name the path.
    pub fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let owned = path.to_owned();
        Store::spawn(path.display().to_string(), Some(path.to_owned()), move || {
            let backend = SqliteBackend::open(&owned)?;
            backend.tighten_companions()?;
            Ok(Box::new(backend))
        })
    }

    /// [`Store::open_sqlite`] (the default backend).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_sqlite(path)
    }

    /// A private in-memory SQLite database with the full schema, for tests. Does no file IO.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::spawn(String::from(":memory:"), Some(PathBuf::from(":memory:")), || {
            Ok(Box::new(SqliteBackend::open_in_memory()?))
        })
    }

    /// Connects to PostgreSQL at `url` (`postgres://user:password@host:port/database`; no TLS,
    /// so loopback or a unix socket) on a new store thread and applies pending migrations.
    /// Blocks for the connection (at most `connect_timeout`, default 10 s). Errors name host,
    /// port, database and user, never the password.
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let target = Target::parse(url)?;
        Store::spawn(target.label().to_owned(), None, move || {
            Ok(Box::new(PostgresBackend::connect(target)?))
        })
    }

    fn spawn(
        label: String,
        path: Option<PathBuf>,
        open: impl FnOnce() -> Result<Box<dyn Backend>, StoreError> + Send + 'static,
    ) -> Result<Store, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = mpsc::sync_channel::<Result<(), StoreError>>(1);
        let thread = std::thread::Builder::new()
            .name(String::from("qqbridge-store"))
            .spawn(move || {
                let mut conn = match open().and_then(Conn::new) {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                for job in queue {
                    job(&mut conn);
                }
            })
            .map_err(|source| StoreError::Open { path: PathBuf::from(&label), source })?;
        opened.recv().unwrap_or(Err(StoreError::Closed))?;
        Ok(Store { inner: Arc::new(Inner { jobs: Some(jobs), thread: Some(thread), label, path }) })
    }

    /// What the store is: the SQLite path, or `postgres user@host:port/database`.
    pub fn describe(&self) -> &str {
        &self.inner.label
    }

    /// The SQLite file (`:memory:` for an in-memory store); `None` on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Runs `f` on the store thread and blocks until it returns. For sequences of calls that
    /// belong together (other callers' commands cannot run in between); wrap them in
    /// [`Conn::transaction`] when they must also be atomic.
    pub fn blocking_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Box::new(move |conn| {
            let _ = reply.send(f(conn));
        }))?;
        answer.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// [`Store::blocking_call`] for async callers: awaits the answer instead of blocking the
    /// thread (the store thread still runs commands one at a time).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Box::new(move |conn| {
            let _ = reply.send(f(conn));
        }))?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.inner.jobs.as_ref().ok_or(StoreError::Closed)?;
        jobs.send(job).map_err(|_| StoreError::Closed)
    }

    /// The schema version applied (the backend's migration count after open).
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        self.blocking_call(Conn::schema_version)
    }

    /// Stores (or replaces) the session of `account_id`, secrets included ([`Conn::save_session`]).
    pub fn save_session(&self, account_id: &str, session: &Session) -> Result<(), StoreError> {
        let (id, session) = (account_id.to_owned(), session.clone());
        self.blocking_call(move |c| c.save_session(&id, &session))
    }

    /// The stored session of `account_id`, `None` when there is none ([`Conn::load_session`]).
    pub fn load_session(&self, account_id: &str) -> Result<Option<Session>, StoreError> {
        let id = account_id.to_owned();
        self.blocking_call(move |c| c.load_session(&id))
    }

    /// Deletes the session of `account_id`; `true` if there was one.
    pub fn delete_session(&self, account_id: &str) -> Result<bool, StoreError> {
        let id = account_id.to_owned();
        self.blocking_call(move |c| c.delete_session(&id))
    }

    /// Every decodable stored session by account id ([`Conn::load_all_sessions`]).
    pub fn load_all_sessions(&self) -> Result<Vec<(String, Session)>, StoreError> {
        self.blocking_call(Conn::load_all_sessions)
    }

    /// Records the last known state of an account (replacing the previous one).
    pub fn set_account_state(
        &self,
        account_id: &str,
        qq: u64,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let (id, state, reason) =
            (account_id.to_owned(), state.to_owned(), reason.map(str::to_owned));
        self.blocking_call(move |c| c.set_account_state(&id, qq, &state, reason.as_deref()))
    }

    /// Every recorded account state, ordered by account id.
    pub fn account_states(&self) -> Result<Vec<AccountStateRow>, StoreError> {
        self.blocking_call(Conn::account_states)
    }

    /// Takes or renews the poll lease of `account_id` for `holder` until now + `ttl`; `true` if
    /// `holder` holds it now ([`Conn::acquire_lease_at`]).
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
        let (id, holder) = (account_id.to_owned(), holder.to_owned());
        self.blocking_call(move |c| c.acquire_lease_at(&id, &holder, ttl, now))
    }

    /// Gives up the lease of `account_id` if `holder` holds it; `true` if it did.
    pub fn release_lease(&self, account_id: &str, holder: &str) -> Result<bool, StoreError> {
        let (id, holder) = (account_id.to_owned(), holder.to_owned());
        self.blocking_call(move |c| c.release_lease(&id, &holder))
    }

    /// Records `txn_id` as processed; `true` exactly once per id, across threads, processes and
    /// restarts ([`Conn::mark_txn_processed_at`]).
    pub fn mark_txn_processed(&self, txn_id: &str) -> Result<bool, StoreError> {
        let txn_id = txn_id.to_owned();
        self.blocking_call(move |c| c.mark_txn_processed(&txn_id))
    }

    /// Whether `txn_id` was recorded as processed (and not pruned since).
    pub fn is_txn_processed(&self, txn_id: &str) -> Result<bool, StoreError> {
        let txn_id = txn_id.to_owned();
        self.blocking_call(move |c| c.is_txn_processed(&txn_id))
    }

    /// Forgets transactions processed more than `age` ago; how many ([`Conn::prune_txns_before`]).
    pub fn prune_txns_older_than(&self, age: Duration) -> Result<u64, StoreError> {
        self.blocking_call(move |c| c.prune_txns_older_than(age))
    }

    /// Stores `portal` (upsert by key; `created_at` keeps its first value).
    pub fn upsert_portal(&self, portal: &Portal) -> Result<(), StoreError> {
        let portal = portal.clone();
        self.blocking_call(move |c| c.upsert_portal(&portal))
    }

    /// The portal under `portal_key`; `None` when there is none.
    pub fn portal(&self, portal_key: &str) -> Result<Option<Portal>, StoreError> {
        let key = portal_key.to_owned();
        self.blocking_call(move |c| c.portal(&key))
    }

    /// The portal whose room is `room_id`; `None` when the room is not a portal.
    pub fn portal_by_room(&self, room_id: &RoomId) -> Result<Option<Portal>, StoreError> {
        let room = room_id.to_owned();
        self.blocking_call(move |c| c.portal_by_room(&room))
    }

    /// Every portal, ordered by key.
    pub fn portals(&self) -> Result<Vec<Portal>, StoreError> {
        self.blocking_call(Conn::portals)
    }

    /// The portals of `account_id` (not the shared ones), ordered by key.
    pub fn portals_of_account(&self, account_id: &str) -> Result<Vec<Portal>, StoreError> {
        let id = account_id.to_owned();
        self.blocking_call(move |c| c.portals_of_account(&id))
    }

    /// Deletes a portal and its message map; `true` if it existed.
    pub fn delete_portal(&self, portal_key: &str) -> Result<bool, StoreError> {
        let key = portal_key.to_owned();
        self.blocking_call(move |c| c.delete_portal(&key))
    }

    /// Stores the space room of `account_id` (replacing a previous one).
    pub fn set_space(&self, account_id: &str, room_id: &RoomId) -> Result<(), StoreError> {
        let (id, room) = (account_id.to_owned(), room_id.to_owned());
        self.blocking_call(move |c| c.set_space(&id, &room))
    }

    /// The space room of `account_id`; `None` when it has none yet.
    pub fn space(&self, account_id: &str) -> Result<Option<OwnedRoomId>, StoreError> {
        let id = account_id.to_owned();
        self.blocking_call(move |c| c.space(&id))
    }

    /// Stores `ghost` (upsert by QQ number; `updated_at` set to now).
    pub fn upsert_ghost(&self, ghost: &Ghost) -> Result<(), StoreError> {
        let ghost = ghost.clone();
        self.blocking_call(move |c| c.upsert_ghost(&ghost))
    }

    /// The ghost of `qq`; `None` when it was never stored.
    pub fn ghost(&self, qq: QqNumber) -> Result<Option<Ghost>, StoreError> {
        self.blocking_call(move |c| c.ghost(qq))
    }

    /// Records that the ghost of `qq` is joined to `room_id`; `true` if that was not known.
    pub fn add_ghost_room(&self, qq: QqNumber, room_id: &RoomId) -> Result<bool, StoreError> {
        let room = room_id.to_owned();
        self.blocking_call(move |c| c.add_ghost_room(qq, &room))
    }

    /// Forgets that the ghost of `qq` is joined to `room_id`; `true` if it was known.
    pub fn remove_ghost_room(&self, qq: QqNumber, room_id: &RoomId) -> Result<bool, StoreError> {
        let room = room_id.to_owned();
        self.blocking_call(move |c| c.remove_ghost_room(qq, &room))
    }

    /// Whether the ghost of `qq` is known to be joined to `room_id`.
    pub fn is_ghost_in_room(&self, qq: QqNumber, room_id: &RoomId) -> Result<bool, StoreError> {
        let room = room_id.to_owned();
        self.blocking_call(move |c| c.is_ghost_in_room(qq, &room))
    }

    /// The rooms the ghost of `qq` is known to be joined to, ordered.
    pub fn ghost_rooms(&self, qq: QqNumber) -> Result<Vec<OwnedRoomId>, StoreError> {
        self.blocking_call(move |c| c.ghost_rooms(qq))
    }

    /// Stores an upload for reuse (upsert by content hash).
    pub fn put_media(&self, media: &Media) -> Result<(), StoreError> {
        let media = media.clone();
        self.blocking_call(move |c| c.put_media(&media))
    }

    /// The upload of content with `content_hash`; `None` when it was never uploaded.
    pub fn media(&self, content_hash: &str) -> Result<Option<Media>, StoreError> {
        let hash = content_hash.to_owned();
        self.blocking_call(move |c| c.media(&hash))
    }

    /// Stores a message mapping unless its (portal, remote key) is mapped; `true` when new
    /// ([`Conn::insert_message`]).
    pub fn insert_message(&self, message: &MessageRow) -> Result<bool, StoreError> {
        let message = message.clone();
        self.blocking_call(move |c| c.insert_message(&message))
    }

    /// Whether QQ message `remote_key` of `portal_key` is mapped ([`Conn::is_message_mapped`]).
    pub fn is_message_mapped(
        &self,
        portal_key: &str,
        remote_key: &str,
    ) -> Result<bool, StoreError> {
        let (portal, remote) = (portal_key.to_owned(), remote_key.to_owned());
        self.blocking_call(move |c| c.is_message_mapped(&portal, &remote))
    }

    /// The mapping of QQ message `remote_key` in `portal_key`; `None` when it was not bridged.
    pub fn message_by_remote(
        &self,
        portal_key: &str,
        remote_key: &str,
    ) -> Result<Option<MessageRow>, StoreError> {
        let (portal, remote) = (portal_key.to_owned(), remote_key.to_owned());
        self.blocking_call(move |c| c.message_by_remote(&portal, &remote))
    }

    /// The mapping of `event_id` in `room_id`; `None` when the bridge did not see it there
    /// ([`Conn::message_by_event`]).
    pub fn message_by_event(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<Option<MessageRow>, StoreError> {
        let (room, event) = (room_id.to_owned(), event_id.to_owned());
        self.blocking_call(move |c| c.message_by_event(&room, &event))
    }

    /// Stores a small piece of bridge state under `key` (replacing the previous value).
    pub fn kv_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.blocking_call(move |c| c.kv_set(&key, &value))
    }

    /// The value stored under `key`; `None` when there is none.
    pub fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.blocking_call(move |c| c.kv_get(&key))
    }

    /// Deletes the value under `key`; `true` if there was one.
    pub fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.blocking_call(move |c| c.kv_delete(&key))
    }

    /// Persists QQ events before they are bridged, all or none ([`Conn::inbox_push`]).
    pub fn inbox_push(&self, rows: Vec<crate::store::InboxRow>) -> Result<(), StoreError> {
        self.blocking_call(move |c| c.inbox_push(&rows))
    }

    /// Forgets a bridged QQ event ([`Conn::inbox_done`]).
    pub fn inbox_done(&self, seq: u64) -> Result<bool, StoreError> {
        self.blocking_call(move |c| c.inbox_done(seq))
    }

    /// Every QQ event not yet bridged, oldest first ([`Conn::inbox`]).
    pub fn inbox(&self) -> Result<Vec<crate::store::InboxRow>, StoreError> {
        self.blocking_call(Conn::inbox)
    }
}
