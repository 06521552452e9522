//! Message content: `Content::from_received` on any JSON, `Content::decode_sent` on any UTF-8
//! text, and the re-encodings the bridge relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::webqq::content::{Content, normalize_for_echo, split_text};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data)
        && let Ok(content) = Content::from_received(&value)
    {
        let _ = content.plain_text();
        let _ = normalize_for_echo(&content);
        let again =
            Content::from_received(&content.to_received()).expect("to_received is an array");
        assert_eq!(again.segments.len(), content.segments.len());
        let sent =
            Content::decode_sent(&content.encode_for_send()).expect("encode_for_send is JSON");
        assert!(sent.font.is_some());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(content) = Content::decode_sent(text) {
            let _ = content.plain_text();
            let _ = content.to_received();
            let _ = content.encode_for_send();
        }
        let max = usize::from(data.first().copied().unwrap_or(0)).max(4);
        let parts = split_text(text, max);
        assert_eq!(parts.concat(), text);
    }
});
