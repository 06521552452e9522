//! (in progress) poll2 events; replaced by the content/event work.

/// A poll2 event (stub).
#[derive(Clone, Debug, PartialEq)]
pub struct PollEvent(pub serde_json::Value);

/// Decodes poll2's `result` (stub).
pub fn decode_poll_result(result: &serde_json::Value) -> Vec<PollEvent> {
    result.as_array().map(|a| a.iter().cloned().map(PollEvent).collect()).unwrap_or_default()
}
