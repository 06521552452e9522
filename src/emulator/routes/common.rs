//! What the route handlers share: header checks per host (Referer / User-Agent, module doc of
//! `emulator`), finding the ptlogin login ("auth") and the channel session a request belongs to,
//! and the login-success cookie set.

use std::sync::Arc;

use http::header;
use serde_json::{Map, Value};

use crate::emulator::auth::Auth;
use crate::emulator::http::{Reply, Req, SetCookie};
use crate::emulator::ptui;
use crate::emulator::session::{Liveness, Session, lock};
use crate::emulator::state::{Shared, read};
use crate::webqq::QqNumber;

/// The emulator's answer for requests on the s host without Referer or User-Agent (the seed's
/// code for "cookies or UA missing", protocol §2.6).
pub(crate) fn no_headers_s() -> Reply {
    Reply::json(&serde_json::json!({"retcode": 100_101}))
}

fn has_user_agent(req: &Req) -> bool {
    req.header(header::USER_AGENT).is_some_and(|ua| !ua.trim().is_empty())
}

fn referer_on_qq(req: &Req) -> bool {
    req.referer_host().is_some_and(|h| h == "qq.com" || h.ends_with(".qq.com"))
}

/// Checks Referer and User-Agent on the s host; `Some(reply)` refuses the request.
pub(crate) fn check_s(shared: &Shared, req: &Req) -> Option<Reply> {
    let check = read(&shared.options).check_referer;
    (check && !(referer_on_qq(req) && has_user_agent(req))).then(no_headers_s)
}

/// Checks Referer and User-Agent on the d hosts; `Some(reply)` refuses with 103.
pub(crate) fn check_d(shared: &Shared, req: &Req) -> Option<Reply> {
    let check = read(&shared.options).check_referer;
    (check && !(referer_on_qq(req) && has_user_agent(req))).then(|| Reply::retcode(103))
}

/// Checks the login-UI Referer on ptlogin; `Some(reply)` is the ptuiCB 7 refusal.
pub(crate) fn check_ptlogin(shared: &Shared, req: &Req, qq: &str) -> Option<Reply> {
    let check = read(&shared.options).check_referer;
    let ok = req.referer_host().is_some_and(|h| h.ends_with("ptlogin2.qq.com"));
    (check && !ok).then(|| Reply::js(ptui::failure(7, qq)))
}

/// The ptlogin login named by the request's `skey` (else `ptwebqq`) cookie.
pub(crate) fn auth_of(shared: &Shared, req: &Req) -> Option<Auth> {
    lock(&shared.login).by_cookies(req.cookie("skey"), req.cookie("ptwebqq")).cloned()
}

/// A string or number member of `r` as text.
pub(crate) fn member_text(r: &Map<String, Value>, name: &str) -> Option<String> {
    match r.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number member of `r` (number or numeric string, protocol §0.3).
pub(crate) fn member_u64(r: &Map<String, Value>, name: &str) -> Option<u64> {
    member_text(r, name)?.trim().parse().ok()
}

/// Why a request has no usable session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoSession {
    /// Unknown psessionid, wrong cookies or clientid, expired: 103.
    Invalid,
    /// Replaced by a newer login and not yet told: 121 on poll2, 103 elsewhere.
    Kicked,
    /// Ended with events still queued (a kick_message): only poll2 may take them, 103 elsewhere.
    Draining,
}

/// Finds the live session by psessionid, checks that the cookies name the same account and that
/// a given clientid matches.
pub(crate) fn session_by_psessionid(
    shared: &Shared,
    req: &Req,
    psessionid: Option<&str>,
    clientid: Option<u64>,
) -> Result<Arc<Session>, NoSession> {
    let psessionid = psessionid.filter(|p| !p.is_empty()).ok_or(NoSession::Invalid)?;
    let session = read(&shared.sessions).by_psessionid(psessionid).ok_or(NoSession::Invalid)?;
    check_session(shared, req, &session, clientid)?;
    Ok(session)
}

/// Finds the live session by vfwebqq (s host calls), with the same checks.
pub(crate) fn session_by_vfwebqq(
    shared: &Shared,
    req: &Req,
    vfwebqq: Option<&str>,
) -> Result<Arc<Session>, NoSession> {
    let vfwebqq = vfwebqq.filter(|v| !v.is_empty()).ok_or(NoSession::Invalid)?;
    let session = read(&shared.sessions).by_vfwebqq(vfwebqq).ok_or(NoSession::Invalid)?;
    check_session(shared, req, &session, None)?;
    Ok(session)
}

fn check_session(
    shared: &Shared,
    req: &Req,
    session: &Session,
    clientid: Option<u64>,
) -> Result<(), NoSession> {
    let auth = auth_of(shared, req).ok_or(NoSession::Invalid)?;
    if auth.account != session.account {
        return Err(NoSession::Invalid);
    }
    if clientid.is_some_and(|c| c != session.clientid) {
        return Err(NoSession::Invalid);
    }
    let st = session.lock();
    match st.liveness {
        Liveness::Alive => Ok(()),
        Liveness::Kicked => Err(NoSession::Kicked),
        Liveness::Dead if !st.queue.is_empty() => Err(NoSession::Draining),
        Liveness::Dead => Err(NoSession::Invalid),
    }
}

/// The session of a channel GET call: `psessionid` (+ `clientid`) from the query.
pub(crate) fn session_of_query(shared: &Shared, req: &Req) -> Result<Arc<Session>, Reply> {
    let clientid = req.param("clientid").and_then(|c| c.trim().parse().ok());
    session_by_psessionid(shared, req, req.param("psessionid"), clientid)
        .map_err(|_| Reply::retcode(103))
}

/// The session of an s-host call: `vfwebqq` from the query or the `r` object.
pub(crate) fn session_of_s(shared: &Shared, req: &Req) -> Result<Arc<Session>, Reply> {
    if let Some(refused) = check_s(shared, req) {
        return Err(refused);
    }
    let vfwebqq = req
        .param("vfwebqq")
        .map(str::to_owned)
        .or_else(|| req.r().and_then(|r| member_text(&r, "vfwebqq")));
    session_by_vfwebqq(shared, req, vfwebqq.as_deref()).map_err(|_| Reply::retcode(103))
}

/// The session of a channel POST call: `psessionid` and `clientid` from `r`, else from the
/// 2013 top-level form fields (protocol §0.3).
pub(crate) fn session_of_r(
    shared: &Shared,
    req: &Req,
    r: &Map<String, Value>,
) -> Result<Arc<Session>, NoSession> {
    let psessionid = member_text(r, "psessionid").or_else(|| req.field("psessionid"));
    let clientid = member_u64(r, "clientid")
        .or_else(|| req.field("clientid").and_then(|c| c.trim().parse().ok()));
    session_by_psessionid(shared, req, psessionid.as_deref(), clientid)
}

/// The session any request names, for faults: psessionid (r, form, query), vfwebqq, or the
/// account cookie's current session.
pub(crate) fn any_session(shared: &Shared, req: &Req) -> Option<Arc<Session>> {
    let r = req.r().unwrap_or_default();
    let sessions = read(&shared.sessions);
    let by_ps = member_text(&r, "psessionid")
        .or_else(|| req.field("psessionid"))
        .and_then(|p| sessions.by_psessionid(&p));
    let by_vf = || {
        member_text(&r, "vfwebqq")
            .or_else(|| req.param("vfwebqq").map(str::to_owned))
            .and_then(|v| sessions.by_vfwebqq(&v))
    };
    let by_cookie = || req.cookie_account().and_then(|a| sessions.of_account(QqNumber::new(a)));
    by_ps.or_else(by_vf).or_else(by_cookie)
}

/// The cookies a successful ptlogin login (login or ptqrlogin) sets (protocol §1.6). `skey`
/// and `uin` are set here only, so a client jar never holds two of them (pandolia reads
/// `cookies['skey']` by name).
pub(crate) fn login_cookies(auth: &Auth) -> Vec<SetCookie> {
    let o_uin = format!("o{:010}", auth.account.get());
    vec![
        SetCookie::new("pt2gguin", o_uin.clone(), "qq.com"),
        SetCookie::new("uin", o_uin.clone(), "qq.com"),
        SetCookie::new("skey", auth.skey.clone(), "qq.com"),
        SetCookie::new("ptisp", "ctc", "qq.com"),
        SetCookie::new("RK", "OfeLBai4FB", "qq.com"),
        SetCookie::new("ptcz", crate::emulator::session::random_hex(64), "qq.com"),
        SetCookie::new("superuin", o_uin, "ptlogin2.qq.com"),
        SetCookie::new("superkey", crate::emulator::session::random_hex(32), "ptlogin2.qq.com"),
        SetCookie::new("supertoken", auth.supertoken.clone(), "ptlogin2.qq.com"),
        SetCookie::new(
            "pt_recent_uins",
            crate::emulator::session::random_hex(64),
            "ptlogin2.qq.com",
        ),
    ]
}

/// The check_sig URL of a login (protocol §1.3.3 example), on `ptlogin4.web2.qq.com`.
pub(crate) fn check_sig_url(auth: &Auth, service: &str, login_type: u32) -> String {
    format!(
        "http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin={}&service={service}&nodirect=0&ptsigx={}&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html%3Flogin2qq%3D1%26webqq_type%3D10&f_url=&ptlang=2052&ptredirect=100&aid=501004106&daid=164&j_later=0&low_login_hour=0&regmaster=0&pt_login_type={login_type}&pt_aid=0&pt_aaid=16&pt_light=0&pt_3rd_aid=0",
        auth.account, auth.ptsigx
    )
}
