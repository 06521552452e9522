//! ptlogin's `ptui_checkVC(...)` answer: `Check::decode` on any body; what decodes re-encodes
//! through `CheckAnswer::to_js` to the same answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::webqq::api::check::Check;
use qqbridge::webqq::api::{Endpoint, RawAnswer};
use qqbridge::webqq::jscall::parse_call;

fuzz_target!(|data: &[u8]| {
    let raw = RawAnswer { status: 200, location: None, content_type: None, body: data };
    if let Ok(answer) = Check::decode(&raw) {
        let js = answer.to_js();
        let again =
            Check::decode(&RawAnswer { body: js.as_bytes(), ..raw }).expect("to_js decodes");
        assert_eq!(again, answer, "{js}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_call(text, "ptui_checkVC");
    }
});
