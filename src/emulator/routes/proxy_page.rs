//! The `proxy.html` / `cfproxy.html` / `webqq.html` pages of w.qq.com, web2.qq.com and the s/d
//! hosts: the page check_sig redirects to and the Referer every API call names (protocol §0.4).

use crate::emulator::http::{Reply, Req};

/// Answers the page.
pub(crate) fn handle(req: &Req) -> Reply {
    Reply::html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><script type=\"text/javascript\">document.domain='qq.com';</script></head><body>{}</body></html>",
        html_escape::encode_text(&req.host)
    ))
}
