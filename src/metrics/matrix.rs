//! The Matrix-side metrics of MATRIX.md §7.1 (appservice intake, homeserver calls), registered in
//! the same registry as every other [`Metrics`] family, with their typed recording methods.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use super::{Metrics, inc, registered};

/// `qqbridge_appservice_transaction_duration_seconds` buckets: request → 200 includes persisting
/// (a SQLite commit, milliseconds) and, for 100-event batches, handing events on; Synapse times out
/// after 60 s, hence the top end.
const TRANSACTION_BUCKETS_SECONDS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// `qqbridge_matrix_request_duration_seconds` buckets: one homeserver call; uploads and downloads
/// of large media take seconds, the client's request timeout caps the top.
const MATRIX_REQUEST_BUCKETS_SECONDS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

label_enum! {
    /// How one inbound appservice transaction ended (`qqbridge_appservice_transactions_total`).
    AppserviceTxnOutcome {
        /// Stored and handled for the first time; answered 200.
        Processed => "processed",
        /// Already processed (a homeserver retry); answered 200 without side effects.
        Duplicate => "duplicate",
        /// Missing or wrong `hs_token`; answered 401/403.
        AuthRejected => "auth_rejected",
        /// Not a JSON object, or over the size cap; answered 400/413.
        BadBody => "bad_body",
        /// The handler could not persist it; answered 500 so the homeserver retries.
        StoreError => "store_error",
    }
}

label_enum! {
    /// What an inbound event was (`kind` of `qqbridge_appservice_events_total`).
    AppserviceEventKind {
        /// A timeline event (PDU) from `events`.
        Pdu => "pdu",
        /// Typing, receipt or presence from `ephemeral`.
        Ephemeral => "ephemeral",
    }
}

label_enum! {
    /// What became of an inbound event (`outcome` of `qqbridge_appservice_events_total`).
    AppserviceEventOutcome {
        /// Arrived in a newly processed transaction (counted by the appservice server;
        /// homeserver retries of a processed transaction are not counted again).
        Received => "received",
        /// Bridged to QQ (or acted on) by the bridge.
        Bridged => "bridged",
        /// Dropped on purpose (our own echo, an unsupported type, a malformed event).
        Ignored => "ignored",
        /// Bridging it failed.
        Failed => "failed",
    }
}

label_enum! {
    /// Which homeserver call (`endpoint` of the `qqbridge_matrix_request*` metrics; a fixed set).
    MatrixEndpoint {
        /// `PUT /rooms/{id}/send/…` and redactions.
        Send => "send",
        /// `PUT /rooms/{id}/state/…`.
        State => "state",
        /// `POST /register` (ghost creation).
        Register => "register",
        /// `POST /rooms/{id}/join` and leaves.
        Join => "join",
        /// `POST /rooms/{id}/invite`.
        Invite => "invite",
        /// `POST /createRoom`.
        CreateRoom => "create_room",
        /// `POST /media/v3/upload`.
        Upload => "upload",
        /// Media downloads (authenticated v1 and legacy v3).
        Download => "download",
        /// Display name and avatar changes.
        Profile => "profile",
        /// Everything else (versions, whoami, typing, presence, ping).
        Other => "other",
    }
}

label_enum! {
    /// How one homeserver HTTP request ended (`outcome` of `qqbridge_matrix_requests_total`).
    MatrixOutcome {
        /// A 2xx answer.
        Ok => "ok",
        /// 429 or `M_LIMIT_EXCEEDED`.
        RateLimited => "rate_limited",
        /// Any other 4xx.
        ClientError => "client_error",
        /// A 5xx.
        ServerError => "server_error",
        /// No HTTP answer: connect error, timeout, reset, or an unreadable body.
        Network => "network",
    }
}

/// The Matrix-side collectors; a field of the registry's inner state.
pub(super) struct MatrixMetrics {
    transactions: IntCounterVec,
    events: IntCounterVec,
    transaction_duration: Histogram,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    interrupted_sends: IntCounter,
}

impl MatrixMetrics {
    /// Registers the Matrix-side families in `r`, with every label combination at zero so the
    /// dashboard finds each family on a fresh bridge and `increase()` counts a first event.
    pub(super) fn build(r: &Registry) -> prometheus::Result<MatrixMetrics> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(r, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let m = MatrixMetrics {
            transactions: counter(
                "qqbridge_appservice_transactions_total",
                "Inbound appservice transactions by outcome; duplicates prove homeserver retries.",
                &["outcome"],
            )?,
            events: counter(
                "qqbridge_appservice_events_total",
                "Inbound appservice events by kind and outcome (received by the server).",
                &["kind", "outcome"],
            )?,
            transaction_duration: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "qqbridge_appservice_transaction_duration_seconds",
                        "Inbound transaction request to answer, persisting included.",
                    )
                    .buckets(TRANSACTION_BUCKETS_SECONDS.to_vec()),
                )?,
            )?,
            requests: counter(
                "qqbridge_matrix_requests_total",
                "Homeserver HTTP requests by endpoint and outcome (each retry counts).",
                &["endpoint", "outcome"],
            )?,
            request_duration: registered(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "qqbridge_matrix_request_duration_seconds",
                        "Homeserver HTTP request latency by endpoint.",
                    )
                    .buckets(MATRIX_REQUEST_BUCKETS_SECONDS.to_vec()),
                    &["endpoint"],
                )?,
            )?,
            interrupted_sends: registered(
                r,
                IntCounter::new(
                    "qqbridge_qq_sends_interrupted_total",
                    "Matrix messages whose QQ send was under way when the bridge stopped: \
                     not resent (they may have arrived), reported to their owner.",
                )?,
            )?,
        };
        for outcome in AppserviceTxnOutcome::ALL {
            let _ = m.transactions.get_metric_with_label_values(&[outcome.as_str()]);
        }
        for kind in AppserviceEventKind::ALL {
            for outcome in AppserviceEventOutcome::ALL {
                let _ = m.events.get_metric_with_label_values(&[kind.as_str(), outcome.as_str()]);
            }
        }
        for endpoint in MatrixEndpoint::ALL {
            let _ = m.request_duration.get_metric_with_label_values(&[endpoint.as_str()]);
            for outcome in MatrixOutcome::ALL {
                let labels = [endpoint.as_str(), outcome.as_str()];
                let _ = m.requests.get_metric_with_label_values(&labels);
            }
        }
        Ok(m)
    }
}

impl Metrics {
    /// One inbound appservice transaction ended with `outcome`; `duration` (request to answer) is
    /// observed only when given (auth rejections are answered before any work and are not timed).
    pub fn appservice_transaction(
        &self,
        outcome: AppserviceTxnOutcome,
        duration: Option<Duration>,
    ) {
        self.with(|m| {
            inc(&m.matrix.transactions, &[outcome.as_str()]);
            if let Some(duration) = duration {
                m.matrix.transaction_duration.observe(duration.as_secs_f64());
            }
        });
    }

    /// `count` inbound events of `kind` ended with `outcome`. The appservice server records
    /// `Received`; the bridge records `Bridged`, `Ignored` or `Failed` per event.
    pub fn appservice_events(
        &self,
        kind: AppserviceEventKind,
        outcome: AppserviceEventOutcome,
        count: u64,
    ) {
        self.with(|m| {
            let labels = [kind.as_str(), outcome.as_str()];
            if let Ok(counter) = m.matrix.events.get_metric_with_label_values(&labels) {
                counter.inc_by(count);
            }
        });
    }

    /// A Matrix message's QQ send was under way when the bridge stopped (found at start-up):
    /// not resent, reported uncertain (RELIABILITY.md §1.5).
    pub fn qq_send_interrupted(&self) {
        self.with(|m| m.matrix.interrupted_sends.inc());
    }

    /// One homeserver HTTP request to `endpoint` ended with `outcome` after `duration`.
    pub fn matrix_request(
        &self,
        endpoint: MatrixEndpoint,
        outcome: MatrixOutcome,
        duration: Duration,
    ) {
        self.with(|m| {
            inc(&m.matrix.requests, &[endpoint.as_str(), outcome.as_str()]);
            if let Ok(h) =
                m.matrix.request_duration.get_metric_with_label_values(&[endpoint.as_str()])
            {
                h.observe(duration.as_secs_f64());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_matrix_metrics_record_and_exist_at_zero() {
        let m = Metrics::try_new().unwrap();
        let text = m.encode();
        assert!(text.contains("qqbridge_appservice_transactions_total{outcome=\"duplicate\"} 0"));
        assert!(text.contains(
            "qqbridge_matrix_requests_total{endpoint=\"profile\",outcome=\"network\"} 0"
        ));
        assert!(text.contains("qqbridge_qq_sends_interrupted_total 0"));
        m.qq_send_interrupted();
        assert!(m.encode().contains("qqbridge_qq_sends_interrupted_total 1"));
        m.appservice_transaction(AppserviceTxnOutcome::Processed, Some(Duration::from_millis(3)));
        m.appservice_transaction(AppserviceTxnOutcome::AuthRejected, None);
        m.appservice_events(AppserviceEventKind::Pdu, AppserviceEventOutcome::Received, 3);
        m.matrix_request(
            MatrixEndpoint::Send,
            MatrixOutcome::RateLimited,
            Duration::from_millis(20),
        );
        let text = m.encode();
        for line in [
            "qqbridge_appservice_transactions_total{outcome=\"processed\"} 1",
            "qqbridge_appservice_transactions_total{outcome=\"auth_rejected\"} 1",
            "qqbridge_appservice_transaction_duration_seconds_count 1",
            "qqbridge_appservice_events_total{kind=\"pdu\",outcome=\"received\"} 3",
            "qqbridge_matrix_requests_total{endpoint=\"send\",outcome=\"rate_limited\"} 1",
            "qqbridge_matrix_request_duration_seconds_count{endpoint=\"send\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
