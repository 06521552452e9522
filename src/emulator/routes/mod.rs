//! One handler per endpoint (files mirror `webqq/api/`), plus the dispatcher.
pub(crate) async fn dispatch(
    _s: &crate::emulator::state::Shared,
    _e: crate::emulator::router::Endpoint,
    _r: &crate::emulator::http::Req,
) -> crate::emulator::http::Reply {
    tokio::task::yield_now().await;
    crate::emulator::http::Reply::nginx(http::StatusCode::NOT_FOUND)
}
pub(crate) fn apply_fault(
    _s: &crate::emulator::state::Shared,
    _e: crate::emulator::router::Endpoint,
    _r: &crate::emulator::http::Req,
    _k: &crate::emulator::faults::FaultKind,
) -> Option<crate::emulator::http::Reply> {
    None
}
