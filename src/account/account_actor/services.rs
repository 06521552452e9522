//! What an account does for others while its session is open: picture downloads and uploads
//! for the bridge, and typing notices to friends.

use actix::prelude::*;

use super::AccountActor;
use crate::account::lookup;
use crate::account::messages::{FetchPicture, NotifyTyping, UploadPicture};

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
