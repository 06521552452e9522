//! poll2 answers: any body through `Poll2::decode` (HTTP 200), and any JSON through
//! `decode_poll_result`, whose events must survive a serialize / decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::webqq::api::poll2::{Poll2, PollAnswer};
use qqbridge::webqq::api::{Endpoint, RawAnswer};
use qqbridge::webqq::event::{PollEvent, decode_poll_result};
use serde_json::Value;

fn check_events(events: &[PollEvent]) {
    for event in events {
        let wire = serde_json::to_value(event).expect("a decoded event serializes");
        assert_eq!(&PollEvent::from_wire(&wire), event, "round trip of {wire}");
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = RawAnswer { status: 200, location: None, content_type: None, body: data };
    if let Ok(PollAnswer::Events(events)) = Poll2::decode(&raw) {
        assert!(!events.is_empty());
        check_events(&events);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        check_events(&decode_poll_result(&value));
        if let Some(result) = value.get("result") {
            check_events(&decode_poll_result(result));
        }
        // A bare element, as the fuzzer may find it without the envelope.
        let _ = PollEvent::from_wire(&value);
    }
});
