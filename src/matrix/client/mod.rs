//! The appservice client: any ruma Client-Server request sent over reqwest with the `as_token`,
//! acting as the bot or, by identity assertion (`?user_id=`), as a ghost (MATRIX.md §3, §5).
//!
//! Retry policy (MATRIX.md §3), applied to every call in one place: `429` waits the homeserver's
//! `retry_after_ms` (capped); `502/503/504` and failures without an HTTP answer back off
//! exponentially with full jitter, capped; any other non-2xx goes straight back to the caller.
//! Interactive callers give up after a few attempts ([`RetryPolicy::INTERACTIVE`]); queue callers,
//! whose messages are persisted, retry without limit ([`RetryPolicy::unlimited`]). Each HTTP
//! attempt is counted in `qqbridge_matrix_requests_total` by a fixed endpoint label.
//!
//! Transport: a plain-http homeserver is spoken to by a small keep-alive HTTP/1.1 client
//! (`h1.rs`, a fraction of reqwest's cost per request); https homeservers and media downloads
//! (redirects, large bodies) go through reqwest.

mod api;
mod h1;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::path_builder::{PathBuilder, SinglePath, VersionHistory};
use ruma::api::{
    AppserviceUserIdentity, IncomingResponse, OutgoingRequest, OutgoingRequestAppserviceExt as _,
    SupportedVersions,
};
use ruma::{OwnedServerName, OwnedUserId, UserId};
use url::Url;

use crate::matrix::error::Transport;
use crate::matrix::{Error, Token};
use crate::metrics::Metrics;
use crate::metrics::matrix::{MatrixEndpoint, MatrixOutcome};

pub use api::Downloaded;

/// Cap on an ordinary (non-media) answer body: no Client-Server answer we use comes near it, and
/// a misbehaving proxy must not make us buffer without bound.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The longest error text kept from a homeserver answer (it goes into logs and notices).
const MAX_ERROR_TEXT_CHARS: usize = 300;

/// The Matrix version whose paths we request: v1.12 has every endpoint we use (authenticated
/// media 1.11, appservice ping 1.7) under its stable path.
const CLIENT_VERSION: &str = "v1.12";

/// How a call retries; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 0 = no limit.
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles per retry up to `max_backoff`, then a
    /// uniformly random delay below the ceiling is slept (full jitter).
    pub initial_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Longest `retry_after` honoured for a 429 (a larger one is cut to this).
    pub max_rate_limit_wait: Duration,
}

impl RetryPolicy {
    /// For calls a person waits on: 4 attempts, 4 s doubling to 10 min (mautrix's numbers,
    /// MATRIX.md §3), 429 waits at most a minute.
    pub const INTERACTIVE: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_secs(4),
        max_backoff: Duration::from_secs(600),
        max_rate_limit_wait: Duration::from_secs(60),
    };

    /// [`RetryPolicy::INTERACTIVE`] without an attempt limit, for persisted queues.
    pub fn unlimited() -> RetryPolicy {
        RetryPolicy { max_attempts: 0, ..RetryPolicy::INTERACTIVE }
    }

    /// The backoff ceiling before retry number `retry` (1-based).
    fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// How long to wait after `error` before retry number `retry`, or `None` to give up.
    fn delay(&self, error: &Error, retry: u32) -> Option<Duration> {
        if self.max_attempts != 0 && retry >= self.max_attempts {
            return None;
        }
        if error.is_rate_limited() {
            let wait = error.retry_after().unwrap_or_else(|| self.ceiling(retry));
            return Some(wait.min(self.max_rate_limit_wait));
        }
        if !error.is_transient() {
            return None;
        }
        let ceiling = u64::try_from(self.ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Some(Duration::from_millis(rand::random_range(0..=ceiling)))
    }
}

/// What the appservice client needs from the configuration.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Where the Client-Server API is (`homeserver.address`).
    pub homeserver: Url,
    /// The homeserver's domain (`homeserver.domain`), the server part of our user ids.
    pub server_name: OwnedServerName,
    /// The registration's `as_token`, sent as `Authorization: Bearer` on every call.
    pub as_token: Token,
    /// The bot (`@<bot_localpart>:<server_name>`): calls without `as_user` assert it
    /// (`?user_id=`), except registration, which acts as the appservice itself. The bot is a
    /// namespace user, not the registration's sender, so that it may own an encryption device.
    pub bot: OwnedUserId,
    /// The registration's `id`, for the appservice ping.
    pub appservice_id: String,
    /// How calls retry by default ([`MatrixClient::with_retry`] makes a client with another).
    pub retry: RetryPolicy,
    /// Per-HTTP-request timeout (connect to last body byte).
    pub request_timeout: Duration,
    /// Largest media download accepted, in bytes.
    pub max_download_bytes: usize,
}

/// Default per-request timeout: long enough for a large media upload on a slow link, short
/// enough that a hung homeserver is noticed and retried.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Default cap on a media download for QQ: QQ's own image limit is far below it.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: usize = 50 * 1024 * 1024;

impl ClientSettings {
    /// Settings with the interactive retry policy, [`DEFAULT_REQUEST_TIMEOUT`] and
    /// [`DEFAULT_MAX_DOWNLOAD_BYTES`].
    pub fn new(
        homeserver: Url,
        server_name: OwnedServerName,
        as_token: Token,
        bot: OwnedUserId,
        appservice_id: String,
    ) -> ClientSettings {
        ClientSettings {
            homeserver,
            server_name,
            as_token,
            bot,
            appservice_id,
            retry: RetryPolicy::INTERACTIVE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
        }
    }
}

/// The appservice's Client-Server API client. Cheap to clone: clones share one reqwest
/// connection pool. Every method does network IO and may be slow (retries included).
#[derive(Clone, Debug)]
pub struct MatrixClient {
    http: reqwest::Client,
    /// The plain-http client, when the homeserver's URL is `http`.
    h1: Option<std::sync::Arc<h1::H1>>,
    settings: std::sync::Arc<ClientSettings>,
    retry: RetryPolicy,
    versions: std::sync::Arc<SupportedVersions>,
    metrics: Metrics,
}

/// Feeds a ruma endpoint's path builder: versioned endpoints get our fixed version set.
pub trait PathInput: PathBuilder {
    /// The path builder's input for `versions`.
    fn input(versions: &SupportedVersions) -> Self::Input<'_>;
}

impl PathInput for VersionHistory {
    fn input(versions: &SupportedVersions) -> Cow<'_, SupportedVersions> {
        Cow::Borrowed(versions)
    }
}

impl PathInput for SinglePath {
    fn input(_versions: &SupportedVersions) {}
}

/// The supported-versions set holding just `version` (`"v1.12"`).
fn versions(version: &str) -> SupportedVersions {
    SupportedVersions::from_parts(&[version.to_owned()], &BTreeMap::new())
}

impl MatrixClient {
    /// A client for `settings`, recording into `metrics`. Fails only if the TLS backend cannot
    /// be set up. No IO.
    pub fn new(settings: ClientSettings, metrics: Metrics) -> Result<MatrixClient, Error> {
        const USER_AGENT: &str = concat!("qqbridge/", env!("CARGO_PKG_VERSION"));
        let connect_timeout = settings.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| Error::Build(e.without_url().to_string()))?;
        let h1 = h1::H1::for_url(
            &settings.homeserver,
            USER_AGENT,
            connect_timeout,
            settings.request_timeout,
        );
        Ok(MatrixClient {
            http,
            h1: h1.map(std::sync::Arc::new),
            retry: settings.retry,
            settings: std::sync::Arc::new(settings),
            versions: std::sync::Arc::new(versions(CLIENT_VERSION)),
            metrics,
        })
    }

    /// The same client (same pool) with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> MatrixClient {
        MatrixClient { retry, ..self.clone() }
    }

    /// The same client (same pool, retry policy and metrics) acting with another appservice's
    /// `as_token`: double puppeting writes as real users through a second registration
    /// (MATRIX.md §6.4). No IO.
    pub fn with_as_token(&self, as_token: Token) -> MatrixClient {
        let settings = ClientSettings { as_token, ..(*self.settings).clone() };
        MatrixClient { settings: std::sync::Arc::new(settings), ..self.clone() }
    }

    /// The settings this client was made with.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The metrics this client records into (the bridge records its own there too).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sends `request` as `as_user` (a ghost, by identity assertion) or as the bot (`None`),
    /// retrying per the client's [`RetryPolicy`]; `endpoint` labels the metrics. A non-2xx
    /// answer that is not retried, or the last one, becomes [`Error::Api`].
    pub async fn send<R>(
        &self,
        endpoint: MatrixEndpoint,
        request: R,
        as_user: Option<&UserId>,
    ) -> Result<R::IncomingResponse, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let as_user = as_user.unwrap_or(&self.settings.bot);
        self.send_with(endpoint, request, Some(as_user), &self.versions, MAX_ANSWER_BYTES).await
    }

    /// [`MatrixClient::send`] as the appservice itself (no `?user_id=`): for what must work
    /// before the bot exists (the versions probe, registration).
    async fn send_unasserted<R>(
        &self,
        endpoint: MatrixEndpoint,
        request: R,
    ) -> Result<R::IncomingResponse, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_with(endpoint, request, None, &self.versions, MAX_ANSWER_BYTES).await
    }

    /// [`MatrixClient::send`] with an explicit version set and answer-size cap; `as_user` is
    /// asserted as given (`None`: the appservice's sender).
    async fn send_with<R>(
        &self,
        endpoint: MatrixEndpoint,
        request: R,
        as_user: Option<&UserId>,
        versions: &SupportedVersions,
        max_bytes: usize,
    ) -> Result<R::IncomingResponse, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let http_request = self.build(request.clone(), as_user, versions)?;
            let started = Instant::now();
            let result = self.attempt(endpoint, http_request, max_bytes).await;
            self.metrics.matrix_request(endpoint, outcome(&result), started.elapsed());
            let error = match result {
                Ok(response) => {
                    return R::IncomingResponse::try_from_http_response(response)
                        .map_err(|e| Error::Decode(truncate(&e.to_string())));
                }
                Err(error) => error,
            };
            let Some(delay) = self.retry.delay(&error, attempt) else { return Err(error) };
            tracing::debug!(
                endpoint = endpoint.as_str(),
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                %error,
                "homeserver call failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The HTTP request for `request` with our token and, if given, the asserted identity.
    fn build<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
        versions: &SupportedVersions,
    ) -> Result<http::Request<Vec<u8>>, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let identity = as_user.map(AppserviceUserIdentity::new).unwrap_or_default();
        request
            .try_into_http_request_with_identity(
                self.settings.homeserver.as_str(),
                SendAccessToken::Appservice(self.settings.as_token.expose()),
                identity,
                R::PathBuilder::input(versions),
            )
            .map_err(|e| Error::Build(e.to_string()))
    }

    /// One HTTP exchange: the answer on 2xx, else the error it amounts to.
    async fn attempt(
        &self,
        endpoint: MatrixEndpoint,
        mut request: http::Request<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<http::Response<Vec<u8>>, Error> {
        if let Some(h1) = self.h1.as_ref().filter(|_| endpoint != MatrixEndpoint::Download) {
            let answer = h1.exchange(&request, max_bytes).await.map_err(|e| match e {
                h1::H1Error::Io(error) => Error::Network(Transport::Io(error)),
                h1::H1Error::TooLarge => Error::TooLarge { limit: max_bytes },
            })?;
            return if answer.status().is_success() { Ok(answer) } else { Err(api_error(&answer)) };
        }
        // hyper sends no `Content-Length` for an empty body, and Synapse refuses such an upload
        // (`400 Request must specify a Content-Length`): a 0-byte file from QQ is legitimate.
        if matches!(*request.method(), http::Method::POST | http::Method::PUT | http::Method::PATCH)
        {
            let length = http::HeaderValue::from(request.body().len());
            request.headers_mut().insert(http::header::CONTENT_LENGTH, length);
        }
        let request = reqwest::Request::try_from(request)
            .map_err(|e| Error::Build(e.without_url().to_string()))?;
        let mut response = self
            .http
            .execute(request)
            .await
            .map_err(|e| Error::Network(Transport::Http(e.without_url())))?;
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| Error::Network(Transport::Http(e.without_url())))?
        {
            if body.len().saturating_add(chunk.len()) > max_bytes {
                return Err(Error::TooLarge { limit: max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        let status = response.status();
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = std::mem::take(response.headers_mut());
        if status.is_success() { Ok(answer) } else { Err(api_error(&answer)) }
    }
}

/// The metrics outcome of one attempt.
fn outcome(result: &Result<http::Response<Vec<u8>>, Error>) -> MatrixOutcome {
    match result {
        Ok(_) => MatrixOutcome::Ok,
        Err(e) if e.is_rate_limited() => MatrixOutcome::RateLimited,
        Err(Error::Api { status, .. }) if *status >= 500 => MatrixOutcome::ServerError,
        Err(Error::Api { .. } | Error::Build(_) | Error::Decode(_) | Error::Invalid(_)) => {
            MatrixOutcome::ClientError
        }
        Err(Error::Network(_) | Error::TooLarge { .. } | Error::Unreachable { .. }) => {
            MatrixOutcome::Network
        }
    }
}

/// The Matrix error of a non-2xx answer: `errcode`, `error`, and the wait from `retry_after_ms`
/// or a `Retry-After: <seconds>` header (the header wins, as the spec says since v1.10).
fn api_error(answer: &http::Response<Vec<u8>>) -> Error {
    #[derive(serde::Deserialize)]
    struct Body {
        errcode: Option<String>,
        error: Option<String>,
        retry_after_ms: Option<u64>,
    }
    let body: Option<Body> = serde_json::from_slice(answer.body()).ok();
    let header_wait = answer
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let (errcode, message, body_wait) = match body {
        Some(b) => (b.errcode, b.error, b.retry_after_ms.map(Duration::from_millis)),
        None => (None, None, None),
    };
    Error::Api {
        status: answer.status().as_u16(),
        errcode,
        message: truncate(message.as_deref().unwrap_or("(no Matrix error body)")),
        retry_after: header_wait.or(body_wait),
    }
}

/// `text` cut to [`MAX_ERROR_TEXT_CHARS`] characters.
fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_TEXT_CHARS).collect()
}

#[cfg(test)]
mod tests;
