//! One handler per endpoint (file names mirror `webqq/api/`), the dispatcher, and the faults
//! that need a session (retcode 116/121, kick, expire, empty).

mod cface_upload;
mod change_status2;
mod check;
mod check_sig;
pub(crate) mod common;
mod get_c2cmsg_sig2;
mod get_cface2;
mod get_discu_info;
mod get_discus_list;
mod get_friend_info2;
mod get_friend_uin2;
mod get_gface_sig2;
mod get_group_info_ext2;
mod get_group_name_list_mask2;
mod get_group_pic;
mod get_offpic2;
mod get_online_buddies2;
mod get_qq_level2;
mod get_recent_list2;
mod get_self_info2;
mod get_single_long_nick2;
mod get_stranger_info2;
mod get_user_friends2;
mod getface;
mod getimage;
mod getvfwebqq;
pub(crate) mod image_server;
mod input_notify2;
mod login;
mod login2;
mod login_page;
mod logout;
mod logout2;
mod poll2;
mod proxy_page;
mod pt4_auth;
mod ptqrlogin;
mod ptqrshow;
mod send;
mod send_buddy_msg2;
mod send_discu_msg2;
mod send_qun_msg2;
mod send_sess_msg2;
mod shake2;
pub(crate) mod upload_offline_pic;

use serde_json::json;

use crate::emulator::deliver::kick_event;
use crate::emulator::faults::FaultKind;
use crate::emulator::http::{Reply, Req};
use crate::emulator::router::{Api, Channel, Endpoint};
use crate::emulator::session::{Liveness, lock, random_hex};
use crate::emulator::state::{Shared, write};

pub(crate) use upload_offline_pic::new_file_path;

/// Runs the handler of `endpoint`. Only poll2 awaits (the hold); the rest answer at once.
pub(crate) async fn dispatch(shared: &Shared, endpoint: Endpoint, req: &Req) -> Reply {
    match endpoint {
        Endpoint::Channel(Channel::Poll2) => poll2::handle(shared, req).await,
        other => dispatch_now(shared, other, req),
    }
}

fn dispatch_now(shared: &Shared, endpoint: Endpoint, req: &Req) -> Reply {
    match endpoint {
        Endpoint::LoginPage => login_page::handle(),
        Endpoint::Check => check::handle(shared, req),
        Endpoint::Login => login::handle(shared, req),
        Endpoint::Ptqrshow => ptqrshow::handle(shared),
        Endpoint::Ptqrlogin => ptqrlogin::handle(shared, req),
        Endpoint::Pt4Auth => pt4_auth::handle(shared, req),
        Endpoint::Logout => logout::handle(shared, req),
        Endpoint::GetImage => getimage::handle(shared, req),
        Endpoint::CheckSig => check_sig::handle(shared, req),
        Endpoint::ProxyPage => proxy_page::handle(req),
        Endpoint::Channel(c) => channel(shared, c, req),
        Endpoint::Api(a) => api(shared, a, req),
        Endpoint::GetGroupPic => get_group_pic::handle(shared, req),
        Endpoint::CfaceUpload => cface_upload::handle(shared, req),
        Endpoint::UploadOfflinePic => upload_offline_pic::handle(shared, req),
        Endpoint::GetFace => getface::handle(shared, req),
        Endpoint::ImageServer => image_server::handle(shared, req),
        // Served by `control_http` before dispatch.
        Endpoint::Control => Reply::nginx(http::StatusCode::NOT_FOUND),
    }
}

fn channel(shared: &Shared, c: Channel, req: &Req) -> Reply {
    match c {
        Channel::Login2 => login2::handle(shared, req),
        // Handled by `dispatch` (async).
        Channel::Poll2 => Reply::retcode(102),
        Channel::SendBuddyMsg2 => send_buddy_msg2::handle(shared, req),
        Channel::SendQunMsg2 => send_qun_msg2::handle(shared, req),
        Channel::SendDiscuMsg2 => send_discu_msg2::handle(shared, req),
        Channel::SendSessMsg2 => send_sess_msg2::handle(shared, req),
        Channel::GetC2cmsgSig2 => get_c2cmsg_sig2::handle(shared, req),
        Channel::GetDiscuInfo => get_discu_info::handle(shared, req),
        Channel::GetOnlineBuddies2 => get_online_buddies2::handle(shared, req),
        Channel::GetRecentList2 => get_recent_list2::handle(shared, req),
        Channel::ChangeStatus2 => change_status2::handle(shared, req),
        Channel::Logout2 => logout2::handle(shared, req),
        Channel::InputNotify2 => input_notify2::handle(shared, req, false),
        Channel::Shake2 => shake2::handle(shared, req),
        Channel::GetGfaceSig2 => get_gface_sig2::handle(shared, req),
        Channel::GetOffpic2 => get_offpic2::handle(shared, req),
        Channel::GetCface2 => get_cface2::handle(shared, req),
    }
}

fn api(shared: &Shared, a: Api, req: &Req) -> Reply {
    match a {
        Api::Getvfwebqq => getvfwebqq::handle(shared, req),
        Api::GetUserFriends2 => get_user_friends2::handle(shared, req),
        Api::GetGroupNameListMask2 => get_group_name_list_mask2::handle(shared, req),
        Api::GetGroupInfoExt2 => get_group_info_ext2::handle(shared, req),
        Api::GetDiscusList => get_discus_list::handle(shared, req),
        Api::GetFriendUin2 => get_friend_uin2::handle(shared, req),
        Api::GetSelfInfo2 => get_self_info2::handle(shared, req),
        Api::GetSingleLongNick2 => get_single_long_nick2::handle(shared, req),
        Api::GetFriendInfo2 => get_friend_info2::handle(shared, req),
        Api::GetStrangerInfo2 => get_stranger_info2::handle(shared, req),
        Api::GetQqLevel2 => get_qq_level2::handle(shared, req),
    }
}

/// Applies a fault that needs the request's session. `Some(reply)` answers at once; `None`
/// lets the handler run (kick and expire change the session first).
pub(crate) fn apply_fault(
    shared: &Shared,
    _endpoint: Endpoint,
    req: &Req,
    kind: &FaultKind,
) -> Option<Reply> {
    let session = common::any_session(shared, req);
    match kind {
        FaultKind::Retcode(116) => {
            let p = random_hex(64);
            if let Some(s) = &session {
                s.lock().ptwebqq = p.clone();
                lock(&shared.login).set_ptwebqq(&s.skey, p.clone());
            }
            Some(Reply::json(&json!({"retcode": 116, "p": p})))
        }
        FaultKind::Retcode(121) => Some(Reply::json(&json!({"retcode": 121, "t": "0"}))),
        FaultKind::Retcode(code) => Some(Reply::retcode(*code)),
        FaultKind::Empty(_) => Some(Reply::json(&json!({"retcode": 0, "retmsg": "ok"}))),
        FaultKind::Kick(_) => {
            if let Some(s) = session {
                kick(shared, &s);
            }
            None
        }
        FaultKind::Expire(_) => {
            if let Some(s) = session {
                s.end(Liveness::Dead);
            }
            None
        }
        FaultKind::HttpStatus(_)
        | FaultKind::Reset(_)
        | FaultKind::DelayMs(_)
        | FaultKind::SlowBodyMs(_) => None,
    }
}

/// Delivers a kick_message and ends the session once the poll has taken it (protocol §4.5).
pub(crate) fn kick(shared: &Shared, session: &crate::emulator::session::Session) {
    {
        let mut st = session.lock();
        let event = kick_event(&mut st, session.account);
        st.queue.push_back(event);
        st.liveness = Liveness::Dead;
    }
    let mut sessions = write(&shared.sessions);
    // Off the account index (no longer online) but findable by psessionid until swept, so the
    // held poll and the next one can still take the kick event.
    sessions.forget_account(session.account, session.id);
    drop(sessions);
    session.notify.notify_waiters();
    crate::emulator::deliver::deliver_status_change(shared, session.account, "offline");
}
