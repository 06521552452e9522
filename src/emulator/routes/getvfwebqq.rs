//! `GET http://s.web2.qq.com/api/getvfwebqq`: the SmartQQ-era working vfwebqq (protocol §1.3.5).
//!
//! Needs the check_sig cookies (else 100101); `ptwebqq` must be empty or the current one (else
//! 103). The same vfwebqq is then used by login2 and every s-host call of that login.

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_s, no_headers_s};
use crate::emulator::session::{lock, random_hex};
use crate::emulator::state::Shared;
use crate::webqq::api::getvfwebqq::VfwebqqResult;

/// Answers the vfwebqq.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_s(shared, req) {
        return refused;
    }
    let given = req.param("ptwebqq").unwrap_or_default();
    let mut login = lock(&shared.login);
    let Some(auth) = login.by_cookies(req.cookie("skey"), req.cookie("ptwebqq")) else {
        return no_headers_s();
    };
    let Some(current) = auth.ptwebqq.as_deref() else { return no_headers_s() };
    if !given.is_empty() && given != current {
        return Reply::retcode(103);
    }
    let vfwebqq = auth.vfwebqq.get_or_insert_with(|| random_hex(80)).clone();
    drop(login);
    Reply::ok(serde_json::to_value(VfwebqqResult { vfwebqq }).unwrap_or_default())
}
