//! Typed helpers over [`MatrixClient::send`]: one method per Client-Server call the bridge makes
//! (MATRIX.md §3), each with its fixed metrics endpoint label.

use std::time::Duration;

use ruma::api::client::account::register::{self, LoginType};
use ruma::api::client::account::whoami;
use ruma::api::client::appservice::request_ping;
use ruma::api::client::authenticated_media::get_content as get_content_v1;
use ruma::api::client::discovery::get_supported_versions;
use ruma::api::client::media::{create_content, get_content as get_content_v3};
use ruma::api::client::membership::invite_user::{self, v3::InvitationRecipient, v3::InviteUserId};
use ruma::api::client::membership::{join_room_by_id, kick_user, leave_room};
use ruma::api::client::message::{get_message_events, send_message_event};
use ruma::api::client::presence::set_presence;
use ruma::api::client::profile::set_profile_field;
use ruma::api::client::redact::redact_event;
use ruma::api::client::room::create_room;
use ruma::api::client::state::{get_state_event_for_key, send_state_event};
use ruma::api::client::typing::create_typing_event::{self, v3::Typing, v3::TypingInfo};
use ruma::events::{AnyTimelineEvent, MessageLikeEventContent, StateEventContent};
use ruma::presence::PresenceState;
use ruma::profile::ProfileFieldValue;
use ruma::serde::Raw;
use ruma::{
    MilliSecondsSinceUnixEpoch, MxcUri, OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedUserId,
    RoomId, TransactionId, UserId,
};

use super::{MatrixClient, RetryPolicy, versions};
use crate::matrix::Error;
use crate::metrics::matrix::MatrixEndpoint;

/// A downloaded media file.
#[derive(Clone, Debug)]
pub struct Downloaded {
    /// The file's bytes (at most the client's `max_download_bytes`).
    pub bytes: Vec<u8>,
    /// The `Content-Type` the homeserver gave, if any.
    pub content_type: Option<String>,
}

/// The legacy media version set: `/_matrix/media/v3/download` is deprecated since v1.11, so it
/// is requested under v1.1 (no deprecation warning, same path).
const LEGACY_MEDIA_VERSION: &str = "v1.1";

fn serialize_error(e: serde_json::Error) -> Error {
    Error::Build(format!("could not serialize event content: {e}"))
}

impl MatrixClient {
    /// `GET /_matrix/client/versions` every `interval` until it answers or `deadline` has passed
    /// (start-up: the homeserver may still be booting). Each try is a single attempt.
    pub async fn wait_for_homeserver(
        &self,
        interval: Duration,
        deadline: Duration,
    ) -> Result<get_supported_versions::Response, Error> {
        let started = tokio::time::Instant::now();
        let once = self.with_retry(RetryPolicy { max_attempts: 1, ..self.retry });
        loop {
            let request = get_supported_versions::Request::new();
            match once.send_unasserted(MatrixEndpoint::Other, request).await {
                Ok(answer) => return Ok(answer),
                Err(last) if started.elapsed().saturating_add(interval) > deadline => {
                    return Err(Error::Unreachable { last: Box::new(last) });
                }
                Err(error) => {
                    tracing::info!(%error, "homeserver not reachable yet; retrying");
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }

    /// `GET /account/whoami` as the bot: the user the `as_token` acts as (must be the bot).
    pub async fn whoami(&self) -> Result<OwnedUserId, Error> {
        let answer = self.send(MatrixEndpoint::Other, whoami::v3::Request::new(), None).await?;
        Ok(answer.user_id)
    }

    /// Registers `@localpart` in our namespace (`m.login.application_service`, no login);
    /// an existing user (`M_USER_IN_USE`) is success.
    pub async fn ensure_registered(&self, localpart: &str) -> Result<(), Error> {
        let mut request = register::v3::Request::new();
        request.username = Some(localpart.to_owned());
        request.login_type = Some(LoginType::ApplicationService);
        // Required on OAuth-only servers since v1.17; we never need the token (MATRIX.md §3).
        request.inhibit_login = true;
        match self.send_unasserted(MatrixEndpoint::Register, request).await {
            Ok(_) => Ok(()),
            Err(e) if e.errcode() == Some("M_USER_IN_USE") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets `user`'s global display name, acting as `user`
    /// (`PUT /_matrix/client/v3/profile/{user}/displayname`).
    pub async fn set_displayname(&self, user: &UserId, name: String) -> Result<(), Error> {
        let value = ProfileFieldValue::DisplayName(name);
        let request = set_profile_field::v3::Request::new(user.to_owned(), value);
        self.send(MatrixEndpoint::Profile, request, Some(user)).await.map(|_| ())
    }

    /// Sets `user`'s avatar, acting as `user` (`PUT …/profile/{user}/avatar_url`).
    pub async fn set_avatar_url(&self, user: &UserId, url: OwnedMxcUri) -> Result<(), Error> {
        let value = ProfileFieldValue::AvatarUrl(url);
        let request = set_profile_field::v3::Request::new(user.to_owned(), value);
        self.send(MatrixEndpoint::Profile, request, Some(user)).await.map(|_| ())
    }

    /// `POST /_matrix/media/v3/upload` as `as_user` (or the bot): the new content URI.
    pub async fn upload(
        &self,
        as_user: Option<&UserId>,
        bytes: Vec<u8>,
        content_type: &str,
        filename: Option<String>,
    ) -> Result<OwnedMxcUri, Error> {
        let mut request = create_content::v3::Request::new(bytes);
        request.content_type = Some(content_type.to_owned());
        request.filename = filename;
        let answer = self.send(MatrixEndpoint::Upload, request, as_user).await?;
        if !answer.content_uri.is_valid() {
            return Err(Error::Invalid("upload answered an invalid mxc URI".to_owned()));
        }
        Ok(answer.content_uri)
    }

    /// Downloads `mxc` by authenticated media (`/_matrix/client/v1/media/download`, v1.11),
    /// falling back to `/_matrix/media/v3/download` when the homeserver does not know the
    /// endpoint. At most `max_download_bytes`, else [`Error::TooLarge`].
    pub async fn download(&self, mxc: &MxcUri) -> Result<Downloaded, Error> {
        let (server, media_id) =
            mxc.parts().map_err(|_| Error::Invalid("not a valid mxc URI".to_owned()))?;
        let cap = self.settings.max_download_bytes;
        let request = get_content_v1::v1::Request::new(media_id.to_owned(), server.to_owned());
        let v1 = self.send_with(MatrixEndpoint::Download, request, None, &self.versions, cap).await;
        match v1 {
            Ok(answer) => {
                return Ok(Downloaded { bytes: answer.file, content_type: answer.content_type });
            }
            Err(e) if !is_unknown_endpoint(&e) => return Err(e),
            Err(_) => {}
        }
        // Deprecated since v1.11, and exactly what servers older than that still need.
        #[allow(deprecated)]
        let request = get_content_v3::v3::Request::new(media_id.to_owned(), server.to_owned());
        let legacy = versions(LEGACY_MEDIA_VERSION);
        let answer = self.send_with(MatrixEndpoint::Download, request, None, &legacy, cap).await?;
        Ok(Downloaded { bytes: answer.file, content_type: answer.content_type })
    }

    /// `POST /createRoom` with `request` as `as_user` (or the bot): the new room's id.
    pub async fn create_room(
        &self,
        request: create_room::v3::Request,
        as_user: Option<&UserId>,
    ) -> Result<OwnedRoomId, Error> {
        Ok(self.send(MatrixEndpoint::CreateRoom, request, as_user).await?.room_id)
    }

    /// Invites `user` to `room`, acting as `as_user` (or the bot).
    pub async fn invite(
        &self,
        room: &RoomId,
        user: &UserId,
        as_user: Option<&UserId>,
    ) -> Result<(), Error> {
        let recipient = InvitationRecipient::UserId(InviteUserId::new(user.to_owned()));
        let request = invite_user::v3::Request::new(room.to_owned(), recipient);
        self.send(MatrixEndpoint::Invite, request, as_user).await.map(|_| ())
    }

    /// `as_user` (or the bot) joins `room`.
    pub async fn join(&self, room: &RoomId, as_user: Option<&UserId>) -> Result<(), Error> {
        let request = join_room_by_id::v3::Request::new(room.to_owned());
        self.send(MatrixEndpoint::Join, request, as_user).await.map(|_| ())
    }

    /// `as_user` (or the bot) leaves `room`.
    pub async fn leave(&self, room: &RoomId, as_user: Option<&UserId>) -> Result<(), Error> {
        self.leave_with_reason(room, as_user, None).await
    }

    /// `as_user` (or the bot) leaves `room`, saying why in the membership event.
    pub async fn leave_with_reason(
        &self,
        room: &RoomId,
        as_user: Option<&UserId>,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let mut request = leave_room::v3::Request::new(room.to_owned());
        request.reason = reason;
        self.send(MatrixEndpoint::Join, request, as_user).await.map(|_| ())
    }

    /// The bot kicks `user` out of `room` with `reason` (the bot needs the power to kick).
    pub async fn kick(
        &self,
        room: &RoomId,
        user: &UserId,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let mut request = kick_user::v3::Request::new(room.to_owned(), user.to_owned());
        request.reason = reason;
        self.send(MatrixEndpoint::Join, request, None).await.map(|_| ())
    }

    /// `PUT /rooms/{room}/send/{type}/{txn_id}` as `as_user` (or the bot). `txn_id` must be
    /// unique across the whole bridge and derived from the source message, so a resend after a
    /// crash returns the first event (MATRIX.md §3). `ts` becomes the `ts` query parameter
    /// (the event's `origin_server_ts`, not its position in the room).
    pub async fn send_message<C: MessageLikeEventContent>(
        &self,
        room: &RoomId,
        as_user: Option<&UserId>,
        txn_id: &TransactionId,
        content: &C,
        ts: Option<MilliSecondsSinceUnixEpoch>,
    ) -> Result<OwnedEventId, Error> {
        let mut request =
            send_message_event::v3::Request::new(room.to_owned(), txn_id.to_owned(), content)
                .map_err(serialize_error)?;
        request.timestamp = ts;
        Ok(self.send(MatrixEndpoint::Send, request, as_user).await?.event_id)
    }

    /// The latest `limit` timeline events of `room` as `as_user` (or the bot) sees them, newest
    /// first (`GET /rooms/{room}/messages?dir=b`); raw, each may be malformed.
    pub async fn recent_events(
        &self,
        room: &RoomId,
        as_user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Raw<AnyTimelineEvent>>, Error> {
        let mut request = get_message_events::v3::Request::backward(room.to_owned());
        request.limit = limit.into();
        Ok(self.send(MatrixEndpoint::Other, request, as_user).await?.chunk)
    }

    /// `PUT /rooms/{room}/state/{type}/{state_key}` as `as_user` (or the bot), with `ts` as
    /// for [`MatrixClient::send_message`].
    pub async fn send_state<C: StateEventContent>(
        &self,
        room: &RoomId,
        as_user: Option<&UserId>,
        state_key: &str,
        content: &C,
        ts: Option<MilliSecondsSinceUnixEpoch>,
    ) -> Result<OwnedEventId, Error> {
        let body = serde_json::value::to_raw_value(content).map_err(serialize_error)?;
        let mut request = send_state_event::v3::Request::new_raw(
            room.to_owned(),
            content.event_type(),
            state_key.to_owned(),
            Raw::from_json(body),
        );
        request.timestamp = ts;
        Ok(self.send(MatrixEndpoint::State, request, as_user).await?.event_id)
    }

    /// `POST <url>` of `body` as JSON with `Authorization: Bearer <as_token>`: a bridge state
    /// push to `homeserver.status_endpoint` (MATRIX.md §6.5). One attempt; the caller retries.
    /// Any 2xx is success.
    pub async fn post_bridge_state(
        &self,
        url: &url::Url,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        let response = self
            .http
            .post(url.clone())
            .bearer_auth(self.settings.as_token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| Error::Network(crate::matrix::error::Transport::Http(e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Error::Api {
            status: status.as_u16(),
            errcode: None,
            message: "the status endpoint refused the push".to_owned(),
            retry_after: None,
        })
    }

    /// `GET /rooms/{room}/state/m.room.member/{user}` as the bot: `user`'s display name in
    /// `room`; `None` when they have none or the bot cannot see it (not an error: callers fall
    /// back to the localpart). Never retried beyond the client's policy.
    pub async fn member_displayname(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<String>, Error> {
        let request = get_state_event_for_key::v3::Request::new(
            room.to_owned(),
            ruma::events::StateEventType::RoomMember,
            user.to_string(),
        );
        let response = match self.send(MatrixEndpoint::State, request, None).await {
            Ok(response) => response,
            Err(error) if matches!(error.status(), Some(403 | 404)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let value: serde_json::Value =
            serde_json::from_str(response.event_or_content.get()).unwrap_or_default();
        // Servers answer the content alone (the default format) or, on request, the event.
        let name = value
            .get("displayname")
            .or_else(|| value.pointer("/content/displayname"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Ok(name)
    }

    /// Redacts `event` in `room` as `as_user` (or the bot); `txn_id` as for sends.
    pub async fn redact(
        &self,
        room: &RoomId,
        event: OwnedEventId,
        as_user: Option<&UserId>,
        txn_id: &TransactionId,
        reason: Option<String>,
    ) -> Result<OwnedEventId, Error> {
        let mut request = redact_event::v3::Request::new(room.to_owned(), event, txn_id.to_owned());
        request.reason = reason;
        Ok(self.send(MatrixEndpoint::Send, request, as_user).await?.event_id)
    }

    /// `user` types in `room` for `timeout` (`None`: stopped typing), acting as `user`.
    pub async fn typing(
        &self,
        room: &RoomId,
        user: &UserId,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let state = match timeout {
            Some(timeout) => Typing::Yes(TypingInfo::new(timeout)),
            None => Typing::No,
        };
        let request =
            create_typing_event::v3::Request::new(user.to_owned(), room.to_owned(), state);
        self.send(MatrixEndpoint::Other, request, Some(user)).await.map(|_| ())
    }

    /// `POST /_matrix/client/v1/appservice/{id}/ping` with `txn_id`: the homeserver calls our
    /// `/_matrix/app/v1/ping` and answers with the round-trip time. A `502` with
    /// `M_CONNECTION_FAILED` or `M_BAD_STATUS`, or a `504` with `M_CONNECTION_TIMEOUT`, means it
    /// cannot reach us (spec v1.7; `M_AS_PING_*` are only Synapse's constant names).
    pub async fn appservice_ping(&self, txn_id: &TransactionId) -> Result<Duration, Error> {
        let mut request = request_ping::v1::Request::new(self.settings.appservice_id.clone());
        request.transaction_id = Some(txn_id.to_owned());
        // A failed ping is the answer the caller needs, not something to retry.
        let once = self.with_retry(RetryPolicy { max_attempts: 1, ..self.retry });
        Ok(once.send(MatrixEndpoint::Other, request, None).await?.duration)
    }

    /// Sets `user`'s presence, acting as `user`.
    pub async fn set_presence(&self, user: &UserId, presence: PresenceState) -> Result<(), Error> {
        let request = set_presence::v3::Request::new(user.to_owned(), presence);
        self.send(MatrixEndpoint::Other, request, Some(user)).await.map(|_| ())
    }
}

/// The homeserver does not implement the endpoint (an old server without authenticated media):
/// `M_UNRECOGNIZED`, or a bare 404/405 without a Matrix error. `404 M_NOT_FOUND` (no such media)
/// is not this.
fn is_unknown_endpoint(error: &Error) -> bool {
    matches!(
        (error.status(), error.errcode()),
        (_, Some("M_UNRECOGNIZED")) | (Some(404 | 405), None)
    )
}
