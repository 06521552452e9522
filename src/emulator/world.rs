//! [`World`]: the people, accounts, friendships, groups and discussions the emulator serves.
//!
//! Loaded from YAML ([`World::from_yaml`]) or built in ([`World::demo`]); changed at run time by
//! the control API. Only permanent numbers live here; per-session uins live in `session.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::emulator::options::EmulatorOptions;
use crate::webqq::{Did, GroupNumber, QqNumber, Secret};

/// Why a world description was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The YAML did not parse or has an unknown key (the message names line and column).
    #[error("world yaml: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// Two entries use the same number.
    #[error("duplicate {kind} {number}")]
    Duplicate {
        /// `person`, `account`, `group` or `discussion`.
        kind: &'static str,
        /// The repeated number.
        number: u64,
    },
    /// A QQ number is referenced but no person has it.
    #[error("{context} refers to unknown person {qq}")]
    UnknownPerson {
        /// Where the reference is (e.g. `group 346167134 members`).
        context: String,
        /// The missing QQ number.
        qq: u64,
    },
    /// An account, group or discussion is referenced but does not exist.
    #[error("unknown {kind} {number}")]
    Unknown {
        /// `account`, `group` or `discussion`.
        kind: &'static str,
        /// The missing number.
        number: u64,
    },
    /// A value is out of its allowed range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Someone who can appear in lists and messages (protocol §2.6 `info`, §2.13).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// The permanent QQ number.
    pub qq: QqNumber,
    /// Display nickname (any Unicode).
    pub nick: String,
    /// Avatar id (`face`).
    #[serde(default)]
    pub face: u32,
    /// `male`, `female` or `unknown`.
    #[serde(default = "default_gender")]
    pub gender: String,
    /// Signature (`lnick`).
    #[serde(default)]
    pub lnick: String,
}

fn default_gender() -> String {
    "unknown".to_owned()
}

/// A friend entry of one account (protocol §2.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Friend {
    /// The friend's QQ number.
    pub qq: QqNumber,
    /// The account's private name for the friend.
    #[serde(default)]
    pub markname: Option<String>,
    /// Category index: 0 = the default "我的好友", n = the account's n-th category.
    #[serde(default)]
    pub category: u32,
}

/// A person who can log in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The account's QQ number; a [`Person`] with it exists.
    pub qq: QqNumber,
    /// The password, checked by `/login` (protocol §1.2.3, §1.2.4).
    pub password: Secret<String>,
    /// `/check` demands a captcha (flag `'1'`, protocol §1.2.1).
    #[serde(default)]
    pub captcha: bool,
    /// The account is frozen: login answers ptuiCB 19.
    #[serde(default)]
    pub locked: bool,
    /// The account is banned: login answers ptuiCB 71.
    #[serde(default)]
    pub banned: bool,
    /// Friend category names; category n is `categories[n - 1]`.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Friends, mutual when the friend is an account too.
    #[serde(default)]
    pub friends: Vec<Friend>,
}

/// A group ("qun").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The visible, permanent group number.
    pub number: GroupNumber,
    /// Group name.
    pub name: String,
    /// Group notice (`memo`).
    #[serde(default)]
    pub memo: String,
    /// The owner; always also a member.
    pub owner: QqNumber,
    /// Members in join order.
    pub members: Vec<QqNumber>,
    /// Group cards (per-group nicknames).
    #[serde(default)]
    pub cards: BTreeMap<QqNumber, String>,
}

/// A discussion ("讨论组").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discussion {
    /// The discussion id (`did`); the emulator keeps it stable across sessions.
    pub id: Did,
    /// Discussion name.
    pub name: String,
    /// Members; the first is the owner.
    pub members: Vec<QqNumber>,
}

/// An account entry of the YAML file: the account plus its person fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    qq: QqNumber,
    password: Secret<String>,
    #[serde(default)]
    captcha: bool,
    #[serde(default)]
    locked: bool,
    #[serde(default)]
    banned: bool,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    friends: Vec<Friend>,
    #[serde(default)]
    nick: Option<String>,
    #[serde(default)]
    face: u32,
}

/// The YAML document (`persons`, `accounts`, `groups`, `discussions`, `options`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorldFile {
    #[serde(default)]
    persons: Vec<Person>,
    #[serde(default)]
    accounts: Vec<AccountEntry>,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    discussions: Vec<Discussion>,
    #[serde(default)]
    options: Option<EmulatorOptions>,
}

/// Everyone and everything the emulator knows, keyed by permanent numbers.
#[derive(Clone, Debug, Default)]
pub struct World {
    persons: BTreeMap<QqNumber, Person>,
    accounts: BTreeMap<QqNumber, Account>,
    groups: BTreeMap<GroupNumber, Group>,
    discussions: BTreeMap<Did, Discussion>,
    options: Option<EmulatorOptions>,
}

impl World {
    /// Parses and validates a YAML world. Errors name the offending key or number.
    pub fn from_yaml(text: &str) -> Result<World, WorldError> {
        let file: WorldFile = serde_norway::from_str(text)?;
        let mut world = World { options: file.options, ..World::default() };
        for person in file.persons {
            world.add_person(person)?;
        }
        for entry in &file.accounts {
            if !world.persons.contains_key(&entry.qq) {
                let nick = entry.nick.clone().unwrap_or_else(|| entry.qq.to_string());
                world.add_person(Person {
                    qq: entry.qq,
                    nick,
                    face: entry.face,
                    gender: default_gender(),
                    lnick: String::new(),
                })?;
            }
        }
        let mut friendships = Vec::new();
        for entry in file.accounts {
            friendships.extend(entry.friends.into_iter().map(|f| (entry.qq, f)));
            world.add_account(Account {
                qq: entry.qq,
                password: entry.password,
                captcha: entry.captcha,
                locked: entry.locked,
                banned: entry.banned,
                categories: entry.categories,
                friends: Vec::new(),
            })?;
        }
        // Friends are added after every account exists so that friendships come out mutual.
        for (account, friend) in friendships {
            world.add_friend(account, friend)?;
        }
        for group in file.groups {
            world.add_group(group)?;
        }
        for discussion in file.discussions {
            world.add_discussion(discussion)?;
        }
        Ok(world)
    }

    /// The `options:` section of the YAML, if it had one.
    pub fn options(&self) -> Option<&EmulatorOptions> {
        self.options.as_ref()
    }

    /// A small built-in world: five persons (Chinese and ASCII nicks), account 10001 (password
    /// `password`, no captcha) and account 10002 (password `123456`, captcha), two categories,
    /// marknames, group 346167134 with cards, discussion 2006892653.
    pub fn demo() -> World {
        let text = include_str!("demo_world.yaml");
        World::from_yaml(text).unwrap_or_default()
    }

    /// Adds a person. Fails on a duplicate QQ number.
    pub fn add_person(&mut self, person: Person) -> Result<(), WorldError> {
        if self.persons.contains_key(&person.qq) {
            return Err(WorldError::Duplicate { kind: "person", number: person.qq.get() });
        }
        self.persons.insert(person.qq, person);
        Ok(())
    }

    /// Adds an account for an existing person; its friends are added mutually.
    pub fn add_account(&mut self, account: Account) -> Result<(), WorldError> {
        self.require_person("account", account.qq)?;
        if self.accounts.contains_key(&account.qq) {
            return Err(WorldError::Duplicate { kind: "account", number: account.qq.get() });
        }
        let friends = account.friends.clone();
        let qq = account.qq;
        self.accounts.insert(qq, Account { friends: Vec::new(), ..account });
        for friend in friends {
            self.add_friend(qq, friend)?;
        }
        Ok(())
    }

    /// Changes an account's password.
    pub fn set_password(
        &mut self,
        qq: QqNumber,
        password: Secret<String>,
    ) -> Result<(), WorldError> {
        let account = self
            .accounts
            .get_mut(&qq)
            .ok_or(WorldError::Unknown { kind: "account", number: qq.get() })?;
        account.password = password;
        Ok(())
    }

    /// Makes `friend.qq` a friend of `account` (and the reverse when the friend is an account).
    /// Returns false when they already were friends (the entry is then updated).
    pub fn add_friend(&mut self, account: QqNumber, friend: Friend) -> Result<bool, WorldError> {
        self.require_person(&format!("account {account} friends"), friend.qq)?;
        if friend.qq == account {
            return Err(WorldError::Invalid {
                field: "friends",
                reason: "an account cannot befriend itself".to_owned(),
            });
        }
        let owner = self
            .accounts
            .get_mut(&account)
            .ok_or(WorldError::Unknown { kind: "account", number: account.get() })?;
        let categories = u32::try_from(owner.categories.len()).unwrap_or(u32::MAX);
        if friend.category > categories {
            return Err(WorldError::Invalid {
                field: "category",
                reason: format!("account {account} has {categories} categories"),
            });
        }
        let added = match owner.friends.iter_mut().find(|f| f.qq == friend.qq) {
            Some(existing) => {
                *existing = friend.clone();
                false
            }
            None => {
                owner.friends.push(friend.clone());
                true
            }
        };
        if let Some(other) = self.accounts.get_mut(&friend.qq)
            && !other.friends.iter().any(|f| f.qq == account)
        {
            other.friends.push(Friend { qq: account, markname: None, category: 0 });
        }
        Ok(added)
    }

    /// Adds a group; the owner becomes a member if not listed.
    pub fn add_group(&mut self, mut group: Group) -> Result<(), WorldError> {
        if self.groups.contains_key(&group.number) {
            return Err(WorldError::Duplicate { kind: "group", number: group.number.get() });
        }
        if !group.members.contains(&group.owner) {
            group.members.insert(0, group.owner);
        }
        let context = format!("group {}", group.number);
        for qq in group.members.iter().chain(group.cards.keys()) {
            self.require_person(&context, *qq)?;
        }
        self.groups.insert(group.number, group);
        Ok(())
    }

    /// Adds a member to a group. Returns false if they already were a member.
    pub fn join_group(&mut self, number: GroupNumber, qq: QqNumber) -> Result<bool, WorldError> {
        self.require_person(&format!("group {number}"), qq)?;
        let group = self
            .groups
            .get_mut(&number)
            .ok_or(WorldError::Unknown { kind: "group", number: number.get() })?;
        if group.members.contains(&qq) {
            return Ok(false);
        }
        group.members.push(qq);
        Ok(true)
    }

    /// Removes a member (not the owner) from a group. Returns false if they were not a member.
    pub fn leave_group(&mut self, number: GroupNumber, qq: QqNumber) -> Result<bool, WorldError> {
        let group = self
            .groups
            .get_mut(&number)
            .ok_or(WorldError::Unknown { kind: "group", number: number.get() })?;
        if group.owner == qq {
            let reason = format!("{qq} owns group {number} and cannot leave it");
            return Err(WorldError::Invalid { field: "qq", reason });
        }
        let before = group.members.len();
        group.members.retain(|m| *m != qq);
        Ok(group.members.len() != before)
    }

    /// Adds a discussion with at least one member.
    pub fn add_discussion(&mut self, discussion: Discussion) -> Result<(), WorldError> {
        if self.discussions.contains_key(&discussion.id) {
            return Err(WorldError::Duplicate { kind: "discussion", number: discussion.id.get() });
        }
        if discussion.members.is_empty() {
            return Err(WorldError::Invalid {
                field: "members",
                reason: format!("discussion {} has no members", discussion.id),
            });
        }
        let context = format!("discussion {}", discussion.id);
        for qq in &discussion.members {
            self.require_person(&context, *qq)?;
        }
        self.discussions.insert(discussion.id, discussion);
        Ok(())
    }

    fn require_person(&self, context: &str, qq: QqNumber) -> Result<(), WorldError> {
        if self.persons.contains_key(&qq) {
            Ok(())
        } else {
            Err(WorldError::UnknownPerson { context: context.to_owned(), qq: qq.get() })
        }
    }

    /// A person by QQ number.
    pub fn person(&self, qq: QqNumber) -> Option<&Person> {
        self.persons.get(&qq)
    }

    /// An account by QQ number.
    pub fn account(&self, qq: QqNumber) -> Option<&Account> {
        self.accounts.get(&qq)
    }

    /// Every account, in QQ-number order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A group by number.
    pub fn group(&self, number: GroupNumber) -> Option<&Group> {
        self.groups.get(&number)
    }

    /// The groups `qq` is a member of, in number order.
    pub fn groups_of(&self, qq: QqNumber) -> impl Iterator<Item = &Group> {
        self.groups.values().filter(move |g| g.members.contains(&qq))
    }

    /// A discussion by id.
    pub fn discussion(&self, id: Did) -> Option<&Discussion> {
        self.discussions.get(&id)
    }

    /// The discussions `qq` is a member of.
    pub fn discussions_of(&self, qq: QqNumber) -> impl Iterator<Item = &Discussion> {
        self.discussions.values().filter(move |d| d.members.contains(&qq))
    }

    /// The friend entry of `friend` in `account`'s list.
    pub fn friend(&self, account: QqNumber, friend: QqNumber) -> Option<&Friend> {
        self.accounts.get(&account)?.friends.iter().find(|f| f.qq == friend)
    }

    /// A display nick, the QQ number when the person is unknown.
    pub fn nick(&self, qq: QqNumber) -> String {
        self.persons.get(&qq).map_or_else(|| qq.to_string(), |p| p.nick.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u64) -> QqNumber {
        QqNumber::new(n)
    }

    #[test]
    fn test_demo_world_loads() {
        let w = World::demo();
        let a = w.account(q(10001)).unwrap();
        assert!(!a.captcha);
        assert!(w.account(q(10002)).unwrap().captcha);
        assert!(w.friend(q(10001), q(10003)).unwrap().markname.is_some());
        assert_eq!(w.groups_of(q(10001)).count(), 1);
        assert_eq!(w.discussions_of(q(10002)).count(), 1);
        // Mutual friendship between the two accounts.
        assert!(w.friend(q(10002), q(10001)).is_some());
    }

    #[test]
    fn test_world_yaml_errors_are_clear() {
        let cases = [
            ("persons: [{qq: 1, nick: a, bogus: 1}]", "unknown field `bogus`"),
            ("persons: [{qq: 1, nick: a}, {qq: 1, nick: b}]", "duplicate person 1"),
            (
                "persons: [{qq: 1, nick: a}]\ngroups: [{number: 5, name: g, owner: 1, members: [2]}]",
                "group 5 refers to unknown person 2",
            ),
            (
                "accounts: [{qq: 1, password: x, friends: [{qq: 9}]}]",
                "account 1 friends refers to unknown person 9",
            ),
            (
                "persons: [{qq: 2, nick: b}]\naccounts: [{qq: 1, password: x, friends: [{qq: 2, category: 1}]}]",
                "invalid category: account 1 has 0 categories",
            ),
            ("options: {poll_hold: x}", "poll_hold"),
            ("discussions: [{id: 3, name: d, members: []}]", "has no members"),
        ];
        for (yaml, expected) in cases {
            let err = World::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.contains(expected), "{yaml:?}: {err}");
        }
    }

    #[test]
    fn test_world_yaml_accounts_and_options() {
        let w = World::from_yaml(
            "accounts: [{qq: 7, password: pw, nick: 小七, locked: true}]\noptions: {poll_hold: 2}",
        )
        .unwrap();
        assert_eq!(w.person(q(7)).unwrap().nick, "小七");
        assert!(w.account(q(7)).unwrap().locked);
        assert_eq!(w.options().unwrap().poll_hold.as_secs(), 2);
    }
}
