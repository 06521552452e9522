//! `GET http://d(1).web2.qq.com/channel/shake2`: shake the peer's window (protocol §2.17).
//!
//! Same checks as input_notify2; the peer gets a `shake_message` event (§4.7).

use crate::emulator::http::{Reply, Req};
use crate::emulator::state::Shared;

/// Answers the shake.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    crate::emulator::routes::input_notify2::handle(shared, req, true)
}
