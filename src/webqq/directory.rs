//! [`Directory`]: one session's contacts with their stable identities.
//!
//! WebQQ addresses people and groups by per-session uins and gids (protocol §0.2); a bridge keys
//! ghosts and portals on permanent numbers. The directory maps one to the other and is rebuilt
//! after every login. QQ numbers come from get_friend_uin2 (type 1), group numbers from
//! get_friend_uin2 (type 4) or a 2013 message's `info_seq`, discussion members from `ruin`.
//! Lookups fail closed: an unknown id is `None`, never a guess (STYLE.md §6).

use std::collections::BTreeMap;

use crate::webqq::api::get_discus_list::DiscussionList;
use crate::webqq::api::get_friend_uin2::{KIND_GROUP, KIND_PERSON};
use crate::webqq::api::get_group_name_list_mask2::GroupList;
use crate::webqq::api::get_user_friends2::FriendList;
use crate::webqq::client::WebQqClient;
use crate::webqq::content::unescape_entities;
use crate::webqq::retry::retried;
use crate::webqq::{Did, Error, Gid, GroupCode, GroupNumber, QqNumber, Uin};

/// A friend in this session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Friend {
    /// Per-session uin.
    pub uin: Uin,
    /// The permanent QQ number, when it could be resolved.
    pub qq: Option<QqNumber>,
    /// Nickname, entities unescaped.
    pub nick: String,
    /// The owner's markname for this friend, if any.
    pub markname: Option<String>,
    /// Category index (0 = default).
    pub category: u32,
    /// Avatar id.
    pub face: u64,
}

/// A group in this session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Per-session send id.
    pub gid: Gid,
    /// The info-call code.
    pub code: GroupCode,
    /// The permanent group number, when it could be resolved.
    pub number: Option<GroupNumber>,
    /// Group name, entities unescaped.
    pub name: String,
}

/// A discussion in this session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discussion {
    /// Its id.
    pub did: Did,
    /// Its name, entities unescaped (may be empty).
    pub name: String,
}

/// The contacts of one session, keyed by their per-session ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    /// Friends by uin.
    pub friends: BTreeMap<Uin, Friend>,
    /// Groups by gid.
    pub groups: BTreeMap<Gid, Group>,
    /// Discussions by did.
    pub discussions: BTreeMap<Did, Discussion>,
    /// Category names by index.
    pub categories: BTreeMap<u32, String>,
    /// Other people (group or discussion members) whose QQ number is known.
    pub people: BTreeMap<Uin, QqNumber>,
}

impl Directory {
    /// Builds the directory from the three lists, without QQ numbers (pure).
    pub fn from_lists(
        friends: &FriendList,
        groups: &GroupList,
        discussions: &DiscussionList,
    ) -> Self {
        let mut directory = Directory::default();
        for category in &friends.categories {
            directory.categories.insert(category.index, unescape_entities(&category.name));
        }
        for entry in &friends.friends {
            let info = friends.info.iter().find(|i| i.uin == entry.uin);
            let markname = friends.marknames.iter().find(|m| m.uin == entry.uin);
            directory.friends.insert(
                entry.uin,
                Friend {
                    uin: entry.uin,
                    qq: None,
                    nick: info.map(|i| unescape_entities(&i.nick)).unwrap_or_default(),
                    markname: markname.map(|m| unescape_entities(&m.markname)),
                    category: entry.categories,
                    face: info.map(|i| i.face).unwrap_or(0),
                },
            );
        }
        for group in &groups.gnamelist {
            directory.groups.insert(
                group.gid,
                Group {
                    gid: group.gid,
                    code: group.code,
                    number: None,
                    name: unescape_entities(&group.name),
                },
            );
        }
        for discussion in &discussions.dnamelist {
            directory.discussions.insert(
                discussion.did,
                Discussion { did: discussion.did, name: unescape_entities(&discussion.name) },
            );
        }
        directory
    }

    /// Loads the lists and resolves every friend's QQ number and every group's number with
    /// get_friend_uin2, each call tried again while it fails transiently ([`retried`]). A failed
    /// resolution leaves `None` (the call closed in 2017-04); a failed list call is an error.
    pub async fn load(client: &WebQqClient) -> Result<Directory, Error> {
        let friends = retried(|| client.friends()).await?;
        let groups = retried(|| client.groups()).await?;
        let discussions = retried(|| client.discussions()).await?;
        let mut directory = Directory::from_lists(&friends, &groups, &discussions);
        for friend in directory.friends.values_mut() {
            if let Ok(answer) = retried(|| client.friend_uin(friend.uin.get(), KIND_PERSON)).await {
                friend.qq = Some(QqNumber::new(answer.account));
            }
        }
        for group in directory.groups.values_mut() {
            if let Ok(answer) = retried(|| client.friend_uin(group.gid.get(), KIND_GROUP)).await {
                group.number = Some(GroupNumber::new(answer.account));
            }
        }
        Ok(directory)
    }

    /// The QQ number behind a uin: a friend's, or a member learnt from `ruin` or a lookup.
    pub fn qq_of(&self, uin: Uin) -> Option<QqNumber> {
        self.friends.get(&uin).and_then(|f| f.qq).or_else(|| self.people.get(&uin).copied())
    }

    /// The uin of a QQ number in this session (to send to a friend).
    pub fn uin_of(&self, qq: QqNumber) -> Option<Uin> {
        self.friends
            .values()
            .find(|f| f.qq == Some(qq))
            .map(|f| f.uin)
            .or_else(|| self.people.iter().find(|(_, n)| **n == qq).map(|(uin, _)| *uin))
    }

    /// The group behind a gid.
    pub fn group(&self, gid: Gid) -> Option<&Group> {
        self.groups.get(&gid)
    }

    /// The group with a permanent number (to send to it).
    pub fn group_by_number(&self, number: GroupNumber) -> Option<&Group> {
        self.groups.values().find(|g| g.number == Some(number))
    }

    /// Records a person's QQ number learnt elsewhere (a discussion's `ruin`, a session message).
    pub fn learn_person(&mut self, uin: Uin, qq: QqNumber) {
        self.people.insert(uin, qq);
    }

    /// Records a group's number learnt from a 2013 message's `info_seq` or a `t_gcode`.
    pub fn learn_group_number(&mut self, gid: Gid, number: GroupNumber) {
        if let Some(group) = self.groups.get_mut(&gid) {
            group.number = Some(number);
        }
    }

    /// The name to show for a friend: markname, else nick.
    pub fn display_name(&self, uin: Uin) -> Option<&str> {
        let friend = self.friends.get(&uin)?;
        Some(friend.markname.as_deref().unwrap_or(&friend.nick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_directory_from_seed_lists() {
        let friends: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/webqq/get_user_friends2/reference.json"
        ))
        .unwrap();
        let friends: FriendList = serde_json::from_value(friends["result"].clone()).unwrap();
        let groups: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/webqq/get_group_name_list_mask2/seed.json"
        ))
        .unwrap();
        let groups: GroupList = serde_json::from_value(groups["result"].clone()).unwrap();
        let mut directory = Directory::from_lists(&friends, &groups, &DiscussionList::default());
        let uin = Uin::new(2_440_652_742);
        assert_eq!(directory.display_name(uin), Some("Bob"));
        assert_eq!(directory.qq_of(uin), None, "unresolved numbers are not guessed");
        directory.learn_person(uin, QqNumber::new(10001));
        assert_eq!(directory.qq_of(uin), Some(QqNumber::new(10001)));
        assert_eq!(directory.uin_of(QqNumber::new(10001)), Some(uin));
        let gid = Gid::new(2_559_225_925);
        directory.learn_group_number(gid, GroupNumber::new(346_167_134));
        assert_eq!(
            directory.group_by_number(GroupNumber::new(346_167_134)).map(|g| g.gid),
            Some(gid)
        );
        assert_eq!(directory.categories.get(&1).map(String::as_str), Some("Acquaintances"));
    }
}
