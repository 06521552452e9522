//! Tests of the Matrix → QQ conversion: data tables over real `m.room.message` JSON.

use super::*;
use serde_json::{Value, json};

fn event(content: Value) -> RoomMessageEventContent {
    serde_json::from_value(content).unwrap()
}

fn text(s: &str) -> Segment {
    Segment::Text(s.to_owned())
}

/// The segments of each message, or the reason.
fn convert(content: Value, opts: &ToQqOptions<'_>) -> Result<Vec<Vec<Segment>>, String> {
    let out = matrix_to_qq(&event(content), opts).map_err(|e| e.to_string())?;
    Ok(out
        .into_iter()
        .map(|m| match m {
            OutgoingQq::Text(content) => content.segments,
            OutgoingQq::Image { mxc, caption, .. } => {
                let mut segments = caption;
                segments.push(text(&format!("<image {mxc}>")));
                segments
            }
        })
        .collect())
}

#[test]
fn test_text_and_faces() {
    let opts = ToQqOptions::new("Alice");
    let cases: Vec<(Value, Vec<Vec<Segment>>)> = vec![
        (json!({"msgtype": "m.text", "body": "hello"}), vec![vec![text("hello")]]),
        (
            json!({"msgtype": "m.text", "body": "hi /微笑 and 🙂 at http://a/b"}),
            vec![vec![
                text("hi "),
                Segment::Face(14),
                text(" and "),
                Segment::Face(14),
                text(" at http://a/b"),
            ]],
        ),
        (json!({"msgtype": "m.notice", "body": "notice"}), vec![vec![text("notice")]]),
        (
            json!({"msgtype": "m.text", "body": "a\r\nb\u{0}\u{1b}c\td"}),
            vec![vec![text("a\nbc\td")]],
        ),
        // The formatted body is used only when the plain body is empty.
        (
            json!({"msgtype": "m.text", "body": "<b>x</b>", "format": "org.matrix.custom.html",
                   "formatted_body": "&lt;b&gt;x&lt;/b&gt;"}),
            vec![vec![text("<b>x</b>")]],
        ),
        (
            json!({"msgtype": "m.text", "body": "", "format": "org.matrix.custom.html",
                   "formatted_body": "<p>one<br>two</p><script>x</script>"}),
            vec![vec![text("one\ntwo")]],
        ),
        (
            json!({"msgtype": "org.example.custom", "body": "fallback"}),
            vec![vec![text("fallback")]],
        ),
    ];
    for (content, want) in cases {
        assert_eq!(convert(content.clone(), &opts), Ok(want), "content {content}");
    }
}

#[test]
fn test_emote_edit_and_relay() {
    let plain = ToQqOptions::new("Al\u{202e}ice");
    let relay = ToQqOptions {
        relay_template: Some(DEFAULT_RELAY_TEMPLATE),
        ..ToQqOptions::new("Bob\n<b>")
    };
    let relay_emote =
        ToQqOptions { relay_template: Some("* {displayname} {message}"), ..relay.clone() };
    let edit = json!({
        "msgtype": "m.text", "body": "* fixed /微笑",
        "m.new_content": {"msgtype": "m.text", "body": "fixed /微笑"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"}
    });
    let emote = json!({"msgtype": "m.emote", "body": "waves /微笑"});
    let hi = json!({"msgtype": "m.text", "body": "hi /微笑"});
    let cases: Vec<(Value, &ToQqOptions<'_>, Vec<Segment>)> = vec![
        (emote.clone(), &plain, vec![text("* \u{2068}Alice\u{2069} waves "), Segment::Face(14)]),
        // In relay mode the emote template replaces `* name `.
        (emote.clone(), &relay, vec![text("\u{2068}Bob <b>\u{2069}: waves "), Segment::Face(14)]),
        (emote, &relay_emote, vec![text("* \u{2068}Bob <b>\u{2069} waves "), Segment::Face(14)]),
        (edit.clone(), &plain, vec![text("[edit] fixed "), Segment::Face(14)]),
        (edit, &relay, vec![text("\u{2068}Bob <b>\u{2069}: [edit] fixed "), Segment::Face(14)]),
        (hi, &relay, vec![text("\u{2068}Bob <b>\u{2069}: hi "), Segment::Face(14)]),
    ];
    for (content, opts, want) in cases {
        assert_eq!(convert(content.clone(), opts), Ok(vec![want]), "content {content}");
    }
    // A display name that looks like a face stays text: only the message body is parsed.
    let sneaky =
        ToQqOptions { relay_template: Some(DEFAULT_RELAY_TEMPLATE), ..ToQqOptions::new("/微笑") };
    assert_eq!(
        convert(json!({"msgtype": "m.text", "body": "x"}), &sneaky),
        Ok(vec![vec![text("\u{2068}/微笑\u{2069}: x")]])
    );
}

#[test]
fn test_reply_fallback_and_quote() {
    let reply = |body: &str| {
        json!({
            "msgtype": "m.text", "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": "<mx-reply><blockquote>quoted</blockquote></mx-reply>answer",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}
        })
    };
    let quote =
        ReplyQuote { name: "Carol", text: "line one\nline two is quite a bit longer than thirty" };
    let with_quote = ToQqOptions { reply_to: Some(quote), ..ToQqOptions::new("Alice") };
    let without = ToQqOptions::new("Alice");
    let cases: Vec<(&str, &ToQqOptions<'_>, &str)> = vec![
        ("> <@carol:example.org> line one\n> line two\n\nanswer", &without, "answer"),
        ("> <@carol:example.org> hi\r\n\r\nanswer", &without, "answer"),
        ("> * <@carol:example.org> waves\n\nanswer", &without, "answer"),
        // A quote the user typed is kept.
        ("> my own quote\n\nanswer", &without, "> my own quote\n\nanswer"),
        (
            "> <@carol:example.org> line one\n\nanswer",
            &with_quote,
            "「\u{2068}Carol\u{2069}: line one line two is quite a b…」\nanswer",
        ),
        // Only the fallback: the formatted body (without <mx-reply>) supplies the text.
        ("> <@carol:example.org> line one", &without, "answer"),
    ];
    for (body, opts, want) in cases {
        assert_eq!(convert(reply(body), opts), Ok(vec![vec![text(want)]]), "body {body:?}");
    }
    // Outside a reply, a `> <` body is ordinary text.
    let not_reply = json!({"msgtype": "m.text", "body": "> <@x:y> z\n\nw"});
    assert_eq!(convert(not_reply, &without), Ok(vec![vec![text("> <@x:y> z\n\nw")]]));
}

#[test]
fn test_replied_event_id() {
    let cases = [
        (json!({"msgtype": "m.text", "body": "x"}), None),
        (
            json!({"msgtype": "m.text", "body": "x",
                "m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}}),
            Some("$a"),
        ),
        (
            json!({"msgtype": "m.text", "body": "x", "m.relates_to": {"rel_type": "m.thread",
                "event_id": "$root", "is_falling_back": true,
                "m.in_reply_to": {"event_id": "$last"}}}),
            None,
        ),
        (
            json!({"msgtype": "m.text", "body": "x", "m.relates_to": {"rel_type": "m.thread",
                "event_id": "$root", "is_falling_back": false,
                "m.in_reply_to": {"event_id": "$b"}}}),
            Some("$b"),
        ),
    ];
    for (content, want) in cases {
        let event = event(content.clone());
        assert_eq!(replied_event_id(&event).map(EventId::as_str), want, "content {content}");
    }
}

#[test]
fn test_unsupported_types_give_reasons() {
    let opts = ToQqOptions::new("Alice");
    let cases = [
        (json!({"msgtype": "m.file", "body": "a.pdf", "url": "mxc://x/y"}), "cannot receive files"),
        (
            json!({"msgtype": "m.audio", "body": "a.ogg", "url": "mxc://x/y"}),
            "cannot receive audio",
        ),
        (
            json!({"msgtype": "m.video", "body": "a.mp4", "url": "mxc://x/y"}),
            "cannot receive videos",
        ),
        (
            json!({"msgtype": "m.location", "body": "here", "geo_uri": "geo:1,2"}),
            "cannot receive locations",
        ),
        (json!({"msgtype": "m.text", "body": "  "}), "no text"),
        (json!({"msgtype": "m.emote", "body": ""}), "no text"),
        (
            json!({"msgtype": "m.image", "body": "a.png", "file": {"url": "mxc://x/y", "v": "v2",
                "key": {"kty": "oct", "key_ops": ["encrypt", "decrypt"], "alg": "A256CTR",
                "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ext": true},
                "iv": "AAAAAAAAAAAAAAAAAAAAAA", 
                "hashes": {"sha256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}),
            "encrypted pictures",
        ),
        (
            json!({"msgtype": "m.text", "body": "* x",
                "m.new_content": {"msgtype": "m.image", "body": "a.png", "url": "mxc://x/y"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"}}),
            "cannot edit",
        ),
    ];
    for (content, want) in cases {
        let result = convert(content.clone(), &opts);
        let reason = result.clone().err().unwrap_or_default();
        assert!(reason.contains(want), "{content}: {result:?}");
    }
}

#[test]
fn test_image() {
    let image = |body: &str, filename: Option<&str>| {
        let mut content = json!({"msgtype": "m.image", "body": body, "url": "mxc://example.org/abc",
            "info": {"mimetype": "image/png", "size": 1234, "w": 1, "h": 1}});
        if let Some(name) = filename {
            content["filename"] = json!(name);
        }
        event(content)
    };
    let out = matrix_to_qq(&image("cat.png", None), &ToQqOptions::new("Alice")).unwrap();
    let want = OutgoingQq::Image {
        mxc: "mxc://example.org/abc".into(),
        filename: None,
        mimetype: Some("image/png".to_owned()),
        size: Some(1234),
        caption: vec![],
    };
    assert_eq!(out, vec![want]);
    let relay =
        ToQqOptions { relay_template: Some(DEFAULT_RELAY_TEMPLATE), ..ToQqOptions::new("Bob") };
    let cases: Vec<(RoomMessageEventContent, Vec<Segment>)> = vec![
        (image("cat.png", None), vec![text("\u{2068}Bob\u{2069}:")]),
        (image("cat.png", Some("cat.png")), vec![text("\u{2068}Bob\u{2069}:")]),
        (
            image("look /微笑", Some("cat.png")),
            vec![text("\u{2068}Bob\u{2069}: look "), Segment::Face(14)],
        ),
    ];
    for (content, want) in cases {
        let out = matrix_to_qq(&content, &relay).unwrap();
        let caption = match out.as_slice() {
            [OutgoingQq::Image { caption, .. }] => caption.clone(),
            _ => vec![text(&format!("unexpected {out:?}"))],
        };
        assert_eq!(caption, want);
    }
    // A caption too long for one message goes first as text; the picture follows alone.
    let long = "word ".repeat(300);
    let out = matrix_to_qq(&image(&long, Some("cat.png")), &ToQqOptions::new("Alice")).unwrap();
    assert!(out.len() >= 3, "{out:?}");
    assert!(matches!(out.last(), Some(OutgoingQq::Image { caption, .. }) if caption.is_empty()));
}

/// All text of the messages joined, faces as `{N}`.
fn joined(messages: &[Vec<Segment>]) -> String {
    let mut out = String::new();
    for segment in messages.iter().flatten() {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Face(id) => out.push_str(&format!("{{{id}}}")),
            other => out.push_str(&format!("{other:?}")),
        }
    }
    out
}

/// Text bytes of one message, faces at their cost.
fn cost(message: &[Segment]) -> usize {
    message.iter().map(|s| if let Segment::Text(t) = s { t.len() } else { FACE_COST }).sum()
}

#[test]
fn test_long_text_split_in_order() {
    let opts = ToQqOptions::new("Alice");
    let words: Vec<String> = (0..400).map(|i| format!("w{i:03}")).collect();
    let body = words.join(" ");
    let messages = convert(json!({"msgtype": "m.text", "body": body}), &opts).unwrap();
    assert!(messages.len() >= 3, "{} messages", messages.len());
    assert_eq!(joined(&messages), body);
    for message in &messages {
        assert!(cost(message) <= MAX_TEXT_BYTES, "{message:?}");
        // Cuts fall after whitespace (protocol §5.5), so no word is broken.
        if let Some(Segment::Text(t)) = message.last() {
            assert!(t.ends_with(' ') || body.ends_with(t.as_str()), "cut inside a word: {t:?}");
        }
    }
    // Chinese text without spaces is cut on character boundaries, faces kept in place.
    let cjk = format!("{}/微笑{}", "中".repeat(300), "文".repeat(300));
    let messages = convert(json!({"msgtype": "m.text", "body": cjk}), &opts).unwrap();
    assert_eq!(joined(&messages), format!("{}{{14}}{}", "中".repeat(300), "文".repeat(300)));
    assert!(messages.iter().all(|m| cost(m) <= MAX_TEXT_BYTES));
    // Relay prefix in the first message only, suffix-free template.
    let relay = ToQqOptions { relay_template: Some(DEFAULT_RELAY_TEMPLATE), ..opts.clone() };
    let messages = convert(json!({"msgtype": "m.text", "body": "x".repeat(2000)}), &relay).unwrap();
    assert_eq!(joined(&messages), format!("\u{2068}Alice\u{2069}: {}", "x".repeat(2000)));
}

#[test]
fn test_split_segments_table() {
    let face = Segment::Face(1);
    let cases: Vec<(Vec<Segment>, usize, Vec<Vec<Segment>>)> = vec![
        (vec![text("abc")], 10, vec![vec![text("abc")]]),
        (vec![text("abcdefgh")], 4, vec![vec![text("abcd")], vec![text("efgh")]]),
        (vec![text("ab cdefg")], 5, vec![vec![text("ab ")], vec![text("cdefg")]]),
        (vec![face.clone(), face.clone()], 20, vec![vec![face.clone()], vec![face.clone()]]),
        (vec![text("a"), face.clone(), text("b")], 40, vec![vec![text("a"), face, text("b")]]),
        (vec![], 10, vec![]),
    ];
    for (segments, max, want) in cases {
        assert_eq!(split_segments(segments.clone(), max), want, "{segments:?} at {max}");
    }
}

#[test]
fn test_body_truncated_with_marker() {
    let opts = ToQqOptions { max_body_bytes: 10, ..ToQqOptions::new("Alice") };
    let messages =
        convert(json!({"msgtype": "m.text", "body": "0123456789abcdef"}), &opts).unwrap();
    assert_eq!(joined(&messages), "0123456789\n[… message truncated: 16 bytes in total]");
}

#[test]
fn test_font_is_applied() {
    let font = Font { name: "Arial".to_owned(), ..Font::default() };
    let opts = ToQqOptions { font: Some(font.clone()), ..ToQqOptions::new("Alice") };
    let out = matrix_to_qq(&event(json!({"msgtype": "m.text", "body": "x"})), &opts).unwrap();
    assert_eq!(out, vec![OutgoingQq::Text(Content::text("x").with_font(font))]);
}

fn arb_segment() -> impl proptest::strategy::Strategy<Value = Segment> {
    use proptest::prelude::*;
    prop_oneof!["(?s).{0,300}".prop_map(Segment::Text), (0u32..300).prop_map(Segment::Face),]
}

proptest::proptest! {
    #[test]
    fn test_split_segments_keeps_order_within_limit(
        segments in proptest::collection::vec(arb_segment(), 0..8),
        max in 16usize..800,
    ) {
        let messages = split_segments(segments.clone(), max);
        proptest::prop_assert_eq!(joined(&messages), joined(&[segments]));
        for message in &messages {
            proptest::prop_assert!(!message.is_empty());
            proptest::prop_assert!(cost(message) <= max, "{} > {}", cost(message), max);
        }
    }

    #[test]
    fn test_matrix_to_qq_never_panics(body in "(?s).{0,2000}", name in "(?s).{0,40}") {
        let quote = ReplyQuote { name: &name, text: &body };
        let opts = ToQqOptions {
            relay_template: Some(DEFAULT_RELAY_TEMPLATE),
            reply_to: Some(quote),
            ..ToQqOptions::new(&name)
        };
        for msgtype in ["m.text", "m.emote", "m.notice"] {
            let content = event(json!({"msgtype": msgtype, "body": body,
                "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}}));
            if let Ok(messages) = matrix_to_qq(&content, &opts) {
                proptest::prop_assert!(!messages.is_empty());
            }
        }
    }
}

#[test]
fn test_excerpt_text_bytes_and_edited_event() {
    let long = "0123456789".repeat(10);
    // (content, excerpt, text bytes, edited event)
    let cases: Vec<(Value, &str, usize, Option<&str>)> = vec![
        (json!({"msgtype": "m.text", "body": "  hello\n\n  world "}), "hello world", 17, None),
        (json!({"msgtype": "m.text", "body": long}), &long[..60], 100, None),
        (
            json!({"msgtype": "m.text", "body": "> <@a:x> old\n\nnew text",
                   "m.relates_to": {"m.in_reply_to": {"event_id": "$old"}}}),
            "new text",
            22,
            None,
        ),
        (
            json!({"msgtype": "m.text", "body": "* fixed",
                   "m.new_content": {"msgtype": "m.text", "body": "fixed <b>"},
                   "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}}),
            "fixed <b>",
            9,
            Some("$orig"),
        ),
        (json!({"msgtype": "m.emote", "body": "waves"}), "* waves", 5, None),
        (
            json!({"msgtype": "m.text", "body": "", "format": "org.matrix.custom.html",
                   "formatted_body": "<script>x</script><p>from &amp; html</p>"}),
            "from & html",
            40,
            None,
        ),
        (json!({"msgtype": "m.image", "body": "p.png", "url": "mxc://x/y"}), "[picture]", 5, None),
        (json!({"msgtype": "m.file", "body": "f.zip", "url": "mxc://x/y"}), "[file]", 5, None),
        (json!({"msgtype": "org.example.custom", "body": "custom"}), "custom", 6, None),
    ];
    for (content, want_excerpt, want_bytes, want_edited) in cases {
        let parsed = event(content.clone());
        assert_eq!(excerpt(&parsed), want_excerpt, "{content}");
        assert_eq!(text_bytes(&parsed), want_bytes, "{content}");
        assert_eq!(edited_event_id(&parsed).map(|e| e.as_str()), want_edited, "{content}");
    }
}
