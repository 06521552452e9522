//! The session calls the account actor makes for others: id lookups for the resolver and
//! picture downloads for the bridge.

use crate::account::messages::{FetchPicture, PictureRequest, UploadPicture};
use crate::account::resolve::Lookup;
use crate::account::send_queue::ChatKey;
use crate::webqq::api::get_friend_uin2::{KIND_GROUP, KIND_PERSON};
use crate::webqq::client::WebQqClient;
use crate::webqq::content::Segment;
use crate::webqq::retry::retried;
use crate::webqq::{Gid, GroupNumber, QqNumber, Uin};

/// What a lookup taught.
pub enum Learned {
    /// A person's number.
    Person(Uin, QqNumber),
    /// A group's member names.
    Members(Gid, Vec<(Uin, String)>),
    /// A group's number.
    GroupNumber(Gid, GroupNumber),
}

/// Makes `lookup` with the session's client, trying again while it fails transiently
/// ([`retried`]): a failed lookup costs the event its sender's number, or the whole event when
/// it was a group's number.
pub async fn learn(client: &WebQqClient, lookup: Lookup) -> Result<Learned, crate::webqq::Error> {
    match lookup {
        Lookup::Person(uin) => {
            let answer = retried(|| client.friend_uin(uin.get(), KIND_PERSON)).await?;
            Ok(Learned::Person(uin, QqNumber::new(answer.account)))
        }
        Lookup::GroupNumber(gid) => {
            let answer = retried(|| client.friend_uin(gid.get(), KIND_GROUP)).await?;
            Ok(Learned::GroupNumber(gid, GroupNumber::new(answer.account)))
        }
        Lookup::GroupMembers(gid, code) => {
            let details = retried(|| client.group_info(code)).await?;
            let cards = details.cards.unwrap_or_default();
            let names = details
                .minfo
                .into_iter()
                .map(|member| {
                    let card = cards.iter().find(|c| c.muin == member.uin).map(|c| c.card.clone());
                    let name = card.filter(|c| !c.is_empty()).unwrap_or(member.nick);
                    (member.uin, crate::webqq::content::unescape_entities(&name))
                })
                .collect();
            Ok(Learned::Members(gid, names))
        }
    }
}

/// Downloads the picture `msg` names, with the session that received it.
pub async fn fetch_picture(client: &WebQqClient, msg: FetchPicture) -> Result<Vec<u8>, String> {
    let origin = msg.origin;
    let fetched = match (msg.picture, origin.chat) {
        (PictureRequest::Group { name, file_id, server }, Some((kind, chat))) => {
            client.fetch_group_pic(kind, chat, origin.from, &server, file_id, &name).await
        }
        (PictureRequest::Group { .. }, None) => {
            return Err("a group picture outside a group".to_owned());
        }
        (PictureRequest::CustomFace { name }, _) => {
            client.fetch_cface(origin.msg_id, &name, origin.from).await
        }
        (PictureRequest::Offline { file_path }, _) => {
            client.fetch_offpic(&file_path, origin.from).await
        }
    };
    fetched.map_err(|error| error.to_string())
}

/// Uploads the picture of `msg` (protocol §2.18): a group or discussion picture as a custom face,
/// a friend's as an offline picture addressed to `friend` (the friend's uin in this session).
pub async fn upload_picture(
    client: &WebQqClient,
    msg: UploadPicture,
    friend: Option<Uin>,
) -> Result<Segment, String> {
    match msg.chat {
        ChatKey::Group(_) | ChatKey::Discussion(_) => client
            .upload_cface(&msg.file_name, msg.bytes)
            .await
            .map(|name| Segment::GroupCface { name })
            .map_err(|error| error.to_string()),
        ChatKey::Friend(qq) => {
            let uin = friend.ok_or_else(|| format!("friend {qq} is not in this session's list"))?;
            let uploaded = client
                .upload_offline_pic(uin, &msg.file_name, msg.bytes)
                .await
                .map_err(|error| error.to_string())?;
            Ok(Segment::OffPicSend {
                file_path: uploaded.filepath,
                file_name: uploaded.filename,
                file_size: uploaded.filesize,
            })
        }
    }
}
