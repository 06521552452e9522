//! The calls a logged-in session makes: poll, send, contact lists, profiles, pictures, logout.
//!
//! Thin typed wrappers over [`WebQqClient::call`] that fill in the session tokens. Policy (when
//! to retry, relink or give up) stays with the caller, which asks the error's classifiers.

use crate::webqq::api::change_status2::ChangeStatus2;
use crate::webqq::api::get_c2cmsg_sig2::GetC2cmsgSig2;
use crate::webqq::api::get_cface2::GetCface2;
use crate::webqq::api::get_discu_info::{DiscuDetails, GetDiscuInfo};
use crate::webqq::api::get_discus_list::{DiscussionList, GetDiscusList};
use crate::webqq::api::get_friend_info2::GetFriendInfo2;
use crate::webqq::api::get_friend_uin2::{FriendUin, GetFriendUin2};
use crate::webqq::api::get_gface_sig2::{GetGfaceSig2, GfaceSig};
use crate::webqq::api::get_group_info_ext2::{GetGroupInfoExt2, GroupDetails};
use crate::webqq::api::get_group_name_list_mask2::{GetGroupNameListMask2, GroupList};
use crate::webqq::api::get_group_pic::GetGroupPic;
use crate::webqq::api::get_offpic2::GetOffpic2;
use crate::webqq::api::get_online_buddies2::{GetOnlineBuddies2, OnlineBuddy};
use crate::webqq::api::get_recent_list2::{GetRecentList2, RecentEntry};
use crate::webqq::api::get_self_info2::{GetSelfInfo2, Profile};
use crate::webqq::api::get_single_long_nick2::{GetSingleLongNick2, LongNick};
use crate::webqq::api::get_user_friends2::{FriendList, GetUserFriends2};
use crate::webqq::api::input_notify2::InputNotify2;
use crate::webqq::api::logout2::Logout2;
use crate::webqq::api::poll2::{Poll2, PollAnswer};
use crate::webqq::api::send::{SendAnswer, SendCommon};
use crate::webqq::api::send_buddy_msg2::SendBuddyMsg2;
use crate::webqq::api::send_discu_msg2::SendDiscuMsg2;
use crate::webqq::api::send_qun_msg2::SendQunMsg2;
use crate::webqq::api::send_sess_msg2::SendSessMsg2;
use crate::webqq::api::upload_offline_pic::{self, OfflinePicUploaded};
use crate::webqq::api::{HostKind, cface_upload};
use crate::webqq::client::WebQqClient;
use crate::webqq::content::{Content, Segment};
use crate::webqq::hash::friend_list_hash;
use crate::webqq::hosts::Channel;
use crate::webqq::login::session_query;
use crate::webqq::retcode::Action;
use crate::webqq::{Did, Error, Gid, GroupCode, MsgId, Secret, Uin};

impl WebQqClient {
    fn vfwebqq(&self) -> String {
        self.state().tokens.vfwebqq.expose().clone()
    }

    fn send_common(&self, content: &Content) -> SendCommon {
        let state = self.state();
        SendCommon {
            content: content.encode_for_send(),
            face: 0,
            clientid: state.clientid,
            msg_id: self.next_msg_id(),
            psessionid: state.tokens.psessionid.expose().clone(),
        }
    }

    /// One long poll (slow: the server holds it up to about a minute). On retcode 116 the new
    /// ptwebqq is stored (memory and the `qq.com` cookie) before the error is returned, so the
    /// caller only has to poll again.
    pub async fn poll(&self) -> Result<PollAnswer, Error> {
        let request = {
            let state = self.state();
            let tokens = &state.tokens;
            match state.channel {
                Channel::D1 => Poll2::smartqq(
                    tokens.ptwebqq.expose(),
                    state.clientid,
                    tokens.psessionid.expose(),
                ),
                Channel::D => Poll2::web2013(state.clientid, tokens.psessionid.expose()),
            }
        };
        let result = self.call(&request).await;
        if let Err(Error::Retcode { new_ptwebqq: Some(p), .. }) = &result {
            self.cookies().set("ptwebqq", p.expose(), "qq.com");
            self.state().tokens.ptwebqq = p.clone();
        }
        result
    }

    /// Sends a buddy message. 1202 is an error whose action is `RateLimited` (maybe delivered).
    pub async fn send_buddy(&self, to: Uin, content: &Content) -> Result<SendAnswer, Error> {
        self.call(&SendBuddyMsg2 { to, common: self.send_common(content) }).await
    }

    /// Sends a group message; pictures (`GroupCface`) add group_code, key and sig (§2.18).
    pub async fn send_group(
        &self,
        group_uin: Gid,
        group_code: GroupCode,
        content: &Content,
    ) -> Result<SendAnswer, Error> {
        let sig =
            if carries_uploaded_picture(content) { Some(self.gface_sig().await?) } else { None };
        let request = SendQunMsg2 {
            group_uin,
            group_code: sig.as_ref().map(|_| group_code),
            key: sig.as_ref().map(|s| s.gface_key.clone()),
            sig: sig.map(|s| s.gface_sig),
            common: self.send_common(content),
        };
        self.call(&request).await
    }

    /// Sends a discussion message (pictures add key and sig).
    pub async fn send_discussion(&self, did: Did, content: &Content) -> Result<SendAnswer, Error> {
        let sig =
            if carries_uploaded_picture(content) { Some(self.gface_sig().await?) } else { None };
        let request = SendDiscuMsg2 {
            did,
            key: sig.as_ref().map(|s| s.gface_key.clone()),
            sig: sig.map(|s| s.gface_sig),
            common: self.send_common(content),
        };
        self.call(&request).await
    }

    /// Answers a temporary chat: fetches the signature, then sends (no pictures, lwqq).
    /// `via` is the group gid (service_type 0) or did (service_type 1).
    pub async fn send_session(
        &self,
        to: Uin,
        via: u64,
        service_type: u64,
        content: &Content,
    ) -> Result<SendAnswer, Error> {
        let session = session_query(self);
        let sig = self.call(&GetC2cmsgSig2 { id: via, to_uin: to, service_type, session }).await?;
        if sig.value.is_empty() {
            return Err(Error::Flow("no permission for a temporary chat with this person"));
        }
        let request = SendSessMsg2 {
            to,
            group_sig: sig.value,
            service_type,
            common: self.send_common(content),
        };
        self.call(&request).await
    }

    /// The friend list, with the hash fallback of [`WebQqClient::with_hash_fallback`].
    pub async fn friends(&self) -> Result<FriendList, Error> {
        self.with_hash_fallback(|hash| {
            let request =
                GetUserFriends2 { vfwebqq: self.vfwebqq(), hash, h: Some("hello".into()) };
            async move { self.call(&request).await }
        })
        .await
    }

    /// The group list, with the same hash fallback.
    pub async fn groups(&self) -> Result<GroupList, Error> {
        self.with_hash_fallback(|hash| {
            let request = GetGroupNameListMask2 { vfwebqq: self.vfwebqq(), hash };
            async move { self.call(&request).await }
        })
        .await
    }

    /// Calls a list endpoint with the last working hash variant, then the others on retcode 50
    /// (lwqq's strategy, protocol §3.1), and remembers the one that worked.
    async fn with_hash_fallback<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let (uin, ptwebqq, mut variant) = self.hash_inputs();
        loop {
            match call(friend_list_hash(variant, uin, &ptwebqq)).await {
                Ok(answer) => {
                    self.state().hash_variant = variant;
                    return Ok(answer);
                }
                Err(e) if e.action() == Action::WrongHash => match next_variant(variant, self) {
                    Some(next) => variant = next,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    fn hash_inputs(&self) -> (u64, String, crate::webqq::hash::HashVariant) {
        let state = self.state();
        let uin = state.tokens.uin.map(Uin::get).unwrap_or(0);
        (uin, state.tokens.ptwebqq.expose().clone(), state.hash_variant)
    }

    /// A group's info and members, by group code.
    pub async fn group_info(&self, gcode: GroupCode) -> Result<GroupDetails, Error> {
        self.call(&GetGroupInfoExt2 { gcode, vfwebqq: self.vfwebqq() }).await
    }

    /// The discussion list.
    pub async fn discussions(&self) -> Result<DiscussionList, Error> {
        self.call(&GetDiscusList { session: session_query(self) }).await
    }

    /// A discussion's members (with their real QQ numbers).
    pub async fn discussion_info(&self, did: Did) -> Result<DiscuDetails, Error> {
        self.call(&GetDiscuInfo { did, session: session_query(self) }).await
    }

    /// Resolves a uin (`kind` 1) or gid (`kind` 4) to its permanent number (closed in 2017-04).
    pub async fn friend_uin(&self, tuin: u64, kind: u64) -> Result<FriendUin, Error> {
        self.call(&GetFriendUin2 { tuin, kind, vfwebqq: self.vfwebqq() }).await
    }

    /// Friends online now; also the session probe.
    pub async fn online_buddies(&self) -> Result<Vec<OnlineBuddy>, Error> {
        self.call(&GetOnlineBuddies2 { session: session_query(self) }).await
    }

    /// Recent conversations.
    pub async fn recent_list(&self) -> Result<Vec<RecentEntry>, Error> {
        let query = session_query(self);
        let request = GetRecentList2 {
            vfwebqq: query.vfwebqq.unwrap_or_default(),
            clientid: query.clientid.unwrap_or(crate::webqq::ClientId::SMARTQQ),
            psessionid: query.psessionid.unwrap_or_default(),
        };
        self.call(&request).await
    }

    /// The account's own profile.
    pub async fn self_info(&self) -> Result<Profile, Error> {
        self.call(&GetSelfInfo2).await
    }

    /// A person's signature.
    pub async fn long_nick(&self, tuin: Uin) -> Result<Vec<LongNick>, Error> {
        self.call(&GetSingleLongNick2 { tuin, vfwebqq: self.vfwebqq() }).await
    }

    /// A friend's profile.
    pub async fn friend_info(&self, tuin: Uin) -> Result<Profile, Error> {
        self.call(&GetFriendInfo2 { tuin, session: session_query(self) }).await
    }

    /// Changes the account's status (`online`, `away`, `busy`, `silent`, `hidden`, `callme`).
    pub async fn change_status(&self, status: &str) -> Result<(), Error> {
        self.call(&ChangeStatus2 { newstatus: status.to_owned(), session: session_query(self) })
            .await
    }

    /// Tells a friend "I am typing".
    pub async fn input_notify(&self, to_uin: Uin) -> Result<(), Error> {
        self.call(&InputNotify2 { to_uin, session: session_query(self) }).await
    }

    /// Ends the session (logout2) and drops ptwebqq and skey locally (protocol §1.5). Not called on
    /// shutdown: a stored session must stay valid for the restart (RELIABILITY.md §1.7).
    pub async fn logout(&self) -> Result<(), Error> {
        let result = self.call(&Logout2 { ids: String::new(), session: session_query(self) }).await;
        self.cookies().remove("ptwebqq");
        self.cookies().remove("skey");
        self.state().tokens.psessionid = Secret::default();
        result
    }

    /// The picture key and signature, cached for the session.
    pub async fn gface_sig(&self) -> Result<GfaceSig, Error> {
        if let Some(sig) = self.state().tokens.gface.clone() {
            return Ok(sig);
        }
        let sig = self.call(&GetGfaceSig2 { session: session_query(self) }).await?;
        self.state().tokens.gface = Some(sig.clone());
        Ok(sig)
    }

    /// Uploads a group/discussion picture; returns the server's file name for a `GroupCface`.
    pub async fn upload_cface(&self, file_name: &str, bytes: Vec<u8>) -> Result<String, Error> {
        if bytes.len() > cface_upload::MAX_UPLOAD_BYTES {
            return Err(Error::TooLarge {
                endpoint: cface_upload::NAME,
                limit: cface_upload::MAX_UPLOAD_BYTES,
            });
        }
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in cface_upload::form_fields(&self.vfwebqq(), 1) {
            form = form.text(name, value);
        }
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned());
        let form = form.part("custom_face", part);
        let body =
            self.upload(cface_upload::NAME, HostKind::Upload, cface_upload::PATH, form).await?;
        cface_upload::decode_answer(&body).map(|uploaded| uploaded.name)
    }

    /// Uploads a buddy picture; the answer's path, name and size go into an `OffPicSend`.
    pub async fn upload_offline_pic(
        &self,
        peer: Uin,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<OfflinePicUploaded, Error> {
        let (own, skey) = {
            let state = self.state();
            (
                state.tokens.uin.map(Uin::get).unwrap_or(0),
                self.cookies().get("skey", "qq.com").unwrap_or_default(),
            )
        };
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in
            upload_offline_pic::form_fields(own, &skey, peer.get(), &self.vfwebqq())
        {
            form = form.text(name, value);
        }
        let form = form
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()));
        let body = self
            .upload(
                upload_offline_pic::NAME,
                HostKind::OfflineUpload,
                upload_offline_pic::PATH,
                form,
            )
            .await?;
        upload_offline_pic::decode_answer(&body)
    }

    /// Fetches a received buddy offline picture: get_offpic2's redirect, checked, then the image.
    pub async fn fetch_offpic(&self, file_path: &str, from: Uin) -> Result<Vec<u8>, Error> {
        let request = GetOffpic2 {
            file_path: file_path.to_owned(),
            f_uin: from,
            session: session_query(self),
        };
        let location = self.call(&request).await?;
        self.fetch_picture_url(&location).await
    }

    /// Fetches a received buddy custom face.
    pub async fn fetch_cface(
        &self,
        msg_id: MsgId,
        name: &str,
        from: Uin,
    ) -> Result<Vec<u8>, Error> {
        let request = GetCface2 {
            lcid: msg_id,
            guid: name.to_owned(),
            to: from,
            session: session_query(self),
        };
        self.call(&request).await
    }

    /// Fetches a received group (`kind` 0, `gid` = group code) or discussion (`kind` 1, did)
    /// picture. `server` is the element's `ip:port`, passed as parameters, never connected to.
    pub async fn fetch_group_pic(
        &self,
        kind: u64,
        gid: u64,
        sender: Uin,
        server: &str,
        file_id: u64,
        name: &str,
    ) -> Result<Vec<u8>, Error> {
        let (rip, rport) = server.split_once(':').unwrap_or((server, "80"));
        let request = GetGroupPic {
            kind,
            gid,
            uin: sender,
            rip: rip.to_owned(),
            rport: rport.to_owned(),
            fid: file_id,
            pic: name.to_owned(),
            vfwebqq: self.vfwebqq(),
        };
        self.call(&request).await
    }
}

/// The next hash variant to try, never coming back to the one that was stored as working.
fn next_variant(
    tried: crate::webqq::hash::HashVariant,
    client: &WebQqClient,
) -> Option<crate::webqq::hash::HashVariant> {
    let start = client.state().hash_variant;
    let mut next = tried.next().or(Some(crate::webqq::hash::HashVariant::ALL[0]));
    while let Some(candidate) = next {
        if candidate == start {
            return None;
        }
        if candidate != tried {
            return Some(candidate);
        }
        next = candidate.next();
    }
    None
}

/// Whether a group/discussion send must carry key and sig (an uploaded custom face, §2.18).
fn carries_uploaded_picture(content: &Content) -> bool {
    content.segments.iter().any(|segment| matches!(segment, Segment::GroupCface { .. }))
}
