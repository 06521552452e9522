//! `GET http://web2.qq.com/cgi-bin/get_group_pic`: fetch a group or discussion picture by its
//! name (`pic`). Protocol §2.18. A 302 to the picture server (design choice); unknown: 404.

use http::StatusCode;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::routes::image_server::redirect_to;
use crate::emulator::state::Shared;

/// Answers the fetch.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if session_of_s(shared, req).is_err() {
        return Reply::nginx(StatusCode::FORBIDDEN);
    }
    let pic = req.param("pic").unwrap_or_default();
    redirect_to(shared, pic).unwrap_or_else(|| Reply::nginx(StatusCode::NOT_FOUND))
}
