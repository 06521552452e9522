//! `GET http://<ip>:<port>/?ver=2173&rkey=<key>`: the picture servers the fetch endpoints
//! redirect to (protocol §2.18: real ones were IP literals such as `103.7.29.36:80`).
//!
//! The emulator plays them on its plain listener; `rkey` is the hex of the stored picture key.

use http::StatusCode;

use crate::emulator::http::{Reply, Req};
use crate::emulator::session::lock;
use crate::emulator::state::Shared;

/// The 302 to the picture server for a stored picture, or `None` if it is not stored.
pub(crate) fn redirect_to(shared: &Shared, key: &str) -> Option<Reply> {
    lock(&shared.pictures).get(key)?;
    Some(Reply::redirect(format!("{}/?ver=2173&rkey={}", shared.image_base(), hex::encode(key))))
}

/// The stored picture itself (get_group_pic and get_cface2 answered the image directly,
/// protocol §2.18), or `None`.
pub(crate) fn serve_key(shared: &Shared, key: &str) -> Option<Reply> {
    lock(&shared.pictures).get(key).map(|p| Reply::image(p.content_type, p.bytes))
}

/// Serves a picture.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let key =
        req.param("rkey").and_then(|k| hex::decode(k).ok()).and_then(|k| String::from_utf8(k).ok());
    match key.and_then(|k| lock(&shared.pictures).get(&k)) {
        Some(picture) => Reply::image(picture.content_type, picture.bytes),
        None => Reply::nginx(StatusCode::NOT_FOUND),
    }
}
