//! The services the manager relays to one of its accounts for the bridge: sends, pictures,
//! faces, typing, contact lists, group details and captcha answers, each addressed by account id.

use actix::prelude::*;

use crate::account::account_actor::SolveCaptcha;
use crate::account::sender_actor::QueueMessage;
use crate::webqq::QqNumber;

use super::AccountManager;

/// Command: queue a message on an account. Answers the queue id (0 while the account is not
/// connected yet and holds it), or `None` for an unknown id. A message made with
/// `QueueMessage::tracked` tells its final outcome on its receiver.
#[derive(Message)]
#[rtype(result = "Option<u64>")]
pub struct SendVia {
    /// The account id.
    pub account: String,
    /// The message.
    pub message: QueueMessage,
}

/// Command: the captcha text for an account waiting in WAITING_FOR_CAPTCHA. Answers whether the
/// account was waiting for one.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AnswerCaptcha {
    /// The account id.
    pub account: String,
    /// What the person read in the image.
    pub text: String,
}

/// Query: download a picture of a message `account` received. Answers the bytes, or why not.
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, String>")]
pub struct FetchPictureVia {
    /// The account id.
    pub account: String,
    /// What to fetch.
    pub fetch: crate::account::account_actor::FetchPicture,
}

/// Command: upload a picture on `account` for a message to a chat. Answers the content segment
/// that shows it, or why not.
#[derive(Message)]
#[rtype(result = "Result<crate::webqq::content::Segment, String>")]
pub struct UploadPictureVia {
    /// The account id.
    pub account: String,
    /// What to upload.
    pub upload: crate::account::account_actor::UploadPicture,
}

/// Command: forward a typing notice to one of `account`'s friends; unknown accounts are ignored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifyTypingVia {
    /// The account id.
    pub account: String,
    /// The notice.
    pub typing: crate::account::account_actor::NotifyTyping,
}

/// Query: the face image of `qq` through `account`'s session (getface, protocol §2.1).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Vec<u8>, String>")]
pub struct FetchFace {
    /// The account id.
    pub account: String,
    /// Whose face.
    pub qq: QqNumber,
}

/// Query: `account`'s contact lists; `None` while not loaded or not running.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Option<crate::webqq::directory::Directory>")]
pub struct GetDirectory {
    /// The account id.
    pub account: String,
}

/// Query: a group's name, memo and up to `limit` members with their QQ numbers, through
/// `account`'s session (get_group_info_ext2 and get_friend_uin2, protocol §2.8).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<GroupSnapshot, String>")]
pub struct GetGroupInfo {
    /// The account id.
    pub account: String,
    /// The group.
    pub group: crate::webqq::GroupNumber,
    /// Most members to resolve (each costs a lookup).
    pub limit: usize,
}

/// What [`GetGroupInfo`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// The group's name, entities unescaped.
    pub name: String,
    /// The group's memo (announcement), entities unescaped; empty when none.
    pub memo: String,
    /// Up to `limit` members other than the account, with their name (card, else nick).
    pub members: Vec<(QqNumber, String)>,
}

impl Handler<SendVia> for AccountManager {
    type Result = ResponseFuture<Option<u64>>;

    fn handle(&mut self, msg: SendVia, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move {
            let account = account?;
            account.send(msg.message).await.ok()
        })
    }
}

impl Handler<FetchPictureVia> for AccountManager {
    type Result = ResponseFuture<Result<Vec<u8>, String>>;

    fn handle(&mut self, msg: FetchPictureVia, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move {
            let account = account.ok_or_else(|| "the account is not running".to_owned())?;
            account.send(msg.fetch).await.unwrap_or_else(|_| Err("the account stopped".to_owned()))
        })
    }
}

impl Handler<UploadPictureVia> for AccountManager {
    type Result = ResponseFuture<Result<crate::webqq::content::Segment, String>>;

    fn handle(&mut self, msg: UploadPictureVia, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move {
            let account = account.ok_or_else(|| "the account is not running".to_owned())?;
            account.send(msg.upload).await.unwrap_or_else(|_| Err("the account stopped".to_owned()))
        })
    }
}

impl Handler<FetchFace> for AccountManager {
    type Result = ResponseFuture<Result<Vec<u8>, String>>;

    fn handle(&mut self, msg: FetchFace, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move {
            let account = account.ok_or_else(|| "the account is not running".to_owned())?;
            account.send(msg).await.unwrap_or_else(|_| Err("the account stopped".to_owned()))
        })
    }
}

impl Handler<GetDirectory> for AccountManager {
    type Result = ResponseFuture<Option<crate::webqq::directory::Directory>>;

    fn handle(&mut self, msg: GetDirectory, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move { account?.send(msg).await.ok().flatten() })
    }
}

impl Handler<GetGroupInfo> for AccountManager {
    type Result = ResponseFuture<Result<GroupSnapshot, String>>;

    fn handle(&mut self, msg: GetGroupInfo, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move {
            let account = account.ok_or_else(|| "the account is not running".to_owned())?;
            account.send(msg).await.unwrap_or_else(|_| Err("the account stopped".to_owned()))
        })
    }
}

impl Handler<NotifyTypingVia> for AccountManager {
    type Result = ();

    fn handle(&mut self, msg: NotifyTypingVia, _: &mut Context<Self>) {
        if let Some(account) = self.accounts.get(&msg.account) {
            account.do_send(msg.typing);
        }
    }
}

impl Handler<AnswerCaptcha> for AccountManager {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: AnswerCaptcha, _: &mut Context<Self>) -> Self::Result {
        let account = self.accounts.get(&msg.account).cloned();
        Box::pin(async move {
            match account {
                Some(account) => {
                    account.send(SolveCaptcha { text: msg.text }).await.unwrap_or(false)
                }
                None => false,
            }
        })
    }
}
