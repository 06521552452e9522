//! The Matrix side, knowing nothing of QQ: the appservice transaction server, the appservice
//! client (ruma requests over reqwest, acting as the bot or a ghost), the bot's own
//! encryption-capable matrix-sdk client and registration files.

pub mod appservice;
pub mod bot;
pub mod client;
pub mod error;
pub mod provisioning;
pub mod registration;
pub mod token;

pub use error::Error;
pub use token::Token;
