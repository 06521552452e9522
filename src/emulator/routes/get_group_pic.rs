//! `GET http://web2.qq.com/cgi-bin/get_group_pic`: fetch a group or discussion picture by its
//! name (`pic`). Protocol §2.18: the image itself (the client checks `image/*`); unknown: 404.

use http::StatusCode;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::routes::image_server::serve_key;
use crate::emulator::state::Shared;

/// Answers the fetch.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if session_of_s(shared, req).is_err() {
        return Reply::nginx(StatusCode::FORBIDDEN);
    }
    let pic = req.param("pic").unwrap_or_default();
    serve_key(shared, pic).unwrap_or_else(|| Reply::nginx(StatusCode::NOT_FOUND))
}
