//! ptlogin's `ptuiCB(...)` answers: `PtuiCb::decode` on any body, `jscall::parse_call` on any
//! text, and `format_call` -> `parse_call` round trips of what parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::webqq::api::RawAnswer;
use qqbridge::webqq::api::login::PtuiCb;
use qqbridge::webqq::jscall::{format_call, latin1_bytes, parse_call};

fuzz_target!(|data: &[u8]| {
    let raw = RawAnswer { status: 200, location: None, content_type: None, body: data };
    if let Ok(cb) = PtuiCb::decode("login", &raw) {
        let _ = cb.is_account_locked();
        let again = PtuiCb::decode(
            "login",
            &RawAnswer {
                status: 200,
                location: None,
                content_type: None,
                body: cb.to_js().as_bytes(),
            },
        )
        .expect("to_js decodes");
        assert_eq!(again.code, cb.code);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for name in ["ptuiCB", "ptui_auth_CB"] {
            if let Some(args) = parse_call(text, name) {
                for arg in &args {
                    let _ = latin1_bytes(arg);
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                assert_eq!(parse_call(&format_call(name, &refs), name).as_ref(), Some(&args));
            }
        }
    }
});
