//! QQ → Matrix: a received WebQQ [`Content`] as an ordered list of Matrix message parts.
//!
//! Text and faces merge into text parts; each picture is its own part for the caller to fetch.

use crate::bridge::convert::faces::face_to_text;
use crate::bridge::convert::text::{escape_html, strip_controls, truncate_with_marker};
use crate::webqq::content::{Content, Font, Segment, unescape_entities};

/// Default cap on a text part's `body`, in bytes. A Matrix event is at most 64 KiB as a whole and
/// the formatted body can be larger than the body, so the body gets well under half of that.
pub const DEFAULT_MAX_BODY_BYTES: usize = 24 * 1024;

/// Shown for an element we cannot render (protocol §5.1: "unknown — show a placeholder").
pub const UNSUPPORTED_ELEMENT: &str = "[unsupported QQ element]";

/// Shown for a message with nothing renderable: only a font (typically a SmartQQ-era picture,
/// protocol §5.1) or a magic face's `[""]` (protocol §4.2).
pub const NOTHING_RENDERABLE: &str = "[QQ message the web client could not show, often a picture]";

/// Shown for a received `offpic` whose upload failed (`success: 0`).
pub const FAILED_PICTURE: &str = "[picture that failed to upload on QQ]";

/// How QQ content is rendered on Matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToMatrixOptions {
    /// Longest `body` of a text part, in bytes; longer text is cut with a visible marker.
    pub max_body_bytes: usize,
    /// Render the QQ font's bold / italic / underline in `formatted_body`.
    pub font_style: bool,
    /// Render the QQ font's colour (black excepted) in `formatted_body`. Off by default: most QQ
    /// clients sent a coloured font for every message, which reads as noise on Matrix.
    pub font_color: bool,
    /// Always add a `formatted_body`, even when the text has no styling.
    pub always_formatted: bool,
}

impl Default for ToMatrixOptions {
    /// [`DEFAULT_MAX_BODY_BYTES`], font style on, colour off, `formatted_body` only when styled.
    fn default() -> Self {
        ToMatrixOptions {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            font_style: true,
            font_color: false,
            always_formatted: false,
        }
    }
}

/// Where a received QQ picture lives; the caller fetches it with the matching endpoint
/// (protocol §2.18) and uploads it to Matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PictureRef {
    /// A group or discussion picture (`cface` object), fetched with `get_group_pic`.
    Group {
        /// `{GUID}.jpg`-style name.
        name: String,
        /// The picture's file id.
        file_id: u64,
        /// 16-character key.
        key: String,
        /// `ip:port` of the picture server: a parameter only, never connected to
        /// (RELIABILITY.md §2).
        server: String,
    },
    /// A buddy custom face (`cface` name), fetched with `get_cface2`.
    CustomFace {
        /// The file name.
        name: String,
    },
    /// A buddy or session picture (`offpic`), fetched with `get_offpic2`.
    Offline {
        /// The server path, e.g. `/7acccf74-...`.
        file_path: String,
    },
}

/// One Matrix message to send for a QQ message, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatrixPart {
    /// An `m.text`: `body` is plain text; `formatted_html`, when present, is safe HTML built only
    /// from escaped QQ text, `<br>` and font styling.
    Text {
        /// The plain body, entity-unescaped and control-free.
        body: String,
        /// `org.matrix.custom.html` formatted body, if any.
        formatted_html: Option<String>,
    },
    /// A picture to fetch from QQ and send as `m.image`.
    Image {
        /// Where the picture is.
        qq_ref: PictureRef,
    },
}

/// Converts received QQ content to Matrix parts, in display order (pure, no IO).
///
/// Text segments are entity-unescaped here (the decoder keeps them as on the wire, protocol §5.6),
/// controls stripped, `\r\n` made `\n`; faces become emoji or `/名字` ([`face_to_text`]); runs of
/// text and faces form one text part, trimmed, and whitespace-only runs are dropped (the 2013
/// server padded pictures with `" "`). Pictures are image parts. Unknown elements, send-form
/// pictures and failed `offpic`s become placeholder text, never nothing; content with nothing
/// renderable gives one [`NOTHING_RENDERABLE`] part. Never returns an empty list.
pub fn qq_to_matrix(content: &Content, opts: &ToMatrixOptions) -> Vec<MatrixPart> {
    let mut parts = Vec::new();
    let mut run = String::new();
    for segment in &content.segments {
        match segment {
            Segment::Text(text) => run.push_str(&strip_controls(&unescape_entities(text))),
            Segment::Face(id) => run.push_str(&face_to_text(*id)),
            Segment::GroupPicture { name, file_id, key, server } => {
                flush(&mut parts, &mut run, content.font.as_ref(), opts);
                let qq_ref = PictureRef::Group {
                    name: name.clone(),
                    file_id: *file_id,
                    key: key.clone(),
                    server: server.clone(),
                };
                parts.push(MatrixPart::Image { qq_ref });
            }
            Segment::CustomFace { name } => {
                flush(&mut parts, &mut run, content.font.as_ref(), opts);
                parts.push(MatrixPart::Image {
                    qq_ref: PictureRef::CustomFace { name: name.clone() },
                });
            }
            Segment::OffPic { file_path, success: true } => {
                flush(&mut parts, &mut run, content.font.as_ref(), opts);
                let qq_ref = PictureRef::Offline { file_path: file_path.clone() };
                parts.push(MatrixPart::Image { qq_ref });
            }
            Segment::OffPic { success: false, .. } => run.push_str(FAILED_PICTURE),
            // Send forms never arrive in poll2; if one does, the server sent something new.
            Segment::GroupCface { .. } | Segment::OffPicSend { .. } | Segment::Unknown(_) => {
                run.push_str(UNSUPPORTED_ELEMENT);
            }
        }
    }
    flush(&mut parts, &mut run, content.font.as_ref(), opts);
    if parts.is_empty() {
        parts.push(text_part(NOTHING_RENDERABLE, None, opts));
    }
    parts
}

/// Ends the current text run as a part, unless it is only whitespace.
fn flush(
    parts: &mut Vec<MatrixPart>,
    run: &mut String,
    font: Option<&Font>,
    opts: &ToMatrixOptions,
) {
    let text = run.trim();
    if !text.is_empty() {
        parts.push(text_part(text, font, opts));
    }
    run.clear();
}

/// A text part: the body cut to the limit, and the formatted body when styling asks for one and
/// it fits the same limit (else the body alone is sent: losing style, never text).
fn text_part(text: &str, font: Option<&Font>, opts: &ToMatrixOptions) -> MatrixPart {
    let body = truncate_with_marker(text, opts.max_body_bytes).into_owned();
    let style = font.map(|f| FontStyle::of(f, opts)).unwrap_or_default();
    let formatted_html = (opts.always_formatted || style.is_styled())
        .then(|| style.wrap(&escape_html(&body).replace('\n', "<br>")))
        .filter(|html| html.len() <= opts.max_body_bytes);
    MatrixPart::Text { body, formatted_html }
}

/// A text part sent by the bot for a QQ speaker without a ghost (an unknown group member): the
/// body reads `name: body`, and the formatted body, when there is one, gets the name escaped
/// (QQ names are remote text, RELIABILITY.md §2). The name is cleaned of controls and line
/// breaks first; images are returned unchanged.
pub fn with_speaker(part: &MatrixPart, name: &str) -> MatrixPart {
    let MatrixPart::Text { body, formatted_html } = part else { return part.clone() };
    let name = strip_controls(name).split_whitespace().collect::<Vec<_>>().join(" ");
    MatrixPart::Text {
        body: format!("{name}: {body}"),
        formatted_html: formatted_html
            .as_ref()
            .map(|html| format!("<strong>{}</strong>: {html}", escape_html(&name))),
    }
}

/// The HTML-relevant part of a QQ font (protocol §5.2).
#[derive(Default)]
struct FontStyle {
    bold: bool,
    italic: bool,
    underline: bool,
    /// Six validated hex digits, black excluded (it is every client's default).
    color: Option<String>,
}

impl FontStyle {
    fn of(font: &Font, opts: &ToMatrixOptions) -> FontStyle {
        let [bold, italic, underline] = font.style.map(|flag| flag != 0 && opts.font_style);
        // The colour is remote text placed in an attribute: accept exactly six hex digits.
        let color = Some(font.color.to_ascii_lowercase())
            .filter(|_| opts.font_color)
            .filter(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_hexdigit()) && c != "000000");
        FontStyle { bold, italic, underline, color }
    }

    fn is_styled(&self) -> bool {
        self.bold || self.italic || self.underline || self.color.is_some()
    }

    fn wrap(&self, inner: &str) -> String {
        let mut html = inner.to_owned();
        for (on, tag) in [(self.underline, "u"), (self.italic, "em"), (self.bold, "strong")] {
            if on {
                html = format!("<{tag}>{html}</{tag}>");
            }
        }
        match &self.color {
            Some(color) => format!("<font color=\"#{color}\">{html}</font>"),
            None => html,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A golden content sample, read at compile time (this module does no IO).
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/webqq/content/",
                    $name
                )),
            )
        };
    }

    fn decode(text: &str) -> Content {
        Content::from_received(&serde_json::from_str(text).unwrap()).unwrap()
    }

    fn text(body: &str) -> MatrixPart {
        MatrixPart::Text { body: body.to_owned(), formatted_html: None }
    }

    #[test]
    fn test_golden_fixtures() {
        let offline =
            PictureRef::Offline { file_path: "/7acccf74-2a59-4007-8701-7218bc70898d".into() };
        let group = PictureRef::Group {
            name: "{94E8E5BA-0C5B-4D5E-8A1B-8D1E9C7E5B2A}.jpg".into(),
            file_id: 445318646,
            key: "PN576E5TyB53muY9".into(),
            server: "124.115.11.111:8000".into(),
        };
        let custom = PictureRef::CustomFace { name: "5F7E31F0001EF4310865F1FF4549B12B.jpg".into() };
        let cases: Vec<((&str, &str), Vec<MatrixPart>)> = vec![
            (fixture!("received_2013_text.json"), vec![text("hii")]),
            (fixture!("received_smartqq_text.json"), vec![text("123")]),
            (fixture!("received_smartqq_2018_trailing.json"), vec![text("123")]),
            (fixture!("received_sess_face.json"), vec![text("2载3 😕")]),
            (fixture!("received_escaped.json"), vec![text("a <b> &amp; \"q\" '你 end\nline2")]),
            (fixture!("received_font_only.json"), vec![text(NOTHING_RENDERABLE)]),
            (fixture!("received_magic_face.json"), vec![text(NOTHING_RENDERABLE)]),
            (fixture!("received_offpic.json"), vec![MatrixPart::Image { qq_ref: offline }]),
            (fixture!("received_group_picture.json"), vec![MatrixPart::Image { qq_ref: group }]),
            (
                fixture!("received_buddy_custom_face.json"),
                vec![MatrixPart::Image { qq_ref: custom }],
            ),
            (
                fixture!("received_unknown_segment.json"),
                vec![text("see [unsupported QQ element][unsupported QQ element]!")],
            ),
        ];
        for ((name, text), want) in cases {
            assert_eq!(qq_to_matrix(&decode(text), &ToMatrixOptions::default()), want, "{name}");
        }
    }

    #[test]
    fn test_html_escaping() {
        let opts = ToMatrixOptions { always_formatted: true, ..ToMatrixOptions::default() };
        // Received text is entity-escaped on the wire (protocol §5.6), so `<script>` arrives as
        // `&lt;script&gt;`; a raw `<b>` is also possible from a lax server.
        let cases = [
            (
                "&lt;script&gt;alert(1)&lt;/script&gt;",
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("<b>not bold</b>", "<b>not bold</b>", "&lt;b&gt;not bold&lt;/b&gt;"),
            ("a &amp;amp; b", "a &amp; b", "a &amp;amp; b"),
            ("&quot;x&quot; 'y'", "\"x\" 'y'", "&quot;x&quot; &#39;y&#39;"),
            ("line1\r\nline2\nline3", "line1\nline2\nline3", "line1<br>line2<br>line3"),
            ("nul\u{0}esc\u{1b}", "nulesc", "nulesc"),
        ];
        for (wire, body, html) in cases {
            let content = Content::text(wire);
            let want = MatrixPart::Text { body: body.into(), formatted_html: Some(html.into()) };
            assert_eq!(qq_to_matrix(&content, &opts), vec![want], "wire {wire:?}");
        }
    }

    #[test]
    fn test_speaker_prefix_is_escaped_in_html() {
        let styled = ToMatrixOptions { always_formatted: true, ..ToMatrixOptions::default() };
        let cases = [
            // (QQ name, wire text, options, body, formatted body)
            (
                "<script>x</script>",
                "hi",
                &styled,
                "<script>x</script>: hi",
                Some("<strong>&lt;script&gt;x&lt;/script&gt;</strong>: hi"),
            ),
            (
                "A & \"B\" 'C'",
                "&lt;i&gt;",
                &styled,
                "A & \"B\" 'C': <i>",
                Some("<strong>A &amp; &quot;B&quot; &#39;C&#39;</strong>: &lt;i&gt;"),
            ),
            (
                "two\nlines\u{1b}",
                "t",
                &styled,
                "two lines: t",
                Some("<strong>two lines</strong>: t"),
            ),
            ("<b>", "plain", &ToMatrixOptions::default(), "<b>: plain", None),
        ];
        for (name, wire, opts, body, html) in cases {
            let parts = qq_to_matrix(&Content::text(wire), opts);
            let want = MatrixPart::Text { body: body.into(), formatted_html: html.map(Into::into) };
            assert_eq!(parts.iter().map(|p| with_speaker(p, name)).collect::<Vec<_>>(), vec![want]);
        }
        let image = MatrixPart::Image { qq_ref: PictureRef::CustomFace { name: "x.jpg".into() } };
        assert_eq!(with_speaker(&image, "<b>"), image);
    }

    #[test]
    fn test_font_style() {
        let styled = |style: [u8; 3], color: &str| {
            let font = Font { style, color: color.into(), ..Font::default() };
            let opts = ToMatrixOptions { font_color: true, ..ToMatrixOptions::default() };
            let parts = qq_to_matrix(&Content::text("a<b").with_font(font), &opts);
            match parts.as_slice() {
                [MatrixPart::Text { formatted_html, .. }] => formatted_html.clone(),
                _ => Some(format!("unexpected parts {parts:?}")),
            }
        };
        assert_eq!(styled([0, 0, 0], "000000"), None);
        assert_eq!(styled([1, 0, 0], "000000").as_deref(), Some("<strong>a&lt;b</strong>"));
        assert_eq!(
            styled([1, 1, 1], "000000").as_deref(),
            Some("<strong><em><u>a&lt;b</u></em></strong>")
        );
        assert_eq!(
            styled([0, 0, 0], "004FAA").as_deref(),
            Some("<font color=\"#004faa\">a&lt;b</font>")
        );
        // A hostile colour is never placed in the attribute.
        assert_eq!(styled([0, 0, 0], "\"><script>"), None);
        // Defaults: colour off; with style off too, no formatted body at all.
        let font = Font { color: "ff0000".into(), ..Font::default() };
        let parts = qq_to_matrix(&Content::text("x").with_font(font), &ToMatrixOptions::default());
        assert_eq!(parts, vec![text("x")]);
        let off = ToMatrixOptions { font_style: false, ..ToMatrixOptions::default() };
        let font = Font { style: [1, 0, 0], ..Font::default() };
        assert_eq!(qq_to_matrix(&Content::text("x").with_font(font), &off), vec![text("x")]);
    }

    #[test]
    fn test_mixed_order_and_merging() {
        let content = Content::from_received(&json!([
            "look ", ["face", 14], ["face", 74], " here:",
            ["offpic", {"success": 1, "file_path": "/p1"}],
            "", " ",
            ["cface", "x.jpg", ""],
            "after", ["face", 999],
            ["offpic", {"success": 0, "file_path": ""}]
        ]))
        .unwrap();
        let want = vec![
            text("look 🙂/可爱 here:"),
            MatrixPart::Image { qq_ref: PictureRef::Offline { file_path: "/p1".into() } },
            MatrixPart::Image { qq_ref: PictureRef::CustomFace { name: "x.jpg".into() } },
            text("after[face 999][picture that failed to upload on QQ]"),
        ];
        assert_eq!(qq_to_matrix(&content, &ToMatrixOptions::default()), want);
    }

    #[test]
    fn test_long_text_truncated_with_marker() {
        let opts =
            ToMatrixOptions { max_body_bytes: 10, always_formatted: true, ..Default::default() };
        let parts = qq_to_matrix(&Content::text("0123456789abcdef"), &opts);
        let want = MatrixPart::Text {
            body: "0123456789\n[… message truncated: 16 bytes in total]".into(),
            // The formatted body would exceed the limit: the plain body alone is kept.
            formatted_html: None,
        };
        assert_eq!(parts, vec![want]);
    }

    proptest::proptest! {
        #[test]
        fn test_qq_to_matrix_never_empty(value in crate::webqq::content::tests::arb_json()) {
            if let Ok(content) = Content::from_received(&value) {
                let parts = qq_to_matrix(&content, &ToMatrixOptions::default());
                proptest::prop_assert!(!parts.is_empty());
                for part in parts {
                    if let MatrixPart::Text { body, .. } = part {
                        proptest::prop_assert!(!body.trim().is_empty());
                        let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
                        proptest::prop_assert!(!body.contains(bad));
                    }
                }
            }
        }
    }
}
