//! `POST http://weboffline.ftn.qq.com/ftn_access/upload_offline_pic`: upload a buddy picture.
//!
//! Protocol §2.18 (offpic sending, 2013). Stores the file under a `/uuid` path and answers the
//! callback page with retcode 0, progress 100; failures carry an empty `filepath`.

use http::header;

use crate::emulator::http::{Reply, Req};
use crate::emulator::multipart;
use crate::emulator::routes::cface_upload::sniff;
use crate::emulator::routes::common::session_by_vfwebqq;
use crate::emulator::session::{lock, random_hex};
use crate::emulator::state::{Picture, Shared};
use crate::webqq::api::upload_offline_pic::{OfflinePicUploaded, format_answer};

/// A `/8-4-4-4-12` hex path like the captures'.
pub(crate) fn new_file_path() -> String {
    let h = random_hex(32);
    format!(
        "/{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// Answers the upload.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let parts = req
        .header(header::CONTENT_TYPE)
        .and_then(multipart::boundary)
        .map(|b| multipart::parse(&req.body, &b))
        .unwrap_or_default();
    let text = |name: &str| {
        parts.iter().find(|p| p.name == name).map(|p| String::from_utf8_lossy(&p.data).into_owned())
    };
    let file = parts.iter().find(|p| p.name == "file" && !p.data.is_empty());
    let failed = |retcode| OfflinePicUploaded {
        retcode,
        progress: 0,
        filesize: 0,
        filename: String::new(),
        filepath: String::new(),
    };
    if session_by_vfwebqq(shared, req, text("vfwebqq").as_deref()).is_err() {
        return Reply::html(format_answer(&failed(103)));
    }
    let Some(file) = file else { return Reply::html(format_answer(&failed(1))) };
    let filepath = new_file_path();
    let picture = Picture { content_type: sniff(&file.data), bytes: file.data.clone() };
    lock(&shared.pictures).put(filepath.clone(), picture);
    Reply::html(format_answer(&OfflinePicUploaded {
        retcode: 0,
        progress: 100,
        filesize: u64::try_from(file.data.len()).unwrap_or(0),
        filename: file.filename.clone().unwrap_or_else(|| "image.png".to_owned()),
        filepath,
    }))
}
