//! The control API over HTTP.
pub(crate) fn handle(
    _s: &crate::emulator::state::Shared,
    _r: &crate::emulator::http::Req,
) -> crate::emulator::http::Reply {
    crate::emulator::http::Reply::nginx(http::StatusCode::NOT_FOUND)
}
