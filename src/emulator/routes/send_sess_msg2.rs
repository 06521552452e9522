//! `POST http://d(1).web2.qq.com/channel/send_sess_msg2`: a temporary chat message.
//!
//! Protocol §2.4, §2.5. `group_sig` must be one get_c2cmsg_sig2 gave this session for the same
//! recipient's group or discussion; otherwise 1202.

use crate::emulator::deliver::Target;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::send::{finish, parse, refused};
use crate::emulator::state::Shared;
use crate::webqq::api::send_sess_msg2::SendSessMsg2;

/// Answers the send.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let incoming = match parse::<SendSessMsg2>(shared, req, |r| &r.common) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let (to, via) = {
        let st = incoming.session.lock();
        (st.uins.qq(incoming.r.to), st.c2c_sigs.get(&incoming.r.group_sig).copied())
    };
    let (Some(to), Some((group, discussion))) = (to, via) else { return refused() };
    let target = Target::Session { to, group, discussion };
    finish(
        shared,
        &incoming.session,
        "session",
        target,
        to.get(),
        &incoming.r.common,
        &incoming.content,
    )
}
