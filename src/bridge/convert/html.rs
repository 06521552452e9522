//! Matrix `formatted_body` HTML to plain text for QQ: a small tag tokenizer (no regex), used only
//! when the plain `body` carries nothing (RELIABILITY.md §2: HTML never reaches QQ as markup).

/// Elements whose whole content is dropped: the reply fallback, scripts and styles.
const SKIPPED: &[&str] = &["mx-reply", "script", "style", "head", "title"];

/// Elements that end a line when they open or close.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "tr",
    "table",
    "hr",
    "details",
    "summary",
];

/// One tag as read: lowercase name, closing or not, and its `alt` attribute (for `<img>`).
struct Tag {
    name: String,
    closing: bool,
    alt: Option<String>,
}

/// Reads the tag starting at `s` (just after `<`); `None` if `s` does not start a tag, in which
/// case the `<` is literal text. Returns the tag and the bytes consumed, `>` included; an
/// unterminated tag consumes the rest of the input.
fn read_tag(s: &str) -> Option<(Tag, usize)> {
    let (closing, body) = match s.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if !body.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let name_len =
        body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(body.len());
    let name = body.get(..name_len).unwrap_or_default().to_ascii_lowercase();
    let mut alt = None;
    let mut rest = body.get(name_len..).unwrap_or_default();
    let mut consumed = s.len() - rest.len();
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        consumed += rest.len() - trimmed.len();
        rest = trimmed;
        let Some(c) = rest.chars().next() else { break };
        if c == '>' {
            consumed += 1;
            break;
        }
        let key_len = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len())
            .max(c.len_utf8());
        let key = rest.get(..key_len).unwrap_or_default().to_ascii_lowercase();
        let mut after = rest.get(key_len..).unwrap_or_default().trim_start();
        let mut value = None;
        if let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let (val, tail) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = v.get(1..).unwrap_or_default();
                    let end = inner.find(q).unwrap_or(inner.len());
                    let tail = inner.get(end + 1..).unwrap_or_default();
                    (inner.get(..end).unwrap_or_default(), tail)
                }
                _ => {
                    let end = v.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(v.len());
                    (v.get(..end).unwrap_or_default(), v.get(end..).unwrap_or_default())
                }
            };
            value = Some(val);
            after = tail;
        }
        if key == "alt" {
            alt = value.map(|v| html_escape::decode_html_entities(v).into_owned());
        }
        consumed += rest.len() - after.len();
        rest = after;
    }
    Some((Tag { name, closing, alt }, consumed.min(s.len())))
}

/// Appends a newline unless the text is empty or already ends in one.
fn line_break(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Plain text of an HTML fragment: tags removed, the `<mx-reply>` fallback and scripts dropped,
/// `<br>` and block ends as line breaks, list items prefixed `- `, `<img>` as its `alt`, entities
/// decoded once, whitespace collapsed outside `<pre>`. Never fails; stray `<` stays literal.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut skip_depth = 0usize;
    let mut pre_depth = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").and_then(|end| after.get(end + 3..)).unwrap_or_default();
            continue;
        }
        if let Some(after) = rest.strip_prefix('<')
            && let Some((tag, len)) = read_tag(after)
        {
            rest = after.get(len..).unwrap_or_default();
            let name = tag.name.as_str();
            if SKIPPED.contains(&name) {
                skip_depth =
                    if tag.closing { skip_depth.saturating_sub(1) } else { skip_depth + 1 };
                continue;
            }
            if skip_depth > 0 {
                continue;
            }
            if name == "pre" {
                pre_depth = if tag.closing { pre_depth.saturating_sub(1) } else { pre_depth + 1 };
            }
            if name == "br" {
                out.push('\n');
            } else if BLOCKS.contains(&name) {
                line_break(&mut out);
                if name == "li" && !tag.closing {
                    out.push_str("- ");
                }
            } else if name == "img"
                && let Some(alt) = tag.alt
            {
                out.push_str(&alt);
            }
            continue;
        }
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let end = rest.get(first..).and_then(|r| r.find('<')).map_or(rest.len(), |i| i + first);
        let chunk = rest.get(..end).unwrap_or_default();
        rest = rest.get(end..).unwrap_or_default();
        if skip_depth > 0 {
            continue;
        }
        let decoded = html_escape::decode_html_entities(chunk);
        if pre_depth > 0 {
            out.push_str(&decoded);
        } else {
            for c in decoded.chars() {
                if c.is_whitespace() && c != '\u{a0}' {
                    if !out.is_empty() && !out.ends_with([' ', '\n']) {
                        out.push(' ');
                    }
                } else {
                    out.push(c);
                }
            }
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_html_to_text() {
        let cases = [
            ("plain", "plain"),
            ("<b>bold</b> and <i>it</i>", "bold and it"),
            ("a<br>b<br/>c", "a\nb\nc"),
            ("<p>one</p><p>two</p>", "one\ntwo"),
            ("<ul><li>x</li><li>y</li></ul>", "- x\n- y"),
            ("<mx-reply><blockquote>old <b>quote</b></blockquote></mx-reply>new", "new"),
            ("<script>alert(1)</script>safe", "safe"),
            ("&lt;script&gt; &amp;amp; &quot;", "<script> &amp; \""),
            ("1 < 2 and 3 <> 4", "1 < 2 and 3 <> 4"),
            ("<a href=\"https://x/?a=1&amp;b=>2\">link</a>", "link"),
            ("<img src=\"mxc://x/y\" alt=\"&lt;:blob:&gt;\">", "<:blob:>"),
            ("<!-- hidden --> shown", "shown"),
            ("<b>unclosed", "unclosed"),
            ("<div unterminated", ""),
            ("  many \n\n spaces  ", "many spaces"),
            ("<pre>keep\n  this</pre>", "keep\n  this"),
            ("<font color=\"#ff0000\">红</font>", "红"),
        ];
        for (input, want) in cases {
            assert_eq!(html_to_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn test_hostile_html() {
        let cases = [
            ("<SCRIPT type=\"x\">alert('<b>hi</b>')</SCRIPT>ok", "ok"),
            ("<style>p{}</style><p>styled</p>", "styled"),
            ("<scr<script>ipt>x</script>", "ipt>x"),
            ("&#60;script&#62; &#x3c;b&#x3e; &bogus; &amp;lt;", "<script> <b> &bogus; &lt;"),
            ("<a href='javascript:alert(1)' onclick=\"x()\">click</a>", "click"),
            ("<img src=x onerror=alert(1) alt=\"pic\">", "pic"),
            ("<b><i><u><s>deep</s></u></i></b>", "deep"),
            ("<ol><li><ul><li>nested</li></ul></li></ol>", "- \n- nested"),
            ("<mx-reply><mx-reply>x</mx-reply></mx-reply>after", "after"),
            ("<!-- unterminated comment", ""),
        ];
        for (input, want) in cases {
            assert_eq!(html_to_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn test_huge_nesting_is_linear_without_recursion() {
        let depth = 200_000;
        let html = format!("{}x{}", "<div><b>".repeat(depth), "</b></div>".repeat(depth));
        assert_eq!(html_to_text(&html), "x");
        let scripts =
            format!("{}hidden{}shown", "<script>".repeat(depth), "</script>".repeat(depth));
        assert_eq!(html_to_text(&scripts), "shown");
        let open_tags = "<a ".repeat(depth);
        assert_eq!(html_to_text(&open_tags), "");
    }

    proptest::proptest! {
        #[test]
        fn test_html_to_text_never_panics(html in "(?s)[<>/a-z=\"' !\\-&;#0-9中]{0,200}") {
            let text = html_to_text(&html);
            proptest::prop_assert!(text.len() <= html.len() * 4 + 4);
        }
    }
}
