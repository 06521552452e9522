//! `GET https://ssl.ptlogin2.qq.com/ptqrlogin`: the QR scan state (a short poll).
//!
//! Protocol §1.3.2–1.3.3: 66 not scanned, 67 scanned, 0 confirmed (with the check_sig URL and
//! the login cookies), 65 expired or unknown. Without `ptqrtoken` = hash33(qrsig cookie): HTTP 403.

use http::StatusCode;
use tokio::time::Instant;

use crate::emulator::auth::QrState;
use crate::emulator::http::{Reply, Req};
use crate::emulator::ptui;
use crate::emulator::routes::common::{check_ptlogin, check_sig_url, login_cookies};
use crate::emulator::session::lock;
use crate::emulator::state::{Shared, read};
use crate::webqq::hash::hash33;

/// Answers a scan-state poll.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_ptlogin(shared, req, "0") {
        return refused;
    }
    let options = shared.options();
    let qrsig = req.cookie("qrsig").unwrap_or_default().to_owned();
    if options.require_ptqrtoken {
        let token_ok = !qrsig.is_empty()
            && req.param("ptqrtoken").and_then(|t| t.trim().parse::<u32>().ok())
                == Some(hash33(&qrsig));
        if !token_ok {
            return Reply::nginx(StatusCode::FORBIDDEN);
        }
    }
    let now = Instant::now();
    let state = {
        let mut login = lock(&shared.login);
        match login.qr(&qrsig) {
            None => None,
            Some(code)
                if now.saturating_duration_since(code.created) >= options.qr_lifetime
                    && !matches!(code.state, QrState::Confirmed(_)) =>
            {
                None
            }
            Some(code) => {
                let state = code.state;
                if matches!(state, QrState::Confirmed(_)) {
                    code.state = QrState::Used;
                }
                Some(state)
            }
        }
    };
    match state {
        None | Some(QrState::Used) => Reply::js(ptui::failure(65, "")),
        Some(QrState::Waiting) => Reply::js(ptui::failure(66, "")),
        Some(QrState::Scanned(_)) => Reply::js(ptui::failure(67, "")),
        Some(QrState::Confirmed(qq)) => {
            let (account, nick) = {
                let world = read(&shared.world);
                (world.account(qq).cloned(), world.nick(qq))
            };
            let qq_text = qq.to_string();
            match account {
                None => Reply::js(ptui::failure(65, &qq_text)),
                Some(a) if a.banned => Reply::js(ptui::failure(71, &qq_text)),
                Some(a) if a.locked => Reply::js(ptui::failure(19, &qq_text)),
                Some(_) => {
                    let auth = lock(&shared.login).new_auth(qq, now);
                    tracing::info!(account = %qq, "qr login");
                    Reply::js(ptui::success(&check_sig_url(&auth, "ptqrlogin", 3), &nick))
                        .set_cookies(login_cookies(&auth))
                }
            }
        }
    }
}
