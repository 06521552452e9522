//! The provisioning API (MATRIX.md §6.8): bridgev2-compatible `/_matrix/provision/v3/…` routes
//! on the appservice listener, for dashboards and integration managers that log users in
//! without talking to the bot. This module owns the HTTP side (shared-secret auth, `user_id`,
//! rate limit, wire shapes of login steps); the bridge implements [`ProvisioningHandler`] and
//! decides permissions. Disabled unless a shared secret is configured.

mod limiter;
mod routes;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use ruma::OwnedUserId;
use serde::Serialize;
use serde_json::Value;

use crate::matrix::Token;

pub(crate) use routes::configure;

/// The path prefix of every route.
pub const PREFIX: &str = "/_matrix/provision/v3";

/// Shortest accepted shared secret (MATRIX.md §6.8).
pub const MIN_SECRET_LEN: usize = 16;

/// Requests per minute one Matrix user may make; more get 429 `M_LIMIT_EXCEEDED`.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 60;

/// Why a provisioning request failed; each maps to an HTTP status and a Matrix errcode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvError {
    /// The user's permission level does not allow this (403 `M_FORBIDDEN`).
    #[error("{0}")]
    Forbidden(String),
    /// No such login, login process or contact (404 `M_NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// The input is malformed or does not fit the current step (400 `M_BAD_STATE` /
    /// `M_INVALID_PARAM`).
    #[error("{0}")]
    BadRequest(String),
    /// Taken by someone else, e.g. a QQ account another Matrix user owns (409 `M_CONFLICT`).
    #[error("{0}")]
    Conflict(String),
    /// The bridge failed (500 `M_UNKNOWN`); the message is safe to show.
    #[error("{0}")]
    Internal(String),
}

/// One way to log in (`GET login/flows`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoginFlow {
    /// Flow id used in `login/start/{flow_id}`, e.g. `qr`.
    pub id: String,
    /// Short human name.
    pub name: String,
    /// One line on what the user does.
    pub description: String,
}

/// One input field of a `user_input` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputField {
    /// bridgev2 field type: `username`, `password`, `2fa_code`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Key of the value in the step's submitted object.
    pub id: String,
    /// Human label.
    pub name: String,
}

/// What the client shows or asks at one step of a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Show a QR code image (PNG) and call the step again to wait for the scan.
    DisplayQr {
        /// The QR code as WebQQ's `ptqrshow` drew it.
        png: Vec<u8>,
    },
    /// Nothing to show yet: tell the user to wait and call the step again (bridgev2's
    /// `display_and_wait` of type `nothing`).
    Wait,
    /// Ask for these values and submit them.
    UserInput {
        /// The fields, in order.
        fields: Vec<InputField>,
        /// An image to show with them (a captcha: JPEG or PNG), if any.
        image: Option<Vec<u8>>,
    },
    /// Logged in.
    Complete {
        /// The new login's id (as in `logout/{login_id}`).
        login_id: String,
    },
}

/// One step of a login process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginStep {
    /// The process id the client passes back (`login/step/{process_id}/…`).
    pub process_id: String,
    /// This step's id; a request naming another is refused.
    pub step_id: String,
    /// What to tell the user.
    pub instructions: String,
    /// What to show or ask.
    pub kind: StepKind,
}

impl LoginStep {
    /// The bridgev2 type name of this step (`display_and_wait`, `user_input`, `complete`).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StepKind::DisplayQr { .. } | StepKind::Wait => "display_and_wait",
            StepKind::UserInput { .. } => "user_input",
            StepKind::Complete { .. } => "complete",
        }
    }
}

/// A boxed answer of the handler.
pub type ProvFuture<T> = BoxFuture<'static, Result<T, ProvError>>;

/// What the bridge plugs into the provisioning API. `user` is the `user_id` of the request,
/// already authenticated by the shared secret; the handler checks its permission level.
pub trait ProvisioningHandler: Send + Sync + 'static {
    /// The bridge, the user's logins with their states, management room and spaces (bridgev2
    /// `whoami` shape).
    fn whoami(&self, user: OwnedUserId) -> ProvFuture<Value>;
    /// The login flows this bridge offers.
    fn login_flows(&self) -> Vec<LoginFlow>;
    /// Starts a login by `flow_id`; answers its first step.
    fn login_start(&self, user: OwnedUserId, flow_id: String) -> ProvFuture<LoginStep>;
    /// Submits `input` to (`user_input`) or waits on (`display_and_wait`, empty input) the step
    /// `step_id` of process `process_id`; answers the next step.
    fn login_step(
        &self,
        user: OwnedUserId,
        process_id: String,
        step_id: String,
        input: BTreeMap<String, String>,
    ) -> ProvFuture<LoginStep>;
    /// Ends a login (`login_id` as in `logins`).
    fn logout(&self, user: OwnedUserId, login_id: String) -> ProvFuture<()>;
    /// The user's login ids.
    fn logins(&self, user: OwnedUserId) -> ProvFuture<Vec<String>>;
    /// The contacts of one login (or the only one): `{"contacts": [...]}`.
    fn contacts(&self, user: OwnedUserId, login_id: Option<String>) -> ProvFuture<Value>;
    /// Resolves a remote identifier (a QQ number) to a contact, with its ghost and DM room if any.
    fn resolve_identifier(
        &self,
        user: OwnedUserId,
        identifier: String,
        login_id: Option<String>,
    ) -> ProvFuture<Value>;
    /// Opens (or finds) the direct chat portal with a contact; answers like `resolve_identifier`
    /// with the room id.
    fn create_dm(
        &self,
        user: OwnedUserId,
        identifier: String,
        login_id: Option<String>,
    ) -> ProvFuture<Value>;
}

/// The provisioning API's settings and handler, given to the appservice server.
#[derive(Clone)]
pub struct Provisioning {
    /// The shared secret of `Authorization: Bearer` (at least [`MIN_SECRET_LEN`] characters).
    pub shared_secret: Token,
    /// Requests per minute per Matrix user.
    pub requests_per_minute: u32,
    /// The bridge's side.
    pub handler: Arc<dyn ProvisioningHandler>,
}

impl fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioning")
            .field("shared_secret", &self.shared_secret)
            .field("requests_per_minute", &self.requests_per_minute)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
