//! The WebQQ / SmartQQ protocol client: wire types, login flows, endpoints, hashes and crypto.
//!
//! Knows nothing of Matrix, actix, the store or the emulator (ARCHITECTURE.md invariants). The
//! emulator reuses the wire types (`api`, `event`, `content`, `id`) but never the client.

pub mod api;
pub mod client;
pub mod content;
pub mod cookies;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod event;
pub mod hash;
pub mod hosts;
pub mod id;
pub mod jscall;
pub mod login;
mod longpoll;
pub mod ops;
pub mod retcode;
pub mod retry;
pub mod secret;
pub mod session;

pub use error::Error;
pub use id::{ClientId, Did, Gid, GroupCode, GroupNumber, MsgId, QqNumber, Uin};
pub use secret::Secret;
