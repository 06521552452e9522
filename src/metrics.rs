//! Every Prometheus metric qqbridge exports (MATRIX.md §7.1) in one [`Metrics`] registry with typed
//! recording methods, and the HTTP server answering `GET /metrics` and `GET /health/live`.
//!
//! Callers never spell a metric name or a label value: enums and bounded mappings do.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder as _, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::webqq::retcode::Retcode;

mod http;
pub use http::{run_until, serve};

/// `qqbridge_poll_duration_seconds` buckets: idle polls sit at the server's hold time (≈ 60 s,
/// protocol §2.3) and clients time out at 70–120 s (protocol §7.1), hence the top end.
const POLL_BUCKETS_SECONDS: &[f64] =
    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0];

/// `qqbridge_send_duration_seconds` buckets: a send is one short d/s API call; the top bucket sits
/// above the ~15 s info-call timeouts other clients used (protocol §7.1).
const SEND_BUCKETS_SECONDS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

/// Every `poll_type` of protocol §4; anything else is counted as `unknown`.
const KNOWN_POLL_TYPES: &[&str] = &[
    "message",
    "group_message",
    "discu_message",
    "sess_message",
    "kick_message",
    "buddies_status_change",
    "input_notify",
    "shake_message",
    "system_message",
    "sys_g_msg",
    "buddylist_change",
    "group_web_message",
    "notify_offfile",
    "push_offfile",
    "file_message",
    "filesrv_transfer",
    "tips",
];

/// Declares a closed label enum with `ALL` and `as_str()`.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The label value exported to Prometheus.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }
    };
}

label_enum! {
    /// How one poll2 request ended (`outcome` of `qqbridge_poll_requests_total`).
    PollOutcome {
        /// Retcode 0 with events.
        Ok => "ok",
        /// Nothing happened: retcode 102, HTTP 502/504 or an idle answer (protocol §2.3, §6.1).
        Empty => "empty",
        /// Any other HTTP status, or a connection failure.
        HttpError => "http_error",
        /// Our read timeout fired before the server answered.
        Timeout => "timeout",
        /// The body did not decode as a poll2 answer.
        DecodeError => "decode_error",
        /// A retcode other than 0 and 102 (the code itself goes to `qqbridge_poll_retcodes_total`).
        Retcode => "retcode",
    }
}

label_enum! {
    /// An account's bridge state (MATRIX.md §6.5 plus the two waiting login states); exported
    /// one-hot as `qqbridge_account_state`.
    AccountStateLabel {
        /// Login, session restore or relink in progress.
        Connecting => "CONNECTING",
        /// The last poll answered normally.
        Connected => "CONNECTED",
        /// Network or 5xx streak, backing off.
        TransientDisconnect => "TRANSIENT_DISCONNECT",
        /// Password wrong, captcha or QR needed, session unrecoverable: a person must act.
        BadCredentials => "BAD_CREDENTIALS",
        /// User logout or kicked (121, `kick_message`); never auto-relogin.
        LoggedOut => "LOGGED_OUT",
        /// An unexpected retcode.
        UnknownError => "UNKNOWN_ERROR",
        /// A QR code is shown and waits to be scanned.
        WaitingForQr => "WAITING_FOR_QR",
        /// A captcha waits to be answered.
        WaitingForCaptcha => "WAITING_FOR_CAPTCHA",
    }
}

label_enum! {
    /// Why a session ended (`reason` of `qqbridge_account_disconnects_total`).
    DisconnectReason {
        /// Network trouble outlasted the retries.
        Network => "network",
        /// The server declared the session invalid (100, 103, 108, …, protocol §6.1).
        SessionExpired => "session_expired",
        /// Logged in elsewhere (121 or `kick_message`, protocol §4).
        Kicked => "kicked",
        /// The user logged out through the bridge.
        Logout => "logout",
    }
}

label_enum! {
    /// How a login was attempted (`method` of `qqbridge_logins_total`).
    LoginMethod {
        /// QR code scanned with the phone app.
        Qr => "qr",
        /// Password login through ptlogin.
        Password => "password",
        /// Stored session restored without a login.
        Restore => "restore",
        /// login2 with the old psessionid after a lost channel (retcode 120).
        Relink => "relink",
    }
}

label_enum! {
    /// How a login attempt ended (`outcome` of `qqbridge_logins_total`).
    LoginOutcome {
        /// Logged in.
        Ok => "ok",
        /// A captcha is required.
        Captcha => "captcha",
        /// Wrong password, frozen or banned account.
        BadCredentials => "bad_credentials",
        /// The QR code expired before it was scanned.
        QrExpired => "qr_expired",
        /// Anything else (network, unexpected answer).
        Error => "error",
    }
}

label_enum! {
    /// A supervised child of an account actor (`child` of `qqbridge_actor_restarts_total`).
    ActorChild {
        /// The login actor.
        Login => "login",
        /// The poll2 actor.
        Poller => "poller",
        /// The QQ send actor.
        Sender => "sender",
    }
}

label_enum! {
    /// How one QQ send request ended (`outcome` of `qqbridge_sends_total`).
    SendOutcome {
        /// The server accepted it.
        Delivered => "delivered",
        /// Maybe delivered (1202, or a timeout after the request left, protocol §6.1): not resent.
        Uncertain => "uncertain",
        /// Failed in a way that is retried.
        Retry => "retry",
        /// Failed for good.
        Failed => "failed",
    }
}

/// The `poll_type` label for `poll_type`: itself when protocol §4 lists it, else `unknown`.
pub fn poll_type_label(poll_type: &str) -> &'static str {
    KNOWN_POLL_TYPES.iter().copied().find(|known| *known == poll_type).unwrap_or("unknown")
}

/// The registered collectors; see [`Metrics`].
struct Inner {
    registry: Registry,
    poll_requests: IntCounterVec,
    poll_duration: Histogram,
    poll_last_success: IntGaugeVec,
    poll_consecutive_failures: IntGaugeVec,
    poll_backoff: GaugeVec,
    poll_retcodes: IntCounterVec,
    poll_events: IntCounterVec,
    account_state: IntGaugeVec,
    account_disconnects: IntCounterVec,
    logins: IntCounterVec,
    actor_restarts: IntCounterVec,
    send_queue: IntGaugeVec,
    sends: IntCounterVec,
    send_duration: Histogram,
    matrix: matrix::MatrixMetrics,
}

/// Registers `collector` in `registry` and hands it back.
fn registered<C>(registry: &Registry, collector: C) -> prometheus::Result<C>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Inner {
    /// A registry with every metric and the process collector; fails only on a bad descriptor.
    fn build() -> prometheus::Result<Inner> {
        let r = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(&r, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            registered(&r, IntGaugeVec::new(Opts::new(name, help), labels)?)
        };
        let float_gauge = |name: &str, help: &str, labels: &[&str]| {
            registered(&r, GaugeVec::new(Opts::new(name, help), labels)?)
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            registered(
                &r,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?,
            )
        };
        let inner = Inner {
            poll_requests: counter(
                "qqbridge_poll_requests_total",
                "Finished poll2 requests by outcome (empty = 102, 502/504 or an idle answer).",
                &["account", "outcome"],
            )?,
            poll_duration: histogram(
                "qqbridge_poll_duration_seconds",
                "poll2 request latency; idle polls sit at the server's hold time.",
                POLL_BUCKETS_SECONDS,
            )?,
            poll_last_success: gauge(
                "qqbridge_poll_last_success_timestamp_seconds",
                "Unix time of the last ok or empty poll (the poller's start time before that).",
                &["account"],
            )?,
            poll_consecutive_failures: gauge(
                "qqbridge_poll_consecutive_failures",
                "Current streak of failed polls.",
                &["account"],
            )?,
            poll_backoff: float_gauge(
                "qqbridge_poll_backoff_seconds",
                "Delay before the next poll (0 when healthy).",
                &["account"],
            )?,
            poll_retcodes: counter(
                "qqbridge_poll_retcodes_total",
                "poll2 retcodes (known codes of protocol 6.1, else other).",
                &["retcode"],
            )?,
            poll_events: counter(
                "qqbridge_poll_events_total",
                "poll2 events by poll_type (known types of protocol 4, else unknown).",
                &["poll_type"],
            )?,
            account_state: gauge(
                "qqbridge_account_state",
                "Bridge state of each account, one-hot (1 for the current state).",
                &["account", "state"],
            )?,
            account_disconnects: counter(
                "qqbridge_account_disconnects_total",
                "Ended sessions by reason.",
                &["account", "reason"],
            )?,
            logins: counter(
                "qqbridge_logins_total",
                "Login attempts by method and outcome.",
                &["account", "method", "outcome"],
            )?,
            actor_restarts: counter(
                "qqbridge_actor_restarts_total",
                "Restarts of an account's supervised children.",
                &["account", "child"],
            )?,
            send_queue: gauge(
                "qqbridge_send_queue_messages",
                "Messages waiting to be sent to QQ.",
                &["account"],
            )?,
            sends: counter(
                "qqbridge_sends_total",
                "QQ send requests by outcome.",
                &["account", "outcome"],
            )?,
            send_duration: histogram(
                "qqbridge_send_duration_seconds",
                "QQ send call latency.",
                SEND_BUCKETS_SECONDS,
            )?,
            matrix: matrix::MatrixMetrics::build(&r)?,
            registry: r.clone(),
        };
        let build_info = gauge(
            "qqbridge_build_info",
            "Always 1; the labels name the running build.",
            &["version", "git_sha"],
        )?;
        let git_sha = option_env!("QQBRIDGE_GIT_SHA").unwrap_or("unknown");
        set(&build_info, &[env!("CARGO_PKG_VERSION"), git_sha], 1);
        // Zero series before the first event: every family is on /metrics from the start (the
        // dashboard queries them) and `increase()` counts the first event too.
        for poll_type in KNOWN_POLL_TYPES.iter().copied().chain(["unknown"]) {
            let _ = inner.poll_events.get_metric_with_label_values(&[poll_type]);
        }
        for code in [Retcode::OK, Retcode::NO_EVENT] {
            let _ = inner.poll_retcodes.get_metric_with_label_values(&[code.metric_label()]);
        }
        register_process_collector(&r)?;
        Ok(inner)
    }
}

/// Registers the process collector as `qqbridge_process_*` (MATRIX.md §7); Linux only, as the
/// `prometheus` crate reads `/proc`.
#[cfg(target_os = "linux")]
fn register_process_collector(registry: &Registry) -> prometheus::Result<()> {
    use prometheus::process_collector::{ProcessCollector, pid_t};
    match pid_t::try_from(std::process::id()) {
        Ok(pid) => registry.register(Box::new(ProcessCollector::new(pid, "qqbridge"))),
        Err(_) => Ok(()),
    }
}

/// No process metrics off Linux.
#[cfg(not(target_os = "linux"))]
fn register_process_collector(_registry: &Registry) -> prometheus::Result<()> {
    Ok(())
}

/// Saturating conversion for gauge values from counts.
fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// qqbridge's metrics: one private [`prometheus::Registry`] holding every `qqbridge_*` metric
/// of MATRIX.md §7.1 (issue 3's poll, account and send health) plus the process collector
/// (`qqbridge_process_*`).
///
/// Cheap to clone (an `Arc` inside); every clone records into the same registry. Recording never
/// fails, never blocks and does no IO. No global registry: each `Metrics::new()` is independent,
/// so tests can make as many as they like.
#[derive(Clone)]
pub struct Metrics {
    /// `None` only if building the registry failed, which a unit test proves does not happen;
    /// then every method is a no-op and [`Metrics::encode`] gives an empty string.
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("enabled", &self.inner.is_some()).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered and `qqbridge_build_info` set. Infallible:
    /// the descriptors are static and tested; should building ever fail, the error is logged and
    /// the returned value records nothing (use [`Metrics::try_new`] to fail instead).
    pub fn new() -> Metrics {
        Metrics::try_new().unwrap_or_else(|error| {
            tracing::error!(%error, "failed to build the metrics registry; metrics are disabled");
            Metrics { inner: None }
        })
    }

    /// Like [`Metrics::new`] but returns the registration error (a bug in this file).
    pub fn try_new() -> prometheus::Result<Metrics> {
        Ok(Metrics { inner: Some(Arc::new(Inner::build()?)) })
    }

    fn with(&self, f: impl FnOnce(&Inner)) {
        if let Some(inner) = self.inner.as_deref() {
            f(inner);
        }
    }

    /// One poll2 request of `account` finished with `outcome` after `duration`.
    pub fn poll_finished(&self, account: &str, outcome: PollOutcome, duration: Duration) {
        self.with(|m| {
            inc(&m.poll_requests, &[account, outcome.as_str()]);
            m.poll_duration.observe(duration.as_secs_f64());
        });
    }

    /// `account`'s last ok or empty poll finished at `unix_secs`; the poller also calls this with
    /// its start time when it starts, so "seconds since last good poll" begins at zero.
    pub fn poll_succeeded_at(&self, account: &str, unix_secs: u64) {
        self.with(|m| set(&m.poll_last_success, &[account], to_i64(unix_secs)));
    }

    /// `account`'s current streak of failed polls (0 after a good one).
    pub fn set_consecutive_failures(&self, account: &str, failures: u32) {
        self.with(|m| set(&m.poll_consecutive_failures, &[account], i64::from(failures)));
    }

    /// The delay before `account`'s next poll (zero when healthy).
    pub fn set_backoff(&self, account: &str, delay: Duration) {
        self.with(|m| {
            if let Ok(gauge) = m.poll_backoff.get_metric_with_label_values(&[account]) {
                gauge.set(delay.as_secs_f64());
            }
        });
    }

    /// A poll2 answer carried `code`; codes protocol §6.1 does not list count as `other`.
    pub fn retcode(&self, code: i64) {
        self.with(|m| inc(&m.poll_retcodes, &[Retcode(code).metric_label()]));
    }

    /// One poll2 event of `poll_type` arrived; types protocol §4 does not list count as
    /// `unknown` (see [`poll_type_label`]).
    pub fn poll_event(&self, poll_type: &str) {
        self.with(|m| inc(&m.poll_events, &[poll_type_label(poll_type)]));
    }

    /// `account` is now in `state`: its series for `state` becomes 1, every other state's 0.
    /// Also creates the account's disconnect, restart, send and queue series at zero if they are
    /// missing (values already there are kept), so they exist before their first event.
    pub fn set_account_state(&self, account: &str, state: AccountStateLabel) {
        self.with(|m| {
            zero_account_series(m, account);
            for other in AccountStateLabel::ALL {
                let value = i64::from(*other == state);
                set(&m.account_state, &[account, other.as_str()], value);
            }
        });
    }

    /// Sets `account`'s series for `state` to `count` alone (no one-hot): with
    /// `metrics.per_account: false` the manager exports how many accounts are in each state under
    /// one aggregate `account` label.
    pub fn set_account_state_count(&self, account: &str, state: AccountStateLabel, count: usize) {
        self.with(|m| set(&m.account_state, &[account, state.as_str()], to_i64(count)));
    }

    /// A session of `account` ended for `reason`.
    pub fn disconnect(&self, account: &str, reason: DisconnectReason) {
        self.with(|m| inc(&m.account_disconnects, &[account, reason.as_str()]));
    }

    /// A login attempt of `account` by `method` ended with `outcome`.
    pub fn login(&self, account: &str, method: LoginMethod, outcome: LoginOutcome) {
        self.with(|m| inc(&m.logins, &[account, method.as_str(), outcome.as_str()]));
    }

    /// `account`'s supervisor restarted `child`.
    pub fn restart(&self, account: &str, child: ActorChild) {
        self.with(|m| inc(&m.actor_restarts, &[account, child.as_str()]));
    }

    /// `messages` wait in `account`'s QQ send queue.
    pub fn set_queue_depth(&self, account: &str, messages: usize) {
        self.with(|m| set(&m.send_queue, &[account], to_i64(messages)));
    }

    /// One QQ send request of `account` ended with `outcome` after `duration`.
    pub fn send_finished(&self, account: &str, outcome: SendOutcome, duration: Duration) {
        self.with(|m| {
            inc(&m.sends, &[account, outcome.as_str()]);
            m.send_duration.observe(duration.as_secs_f64());
        });
    }

    /// Removes every series labelled with `account` (called when the account is removed, so a
    /// deleted account neither lingers on the dashboard nor fires alerts). Unknown accounts are
    /// fine; histograms and account-free counters keep their history.
    pub fn forget_account(&self, account: &str) {
        self.with(|m| {
            for gauge in [&m.poll_last_success, &m.poll_consecutive_failures, &m.send_queue] {
                let _ = gauge.remove_label_values(&[account]);
            }
            let _ = m.poll_backoff.remove_label_values(&[account]);
            for outcome in PollOutcome::ALL {
                let _ = m.poll_requests.remove_label_values(&[account, outcome.as_str()]);
            }
            for state in AccountStateLabel::ALL {
                let _ = m.account_state.remove_label_values(&[account, state.as_str()]);
            }
            for reason in DisconnectReason::ALL {
                let _ = m.account_disconnects.remove_label_values(&[account, reason.as_str()]);
            }
            for method in LoginMethod::ALL {
                for outcome in LoginOutcome::ALL {
                    let labels = [account, method.as_str(), outcome.as_str()];
                    let _ = m.logins.remove_label_values(&labels);
                }
            }
            for child in ActorChild::ALL {
                let _ = m.actor_restarts.remove_label_values(&[account, child.as_str()]);
            }
            for outcome in SendOutcome::ALL {
                let _ = m.sends.remove_label_values(&[account, outcome.as_str()]);
            }
        });
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4). Reads `/proc` for
    /// the process collector; empty if encoding failed (logged).
    pub fn encode(&self) -> String {
        let Some(inner) = self.inner.as_deref() else { return String::new() };
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&inner.registry.gather(), &mut out) {
            tracing::error!(%error, "failed to encode metrics");
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Creates `account`'s per-account counter and queue series at zero where they are missing.
fn zero_account_series(m: &Inner, account: &str) {
    let _ = m.send_queue.get_metric_with_label_values(&[account]);
    for outcome in PollOutcome::ALL {
        let _ = m.poll_requests.get_metric_with_label_values(&[account, outcome.as_str()]);
    }
    for reason in DisconnectReason::ALL {
        let _ = m.account_disconnects.get_metric_with_label_values(&[account, reason.as_str()]);
    }
    for child in ActorChild::ALL {
        let _ = m.actor_restarts.get_metric_with_label_values(&[account, child.as_str()]);
    }
    for outcome in SendOutcome::ALL {
        let _ = m.sends.get_metric_with_label_values(&[account, outcome.as_str()]);
    }
}

/// Increments the counter at `labels`; a wrong label count (a bug) records nothing.
fn inc(vec: &IntCounterVec, labels: &[&str]) {
    if let Ok(counter) = vec.get_metric_with_label_values(labels) {
        counter.inc();
    }
}

/// Sets the gauge at `labels` to `value`; a wrong label count (a bug) records nothing.
fn set(vec: &IntGaugeVec, labels: &[&str], value: i64) {
    if let Ok(gauge) = vec.get_metric_with_label_values(labels) {
        gauge.set(value);
    }
}

pub mod matrix;
#[cfg(test)]
mod tests;
