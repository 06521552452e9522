//! The login conversation of each Matrix user with the bot (MATRIX.md §6.2): what their next
//! message in the management room means (a command, a password, a captcha answer) and where a
//! QR code, captcha or state change of the account they are logging in goes. Pure: the glue
//! (`run.rs`) feeds it messages and account events and carries out what it answers.

use std::collections::HashMap;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::webqq::Secret;

/// QR codes posted before a QR login is given up (the account's login stops at the same
/// count: `account::login_actor::MAX_QR_CODES`).
pub const MAX_QR_CODES: u32 = 10;

/// Where one user's login stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `login password <qq>` was asked: the next message is the password.
    AwaitPassword {
        /// The QQ number to log in.
        qq: u64,
    },
    /// A password login of `account` runs.
    Password {
        /// The account id.
        account: String,
        /// Its QQ number.
        qq: u64,
    },
    /// The password login of `account` waits for a captcha: the next message is its text.
    AwaitCaptcha {
        /// The account id.
        account: String,
        /// Its QQ number.
        qq: u64,
    },
    /// A QR login of `account` runs.
    Qr {
        /// The account id (a temporary one until the QQ number is known).
        account: String,
        /// The last QR image posted, redacted when the next one comes.
        image: Option<OwnedEventId>,
        /// QR codes posted so far.
        codes: u32,
    },
}

impl Step {
    /// The account the step is logging in, once one runs.
    pub fn account(&self) -> Option<&str> {
        match self {
            Step::AwaitPassword { .. } => None,
            Step::Password { account, .. }
            | Step::AwaitCaptcha { account, .. }
            | Step::Qr { account, .. } => Some(account),
        }
    }
}

/// What a user's message in a room means.
#[derive(Debug)]
pub enum Input {
    /// An ordinary message: parse it as a command.
    Command,
    /// The password asked for: redact the message at once and log `qq` in.
    Password {
        /// The QQ number.
        qq: u64,
        /// The password, never logged.
        password: Secret<String>,
    },
    /// The text of the captcha `account` waits for.
    CaptchaAnswer {
        /// The account id.
        account: String,
        /// What the user read.
        text: String,
    },
}

/// What to do with a new QR code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrPost {
    /// Post it to `user` in `room`, redacting `previous`.
    Post {
        /// Who is logging in.
        user: OwnedUserId,
        /// Their management room.
        room: OwnedRoomId,
        /// The image to redact.
        previous: Option<OwnedEventId>,
        /// Which code this is, from 1.
        number: u32,
    },
    /// Too many codes: stop the login and tell `user`.
    GiveUp {
        /// Who was logging in.
        user: OwnedUserId,
        /// Their management room.
        room: OwnedRoomId,
        /// The account to stop.
        account: String,
    },
    /// Nobody logs this account in from Matrix.
    Nobody,
}

/// Every user's login in progress, with the room it runs in.
#[derive(Debug, Default)]
pub struct Conversations {
    by_user: HashMap<OwnedUserId, (OwnedRoomId, Step)>,
}

impl Conversations {
    /// No conversations.
    pub fn new() -> Self {
        Conversations::default()
    }

    /// `user`'s login in progress, with its room.
    pub fn get(&self, user: &UserId) -> Option<&(OwnedRoomId, Step)> {
        self.by_user.get(user)
    }

    /// Starts (or replaces) `user`'s login in `room`; answers the account of a replaced login
    /// that was running, to stop.
    pub fn start(&mut self, user: &UserId, room: &RoomId, step: Step) -> Option<String> {
        let old = self.by_user.insert(user.to_owned(), (room.to_owned(), step));
        old.and_then(|(_, step)| step.account().map(str::to_owned))
    }

    /// `user` wrote `text` in `room`: what it means. A password or captcha answer is only read
    /// in the room where it was asked; `cancel` there is always the command (so a user can
    /// back out of a password prompt).
    pub fn message(&mut self, user: &UserId, room: &RoomId, text: &str) -> Input {
        let Some((asked_in, step)) = self.by_user.get_mut(user) else { return Input::Command };
        if asked_in.as_str() != room.as_str() || text.trim().eq_ignore_ascii_case("cancel") {
            return Input::Command;
        }
        match step.clone() {
            Step::AwaitPassword { qq } => {
                *step = Step::Password { account: bot_account_id(qq), qq };
                Input::Password { qq, password: Secret::new(text.to_owned()) }
            }
            Step::AwaitCaptcha { account, qq } => {
                *step = Step::Password { account: account.clone(), qq };
                Input::CaptchaAnswer { account, text: text.trim().to_owned() }
            }
            Step::Password { .. } | Step::Qr { .. } => Input::Command,
        }
    }

    /// Ends `user`'s login; answers its account if one runs (to stop).
    pub fn cancel(&mut self, user: &UserId) -> Option<Option<String>> {
        self.by_user.remove(user).map(|(_, step)| step.account().map(str::to_owned))
    }

    /// A QR code of `account` arrived.
    pub fn qr_code(&mut self, account: &str) -> QrPost {
        let Some((user, (room, step))) =
            self.by_user.iter_mut().find(|(_, (_, s))| s.account() == Some(account))
        else {
            return QrPost::Nobody;
        };
        let Step::Qr { image, codes, .. } = step else { return QrPost::Nobody };
        *codes = codes.saturating_add(1);
        if *codes > MAX_QR_CODES {
            let (user, room) = (user.clone(), room.clone());
            self.by_user.remove(&user);
            return QrPost::GiveUp { user, room, account: account.to_owned() };
        }
        QrPost::Post {
            user: user.clone(),
            room: room.clone(),
            previous: image.take(),
            number: *codes,
        }
    }

    /// The QR image of `account` was posted as `event`.
    pub fn qr_posted(&mut self, account: &str, event: OwnedEventId) {
        for (_, step) in self.by_user.values_mut() {
            if let Step::Qr { account: a, image, .. } = step
                && a == account
            {
                *image = Some(event.clone());
            }
        }
    }

    /// A captcha of `account` waits: the user and room to ask, if someone logs it in.
    pub fn captcha(&mut self, account: &str) -> Option<(OwnedUserId, OwnedRoomId)> {
        let (user, (room, step)) =
            self.by_user.iter_mut().find(|(_, (_, s))| s.account() == Some(account))?;
        if let Step::Password { account, qq } = step {
            *step = Step::AwaitCaptcha { account: account.clone(), qq: *qq };
        }
        Some((user.clone(), room.clone()))
    }

    /// The user logging `account` in, with the room.
    pub fn find(&self, account: &str) -> Option<(OwnedUserId, OwnedRoomId)> {
        self.by_user
            .iter()
            .find(|(_, (_, s))| s.account() == Some(account))
            .map(|(user, (room, _))| (user.clone(), room.clone()))
    }

    /// The login of `account` ended (connected or failed): its user, room and last step.
    pub fn finish(&mut self, account: &str) -> Option<(OwnedUserId, OwnedRoomId, Step)> {
        let user = self
            .by_user
            .iter()
            .find(|(_, (_, s))| s.account() == Some(account))
            .map(|(u, _)| u.clone())?;
        self.by_user.remove(&user).map(|(room, step)| (user, room, step))
    }

    /// Renames the account of a running QR login once its QQ number is known.
    pub fn rename(&mut self, from: &str, to: &str) {
        for (_, step) in self.by_user.values_mut() {
            if let Step::Qr { account, .. } = step
                && account == from
            {
                *account = to.to_owned();
            }
        }
    }
}

/// The account id of QQ number `qq` logged in from Matrix.
pub fn bot_account_id(qq: u64) -> String {
    format!("mx-{qq}")
}

/// The QQ number in the id of an account logged in from Matrix ([`bot_account_id`]).
pub fn bot_account_qq(account: &str) -> Option<u64> {
    account.strip_prefix("mx-").and_then(|n| n.parse().ok())
}

/// The temporary account id of the `n`th QR login from Matrix, before its QQ number is known.
pub fn qr_account_id(n: u64) -> String {
    format!("mx-qr-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (OwnedUserId, OwnedRoomId, OwnedRoomId) {
        (
            UserId::parse("@alice:x").unwrap(),
            RoomId::parse("!dm:x").unwrap(),
            RoomId::parse("!other:x").unwrap(),
        )
    }

    #[test]
    fn test_password_conversation() {
        let (alice, dm, other) = ids();
        let mut talk = Conversations::new();
        assert!(matches!(talk.message(&alice, &dm, "hello"), Input::Command));
        assert_eq!(talk.start(&alice, &dm, Step::AwaitPassword { qq: 10001 }), None);
        // Elsewhere the message is not the password.
        assert!(matches!(talk.message(&alice, &other, "secret"), Input::Command));
        match talk.message(&alice, &dm, "hunter2") {
            Input::Password { qq, password } => {
                assert_eq!((qq, password.expose().as_str()), (10001, "hunter2"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{:?}", talk.get(&alice)).contains("hunter2"));
        // A captcha turns the next message into its answer, once.
        assert_eq!(talk.captcha("mx-10001"), Some((alice.clone(), dm.clone())));
        match talk.message(&alice, &dm, " ab12 ") {
            Input::CaptchaAnswer { account, text } => {
                assert_eq!((account.as_str(), text.as_str()), ("mx-10001", "ab12"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(talk.message(&alice, &dm, "status"), Input::Command));
        let (user, room, step) = talk.finish("mx-10001").unwrap();
        assert_eq!((user, room), (alice.clone(), dm));
        assert_eq!(step, Step::Password { account: "mx-10001".into(), qq: 10001 });
        assert!(talk.get(&alice).is_none());
    }

    #[test]
    fn test_cancel_backs_out_of_a_prompt() {
        let (alice, dm, _) = ids();
        let mut talk = Conversations::new();
        talk.start(&alice, &dm, Step::AwaitPassword { qq: 10001 });
        assert!(matches!(talk.message(&alice, &dm, "Cancel"), Input::Command));
        assert_eq!(talk.cancel(&alice), Some(None));
        assert_eq!(talk.cancel(&alice), None);
        talk.start(&alice, &dm, Step::Qr { account: qr_account_id(1), image: None, codes: 0 });
        assert_eq!(talk.cancel(&alice), Some(Some("mx-qr-1".to_owned())));
    }

    #[test]
    fn test_qr_codes_replace_each_other_and_stop_after_the_limit() {
        let (alice, dm, _) = ids();
        let mut talk = Conversations::new();
        assert_eq!(talk.qr_code("mx-qr-1"), QrPost::Nobody);
        talk.start(&alice, &dm, Step::Qr { account: qr_account_id(1), image: None, codes: 0 });
        let first = talk.qr_code("mx-qr-1");
        assert_eq!(
            first,
            QrPost::Post { user: alice.clone(), room: dm.clone(), previous: None, number: 1 }
        );
        let event: OwnedEventId = "$img1".try_into().unwrap();
        talk.qr_posted("mx-qr-1", event.clone());
        match talk.qr_code("mx-qr-1") {
            QrPost::Post { previous, number, .. } => {
                assert_eq!((previous, number), (Some(event), 2))
            }
            other => panic!("{other:?}"),
        }
        for _ in 3..=MAX_QR_CODES {
            assert!(matches!(talk.qr_code("mx-qr-1"), QrPost::Post { .. }));
        }
        let give_up = talk.qr_code("mx-qr-1");
        assert_eq!(
            give_up,
            QrPost::GiveUp { user: alice.clone(), room: dm, account: "mx-qr-1".into() }
        );
        assert!(talk.get(&alice).is_none());
    }

    #[test]
    fn test_rename_follows_the_qr_login_to_its_number() {
        let (alice, dm, _) = ids();
        let mut talk = Conversations::new();
        let replaced =
            talk.start(&alice, &dm, Step::Qr { account: qr_account_id(7), image: None, codes: 1 });
        assert_eq!(replaced, None);
        talk.rename("mx-qr-7", &bot_account_id(10001));
        assert!(talk.finish("mx-qr-7").is_none());
        assert!(talk.finish("mx-10001").is_some());
    }
}
