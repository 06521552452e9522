//! The routing table: (`Host`, path) -> [`Endpoint`], like the real front proxies. Anything else
//! is an nginx 404 page. The control API (`/_emulator/…`) is served on every host.

use std::net::IpAddr;

/// Every endpoint the emulator serves. [`Endpoint::name`] is the label used by faults and
/// counters (the real path's last segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    /// `ui.ptlogin2.qq.com/cgi-bin/login`, `xui.ptlogin2.qq.com/cgi-bin/xlogin`.
    LoginPage,
    /// `ssl.ptlogin2.qq.com/check`.
    Check,
    /// `ssl.ptlogin2.qq.com/login`.
    Login,
    /// `ssl.ptlogin2.qq.com/ptqrshow`.
    Ptqrshow,
    /// `ssl.ptlogin2.qq.com/ptqrlogin`.
    Ptqrlogin,
    /// `ssl.ptlogin2.qq.com/pt4_auth`.
    Pt4Auth,
    /// `ptlogin2.qq.com/logout`.
    Logout,
    /// `ssl.captcha.qq.com/getimage`, `captcha.qq.com/getimage`.
    GetImage,
    /// `ptlogin4.web2.qq.com/check_sig`.
    CheckSig,
    /// `proxy.html` / `cfproxy.html` / `webqq.html` pages.
    ProxyPage,
    /// `D/channel/<name>`.
    Channel(Channel),
    /// `S/api/<name>`.
    Api(Api),
    /// `web2.qq.com/cgi-bin/get_group_pic`.
    GetGroupPic,
    /// `up.web2.qq.com/cgi-bin/cface_upload`.
    CfaceUpload,
    /// `weboffline.ftn.qq.com/ftn_access/upload_offline_pic`.
    UploadOfflinePic,
    /// `faceN.qun.qq.com/cgi/svr/face/getface`.
    GetFace,
    /// `http://<ip>:<port>/?ver=2173&rkey=…`: the picture servers get_offpic2 redirects to.
    ImageServer,
    /// `/_emulator/…` on any host.
    Control,
}

/// The channel-host (d / d1) endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub(crate) enum Channel {
    Login2,
    Poll2,
    SendBuddyMsg2,
    SendQunMsg2,
    SendDiscuMsg2,
    SendSessMsg2,
    GetC2cmsgSig2,
    GetDiscuInfo,
    GetOnlineBuddies2,
    GetRecentList2,
    ChangeStatus2,
    Logout2,
    InputNotify2,
    Shake2,
    GetGfaceSig2,
    GetOffpic2,
    GetCface2,
}

/// The info-host (s) endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub(crate) enum Api {
    Getvfwebqq,
    GetUserFriends2,
    GetGroupNameListMask2,
    GetGroupInfoExt2,
    GetDiscusList,
    GetFriendUin2,
    GetSelfInfo2,
    GetSingleLongNick2,
    GetFriendInfo2,
    GetStrangerInfo2,
    GetQqLevel2,
}

const CHANNELS: &[(&str, Channel)] = &[
    ("login2", Channel::Login2),
    ("poll2", Channel::Poll2),
    ("send_buddy_msg2", Channel::SendBuddyMsg2),
    ("send_qun_msg2", Channel::SendQunMsg2),
    ("send_discu_msg2", Channel::SendDiscuMsg2),
    ("send_sess_msg2", Channel::SendSessMsg2),
    ("get_c2cmsg_sig2", Channel::GetC2cmsgSig2),
    ("get_discu_info", Channel::GetDiscuInfo),
    ("get_online_buddies2", Channel::GetOnlineBuddies2),
    ("get_recent_list2", Channel::GetRecentList2),
    ("change_status2", Channel::ChangeStatus2),
    ("logout2", Channel::Logout2),
    ("input_notify2", Channel::InputNotify2),
    ("shake2", Channel::Shake2),
    ("get_gface_sig2", Channel::GetGfaceSig2),
    ("get_offpic2", Channel::GetOffpic2),
    ("get_cface2", Channel::GetCface2),
];

const APIS: &[(&str, Api)] = &[
    ("getvfwebqq", Api::Getvfwebqq),
    ("get_user_friends2", Api::GetUserFriends2),
    ("get_group_name_list_mask2", Api::GetGroupNameListMask2),
    ("get_group_info_ext2", Api::GetGroupInfoExt2),
    ("get_discus_list", Api::GetDiscusList),
    ("get_friend_uin2", Api::GetFriendUin2),
    ("get_self_info2", Api::GetSelfInfo2),
    ("get_single_long_nick2", Api::GetSingleLongNick2),
    ("get_friend_info2", Api::GetFriendInfo2),
    ("get_stranger_info2", Api::GetStrangerInfo2),
    ("get_qq_level2", Api::GetQqLevel2),
];

/// Every host name the emulator answers for (the TLS certificate lists them too).
pub(crate) const HOSTS: &[&str] = &[
    "ui.ptlogin2.qq.com",
    "xui.ptlogin2.qq.com",
    "ssl.ptlogin2.qq.com",
    "ptlogin2.qq.com",
    "ssl.captcha.qq.com",
    "captcha.qq.com",
    "ptlogin4.web2.qq.com",
    "d.web2.qq.com",
    "d1.web2.qq.com",
    "s.web2.qq.com",
    "w.qq.com",
    "web2.qq.com",
    "up.web2.qq.com",
    "weboffline.ftn.qq.com",
    "face1.qun.qq.com",
    "face2.qun.qq.com",
    "face3.qun.qq.com",
    "face4.qun.qq.com",
    "face5.qun.qq.com",
    "face6.qun.qq.com",
    "face7.qun.qq.com",
    "face8.qun.qq.com",
    "face9.qun.qq.com",
    "face10.qun.qq.com",
];

impl Endpoint {
    /// The label used by faults and counters.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::LoginPage => "login_page",
            Endpoint::Check => "check",
            Endpoint::Login => "login",
            Endpoint::Ptqrshow => "ptqrshow",
            Endpoint::Ptqrlogin => "ptqrlogin",
            Endpoint::Pt4Auth => "pt4_auth",
            Endpoint::Logout => "logout",
            Endpoint::GetImage => "getimage",
            Endpoint::CheckSig => "check_sig",
            Endpoint::ProxyPage => "proxy_page",
            Endpoint::Channel(c) => {
                CHANNELS.iter().find(|(_, x)| *x == c).map_or("channel", |(n, _)| n)
            }
            Endpoint::Api(a) => APIS.iter().find(|(_, x)| *x == a).map_or("api", |(n, _)| n),
            Endpoint::GetGroupPic => "get_group_pic",
            Endpoint::CfaceUpload => "cface_upload",
            Endpoint::UploadOfflinePic => "upload_offline_pic",
            Endpoint::GetFace => "getface",
            Endpoint::ImageServer => "image_server",
            Endpoint::Control => "control",
        }
    }

    /// Uploads get a larger body cap than forms.
    pub(crate) fn is_upload(self) -> bool {
        matches!(self, Endpoint::CfaceUpload | Endpoint::UploadOfflinePic)
    }
}

fn channel(name: &str) -> Option<Endpoint> {
    CHANNELS.iter().find(|(n, _)| *n == name).map(|(_, c)| Endpoint::Channel(*c))
}

fn is_proxy_page(path: &str) -> bool {
    matches!(path, "/proxy.html" | "/cfproxy.html" | "/loginproxy.html" | "/webqq.html" | "/")
}

/// Finds the endpoint for a host (lowercase, no port) and path, `None` for a 404.
pub(crate) fn route(host: &str, path: &str) -> Option<Endpoint> {
    if path.starts_with("/_emulator/") {
        return Some(Endpoint::Control);
    }
    match host {
        "ui.ptlogin2.qq.com" | "xui.ptlogin2.qq.com" => {
            matches!(path, "/cgi-bin/login" | "/cgi-bin/xlogin").then_some(Endpoint::LoginPage)
        }
        "ssl.ptlogin2.qq.com" | "ptlogin2.qq.com" => match path {
            "/check" => Some(Endpoint::Check),
            "/login" => Some(Endpoint::Login),
            "/ptqrshow" => Some(Endpoint::Ptqrshow),
            "/ptqrlogin" => Some(Endpoint::Ptqrlogin),
            "/pt4_auth" => Some(Endpoint::Pt4Auth),
            "/logout" => Some(Endpoint::Logout),
            _ => None,
        },
        "ssl.captcha.qq.com" | "captcha.qq.com" => {
            (path == "/getimage").then_some(Endpoint::GetImage)
        }
        "d.web2.qq.com" | "d1.web2.qq.com" => match path.strip_prefix("/channel/") {
            Some(name) => channel(name),
            None => is_proxy_page(path).then_some(Endpoint::ProxyPage),
        },
        "s.web2.qq.com" => match path.strip_prefix("/api/") {
            Some(name) => APIS.iter().find(|(n, _)| *n == name).map(|(_, a)| Endpoint::Api(*a)),
            None => is_proxy_page(path).then_some(Endpoint::ProxyPage),
        },
        "w.qq.com" => match path {
            "/d/channel/get_offpic2" => Some(Endpoint::Channel(Channel::GetOffpic2)),
            _ => is_proxy_page(path).then_some(Endpoint::ProxyPage),
        },
        "web2.qq.com" => match path {
            "/cgi-bin/get_group_pic" => Some(Endpoint::GetGroupPic),
            _ => is_proxy_page(path).then_some(Endpoint::ProxyPage),
        },
        "up.web2.qq.com" => (path == "/cgi-bin/cface_upload").then_some(Endpoint::CfaceUpload),
        "weboffline.ftn.qq.com" => {
            (path == "/ftn_access/upload_offline_pic").then_some(Endpoint::UploadOfflinePic)
        }
        _ if is_face_host(host) => (path == "/cgi/svr/face/getface").then_some(Endpoint::GetFace),
        // Any ptloginN.web2.qq.com host may carry check_sig (protocol §0.1).
        _ if host.starts_with("ptlogin") && host.ends_with(".web2.qq.com") => {
            (path == "/check_sig").then_some(Endpoint::CheckSig)
        }
        // The picture servers were addressed by IP literal (protocol §2.18).
        _ if host.parse::<IpAddr>().is_ok() && path == "/" => Some(Endpoint::ImageServer),
        _ => None,
    }
}

fn is_face_host(host: &str) -> bool {
    host.strip_prefix("face")
        .and_then(|rest| rest.strip_suffix(".qun.qq.com"))
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=10).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_routing_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("d1.web2.qq.com", "/channel/poll2", Some("poll2")),
            ("d.web2.qq.com", "/channel/send_qun_msg2", Some("send_qun_msg2")),
            ("s.web2.qq.com", "/channel/poll2", None),
            ("s.web2.qq.com", "/api/get_user_friends2", Some("get_user_friends2")),
            ("d1.web2.qq.com", "/api/get_user_friends2", None),
            ("ssl.ptlogin2.qq.com", "/ptqrlogin", Some("ptqrlogin")),
            ("ui.ptlogin2.qq.com", "/cgi-bin/login", Some("login_page")),
            ("xui.ptlogin2.qq.com", "/cgi-bin/xlogin", Some("login_page")),
            ("ptlogin4.web2.qq.com", "/check_sig", Some("check_sig")),
            ("ptlogin2.web2.qq.com", "/check_sig", Some("check_sig")),
            ("w.qq.com", "/d/channel/get_offpic2", Some("get_offpic2")),
            ("w.qq.com", "/proxy.html", Some("proxy_page")),
            ("face7.qun.qq.com", "/cgi/svr/face/getface", Some("getface")),
            ("face11.qun.qq.com", "/cgi/svr/face/getface", None),
            ("127.0.0.1", "/", Some("image_server")),
            ("example.com", "/_emulator/state", Some("control")),
            ("example.com", "/", None),
            ("ssl.captcha.qq.com", "/getimage", Some("getimage")),
            ("up.web2.qq.com", "/cgi-bin/cface_upload", Some("cface_upload")),
        ];
        for (host, path, expected) in cases {
            assert_eq!(route(host, path).map(Endpoint::name), *expected, "{host}{path}");
        }
    }

    #[test]
    fn test_every_name_round_trips() {
        for (name, c) in CHANNELS {
            assert_eq!(Endpoint::Channel(*c).name(), *name);
        }
        for (name, a) in APIS {
            assert_eq!(Endpoint::Api(*a).name(), *name);
        }
    }
}
