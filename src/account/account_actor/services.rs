//! What an account does for others while its session is open: picture and face downloads,
//! uploads, the contact lists and group details for the bridge, and typing notices to friends;
//! and the QR scan passed on to whoever shows the code.

use actix::prelude::*;
use futures_util::StreamExt as _;

use super::AccountActor;
use crate::account::login_actor::QrScanned;
use crate::account::lookup;
use crate::account::manager::{FetchFace, GetDirectory, GetGroupInfo, GroupSnapshot};
use crate::account::messages::AccountEvent;
use crate::account::messages::{FetchPicture, LogOutOfQq, NotifyTyping, UploadPicture};
use crate::account::sender_actor::Drain;
use crate::webqq::api::get_friend_uin2::KIND_PERSON;
use crate::webqq::content::unescape_entities;
use crate::webqq::directory::Directory;
use crate::webqq::{QqNumber, Uin};

impl Handler<QrScanned> for AccountActor {
    type Result = ();

    fn handle(&mut self, _: QrScanned, _: &mut Context<Self>) {
        self.observer.do_send(AccountEvent::QrScanned { account: self.settings.id.clone() });
    }
}

impl Handler<LogOutOfQq> for AccountActor {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: LogOutOfQq, ctx: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        self.poller = None;
        self.sender = None;
        self.login = None;
        ctx.stop();
        // The future outlives the actor (actix spawns it): the logout is not cut short.
        Box::pin(async move {
            let Some(client) = client else {
                return Err("no QQ session was open".to_owned());
            };
            match tokio::time::timeout(msg.timeout, client.logout()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("QQ did not answer within {} s", msg.timeout.as_secs_f64())),
            }
        })
    }
}

impl Handler<Drain> for AccountActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Drain, _: &mut Context<Self>) -> Self::Result {
        let sender = self.sender.clone();
        Box::pin(async move {
            if let Some(sender) = sender {
                // An error only means the sender stopped: nothing is in flight then.
                let _ = sender.send(msg).await;
            }
        })
    }
}

impl Handler<FetchPicture> for AccountActor {
    type Result = ResponseFuture<Result<Vec<u8>, String>>;

    fn handle(&mut self, msg: FetchPicture, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        Box::pin(async move {
            let client = client.ok_or_else(|| "the account is not logged in".to_owned())?;
            lookup::fetch_picture(&client, msg).await
        })
    }
}

impl Handler<NotifyTyping> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: NotifyTyping, ctx: &mut Context<Self>) {
        let uin = self.resolver.as_ref().and_then(|r| r.directory().uin_of(msg.to));
        let (Some(client), Some(uin)) = (self.client.clone(), uin) else { return };
        ctx.spawn(
            async move {
                if let Err(error) = client.input_notify(uin).await {
                    tracing::debug!(%error, "typing notice not sent");
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<UploadPicture> for AccountActor {
    type Result = ResponseFuture<Result<crate::webqq::content::Segment, String>>;

    fn handle(&mut self, msg: UploadPicture, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        let friend = match (&msg.chat, &self.resolver) {
            (crate::account::send_queue::ChatKey::Friend(qq), Some(resolver)) => {
                resolver.directory().uin_of(*qq)
            }
            _ => None,
        };
        Box::pin(async move {
            let client = client.ok_or_else(|| "the account is not logged in".to_owned())?;
            lookup::upload_picture(&client, msg, friend).await
        })
    }
}

impl Handler<FetchFace> for AccountActor {
    type Result = ResponseFuture<Result<Vec<u8>, String>>;

    fn handle(&mut self, msg: FetchFace, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        let uin = self.resolver.as_ref().and_then(|r| r.directory().uin_of(msg.qq));
        Box::pin(async move {
            let client = client.ok_or_else(|| "the account is not logged in".to_owned())?;
            let uin = uin.ok_or_else(|| format!("{} has no uin in this session", msg.qq))?;
            // The web client spread avatars over face1…face10 (protocol §1); any one answers.
            let host = uin.get() % 10 + 1;
            let vfwebqq = client.state().tokens.vfwebqq.expose().clone();
            let mut url =
                url::Url::parse(&format!("http://face{host}.qun.qq.com/cgi/svr/face/getface"))
                    .map_err(|e| e.to_string())?;
            url.query_pairs_mut()
                .append_pair("cache", "0")
                .append_pair("type", "1")
                .append_pair("fid", "0")
                .append_pair("uin", &uin.to_string())
                .append_pair("vfwebqq", &vfwebqq)
                .append_pair(
                    "t",
                    &crate::webqq::session::unix_now().saturating_mul(1000).to_string(),
                );
            client.fetch_picture_url(url.as_str()).await.map_err(|error| error.to_string())
        })
    }
}

impl Handler<GetDirectory> for AccountActor {
    type Result = Option<Directory>;

    fn handle(&mut self, _: GetDirectory, _: &mut Context<Self>) -> Self::Result {
        self.resolver.as_ref().map(|r| r.directory().clone())
    }
}

/// Member lookups made at once for [`GetGroupInfo`].
const MEMBER_LOOKUPS: usize = 8;

impl Handler<GetGroupInfo> for AccountActor {
    type Result = ResponseActFuture<Self, Result<GroupSnapshot, String>>;

    fn handle(&mut self, msg: GetGroupInfo, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        let directory = self.resolver.as_ref().map(|r| r.directory().clone());
        let me = self.settings.qq;
        let fetch = async move {
            let client = client.ok_or_else(|| "the account is not logged in".to_owned())?;
            let directory =
                directory.ok_or_else(|| "the contact lists are not loaded".to_owned())?;
            let group = directory
                .group_by_number(msg.group)
                .ok_or_else(|| format!("group {} is not in the group list", msg.group))?;
            let details = client.group_info(group.code).await.map_err(|e| e.to_string())?;
            let cards = details.cards.unwrap_or_default();
            let names: Vec<(Uin, String)> = details
                .minfo
                .into_iter()
                .map(|member| {
                    let card = cards.iter().find(|c| c.muin == member.uin).map(|c| c.card.clone());
                    (
                        member.uin,
                        unescape_entities(&card.filter(|c| !c.is_empty()).unwrap_or(member.nick)),
                    )
                })
                .collect();
            let wanted: Vec<(Uin, String)> =
                names.iter().take(msg.limit.saturating_add(1)).cloned().collect();
            // Numbers come one get_friend_uin2 each; a failed one leaves that member out.
            let numbers: Vec<(Uin, QqNumber)> =
                futures_util::stream::iter(wanted.iter().map(|(uin, _)| *uin))
                    .map(|uin| {
                        let (client, known) = (client.clone(), directory.qq_of(uin));
                        async move {
                            match known {
                                Some(qq) => Some((uin, qq)),
                                None => client
                                    .friend_uin(uin.get(), KIND_PERSON)
                                    .await
                                    .ok()
                                    .map(|a| (uin, QqNumber::new(a.account))),
                            }
                        }
                    })
                    .buffered(MEMBER_LOOKUPS)
                    .filter_map(std::future::ready)
                    .collect()
                    .await;
            let members = wanted
                .iter()
                .filter_map(|(uin, name)| {
                    let qq = numbers.iter().find(|(u, _)| u == uin).map(|(_, qq)| *qq)?;
                    // A friend is named as in the friend chat (resolve.rs, `name`).
                    let name = directory.display_name(*uin).unwrap_or(name).to_owned();
                    (qq != me).then_some((qq, name))
                })
                .take(msg.limit)
                .collect();
            let snapshot = GroupSnapshot {
                name: unescape_entities(&details.ginfo.name),
                memo: unescape_entities(&details.ginfo.memo),
                members,
            };
            Ok::<_, String>((group.gid, names, numbers, snapshot))
        };
        Box::pin(fetch.into_actor(self).map(|fetched, act, _| {
            let (gid, names, numbers, snapshot) = fetched?;
            // What was learnt serves the resolver too: these members' messages need no lookup.
            if let Some(resolver) = act.resolver.as_mut() {
                for (uin, qq) in numbers {
                    resolver.learn_person(uin, qq);
                }
                resolver.learn_group_members(gid, names);
            }
            Ok(snapshot)
        }))
    }
}
