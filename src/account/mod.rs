//! One actor tree per QQ account: thin actors over the plain components in this folder.
//!
//! The components decide; they do no IO and read no clock, so unit tests drive them directly:
//! [`poller::Poller`] (what to do after each poll2 answer, backoff with full jitter),
//! [`state::AccountState`] (signal → state, RELIABILITY.md §1.6) and
//! [`send_queue::SendQueue`] (per-chat FIFO, pacing, retry or "uncertain"). The actors that wrap
//! them (login, poller, sender, and the account supervisor) come next.

pub mod poller;
pub mod send_queue;
pub mod state;
