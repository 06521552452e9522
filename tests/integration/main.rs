//! The one integration-test binary (STYLE.md §8): each file beside this one is a module here.
//!
//! One binary links the crate once. Tests here may unwrap and panic; `src/` may not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// matrix-sdk's sync future (matrix/bot.rs) is too deep to prove Send for the default limit of 128.
#![recursion_limit = "256"]

mod tidy;

mod accounts;
mod bad_input;
mod bridge;
mod bridge_commands;
mod bridge_common;
mod bridge_e2ee;
mod bridge_members;
mod bridge_outbound;
mod bridge_provisioning;
mod bridge_relay;
mod cli;
mod harness;
mod manager;
mod matrix;
mod synapse;
mod webqq;
