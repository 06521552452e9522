//! `GET http://faceN.qun.qq.com/cgi/svr/face/getface`: an avatar (protocol §2.1 table).
//!
//! `uin` is read through the requester's session when it knows it, else as a QQ number; the
//! picture is generated from the person's face id.

use crate::emulator::http::{Reply, Req};
use crate::emulator::images::avatar_png;
use crate::emulator::state::{Shared, read};
use crate::webqq::{QqNumber, Uin};

/// Answers the avatar.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let raw = req.param("uin").and_then(|u| u.trim().parse::<u64>().ok()).unwrap_or(0);
    let qq = req
        .cookie_account()
        .and_then(|a| read(&shared.sessions).of_account(QqNumber::new(a)))
        .and_then(|s| s.lock().uins.qq(Uin::new(raw)))
        .unwrap_or(QqNumber::new(raw));
    let face = read(&shared.world).person(qq).map_or(0, |p| u64::from(p.face));
    Reply::image("image/png", avatar_png(face))
}
