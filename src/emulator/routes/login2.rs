//! `POST http://d(1).web2.qq.com/channel/login2`: open the channel session (also relink).
//!
//! Protocol §1.2.7, §1.3.6, §1.4. Needs the check_sig cookies (else 108) and a `ptwebqq` in `r`
//! that is empty (2017–2018 clients) or the current one (else 103). A second login of the same
//! account kicks the first session (its poll answers 121, §7.11); a relink with the old
//! psessionid takes over its pending events and its uins instead.

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{auth_of, check_d};
use crate::emulator::session::{Liveness, NewSession, UinMap, lock, random_hex};
use crate::emulator::state::{Shared, read, write};
use crate::webqq::Uin;
use crate::webqq::api::login2::{Login2, Login2Result};

/// Answers login2.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let Some(auth) = auth_of(shared, req) else { return Reply::retcode(108) };
    let Some(ptwebqq) = auth.ptwebqq.clone() else { return Reply::retcode(108) };
    let Some(body) = req.field("r").and_then(|r| serde_json::from_str::<Login2>(&r).ok()) else {
        return Reply::retcode(108);
    };
    if !body.ptwebqq.is_empty() && body.ptwebqq != ptwebqq {
        return Reply::retcode(103);
    }
    let vfwebqq = {
        let mut login = lock(&shared.login);
        match login.by_cookies(Some(&auth.skey), None) {
            Some(a) => a.vfwebqq.get_or_insert_with(|| random_hex(80)).clone(),
            None => return Reply::retcode(108),
        }
    };
    let options = shared.options();
    let status = if body.status.is_empty() { "online".to_owned() } else { body.status.clone() };
    let (session, previous) = write(&shared.sessions).create(NewSession {
        account: auth.account,
        clientid: body.clientid.get(),
        vfwebqq,
        skey: auth.skey.clone(),
        ptwebqq,
        login2_ptwebqq: body.ptwebqq.clone(),
        channel_host: req.host.clone(),
        status: status.clone(),
        random_uins: options.random_uins,
        send_burst: f64::from(options.send_burst),
    });
    if let Some(old) = previous {
        let relink = body.psessionid.as_deref() == Some(old.psessionid.as_str());
        if relink {
            // The pending events name people by the old session's uins: the relinked session
            // keeps them, or its lookups (get_friend_uin2, lists) could not resolve those events.
            let (pending, uins) = {
                let mut st = old.lock();
                let blank = UinMap::new(auth.account, options.random_uins);
                (std::mem::take(&mut st.queue), std::mem::replace(&mut st.uins, blank))
            };
            session.lock().uins = uins;
            session.push_events(pending);
            old.end(Liveness::Dead);
        } else {
            // Events still queued there reach only a poll with the old psessionid; a client that
            // lost the answer to its relink holds an older one and never sees them (protocol
            // §1.4: QQ has no re-delivery). Logged so a chaos run can tell them apart.
            for pending in &old.lock().queue {
                tracing::debug!(account = %auth.account, %pending, "session replaced with events pending");
            }
            old.end(Liveness::Kicked);
        }
        tracing::info!(account = %auth.account, relink, "second login replaced a session");
    }
    crate::emulator::deliver::deliver_status_change(shared, auth.account, &status);
    let port = u64::from(req.peer.port());
    let cip = match req.peer.ip() {
        std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
        std::net::IpAddr::V6(_) => 0,
    };
    tracing::info!(account = %auth.account, host = %req.host, online = read(&shared.sessions).online_count(), "login2");
    let result = Login2Result {
        uin: Uin::new(auth.account.get()),
        psessionid: session.psessionid.clone(),
        vfwebqq: session.vfwebqq.clone(),
        status,
        cip: Some(cip),
        index: Some(1075),
        port: Some(port),
        user_state: Some(0),
        f: Some(0),
    };
    Reply::ok(serde_json::to_value(result).unwrap_or_default())
}
