//! `GET https://ssl.ptlogin2.qq.com/ptqrshow`: a QR code to scan with the phone.
//!
//! Protocol §1.3.1. A real PNG QR code; sets `qrsig` on `ptlogin2.qq.com`. The control API's
//! `qr/scan` and `qr/confirm` act on the newest pending code.

use tokio::time::Instant;

use crate::emulator::http::{Reply, SetCookie};
use crate::emulator::images::qr_png;
use crate::emulator::session::{lock, random_hex};
use crate::emulator::state::{Shared, read};

/// Answers a new QR code.
pub(crate) fn handle(shared: &Shared) -> Reply {
    let lifetime = read(&shared.options).qr_lifetime;
    let code = lock(&shared.login).new_qr(Instant::now(), lifetime);
    // The real code pointed at the phone-side page with an opaque key (not the qrsig).
    let url = format!("http://txz.qq.com/p?k={}&f=501004106", random_hex(32));
    Reply::image("image/png", qr_png(&url)).set_cookies([SetCookie::new(
        "qrsig",
        code.qrsig,
        "ptlogin2.qq.com",
    )])
}
