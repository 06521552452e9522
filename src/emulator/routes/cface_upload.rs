//! `POST http://up.web2.qq.com/cgi-bin/cface_upload`: upload a group custom face.
//!
//! Protocol §2.18 steps 1–2, §6.4. Stores the file under `<MD5 upper>.jPg` and answers the
//! callback page with ret 0; ret 4 with the error tail when already stored; ret 2 when larger
//! than the client's cap. The session is found by `vfwebqq` and the cookies.

use http::header;

use crate::emulator::http::{Reply, Req};
use crate::emulator::multipart;
use crate::emulator::routes::common::session_by_vfwebqq;
use crate::emulator::session::lock;
use crate::emulator::state::{Picture, Shared};
use crate::webqq::api::cface_upload::{CALLBACK_GROUP, MAX_UPLOAD_BYTES, format_answer};

/// The content type of a picture from its magic number.
pub(crate) fn sniff(data: &[u8]) -> &'static str {
    if data.starts_with(b"\x89PNG") {
        "image/png"
    } else if data.starts_with(b"GIF8") {
        "image/gif"
    } else if data.starts_with(b"BM") {
        "image/bmp"
    } else {
        "image/jpeg"
    }
}

/// Answers the upload.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let parts = req
        .header(header::CONTENT_TYPE)
        .and_then(multipart::boundary)
        .map(|b| multipart::parse(&req.body, &b))
        .unwrap_or_default();
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let text = |name: &str| field(name).map(|p| String::from_utf8_lossy(&p.data).into_owned());
    let callback = text("f")
        .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .unwrap_or_else(|| CALLBACK_GROUP.to_owned());
    if session_by_vfwebqq(shared, req, text("vfwebqq").as_deref()).is_err() {
        return Reply::html(format_answer(&callback, 1, "not logged in"));
    }
    let Some(file) = field("custom_face").filter(|p| !p.data.is_empty()) else {
        return Reply::html(format_answer(&callback, 1, "no file"));
    };
    if file.data.len() > MAX_UPLOAD_BYTES {
        return Reply::html(format_answer(&callback, 2, "file too large"));
    }
    let name = format!("{}.jPg", hex::encode_upper(md5_digest(&file.data)));
    let picture = Picture { content_type: sniff(&file.data), bytes: file.data.clone() };
    if lock(&shared.pictures).put(name.clone(), picture) {
        Reply::html(format_answer(&callback, 0, &name))
    } else {
        Reply::html(format_answer(&callback, 4, &format!("{name} -6102 upload cface failed")))
    }
}

/// MD5 of a file (the cface name, protocol §2.18 "looks like an uppercase MD5").
pub(crate) fn md5_digest(data: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(data).into()
}
