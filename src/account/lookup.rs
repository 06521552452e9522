//! The session calls the account actor makes for others: id lookups for the resolver and
//! picture downloads for the bridge.

use crate::account::messages::{FetchPicture, PictureRequest};
use crate::account::resolve::Lookup;
use crate::webqq::api::get_friend_uin2::KIND_PERSON;
use crate::webqq::client::WebQqClient;
use crate::webqq::{Gid, QqNumber, Uin};

/// What a lookup taught.
pub enum Learned {
    /// A person's number.
    Person(Uin, QqNumber),
    /// A group's member names.
    Members(Gid, Vec<(Uin, String)>),
}

/// Makes `lookup` with the session's client.
pub async fn learn(client: &WebQqClient, lookup: Lookup) -> Result<Learned, crate::webqq::Error> {
    match lookup {
        Lookup::Person(uin) => {
            let answer = client.friend_uin(uin.get(), KIND_PERSON).await?;
            Ok(Learned::Person(uin, QqNumber::new(answer.account)))
        }
        Lookup::GroupMembers(gid, code) => {
            let details = client.group_info(code).await?;
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
