//! The core, owning both interfaces: portals, ghosts, message flow; convert/ is pure conversion.
//!
//! `ids.rs` maps QQ ids to Matrix ids; `portal/` ([`portal::Bridge`]) moves messages both
//! ways; `actor.rs` orders the QQ side (`lanes.rs`, with
//! `settle.rs` writing behind); `intake.rs` plugs the bridge into the appservice server.

pub mod actor;
pub mod commands;
pub mod convert;
pub mod ids;
pub mod intake;
pub mod lanes;
pub mod portal;
pub mod settle;
pub mod startup;
pub mod state;
