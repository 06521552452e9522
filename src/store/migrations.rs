//! The store's schema as ordered migrations, one list per backend: entry `n` moves the schema from
//! version `n` to `n + 1`. Append only: never edit a migration that has shipped. Both lists have
//! the same length and the same tables; they differ only in column types.

/// SQLite version 1: stored sessions, last known account state, and the per-account poll lease.
///
/// `sessions.session_json` holds a serialised `webqq::session::Session`, secrets included:
/// this is why the file is 0600 (RELIABILITY.md §2). `poll_lease` keeps one poller per account
/// across processes (protocol §7.1: a second poll2 steals messages; RELIABILITY.md §1.6).
pub const SQLITE_V1_SESSIONS_ACCOUNTS_LEASES: &str = "
CREATE TABLE sessions (
    account_id   TEXT PRIMARY KEY,
    qq           INTEGER NOT NULL,
    session_json TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    qq         INTEGER NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE poll_lease (
    account_id TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// SQLite version 2: the Matrix side's tables (issue 4). SQLite stores booleans as 0 / 1.
///
/// - `processed_txns`: appservice transaction ids already handled (MATRIX.md §1; RELIABILITY.md
///   G2): a replayed txnId is processed once, also after a restart.
/// - `portals`: one room per stable chat key (STYLE.md §6: QQ numbers, group numbers, never
///   per-session uins); `room_id` is NULL until the room exists. `spaces`: one per account.
/// - `ghosts`, `ghost_rooms`: registration, profile and joined rooms of each QQ user's ghost.
/// - `media`: uploads reused by content hash. `messages`: QQ message key ↔ Matrix event, both
///   ways (replies, edits, echo suppression; RELIABILITY.md §1.2-1.4). `bridge_kv`: small state.
pub const SQLITE_V2_MATRIX: &str = "
CREATE TABLE processed_txns (
    txn_id       TEXT PRIMARY KEY,
    processed_at INTEGER NOT NULL
);
CREATE INDEX processed_txns_by_time ON processed_txns (processed_at);
CREATE TABLE portals (
    portal_key TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id TEXT,
    remote_id  TEXT NOT NULL,
    room_id    TEXT UNIQUE,
    name       TEXT,
    topic      TEXT,
    avatar_url TEXT,
    encrypted  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX portals_by_account ON portals (account_id);
CREATE TABLE spaces (
    account_id TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL
);
CREATE TABLE ghosts (
    qq          INTEGER PRIMARY KEY,
    registered  INTEGER NOT NULL,
    displayname TEXT,
    avatar_hash TEXT,
    avatar_url  TEXT,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE ghost_rooms (
    qq      INTEGER NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (qq, room_id)
);
CREATE TABLE media (
    content_hash TEXT PRIMARY KEY,
    mxc          TEXT NOT NULL,
    content_type TEXT,
    size         INTEGER NOT NULL
);
CREATE TABLE messages (
    portal_key TEXT NOT NULL,
    remote_key TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    direction  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (portal_key, remote_key)
);
CREATE INDEX messages_by_event ON messages (room_id, event_id);
CREATE TABLE bridge_kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// PostgreSQL version 1: the tables of [`SQLITE_V1_SESSIONS_ACCOUNTS_LEASES`] with BIGINT.
pub const POSTGRES_V1_SESSIONS_ACCOUNTS_LEASES: &str = "
CREATE TABLE sessions (
    account_id   TEXT PRIMARY KEY,
    qq           BIGINT NOT NULL,
    session_json TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    qq         BIGINT NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT,
    updated_at BIGINT NOT NULL
);
CREATE TABLE poll_lease (
    account_id TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
";

/// PostgreSQL version 2: the tables of [`SQLITE_V2_MATRIX`] with BIGINT and BOOLEAN.
pub const POSTGRES_V2_MATRIX: &str = "
CREATE TABLE processed_txns (
    txn_id       TEXT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);
CREATE INDEX processed_txns_by_time ON processed_txns (processed_at);
CREATE TABLE portals (
    portal_key TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id TEXT,
    remote_id  TEXT NOT NULL,
    room_id    TEXT UNIQUE,
    name       TEXT,
    topic      TEXT,
    avatar_url TEXT,
    encrypted  BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX portals_by_account ON portals (account_id);
CREATE TABLE spaces (
    account_id TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL
);
CREATE TABLE ghosts (
    qq          BIGINT PRIMARY KEY,
    registered  BOOLEAN NOT NULL,
    displayname TEXT,
    avatar_hash TEXT,
    avatar_url  TEXT,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE ghost_rooms (
    qq      BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (qq, room_id)
);
CREATE TABLE media (
    content_hash TEXT PRIMARY KEY,
    mxc          TEXT NOT NULL,
    content_type TEXT,
    size         BIGINT NOT NULL
);
CREATE TABLE messages (
    portal_key TEXT NOT NULL,
    remote_key TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    direction  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (portal_key, remote_key)
);
CREATE INDEX messages_by_event ON messages (room_id, event_id);
CREATE TABLE bridge_kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// SQLite version 3: `qq_inbox`, QQ events taken from poll2 and not yet on Matrix
/// (RELIABILITY.md §1.1: persisted before dispatch, deleted once bridged, replayed in `seq`
/// order after a crash). `lane` is the portal lane the event belongs to.
pub const SQLITE_V3_INBOX: &str = "
CREATE TABLE qq_inbox (
    seq        INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    lane       TEXT NOT NULL,
    event_json TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// PostgreSQL version 3: [`SQLITE_V3_INBOX`] with BIGINT.
pub const POSTGRES_V3_INBOX: &str = "
CREATE TABLE qq_inbox (
    seq        BIGINT PRIMARY KEY,
    account_id TEXT NOT NULL,
    lane       TEXT NOT NULL,
    event_json TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
";

/// SQLite version 4: `message_excerpts`, the sender's name and the first characters of each
/// bridged Matrix message of a portal, both directions: a reply from Matrix quotes them on QQ
/// (`「name: text」`), since neither the message map nor QQ keeps the text.
pub const SQLITE_V4_EXCERPTS: &str = "
CREATE TABLE message_excerpts (
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    portal_key  TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    excerpt     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
CREATE INDEX message_excerpts_by_portal ON message_excerpts (portal_key);
";

/// PostgreSQL version 4: [`SQLITE_V4_EXCERPTS`] with BIGINT.
pub const POSTGRES_V4_EXCERPTS: &str = "
CREATE TABLE message_excerpts (
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    portal_key  TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    excerpt     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
CREATE INDEX message_excerpts_by_portal ON message_excerpts (portal_key);
";

/// SQLite version 5: `mx_outbox`, owner messages accepted from Matrix (answered 200) and not yet
/// settled on QQ (RELIABILITY.md §1.1): written with the message-map claim, deleted once QQ's
/// outcome is known, replayed in `seq` order at start.
pub const SQLITE_V5_OUTBOX: &str = "
CREATE TABLE mx_outbox (
    room_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    event_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
";

/// PostgreSQL version 5: [`SQLITE_V5_OUTBOX`] with BIGINT.
pub const POSTGRES_V5_OUTBOX: &str = "
CREATE TABLE mx_outbox (
    room_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    event_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
";

/// SQLite version 6: `bot_logins`, QQ accounts logged in from Matrix with the bot (MATRIX.md
/// §6.1): restored at start beside the config's accounts. No password: the session (version 1)
/// is what a restart restores.
pub const SQLITE_V6_BOT_LOGINS: &str = "
CREATE TABLE bot_logins (
    account_id TEXT PRIMARY KEY,
    qq         INTEGER NOT NULL UNIQUE,
    owner      TEXT NOT NULL,
    method     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// PostgreSQL version 6: [`SQLITE_V6_BOT_LOGINS`] with BIGINT.
pub const POSTGRES_V6_BOT_LOGINS: &str = "
CREATE TABLE bot_logins (
    account_id TEXT PRIMARY KEY,
    qq         BIGINT NOT NULL UNIQUE,
    owner      TEXT NOT NULL,
    method     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
";

/// SQLite version 7: `portal_relays`, the relay account of a group portal (MATRIX.md §6.3):
/// messages of Matrix users without a QQ login in that group go out through this account.
/// `qq` is the account's permanent number (STYLE.md §6); `set_by` the Matrix user who chose it.
pub const SQLITE_V7_RELAYS: &str = "
CREATE TABLE portal_relays (
    portal_key TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    qq         INTEGER NOT NULL,
    set_by     TEXT NOT NULL,
    set_at     INTEGER NOT NULL
);
";

/// PostgreSQL version 7: [`SQLITE_V7_RELAYS`] with BIGINT.
pub const POSTGRES_V7_RELAYS: &str = "
CREATE TABLE portal_relays (
    portal_key TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    qq         BIGINT NOT NULL,
    set_by     TEXT NOT NULL,
    set_at     BIGINT NOT NULL
);
";

/// SQLite version 8 (issue 6, RELIABILITY.md §1.1, §1.5):
///
/// - `mx_outbox.sending_at`: set just before the first QQ send call of the message (NULL: never
///   handed to QQ). A row left with it after a crash may have reached QQ: it is reported
///   uncertain and counted, never resent blindly.
/// - `qq_polled`: poll2 batches as QQ returned them, persisted before the account resolves their
///   per-session ids (lookups may wait on QQ) and deleted with the resolved events' `qq_inbox`
///   insert; a crash in between replays them. `session` names the session that polled them
///   (its `opened_at`): their uins mean something only in that session.
pub const SQLITE_V8_SENDING_POLLED: &str = "
ALTER TABLE mx_outbox ADD COLUMN sending_at INTEGER;
CREATE TABLE qq_polled (
    account_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    session     INTEGER NOT NULL,
    events_json TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, seq)
);
";

/// PostgreSQL version 8: [`SQLITE_V8_SENDING_POLLED`] with BIGINT.
pub const POSTGRES_V8_SENDING_POLLED: &str = "
ALTER TABLE mx_outbox ADD COLUMN sending_at BIGINT;
CREATE TABLE qq_polled (
    account_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    session     BIGINT NOT NULL,
    events_json TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
";

/// SQLite version 9 (issue 6, RELIABILITY.md G6): `mx_outbox.outcome`, the failed status of a
/// message, kept from when QQ's outcome is known until its owner has been told. A row left with
/// it after a crash is told again, never sent again.
pub const SQLITE_V9_OUTCOME: &str = "
ALTER TABLE mx_outbox ADD COLUMN outcome TEXT;
";

/// PostgreSQL version 9: [`SQLITE_V9_OUTCOME`].
pub const POSTGRES_V9_OUTCOME: &str = "
ALTER TABLE mx_outbox ADD COLUMN outcome TEXT;
";

/// Every SQLite migration in order; the schema version is the number applied.
pub const SQLITE: &[&str] = &[
    SQLITE_V1_SESSIONS_ACCOUNTS_LEASES,
    SQLITE_V2_MATRIX,
    SQLITE_V3_INBOX,
    SQLITE_V4_EXCERPTS,
    SQLITE_V5_OUTBOX,
    SQLITE_V6_BOT_LOGINS,
    SQLITE_V7_RELAYS,
    SQLITE_V8_SENDING_POLLED,
    SQLITE_V9_OUTCOME,
];

/// Every PostgreSQL migration in order (same versions as [`SQLITE`]).
pub const POSTGRES: &[&str] = &[
    POSTGRES_V1_SESSIONS_ACCOUNTS_LEASES,
    POSTGRES_V2_MATRIX,
    POSTGRES_V3_INBOX,
    POSTGRES_V4_EXCERPTS,
    POSTGRES_V5_OUTBOX,
    POSTGRES_V6_BOT_LOGINS,
    POSTGRES_V7_RELAYS,
    POSTGRES_V8_SENDING_POLLED,
    POSTGRES_V9_OUTCOME,
];
