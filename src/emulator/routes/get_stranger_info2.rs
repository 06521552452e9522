//! `GET http://s.web2.qq.com/api/get_stranger_info2`: a non-friend's profile by uin
//! (protocol §2.1 table). Same answer as get_friend_info2.

use crate::emulator::http::{Reply, Req};
use crate::emulator::state::Shared;

/// Answers the profile.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    crate::emulator::routes::get_friend_info2::handle(shared, req)
}
