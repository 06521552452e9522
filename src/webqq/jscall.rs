//! Parsing the JavaScript calls ptlogin answers with: `ptui_checkVC(…)`, `ptuiCB(…)`,
//! `ptui_auth_CB(…)` (protocol §1.2.1, §1.2.5, §1.3.3, §1.4).
//!
//! Real answers quote arguments with single quotes, put a space before the last argument and may
//! contain `\xNN` escapes (the salt). The parser is tolerant of spacing, refuses anything else, and
//! never panics on hostile input.

/// The arguments of a JavaScript call `name('a','b', 'c');`, unescaped.
///
/// Returns `None` when the text is not a call of `name` with single- or double-quoted string
/// arguments. `\xNN` escapes become the char U+00NN, so a salt can be read back as bytes with
/// [`latin1_bytes`].
pub fn parse_call(text: &str, name: &str) -> Option<Vec<String>> {
    let text = text.trim().trim_start_matches('\u{feff}');
    let rest = text.strip_prefix(name)?.trim_start();
    let mut chars = rest.strip_prefix('(')?.chars().peekable();
    let mut args = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next()? {
            ')' if args.is_empty() => break,
            quote @ ('\'' | '"') => {
                args.push(read_quoted(&mut chars, quote)?);
            }
            _ => return None,
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next()? {
            ',' => continue,
            ')' => break,
            _ => return None,
        }
    }
    let tail: String = chars.collect();
    let tail = tail.trim();
    (tail.is_empty() || tail == ";").then_some(args)
}

fn read_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    quote: char,
) -> Option<String> {
    let mut out = String::new();
    loop {
        match chars.next()? {
            c if c == quote => return Some(out),
            '\\' => match chars.next()? {
                'x' => {
                    let hi = chars.next()?.to_digit(16)?;
                    let lo = chars.next()?.to_digit(16)?;
                    out.push(char::from_u32(hi * 16 + lo)?);
                }
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
}

/// The bytes of a string whose chars are all below U+0100 (a decoded `\xNN` sequence).
pub fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Writes bytes as JavaScript `\xNN` escapes, the way ptlogin sent the salt.
pub fn js_hex_escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

/// Formats a JavaScript call the way ptlogin did: single quotes, `', '` before the last argument.
pub fn format_call(name: &str, args: &[&str]) -> String {
    let mut out = format!("{name}(");
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == args.len() { ", " } else { "," });
        }
        out.push('\'');
        for c in arg.chars() {
            match c {
                '\'' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        out.push('\'');
    }
    out.push_str(");");
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Texts made of the pieces a JavaScript call is made of, so most of them come close to one.
    fn arb_call_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("ptuiCB"),
            Just("("),
            Just(")"),
            Just("'"),
            Just("\""),
            Just(","),
            Just(" "),
            Just(";"),
            Just("\\"),
            Just("\\x"),
            Just("4f"),
            Just("\u{feff}"),
            Just("你"),
            Just("a"),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    #[test]
    fn test_parse_seed_answers() {
        let args = parse_call(
            "ptui_checkVC('1','4GJSgm18Bw-8yw5JGKpSOXH-0idqvaCU','\\x00\\x00\\x00\\x00\\xa5\\x13\\xed\\x18');",
            "ptui_checkVC",
        )
        .unwrap();
        assert_eq!(args.len(), 3);
        assert_eq!(latin1_bytes(&args[2]).unwrap(), vec![0, 0, 0, 0, 0xa5, 0x13, 0xed, 0x18]);
        let cb = parse_call("ptuiCB('4','2','','0','页面过期，请重试。*', '123774072');", "ptuiCB")
            .unwrap();
        assert_eq!(cb, ["4", "2", "", "0", "页面过期，请重试。*", "123774072"]);
    }

    #[test]
    fn test_format_then_parse_round_trips() {
        let text = format_call(
            "ptuiCB",
            &["0", "0", "http://x/?a=1&b='2'", "0", "登录成功！", "呼吸 (糗百)"],
        );
        assert!(text.contains("', '呼吸"));
        let args = parse_call(&text, "ptuiCB").unwrap();
        assert_eq!(args[2], "http://x/?a=1&b='2'");
        assert_eq!(args[5], "呼吸 (糗百)");
    }

    #[test]
    fn test_rejects_garbage() {
        for bad in [
            "",
            "ptuiCB",
            "ptuiCB(",
            "ptuiCB('a'",
            "ptuiCB('a' 'b')",
            "x('a')",
            "ptuiCB('\\x4')",
            "ptuiCB('a'); alert(1)",
        ] {
            assert!(parse_call(bad, "ptuiCB").is_none(), "{bad}");
        }
        assert_eq!(parse_call("ptuiCB()", "ptuiCB").unwrap(), Vec::<String>::new());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn test_parse_call_never_panics(text in prop_oneof![arb_call_text(), "(?s).{0,48}"]) {
            if let Some(args) = parse_call(&text, "ptuiCB") {
                prop_assert!(text.contains("ptuiCB("));
                for arg in &args {
                    let _ = latin1_bytes(arg);
                }
            }
        }

        #[test]
        fn test_format_call_round_trips(args in prop::collection::vec("(?s).{0,12}", 0..7)) {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            prop_assert_eq!(parse_call(&format_call("ptuiCB", &refs), "ptuiCB"), Some(args));
        }

        #[test]
        fn test_hex_escapes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
            let text = format!("f('{}');", js_hex_escape(&bytes));
            let args = parse_call(&text, "f").unwrap();
            prop_assert_eq!(latin1_bytes(&args[0]), Some(bytes));
        }
    }
}
