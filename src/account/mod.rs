//! One actor tree per QQ account: thin actors over the plain components in this folder.
//!
//! The components decide; they do no IO and read no clock, so unit tests drive them directly:
//! [`poller::Poller`] (what to do after each poll2 answer, backoff with full jitter),
//! [`state::AccountState`] (signal → state, RELIABILITY.md §1.6) and
//! [`send_queue::SendQueue`] (per-chat FIFO, pacing, retry or "uncertain"). The actors wrap
//! them: [`account_actor::AccountActor`] owns the policy and three children,
//! [`login_actor::LoginActor`], [`poller_actor::PollerActor`] and [`sender_actor::SenderActor`].

pub mod account_actor;
pub mod login_actor;
pub mod lookup;
pub mod manager;
pub mod messages;
pub mod operator;
pub mod poll_log;
pub mod poller;
pub mod poller_actor;
pub mod resolve;
pub mod send_queue;
pub mod sender_actor;
pub mod state;
