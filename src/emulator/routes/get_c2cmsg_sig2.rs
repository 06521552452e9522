//! `GET http://d(1).web2.qq.com/channel/get_c2cmsg_sig2`: the signature for a temporary chat.
//!
//! Protocol §2.5. `id` is the gid (service_type 0) or did (1) both people share; otherwise the
//! answer carries an empty `value` (no permission).

use serde_json::json;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::session::random_hex;
use crate::emulator::state::{Shared, read};
use crate::webqq::{Did, Gid, Uin};

/// Answers the signature.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let num = |name: &str| req.param(name).and_then(|v| v.trim().parse::<u64>().ok());
    let (Some(id), Some(to_uin)) = (num("id"), num("to_uin")) else { return Reply::retcode(1202) };
    let service_type = num("service_type").unwrap_or(0);
    let (to, group) = {
        let st = session.lock();
        (st.uins.qq(Uin::new(to_uin)), st.uins.group_by_gid(Gid::new(id)))
    };
    let shared_place = to.and_then(|to| {
        let world = read(&shared.world);
        let both = |members: &[crate::webqq::QqNumber]| {
            members.contains(&to) && members.contains(&session.account)
        };
        if service_type == 0 {
            let g = group?;
            world.group(g).filter(|g| both(&g.members)).map(|_| (Some(g), None))
        } else {
            let d = Did::new(id);
            world.discussion(d).filter(|d| both(&d.members)).map(|_| (None, Some(d)))
        }
    });
    let value = match shared_place {
        Some(place) => {
            let sig = random_hex(64);
            session.lock().c2c_sigs.insert(sig.clone(), place);
            sig
        }
        None => String::new(),
    };
    Reply::ok(
        json!({"type": 0, "value": value, "flags": {"text":1,"pic":1,"file":1,"audio":1,"video":1}}),
    )
}
