//! qqbridge: a Matrix <-> QQ bridge over the WebQQ / SmartQQ web protocol.
//!
//! Crate map (ARCHITECTURE.md has the long form):
//! - [`webqq`]: the protocol client (no Matrix, no actix).
//! - [`emulator`]: a faithful WebQQ service built on `webqq`'s wire types, for demo, tests and
//!   benchmarks.
//! - [`account`]: one supervised actor tree per QQ account, and the manager of many.
//! - [`matrix`]: the Matrix side (appservice server and client), no QQ.
//! - [`config`], [`store`], [`metrics`]: `bridge.yaml`, SQLite persistence, Prometheus.

pub mod account;
pub mod bridge;
pub mod config;
pub mod emulator;
pub mod matrix;
pub mod metrics;
pub mod store;
pub mod terminal;
pub mod webqq;

/// The crate-wide secret wrapper (defined in `webqq`, which needed it first): layers that must not
/// import `webqq`, such as `matrix`, name it here.
pub use webqq::Secret;
