//! Text hygiene shared by both directions: control characters, truncation, HTML escaping, and
//! plain-text display names for relay mode (MATRIX.md §6.3).

use std::borrow::Cow;

/// The longest display name kept, in characters; longer names end in `…`.
pub const MAX_DISPLAYNAME_CHARS: usize = 64;

/// What a display name that is empty after cleaning becomes.
const UNNAMED: &str = "(unnamed)";

/// Normalises line ends (`\r\n` and a lone `\r` become `\n`) and removes every control character
/// except `\n` and `\t` (RELIABILITY.md §2, the line-break injection class of §3).
pub(crate) fn strip_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Cuts `text` to at most `max_bytes` bytes at a character boundary and appends a visible marker
/// saying how long the original was; text within the limit is returned unchanged. The marker is
/// not counted in `max_bytes`.
pub(crate) fn truncate_with_marker(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let mut cut = max_bytes;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = text.get(..cut).unwrap_or_default();
    Cow::Owned(format!("{head}\n[… message truncated: {} bytes in total]", text.len()))
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Characters that reorder text around them (bidi embeddings, overrides, isolates and marks).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// A display name as plain text for QQ (MATRIX.md §6.3): control and bidi characters removed,
/// line breaks and other whitespace runs collapsed to one space, trimmed, cut to
/// [`MAX_DISPLAYNAME_CHARS`], then wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE
/// (U+2068 … U+2069) so it cannot reorder the message around it. Never HTML: `<b>` stays literal.
/// A name that is empty after cleaning becomes `(unnamed)`.
pub fn sanitize_displayname(name: &str) -> String {
    let mut clean = String::with_capacity(name.len());
    let mut pending_space = false;
    let mut kept = 0usize;
    for c in name.chars() {
        if c.is_whitespace() || c == '\u{2028}' || c == '\u{2029}' {
            pending_space = true;
            continue;
        }
        if c.is_control() || is_bidi_control(c) {
            continue;
        }
        if kept >= MAX_DISPLAYNAME_CHARS {
            clean.push('…');
            break;
        }
        if pending_space && !clean.is_empty() {
            clean.push(' ');
        }
        pending_space = false;
        clean.push(c);
        kept += 1;
    }
    if clean.is_empty() {
        clean.push_str(UNNAMED);
    }
    format!("\u{2068}{clean}\u{2069}")
}

/// The relay template expanded around the message: `(before, after)` with `{displayname}`
/// replaced by the sanitised name and `{userid}` by `userid` (controls stripped). Placeholders are replaced in one pass over the template only,
/// so a display name containing `{message}` stays literal. Only the first `{message}` marks the
/// message's place (later ones vanish); a template without one gets the message after a space.
pub(crate) fn relay_parts(template: &str, displayname: &str, userid: &str) -> (String, String) {
    const NAME: &str = "{displayname}";
    const USERID: &str = "{userid}";
    const MESSAGE: &str = "{message}";
    let name = sanitize_displayname(displayname);
    let userid: String =
        userid.chars().filter(|c| !c.is_control() && !is_bidi_control(*c)).collect();
    let mut before = String::new();
    let mut after = String::new();
    let mut seen_message = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        let out = if seen_message { &mut after } else { &mut before };
        if let Some(tail) = rest.strip_prefix(NAME) {
            out.push_str(&name);
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix(USERID) {
            out.push_str(&userid);
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix(MESSAGE) {
            seen_message = true;
            rest = tail;
        } else {
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    if !seen_message {
        before.push(' ');
    }
    (before, after)
}

/// Formats a relayed message (MATRIX.md §6.3): `template` with `{displayname}` (sanitised by
/// [`sanitize_displayname`]) and `{message}` (as given) filled in, e.g. the default
/// `{displayname}: {message}`. No other placeholders and no code: anything else in the template is
/// literal. A template without `{message}` gets the message appended after a space, so a message
/// is never lost to a bad template.
pub fn relay_format(template: &str, displayname: &str, message: &str) -> String {
    let (before, after) = relay_parts(template, displayname, "");
    format!("{before}{message}{after}")
}

/// One relayed line (MATRIX.md §6.3): `template` with `{displayname}` (sanitised), `{userid}`
/// and `{message}` filled in, trailing whitespace removed (a picture's line with an empty
/// caption). Expansion is one pass, as in [`relay_format`].
pub fn relay_line(template: &str, displayname: &str, userid: &str, message: &str) -> String {
    let (before, after) = relay_parts(template, displayname, userid);
    format!("{before}{message}{after}").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_strip_controls() {
        let cases = [
            ("plain", "plain"),
            ("a\r\nb\rc\nd", "a\nb\nc\nd"),
            ("tab\there", "tab\there"),
            ("nul\0bell\u{7}esc\u{1b}[31m", "nulbellesc[31m"),
            ("c1\u{85}del\u{7f}", "c1del"),
            ("emoji 😀 中文", "emoji 😀 中文"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_controls(input), want, "input {input:?}");
        }
    }

    #[test]
    fn test_truncate_with_marker() {
        assert_eq!(truncate_with_marker("short", 10), "short");
        assert_eq!(
            truncate_with_marker("abcdef", 3),
            "abc\n[… message truncated: 6 bytes in total]"
        );
        // 中 is three bytes: a cut at 4 falls inside the second one and backs off to 3.
        assert_eq!(truncate_with_marker("中中", 4), "中\n[… message truncated: 6 bytes in total]");
    }

    #[test]
    fn test_escape_html() {
        assert_eq!(
            escape_html(r#"<script>alert("x&y")</script> it's"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; it&#39;s"
        );
    }

    #[test]
    fn test_sanitize_displayname_hostile() {
        let cases = [
            ("Alice", "\u{2068}Alice\u{2069}"),
            ("evil\u{202e}txt.exe", "\u{2068}eviltxt.exe\u{2069}"),
            ("two\nlines\r\nname", "\u{2068}two lines name\u{2069}"),
            ("<b>bold</b> &amp;", "\u{2068}<b>bold</b> &amp;\u{2069}"),
            ("  \u{2067}spaced\u{2069}  out ", "\u{2068}spaced out\u{2069}"),
            ("\u{0}\u{1b}\n", "\u{2068}(unnamed)\u{2069}"),
            ("a\u{2028}b", "\u{2068}a b\u{2069}"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_displayname(input), want, "input {input:?}");
        }
        let long = "x".repeat(100);
        let want = format!("\u{2068}{}…\u{2069}", "x".repeat(MAX_DISPLAYNAME_CHARS));
        assert_eq!(sanitize_displayname(&long), want);
    }

    #[test]
    fn test_relay_format() {
        let cases = [
            ("{displayname}: {message}", "Bob", "hi", "\u{2068}Bob\u{2069}: hi"),
            ("<{displayname}> {message}", "Bob", "hi", "<\u{2068}Bob\u{2069}> hi"),
            // The name's `{message}` is not a placeholder: expansion is one pass.
            ("{displayname}: {message}", "{message}", "hi", "\u{2068}{message}\u{2069}: hi"),
            ("{displayname} says", "Bob", "hi", "\u{2068}Bob\u{2069} says hi"),
            ("{message} ({message}) {x}", "Bob", "hi", "hi () {x}"),
            ("{displayname}: {message}", "a\u{202e}\nb", "m", "\u{2068}a b\u{2069}: m"),
        ];
        for (template, name, message, want) in cases {
            assert_eq!(relay_format(template, name, message), want, "template {template:?}");
        }
        let (before, after) =
            relay_parts("{displayname} ({userid}): {message}!", "Bob", "@b\u{7}:x");
        assert_eq!((before.as_str(), after.as_str()), ("\u{2068}Bob\u{2069} (@b:x): ", "!"));
    }
}
