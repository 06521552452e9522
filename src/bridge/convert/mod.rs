//! Pure, synchronous message conversion between WebQQ content and Matrix `m.room.message`.
//!
//! No IO: pictures come out as references the caller fetches and uploads.

pub mod faces;
mod html;
mod text;
pub mod to_matrix;
pub mod to_qq;

pub use text::{relay_format, relay_line, sanitize_displayname};
