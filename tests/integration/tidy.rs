//! The tidy test: ARCHITECTURE.md's invariants, checked over the source tree by `cargo test`.
//!
//! Text checks on files whose comments and literal contents are blanked out; every rule lives in a
//! table, and every checker has a self-test on a synthetic file, so no check can pass vacuously.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};

/// Line limit for a file under `src/` (STYLE.md §2: files stay under ~600 lines, split by job).
const MAX_LINES: usize = 600;

/// Files allowed over [`MAX_LINES`], each with the reason. An entry whose file is back under the
/// limit (or gone) fails too, so the list cannot rot.
const FILE_SIZE_ALLOW: &[(&str, &str)] = &[("src/webqq/crypto.rs", "tests make up a third")];

/// Calls that panic. Forbidden in `src/` outside `#[cfg(test)]` items (ARCHITECTURE.md: a panic
/// kills an actor and its supervisor silently, STYLE.md §5). `unwrap_or*` do not match.
const PANICKING: &[&str] = &[
    "unwrap(",
    "unwrap_err(",
    "expect(",
    "expect_err(",
    "panic!",
    "todo!",
    "dbg!",
    "unimplemented!",
    "unreachable!",
];

/// Test attributes that hide or invert a test (STYLE.md §8). Forbidden in `src/` and `tests/`.
const TEST_ATTRIBUTES: &[&str] = &["#[ignore", "#[should_panic"];

/// Which files a [`LayerRule`] or [`LiteralRule`] applies to.
enum Applies {
    /// Files whose path starts with this (a folder ending in `/`, or one file).
    Under(&'static str),
    /// Every file under `src/` except those whose path starts with one of these.
    OutsideOf(&'static [&'static str]),
}

impl Applies {
    fn contains(&self, path: &str) -> bool {
        match self {
            Applies::Under(prefix) => path.starts_with(prefix),
            Applies::OutsideOf(allowed) => !allowed.iter().any(|a| path.starts_with(a)),
        }
    }
}

/// A layering invariant: mentions that must not appear in some files' code (comments and string
/// literals do not count; grouped `use` trees are expanded first).
struct LayerRule {
    /// Where the rule holds.
    applies: Applies,
    /// A path or identifier, matched on identifier boundaries; a trailing `*` also matches longer
    /// identifiers (`actix*` matches `actix_web`).
    forbidden: &'static [&'static str],
    /// The invariant as ARCHITECTURE.md states it, for the failure message.
    invariant: &'static str,
}

/// The layering invariants of ARCHITECTURE.md (STYLE.md §3). Rules about folders that do not
/// exist yet hold vacuously and bite as soon as the folder appears.
const LAYER_RULES: &[LayerRule] = &[
    LayerRule {
        applies: Applies::Under("src/webqq/"),
        forbidden: &[
            "crate::account",
            "crate::bridge",
            "crate::matrix",
            "crate::store",
            "crate::emulator",
            "actix*",
            "ruma*",
            "matrix_sdk*",
        ],
        invariant: concat!(
            "webqq/ imports nothing from account, bridge, matrix, store or emulator, ",
            "nor actix, ruma or matrix-sdk"
        ),
    },
    LayerRule {
        applies: Applies::Under("src/emulator/"),
        forbidden: &[
            "webqq::client",
            "webqq::login",
            "webqq::session",
            "webqq::cookies",
            "WebQqClient",
        ],
        invariant: "emulator/ uses only webqq's wire types, ids and content, never the client",
    },
    LayerRule {
        applies: Applies::Under("src/matrix/"),
        forbidden: &["webqq", "crate::account", "crate::emulator"],
        invariant: "matrix/ imports nothing from webqq, account or emulator: no QQ type crosses it",
    },
    LayerRule {
        applies: Applies::Under("src/bridge/"),
        forbidden: &["WebQqClient", "reqwest*", "hyper*"],
        invariant: "bridge/ uses QQ data types but never WebQqClient or HTTP",
    },
    LayerRule {
        applies: Applies::Under("src/bridge/convert/"),
        forbidden: &["async", "tokio*", "std::fs", "std::net", "reqwest*"],
        invariant: "bridge/convert/ has no async fn and does no IO",
    },
    LayerRule {
        // The binary's `qq` commands (cli/qq.rs) are the protocol explorer issue 2 asks for;
        // they hold a client for one command's lifetime and never run alongside the bridge.
        applies: Applies::OutsideOf(&["src/webqq/", "src/account/", "src/cli/qq.rs"]),
        forbidden: &["WebQqClient"],
        invariant: "only account/ (and the binary's `qq` explorer commands) hold a WebQqClient",
    },
    LayerRule {
        applies: Applies::OutsideOf(&["src/matrix/bot/"]),
        forbidden: &["matrix_sdk*"],
        invariant: "only matrix/bot/ uses matrix-sdk",
    },
    LayerRule {
        applies: Applies::OutsideOf(&["src/main.rs", "src/cli/"]),
        forbidden: &["anyhow*", "clap*"],
        invariant: "only the binary (main.rs, cli/) uses anyhow and clap",
    },
    LayerRule {
        applies: Applies::OutsideOf(&["src/metrics.rs", "src/metrics/"]),
        forbidden: &[
            "prometheus*",
            "register_int_*",
            "register_uint_*",
            "register_counter*",
            "register_gauge*",
            "register_histogram*",
        ],
        invariant: "only metrics.rs (and its submodules) registers metrics",
    },
];

/// `std::thread::sleep` blocks an actix arbiter or a tokio worker (STYLE.md §4); kept out of the
/// layer table so it has its own test, but checked the same way (test modules included).
static NO_SLEEP: LayerRule = LayerRule {
    applies: Applies::OutsideOf(&[]),
    forbidden: &["thread::sleep"],
    invariant: "nothing in src/ calls std::thread::sleep",
};

/// A string-literal invariant: literals containing one of `needles` appear only in `home`
/// (outside `#[cfg(test)]` items).
struct LiteralRule {
    /// The one file allowed to spell these strings.
    home: &'static str,
    /// Substrings of string literals.
    needles: &'static [&'static str],
    /// The invariant as ARCHITECTURE.md states it.
    invariant: &'static str,
}

/// The string-literal invariants of ARCHITECTURE.md.
const LITERAL_RULES: &[LiteralRule] = &[LiteralRule {
    home: "src/bridge/ids.rs",
    needles: &["m.bridge", "uk.half-shot.bridge"],
    invariant: "only bridge/ids.rs spells the m.bridge state event type and key",
}];

/// Calls in `metrics.rs` whose first argument, when a string literal, is a metric name (the
/// `prometheus` crate's `Opts`/`HistogramOpts`/`IntCounter::new`/`opts!`, prometheus-client's
/// `register`). `register_*!(` macros are found separately.
const METRIC_NAME_CALLS: &[&str] =
    &["Opts::new(", "Counter::new(", "Gauge::new(", "opts!(", ".register(", ".register_with_unit("];

/// Suffixes Prometheus adds to a histogram's (`_bucket`, `_sum`, `_count`) or, with
/// prometheus-client, a counter's (`_total`) registered name.
const SERIES_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count", "_total"];

/// The metric-name prefix (MATRIX.md §7).
const METRIC_PREFIX: &str = "qqbridge_";

// ---------------------------------------------------------------------------------------------
// Findings and files.

/// One broken invariant at one place.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// Path relative to the repository root, `/`-separated.
    path: String,
    /// 1-based line.
    line: usize,
    /// What is wrong and which rule says so.
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

fn violation(path: &str, line: usize, message: String) -> Violation {
    Violation { path: path.to_owned(), line, message }
}

/// A file read from the tree.
struct SourceFile {
    /// Path relative to the repository root, `/`-separated.
    path: String,
    /// The contents.
    text: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the root), sorted. Skips `target/` (cargo-fuzz builds
/// there), `fixtures/` (data, not code) and hidden folders.
fn rust_files(dir: &str) -> Vec<SourceFile> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "fixtures") {
                    walk(root, &path, out);
                }
            } else if name.ends_with(".rs") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                let text = fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.push(SourceFile { path: rel, text });
            }
        }
    }
    let root = repo_root();
    let mut out = Vec::new();
    walk(&root, &root.join(dir), &mut out);
    out
}

/// The file's contents, or `None` when it does not exist (yet).
fn read_optional(rel: &str) -> Option<String> {
    fs::read_to_string(repo_root().join(rel)).ok()
}

fn assert_clean(what: &str, mut violations: Vec<Violation>) {
    violations.sort();
    violations.dedup();
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!("tidy: {what}: {} violation(s):\n{}\n", violations.len(), list.join("\n"));
    }
}

fn skipped(check: &str, missing: &str) {
    eprintln!("tidy: {check} skipped: {missing} does not exist yet");
}

// ---------------------------------------------------------------------------------------------
// A small Rust lexer: enough to tell code from comments and literals.

/// A string literal found by [`lex`].
#[derive(Debug)]
struct StrLit {
    /// Byte offset in [`Lexed::code`] of the literal's first character (its `b`/`r`/`c` prefix or
    /// its opening quote).
    start: usize,
    /// 1-based line of the opening quote.
    line: usize,
    /// The contents as written (escapes not processed).
    text: String,
}

/// A source file split into code and literals.
struct Lexed {
    /// The code with comments and the contents of string and char literals replaced by spaces;
    /// quotes and line breaks kept, so lines match the original.
    code: String,
    /// The string literals, in order.
    strings: Vec<StrLit>,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// For a raw string starting at `i` (`r"`, `r#"`, `br##"`, `cr"` …): the index of its opening
/// quote and its number of `#`.
fn raw_string_start(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(s.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    (s.get(j + hashes) == Some(&'"')).then_some((j + hashes, hashes))
}

fn lex(src: &str) -> Lexed {
    let s: Vec<char> = src.chars().collect();
    let mut code = String::with_capacity(src.len());
    let mut strings = Vec::new();
    let mut line = 1;
    // Copies `s[from..to]` into the code, blanked (`keep` = false) or as is.
    let emit = |code: &mut String, line: &mut usize, from: usize, to: usize, keep: bool| {
        for &c in &s[from..to.min(s.len())] {
            if c == '\n' {
                *line += 1;
                code.push('\n');
            } else {
                code.push(if keep { c } else { ' ' });
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let after_ident = i > 0 && is_ident(s[i - 1]);
        if c == '/' && s.get(i + 1) == Some(&'/') {
            let end = s[i..].iter().position(|&c| c == '\n').map_or(s.len(), |p| i + p);
            emit(&mut code, &mut line, i, end, false);
            i = end;
        } else if c == '/' && s.get(i + 1) == Some(&'*') {
            let (mut depth, mut j) = (0, i);
            while j < s.len() {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            emit(&mut code, &mut line, i, j, false);
            i = j;
        } else if let Some((open, hashes)) = raw_string_start(&s, i).filter(|_| !after_ident) {
            let mut close = open + 1;
            while close < s.len()
                && !(s[close] == '"'
                    && s[close + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes)
            {
                close += 1;
            }
            let close = close.min(s.len());
            let (start, lit_line) = (code.len(), line);
            emit(&mut code, &mut line, i, open + 1, true);
            emit(&mut code, &mut line, open + 1, close, false);
            emit(&mut code, &mut line, close, close + 1 + hashes, true);
            let text = s[open + 1..close.min(s.len())].iter().collect();
            strings.push(StrLit { start, line: lit_line, text });
            i = close + 1 + hashes;
        } else if c == '"' || (matches!(c, 'b' | 'c') && !after_ident && s.get(i + 1) == Some(&'"'))
        {
            let open = if c == '"' { i } else { i + 1 };
            let mut close = open + 1;
            while close < s.len() && s[close] != '"' {
                close += if s[close] == '\\' { 2 } else { 1 };
            }
            let close = close.min(s.len());
            let (start, lit_line) = (code.len(), line);
            emit(&mut code, &mut line, i, open + 1, true);
            emit(&mut code, &mut line, open + 1, close, false);
            emit(&mut code, &mut line, close, close + 1, true);
            let text = s[open + 1..close.min(s.len())].iter().collect();
            strings.push(StrLit { start, line: lit_line, text });
            i = close + 1;
        } else if c == '\'' && s.get(i + 1) == Some(&'\\') {
            // An escaped char literal ('\n', '\'', '\u{1F600}'): skip the escaped character, then
            // find the closing quote.
            let close = (i + 3..s.len()).find(|&j| s[j] == '\'').unwrap_or(s.len());
            emit(&mut code, &mut line, i, i + 1, true);
            emit(&mut code, &mut line, i + 1, close, false);
            emit(&mut code, &mut line, close, close + 1, true);
            i = close + 1;
        } else if c == '\'' && s.get(i + 2) == Some(&'\'') {
            // A plain char literal ('"', '{'); anything else after a quote is a lifetime or label.
            emit(&mut code, &mut line, i, i + 1, true);
            emit(&mut code, &mut line, i + 1, i + 2, false);
            emit(&mut code, &mut line, i + 2, i + 3, true);
            i += 3;
        } else {
            emit(&mut code, &mut line, i, i + 1, true);
            i += 1;
        }
    }
    Lexed { code, strings }
}

impl Lexed {
    /// 1-based line of a byte offset in `code`.
    fn line_of(&self, offset: usize) -> usize {
        self.code[..offset].matches('\n').count() + 1
    }

    /// Per line (index 0 = line 1): does it belong to a `#[cfg(test)]` item? The item is the
    /// attribute, any further attributes, and the item up to its `;` or its closing brace. A file
    /// with `#![cfg(test)]` is test code throughout.
    fn test_lines(&self) -> Vec<bool> {
        let code = self.code.as_bytes();
        let lines = self.code.lines().count().max(1);
        if self.code.contains("#![cfg(test)]") {
            return vec![true; lines];
        }
        let mut marks = vec![false; lines];
        for (at, attr) in self.code.match_indices("#[cfg(test)]") {
            let mut j = at + attr.len();
            loop {
                while j < code.len() && code[j].is_ascii_whitespace() {
                    j += 1;
                }
                if code.get(j..j + 2) == Some(b"#[") {
                    j = close_of(code, j + 1).map_or(code.len(), |k| k + 1);
                } else {
                    break;
                }
            }
            let mut depth = 0i32;
            let end = loop {
                match code.get(j) {
                    None => break code.len(),
                    Some(b'(' | b'[') => depth += 1,
                    Some(b')' | b']') => depth -= 1,
                    Some(b';') if depth == 0 => break j,
                    Some(b'{') if depth == 0 => break close_of(code, j).unwrap_or(code.len()),
                    Some(_) => {}
                }
                j += 1;
            };
            let (first, last) = (self.line_of(at), self.line_of(end.min(code.len())));
            for mark in marks.iter_mut().take(last).skip(first - 1) {
                *mark = true;
            }
        }
        marks
    }

    /// Every path a `use` item names, with its grouped trees expanded (`use a::{b, c::{d}};`
    /// names `a::b` and `a::c::d`), and the line of the `use`.
    fn use_paths(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for at in find_token(&self.code, "use") {
            let rest = &self.code[at + 3..];
            let Some(end) = rest.find(';') else { continue };
            let tree = squeeze(&rest[..end]);
            for path in expand_use_tree(&tree) {
                out.push((self.line_of(at), path));
            }
        }
        out
    }
}

/// The index of the bracket closing the one at `open` (`(`, `[` or `{`), counting all three.
fn close_of(code: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (j, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// Collapses whitespace, dropping it entirely next to `:`, `{`, `}` and `,`.
fn squeeze(tree: &str) -> String {
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut out = String::new();
    for word in words {
        let glue = out.ends_with([':', '{', '}', ',']) || word.starts_with([':', '{', '}', ',']);
        if !out.is_empty() && !glue {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn expand_use_tree(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else { return vec![tree.to_owned()] };
    let Some(close) = close_of(tree.as_bytes(), open) else { return vec![tree.to_owned()] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..close];
    let (mut parts, mut depth, mut from) = (Vec::new(), 0, 0);
    for (j, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[from..j]);
                from = j + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[from..]);
    let mut out = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        for tail in expand_use_tree(part) {
            if tail == "self" {
                out.push(prefix.trim_end_matches("::").to_owned());
            } else {
                out.push(format!("{prefix}{tail}"));
            }
        }
    }
    out
}

/// Byte offsets where `pattern` occurs in `hay` on identifier boundaries. A trailing `*` drops the
/// boundary after the match; a match right after `#[` or `#![` (an attribute such as
/// `#[expect(…)]`) does not count.
fn find_token(hay: &str, pattern: &str) -> Vec<usize> {
    let (pat, prefix) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let lead = pat.starts_with(is_ident);
    let trail = !prefix && pat.ends_with(is_ident);
    hay.match_indices(pat)
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = &hay[..i];
            let after = &hay[i + pat.len()..];
            let glued_before = lead && before.ends_with(is_ident);
            let glued_after = trail && after.starts_with(is_ident);
            let in_attribute =
                before.trim_end().ends_with("#[") || before.trim_end().ends_with("#![");
            !(glued_before || glued_after || in_attribute)
        })
        .collect()
}

/// Files that are test code throughout: modules declared out of line by a `#[cfg(test)]` item
/// (`#[cfg(test)] mod tests;` in `content.rs` makes `content/tests.rs` test code), and every
/// module declared inside such a file.
fn test_only_files(files: &[SourceFile]) -> BTreeSet<String> {
    let children = |file: &SourceFile, only_gated: bool| -> Vec<String> {
        let lexed = lex(&file.text);
        let tests = lexed.test_lines();
        let dir = match file.path.rsplit_once('/') {
            Some((dir, "mod.rs" | "lib.rs" | "main.rs")) => format!("{dir}/"),
            _ => format!("{}/", file.path.trim_end_matches(".rs")),
        };
        let mut out = Vec::new();
        for (n, line) in lexed.code.lines().enumerate() {
            let gated = tests.get(n).copied().unwrap_or(false);
            let Some(at) = find_token(line, "mod").first().copied() else { continue };
            let rest = line[at + 3..].trim();
            let Some(name) = rest.strip_suffix(';').map(str::trim) else { continue };
            if (gated || !only_gated) && name.chars().all(is_ident) {
                out.push(format!("{dir}{name}.rs"));
                out.push(format!("{dir}{name}/mod.rs"));
            }
        }
        out
    };
    let mut found: BTreeSet<String> = files.iter().flat_map(|f| children(f, true)).collect();
    loop {
        let more: Vec<String> = files
            .iter()
            .filter(|f| found.contains(&f.path))
            .flat_map(|f| children(f, false))
            .filter(|c| !found.contains(c))
            .collect();
        if more.is_empty() {
            break;
        }
        found.extend(more);
    }
    found.retain(|path| files.iter().any(|f| f.path == *path));
    found
}

// ---------------------------------------------------------------------------------------------
// The checkers: pure functions from a file to its violations.

/// Line 1 of every `src/` file is a `//!` doc (STYLE.md §9).
fn check_module_doc(path: &str, text: &str) -> Vec<Violation> {
    if text.starts_with("//!") {
        return Vec::new();
    }
    vec![violation(
        path,
        1,
        "line 1 must be a `//!` doc saying what the file owns (STYLE.md §9)".to_owned(),
    )]
}

/// No [`PANICKING`] call outside `#[cfg(test)]` items.
fn check_panics(path: &str, text: &str) -> Vec<Violation> {
    let lexed = lex(text);
    let tests = lexed.test_lines();
    let mut out = Vec::new();
    for (n, line) in lexed.code.lines().enumerate() {
        if tests.get(n).copied().unwrap_or(false) {
            continue;
        }
        for pattern in PANICKING {
            if !find_token(line, pattern).is_empty() {
                out.push(violation(
                    path,
                    n + 1,
                    format!(
                        "`{pattern}` outside #[cfg(test)]: return an error instead \
                         (no panics in src/)"
                    ),
                ));
            }
        }
    }
    out
}

/// No [`TEST_ATTRIBUTES`] anywhere.
fn check_test_attributes(path: &str, text: &str) -> Vec<Violation> {
    let lexed = lex(text);
    let mut out = Vec::new();
    for (n, line) in lexed.code.lines().enumerate() {
        for pattern in TEST_ATTRIBUTES {
            if !find_token(line, pattern).is_empty() {
                out.push(violation(
                    path,
                    n + 1,
                    format!(
                        "`{pattern}]`: assert today's behaviour and add a FIXME instead \
                         (STYLE.md §8)"
                    ),
                ));
            }
        }
    }
    out
}

/// The [`LayerRule`]s that apply to `path`, over code lines and expanded `use` paths.
fn check_layers(rules: &[LayerRule], path: &str, text: &str) -> Vec<Violation> {
    let lexed = lex(text);
    let mut places: Vec<(usize, String)> =
        lexed.code.lines().enumerate().map(|(n, l)| (n + 1, l.to_owned())).collect();
    places.extend(lexed.use_paths());
    let mut out = BTreeSet::new();
    for rule in rules.iter().filter(|r| r.applies.contains(path)) {
        for pattern in rule.forbidden {
            for (line, hay) in &places {
                if !find_token(hay, pattern).is_empty() {
                    let shown = pattern.trim_end_matches('*');
                    out.insert(violation(
                        path,
                        *line,
                        format!("mentions `{shown}`, but {} (ARCHITECTURE.md)", rule.invariant),
                    ));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The [`LiteralRule`]s: their strings only in their home file, outside test items.
fn check_literals(rules: &[LiteralRule], path: &str, text: &str) -> Vec<Violation> {
    let lexed = lex(text);
    let tests = lexed.test_lines();
    let mut out = Vec::new();
    for rule in rules.iter().filter(|r| r.home != path) {
        for lit in &lexed.strings {
            let in_test = tests.get(lit.line - 1).copied().unwrap_or(false);
            if let Some(needle) =
                rule.needles.iter().find(|n| lit.text.contains(*n)).filter(|_| !in_test)
            {
                out.push(violation(
                    path,
                    lit.line,
                    format!(
                        "string literal with `{needle}`, but {} (ARCHITECTURE.md)",
                        rule.invariant
                    ),
                ));
            }
        }
    }
    out
}

/// Files over [`MAX_LINES`] need an entry in `allow`.
fn check_file_size(path: &str, text: &str, allow: &[(&str, &str)]) -> Vec<Violation> {
    let lines = text.lines().count();
    if lines <= MAX_LINES || allow.iter().any(|(p, _)| *p == path) {
        return Vec::new();
    }
    vec![violation(
        path,
        MAX_LINES + 1,
        format!(
            "{lines} lines, over the {MAX_LINES}-line limit: split it by job, or add it to \
             FILE_SIZE_ALLOW in tests/integration/tidy.rs with a reason"
        ),
    )]
}

/// Entries of `allow` whose file is missing from `files` or back under the limit.
fn check_stale_allowances(files: &[SourceFile], allow: &[(&str, &str)]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, _) in allow {
        match files.iter().find(|f| f.path == *path) {
            Some(f) if f.text.lines().count() > MAX_LINES => {}
            Some(_) => out.push(violation(
                path,
                1,
                format!("back under {MAX_LINES} lines: remove its FILE_SIZE_ALLOW entry"),
            )),
            None => out.push(violation(
                path,
                1,
                "does not exist: remove its FILE_SIZE_ALLOW entry".to_owned(),
            )),
        }
    }
    out
}

/// The metric names `metrics.rs` registers, with their lines: string literals in the first
/// argument of [`METRIC_NAME_CALLS`] and `register_*!` macros (the "name positions"), plus every
/// literal spelling a whole `qqbridge_…` name (a name kept in a `const`). Test items are skipped.
fn metric_names(text: &str) -> Vec<(usize, String, bool)> {
    let lexed = lex(text);
    let tests = lexed.test_lines();
    let by_start: BTreeMap<usize, &StrLit> = lexed.strings.iter().map(|s| (s.start, s)).collect();
    let code = &lexed.code;
    let mut calls: Vec<usize> = METRIC_NAME_CALLS
        .iter()
        .flat_map(|call| code.match_indices(call).map(|(i, m)| i + m.len()))
        .collect();
    for at in find_token(code, "register_*") {
        let rest = &code[at..];
        let name_len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        let after = rest[name_len..].trim_start();
        if let Some(args) =
            after.strip_prefix('!').map(str::trim_start).and_then(|a| a.strip_prefix('('))
        {
            calls.push(code.len() - args.len());
        }
    }
    let mut out = Vec::new();
    for after_paren in calls {
        let first =
            after_paren + (code[after_paren..].len() - code[after_paren..].trim_start().len());
        if let Some(lit) = by_start.get(&first) {
            out.push((lit.line, lit.text.clone(), true));
        }
    }
    for lit in &lexed.strings {
        let whole = lit.text.len() > METRIC_PREFIX.len() && lit.text.chars().all(is_ident);
        if lit.text.starts_with(METRIC_PREFIX) && whole && !lit.text.ends_with('_') {
            out.push((lit.line, lit.text.clone(), false));
        }
    }
    out.retain(|(line, _, _)| !tests.get(line - 1).copied().unwrap_or(false));
    out.sort();
    out.dedup();
    out
}

/// Every metric name in a name position of `metrics.rs` starts with [`METRIC_PREFIX`].
fn check_metric_prefix(path: &str, text: &str) -> Vec<Violation> {
    metric_names(text)
        .into_iter()
        .filter(|(_, name, at_call)| *at_call && !name.starts_with(METRIC_PREFIX))
        .map(|(line, name, _)| {
            violation(
                path,
                line,
                format!(
                    "metric name \"{name}\" does not start with `{METRIC_PREFIX}` (MATRIX.md §7)"
                ),
            )
        })
        .collect()
}

/// Whole `qqbridge_…` names in free text (README, dashboard JSON, alert YAML), with lines. A
/// name ending in `_` is a prefix (`qqbridge_process_*`), not a name.
fn names_in_text(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for at in find_token(line, "qqbridge_*") {
            let rest = &line[at..];
            let name = &rest[..rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len())];
            if !name.ends_with('_') {
                out.push((n + 1, name.to_owned()));
            }
        }
    }
    out
}

/// Names defined by Prometheus recording rules (`record: qqbridge_…`).
fn recorded_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix("record:"))
        .map(|name| name.trim().trim_matches(['"', '\'']).to_owned())
        .collect()
}

/// `name` as a registered metric: itself when known, else without a series suffix when that is.
fn base_name<'a>(name: &'a str, known: &BTreeSet<String>) -> &'a str {
    if known.contains(name) {
        return name;
    }
    SERIES_SUFFIXES
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|base| known.contains(*base))
        .unwrap_or(name)
}

/// `metrics/README.md` lists exactly the registered metrics (the library-made
/// `qqbridge_process_*` names may be listed without being registered), and the dashboards and
/// alert rules in `uses` (path, text) name only listed, registered or recorded metrics.
fn check_metrics_catalogue(
    metrics_rs: &str,
    readme: &str,
    uses: &[(String, String)],
) -> Vec<Violation> {
    let registered: BTreeMap<String, usize> =
        metric_names(metrics_rs).into_iter().map(|(line, name, _)| (name, line)).collect();
    let registered_set: BTreeSet<String> = registered.keys().cloned().collect();
    let listed = names_in_text(readme);
    let listed_set: BTreeSet<String> =
        listed.iter().map(|(_, n)| base_name(n, &registered_set).to_owned()).collect();
    let mut out = Vec::new();
    for (name, line) in &registered {
        if !listed_set.contains(name) {
            out.push(violation(
                "src/metrics.rs",
                *line,
                format!("`{name}` is registered but not listed in metrics/README.md"),
            ));
        }
    }
    for (line, name) in &listed {
        let base = base_name(name, &registered_set);
        if !registered_set.contains(base) && !base.starts_with("qqbridge_process_") {
            out.push(violation(
                "metrics/README.md",
                *line,
                format!("`{name}` is listed but src/metrics.rs does not register it"),
            ));
        }
    }
    let mut known = registered_set;
    known.extend(listed_set);
    known.extend(uses.iter().flat_map(|(_, text)| recorded_names(text)));
    for (path, text) in uses {
        for (line, name) in names_in_text(text) {
            if !known.contains(base_name(&name, &known)) {
                out.push(violation(
                    path,
                    line,
                    format!(
                        "`{name}` is neither registered in src/metrics.rs \
                         nor listed in metrics/README.md"
                    ),
                ));
            }
        }
    }
    out
}

/// Every field of the `Deserialize` structs in `config.rs` is a key in `bridge.yaml` (commented-out
/// keys count: they document an optional key). Honours `#[serde(rename = "…")]`,
/// `rename_all = "kebab-case"`, `skip` and `flatten`. Nesting is not checked.
///
/// FIXME: once `src/config.rs` exists, add a test (with it, in tests/integration/) that loads
/// `bridge.yaml` into `qqbridge::config::Config` through the `config` crate (STYLE.md §3); it
/// cannot be written here before the type exists.
fn check_bridge_yaml_keys(config_rs: &str, bridge_yaml: &str) -> Vec<Violation> {
    let keys: BTreeSet<String> = bridge_yaml
        .lines()
        .map(|l| l.trim_start().trim_start_matches(['#', ' ', '-']))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim_matches(['"', '\''])))
        .filter(|k| !k.is_empty() && k.chars().all(|c| is_ident(c) || c == '-'))
        .map(str::to_owned)
        .collect();
    let lexed = lex(config_rs);
    let code: Vec<&str> = lexed.code.lines().collect();
    let raw: Vec<&str> = config_rs.lines().collect();
    let mut out = Vec::new();
    let (mut depth, mut in_struct, mut attrs, mut struct_attrs) =
        (0i32, None, String::new(), String::new());
    for (n, line) in code.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        let raw_line = raw.get(n).copied().unwrap_or("");
        if trimmed.starts_with("#[") {
            attrs.push_str(raw_line);
        } else if depth == 0 && !find_token(trimmed, "struct").is_empty() && line.contains('{') {
            let name = trimmed.split("struct").nth(1).unwrap_or("").trim_start();
            let name: String = name.chars().take_while(|&c| is_ident(c)).collect();
            in_struct = attrs.contains("Deserialize").then_some(name);
            struct_attrs = std::mem::take(&mut attrs);
        } else if let (Some(owner), 1) = (&in_struct, depth) {
            let field = trimmed
                .strip_prefix("pub(crate) ")
                .or(trimmed.strip_prefix("pub "))
                .unwrap_or(trimmed);
            let field = field.trim_start_matches("r#");
            if let Some((name, _)) = field
                .split_once(':')
                .filter(|(n, r)| n.chars().all(is_ident) && !r.starts_with(':'))
                && !name.is_empty()
            {
                let skip = attrs.contains("flatten")
                    || attrs.replace("skip_serializing", "").contains("skip");
                let key = match attrs.split_once("rename = \"") {
                    Some((_, rest)) => rest.split('"').next().unwrap_or(name).to_owned(),
                    None if struct_attrs.contains("kebab-case") => name.replace('_', "-"),
                    None => name.to_owned(),
                };
                if !skip && !keys.contains(&key) {
                    out.push(violation(
                        "src/config.rs",
                        n + 1,
                        format!(
                            "`{owner}.{name}` (key `{key}`) is not documented in bridge.yaml: \
                             every key, its default and accepted values"
                        ),
                    ));
                }
            }
            attrs.clear();
        } else {
            attrs.clear();
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth == 0 {
            in_struct = None;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The tree checks.

#[test]
fn test_walk_finds_the_crate() {
    let src: Vec<String> = rust_files("src").into_iter().map(|f| f.path).collect();
    for needed in ["src/lib.rs", "src/main.rs", "src/webqq/mod.rs"] {
        assert!(
            src.iter().any(|p| p == needed),
            "tidy walked src/ but did not find {needed}: {src:?}"
        );
    }
    assert!(rust_files("tests").iter().any(|f| f.path == "tests/integration/tidy.rs"));
}

#[test]
fn test_every_file_starts_with_a_module_doc() {
    assert_clean(
        "module docs",
        rust_files("src").iter().flat_map(|f| check_module_doc(&f.path, &f.text)).collect(),
    );
}

#[test]
fn test_no_panics_outside_tests() {
    let files = rust_files("src");
    let tests = test_only_files(&files);
    let code = files.iter().filter(|f| !tests.contains(&f.path));
    assert_clean("panicking calls", code.flat_map(|f| check_panics(&f.path, &f.text)).collect());
}

#[test]
fn test_no_ignored_or_should_panic_tests() {
    let mut files = rust_files("src");
    files.extend(rust_files("tests"));
    assert_clean(
        "test attributes",
        files.iter().flat_map(|f| check_test_attributes(&f.path, &f.text)).collect(),
    );
}

#[test]
fn test_layer_invariants() {
    let files = rust_files("src");
    assert_clean(
        "layer invariants",
        files.iter().flat_map(|f| check_layers(LAYER_RULES, &f.path, &f.text)).collect(),
    );
}

#[test]
fn test_no_thread_sleep() {
    let files = rust_files("src");
    assert_clean(
        "std::thread::sleep",
        files
            .iter()
            .flat_map(|f| check_layers(std::slice::from_ref(&NO_SLEEP), &f.path, &f.text))
            .collect(),
    );
}

#[test]
fn test_literal_invariants() {
    let files = rust_files("src");
    let tests = test_only_files(&files);
    let code = files.iter().filter(|f| !tests.contains(&f.path));
    assert_clean(
        "literals",
        code.flat_map(|f| check_literals(LITERAL_RULES, &f.path, &f.text)).collect(),
    );
}

#[test]
fn test_file_size_limit() {
    let files = rust_files("src");
    let mut found: Vec<Violation> =
        files.iter().flat_map(|f| check_file_size(&f.path, &f.text, FILE_SIZE_ALLOW)).collect();
    found.extend(check_stale_allowances(&files, FILE_SIZE_ALLOW));
    assert_clean("file sizes", found);
}

/// `src/metrics.rs` followed by its registering submodules (`src/metrics/matrix.rs`), as one
/// text: the metric checkers read them together (line numbers past the first file are offset).
fn metrics_sources() -> Option<String> {
    let mut text = read_optional("src/metrics.rs")?;
    if let Some(matrix) = read_optional("src/metrics/matrix.rs") {
        text.push('\n');
        text.push_str(&matrix);
    }
    Some(text)
}

#[test]
fn test_metric_names_have_the_prefix() {
    let Some(metrics_rs) = metrics_sources() else {
        return skipped("metric prefix", "src/metrics.rs");
    };
    assert_clean("metric prefix", check_metric_prefix("src/metrics.rs", &metrics_rs));
}

#[test]
fn test_metrics_catalogue() {
    let Some(metrics_rs) = metrics_sources() else {
        return skipped("metrics catalogue", "src/metrics.rs");
    };
    let Some(readme) = read_optional("metrics/README.md") else {
        return skipped("metrics catalogue", "metrics/README.md");
    };
    let mut uses = Vec::new();
    for (dir, exts) in
        [("metrics/grafana", &["json"][..]), ("metrics/prometheus", &["yaml", "yml"][..])]
    {
        let Ok(entries) = fs::read_dir(repo_root().join(dir)) else { continue };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)))
        {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            uses.push((format!("{dir}/{name}"), fs::read_to_string(&path).unwrap()));
        }
    }
    assert_clean("metrics catalogue", check_metrics_catalogue(&metrics_rs, &readme, &uses));
}

#[test]
fn test_bridge_yaml_documents_every_config_key() {
    let Some(yaml) = read_optional("bridge.yaml") else {
        return skipped("bridge.yaml keys", "bridge.yaml");
    };
    // The config module is a folder (src/config/*.rs); every file's structs are checked.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "src/config/ has no modules");
    let violations = files
        .iter()
        .flat_map(|f| check_bridge_yaml_keys(&fs::read_to_string(f).unwrap(), &yaml))
        .collect();
    assert_clean("bridge.yaml keys", violations);
}

// ---------------------------------------------------------------------------------------------
// Self-tests: each checker catches a violation in a synthetic file.

fn render(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("{v}\n")).collect()
}

fn check(found: Vec<Violation>, expect: Expect) {
    expect.assert_eq(&render(&found));
}

#[test]
fn test_lexer_blanks_comments_and_literal_contents() {
    let src = concat!(
        "//! doc unwrap()\n",
        "fn f<'a>(x: &'a str) -> char { /* a /* nested */ panic!() */ '\"' }\n",
        "let s = \"a \\\" unwrap() {\"; let r = r##\"x \"# y\"##; let b = b'\\''; let c = '{';\n",
        "'outer: loop { br\"raw\"; } // todo!()\n",
    );
    let lexed = lex(src);
    expect![[r###"
        |
        |fn f<'a>(x: &'a str) -> char {                               ' ' }
        |let s = "               "; let r = r##"      "##; let b = b'  '; let c = ' ';
        |'outer: loop { br"   "; }
    "###]]
    .assert_eq(&lexed.code.lines().map(|l| format!("|{}\n", l.trim_end())).collect::<String>());
    let strings: String =
        lexed.strings.iter().map(|s| format!("{}: {}\n", s.line, s.text)).collect();
    expect![[r##"
        3: a \" unwrap() {
        3: x "# y
        4: raw
    "##]]
    .assert_eq(&strings);
}

#[test]
fn test_test_items_end_at_their_closing_brace() {
    let src = concat!(
        "fn a() {}\n",
        "#[cfg(test)]\n",
        "#[allow(x)]\n",
        "mod tests {\n",
        "    fn t() { '}'; }\n",
        "}\n",
        "fn b() {}\n",
        "#[cfg(test)]\n",
        "use x;\n",
        "fn c() {}\n",
    );
    let marks: String = lex(src).test_lines().iter().map(|&t| if t { 'T' } else { '.' }).collect();
    expect![".TTTTT.TT."].assert_eq(&marks);
}

#[test]
fn test_out_of_line_test_modules_are_test_code() {
    let file = |path: &str, text: &str| SourceFile { path: path.to_owned(), text: text.to_owned() };
    let files = [
        file("src/a/mod.rs", "//! a\nmod c;\n#[cfg(test)]\nmod tests;\n"),
        file("src/a/c.rs", "//! c\n"),
        file("src/a/tests.rs", "//! a's tests\nmod helpers;\n"),
        file("src/a/tests/helpers.rs", "//! helpers\n"),
        file("src/b.rs", "//! b\n#[cfg(test)]\npub(crate) mod tests;\n"),
        file("src/b/tests/mod.rs", "//! b's tests\n"),
        file("src/d.rs", "//! d\nmod tests;\n"),
        file("src/d/tests.rs", "//! not gated: ordinary code\n"),
    ];
    let found: String = test_only_files(&files).into_iter().map(|p| format!("{p}\n")).collect();
    expect![[r#"
        src/a/tests.rs
        src/a/tests/helpers.rs
        src/b/tests/mod.rs
    "#]]
    .assert_eq(&found);
}

#[test]
fn test_token_boundaries() {
    let hits = |hay: &str, pat: &str| find_token(hay, pat).len();
    let cases = [
        ("x.unwrap()", "unwrap(", 1),
        ("x.unwrap_or(1).unwrap_or_default()", "unwrap(", 0),
        ("Arc::try_unwrap(a)", "unwrap(", 0),
        ("#[expect(clippy::x)]", "expect(", 0),
        ("use actix_web::App;", "actix*", 1),
        ("use actix_web::App;", "actix", 0),
        ("crate::webqq::login2::X", "webqq::login", 0),
        ("crate::webqq::login::X", "webqq::login", 1),
        ("let myanyhow = 1;", "anyhow*", 0),
    ];
    for (hay, pat, want) in cases {
        assert_eq!(hits(hay, pat), want, "find_token({hay:?}, {pat:?})");
    }
}

#[test]
fn test_use_trees_are_expanded() {
    let src = "use crate::webqq::{api::{self, poll2}, client as c};\npub(crate) use std::fs;\n";
    let paths: String =
        lex(src).use_paths().into_iter().map(|(line, path)| format!("{line}: {path}\n")).collect();
    expect![[r#"
        1: crate::webqq::api
        1: crate::webqq::api::poll2
        1: crate::webqq::client as c
        2: std::fs
    "#]]
    .assert_eq(&paths);
}

#[test]
fn test_module_doc_checker() {
    check(check_module_doc("src/a.rs", "//! Owns a.\nfn a() {}\n"), expect![""]);
    check(
        check_module_doc("src/b.rs", "/// not a module doc\nfn b() {}\n"),
        expect![[r#"
            src/b.rs:1: line 1 must be a `//!` doc saying what the file owns (STYLE.md §9)
        "#]],
    );
}

#[test]
fn test_panics_checker() {
    let src = concat!(
        "//! x\n",
        "fn f() {\n",
        "    a.unwrap(); b.expect(\"why\");\n",
        "    c.unwrap_or(1); d.unwrap_or_else(g); e.unwrap_or_default(); // x.unwrap()\n",
        "    let s = \"panic!() todo!()\";\n",
        "    todo!(); dbg!(x); unimplemented!(); unreachable!(); panic!(\"no\");\n",
        "}\n",
        "#[cfg(test)]\n",
        "mod tests {\n",
        "    fn t() { x.unwrap(); panic!(); }\n",
        "}\n",
        "fn after_tests() { y.unwrap_err(); }\n",
    );
    check(
        check_panics("src/x.rs", src),
        expect![[r#"
            src/x.rs:3: `unwrap(` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:3: `expect(` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:6: `panic!` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:6: `todo!` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:6: `dbg!` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:6: `unimplemented!` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:6: `unreachable!` outside #[cfg(test)]: return an error instead (no panics in src/)
            src/x.rs:12: `unwrap_err(` outside #[cfg(test)]: return an error instead (no panics in src/)
        "#]],
    );
}

#[test]
fn test_test_attribute_checker() {
    let src = concat!(
        "//! x\n",
        "#[test]\n",
        "#[ignore = \"slow\"]\n",
        "fn test_a() {}\n",
        "#[test]\n",
        "#[should_panic]\n",
        "fn test_b() {}\n",
        "// #[ignore]\n",
    );
    check(
        check_test_attributes("tests/integration/x.rs", src),
        expect![[r#"
            tests/integration/x.rs:3: `#[ignore]`: assert today's behaviour and add a FIXME instead (STYLE.md §8)
            tests/integration/x.rs:6: `#[should_panic]`: assert today's behaviour and add a FIXME instead (STYLE.md §8)
        "#]],
    );
}

/// A path the rule applies to, and one it does not (when there is one).
fn sample_paths(applies: &Applies) -> (String, Option<&'static str>) {
    match applies {
        Applies::Under(p) if p.ends_with(".rs") => ((*p).to_owned(), None),
        Applies::Under(p) => (format!("{p}sample.rs"), None),
        Applies::OutsideOf(allowed) => {
            ("src/sample/elsewhere.rs".to_owned(), allowed.first().copied())
        }
    }
}

#[test]
fn test_layer_checker_catches_every_rule() {
    for rule in LAYER_RULES.iter().chain([&NO_SLEEP]) {
        let (inside, allowed) = sample_paths(&rule.applies);
        for pattern in rule.forbidden {
            let mention = pattern.trim_end_matches('*');
            let catches = |src: &str| {
                check_layers(std::slice::from_ref(rule), &inside, src)
                    .iter()
                    .any(|v| v.message.contains(rule.invariant))
            };
            assert!(
                catches(&format!("//! x\nfn f() {{ {mention}; }}\n")),
                "{inside}: `{mention}` in code not caught"
            );
            if let Some((head, tail)) = mention.rsplit_once("::") {
                let grouped =
                    format!("//! x\nuse {head}::{{\n    other,\n    {tail}::Thing,\n}};\n");
                assert!(catches(&grouped), "{inside}: grouped `{mention}` not caught:\n{grouped}");
            }
            assert!(
                !catches(&format!("//! {mention}\n// {mention}\nconst S: &str = \"{mention}\";\n")),
                "{inside}: `{mention}` in a comment or string caught"
            );
            if let Some(home) = allowed {
                let home =
                    if home.ends_with('/') { format!("{home}sample.rs") } else { home.to_owned() };
                let found = check_layers(
                    std::slice::from_ref(rule),
                    &home,
                    &format!("fn f() {{ {mention}; }}\n"),
                );
                assert!(found.is_empty(), "{home} is allowed `{mention}` but got {found:?}");
            }
        }
    }
    check(
        check_layers(
            LAYER_RULES,
            "src/bridge/convert/to_qq.rs",
            "//! x\nuse crate::webqq::WebQqClient;\npub async fn go() {}\n",
        ),
        expect![[r#"
            src/bridge/convert/to_qq.rs:2: mentions `WebQqClient`, but bridge/ uses QQ data types but never WebQqClient or HTTP (ARCHITECTURE.md)
            src/bridge/convert/to_qq.rs:2: mentions `WebQqClient`, but only account/ (and the binary's `qq` explorer commands) hold a WebQqClient (ARCHITECTURE.md)
            src/bridge/convert/to_qq.rs:3: mentions `async`, but bridge/convert/ has no async fn and does no IO (ARCHITECTURE.md)
        "#]],
    );
}

#[test]
fn test_literal_checker() {
    let src = "//! x\nconst T: &str = \"m.bridge\";\n// \"m.bridge\"\n#[cfg(test)]\nmod tests { const U: &str = \"m.bridge\"; }\n";
    check(
        check_literals(LITERAL_RULES, "src/matrix/appservice_client.rs", src),
        expect![[r#"
            src/matrix/appservice_client.rs:2: string literal with `m.bridge`, but only bridge/ids.rs spells the m.bridge state event type and key (ARCHITECTURE.md)
        "#]],
    );
    check(check_literals(LITERAL_RULES, "src/bridge/ids.rs", src), expect![""]);
}

#[test]
fn test_file_size_checker() {
    let big = "//! x\n".repeat(MAX_LINES + 1);
    let small = "//! x\n".repeat(MAX_LINES);
    let allow =
        [("src/big.rs", "a reason"), ("src/gone.rs", "a reason"), ("src/small.rs", "a reason")];
    check(check_file_size("src/small.rs", &small, &[]), expect![""]);
    check(check_file_size("src/big.rs", &big, &allow), expect![""]);
    check(
        check_file_size("src/big.rs", &big, &[]),
        expect![[r#"
            src/big.rs:601: 601 lines, over the 600-line limit: split it by job, or add it to FILE_SIZE_ALLOW in tests/integration/tidy.rs with a reason
        "#]],
    );
    let files = [
        SourceFile { path: "src/big.rs".to_owned(), text: big },
        SourceFile { path: "src/small.rs".to_owned(), text: small },
    ];
    check(
        check_stale_allowances(&files, &allow),
        expect![[r#"
            src/gone.rs:1: does not exist: remove its FILE_SIZE_ALLOW entry
            src/small.rs:1: back under 600 lines: remove its FILE_SIZE_ALLOW entry
        "#]],
    );
}

/// A synthetic `metrics.rs` in both the `prometheus` and the prometheus-client styles.
const SAMPLE_METRICS_RS: &str = r##"//! x
const POLLS: &str = "qqbridge_poll_requests_total";
static A: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(POLLS, "every finished poll2", &["account", "outcome"]).unwrap()
});
static B: Lazy<Histogram> = Lazy::new(|| {
    register_histogram!(histogram_opts!("qqbridge_poll_duration_seconds", "poll latency")).unwrap()
});
static C: Lazy<IntGauge> = Lazy::new(|| IntGauge::new("poll_backoff_seconds", "no prefix").unwrap());
fn f(registry: &mut Registry) {
    registry.register(
        "qqbridge_sends", "QQ send requests", Family::default());
}
#[cfg(test)]
mod tests { const X: &str = "qqbridge_only_in_a_test"; }
"##;

#[test]
fn test_metric_name_checkers() {
    let names: String = metric_names(SAMPLE_METRICS_RS)
        .into_iter()
        .map(|(line, name, at_call)| format!("{line}: {name} (name position: {at_call})\n"))
        .collect();
    expect![[r#"
        2: qqbridge_poll_requests_total (name position: false)
        7: qqbridge_poll_duration_seconds (name position: false)
        7: qqbridge_poll_duration_seconds (name position: true)
        9: poll_backoff_seconds (name position: true)
        12: qqbridge_sends (name position: false)
        12: qqbridge_sends (name position: true)
    "#]]
    .assert_eq(&names);
    check(
        check_metric_prefix("src/metrics.rs", SAMPLE_METRICS_RS),
        expect![[r#"
            src/metrics.rs:9: metric name "poll_backoff_seconds" does not start with `qqbridge_` (MATRIX.md §7)
        "#]],
    );
    let readme = concat!(
        "# Metrics\n",
        "Every name starts with `qqbridge_`.\n",
        "| `qqbridge_poll_requests_total` |\n",
        "| `qqbridge_poll_duration_seconds` |\n",
        "| `qqbridge_gone_total` |\n",
        "| `qqbridge_process_*` from the library |\n",
    );
    let dashboard = r#"{"expr": "rate(qqbridge_poll_duration_seconds_bucket[5m]) + qqbridge_sends_total + qqbridge_poll_ratio + qqbridge_typo"}"#;
    let alerts = "groups:\n  - rules:\n      - record: qqbridge_poll_ratio\n        expr: qqbridge_process_cpu_seconds_total\n";
    let uses = [
        ("metrics/grafana/qqbridge.json".to_owned(), dashboard.to_owned()),
        ("metrics/prometheus/alerts.yaml".to_owned(), alerts.to_owned()),
    ];
    check(
        check_metrics_catalogue(SAMPLE_METRICS_RS, readme, &uses),
        expect![[r#"
            src/metrics.rs:9: `poll_backoff_seconds` is registered but not listed in metrics/README.md
            src/metrics.rs:12: `qqbridge_sends` is registered but not listed in metrics/README.md
            metrics/README.md:5: `qqbridge_gone_total` is listed but src/metrics.rs does not register it
            metrics/grafana/qqbridge.json:1: `qqbridge_typo` is neither registered in src/metrics.rs nor listed in metrics/README.md
            metrics/prometheus/alerts.yaml:4: `qqbridge_process_cpu_seconds_total` is neither registered in src/metrics.rs nor listed in metrics/README.md
        "#]],
    );
}

#[test]
fn test_bridge_yaml_checker() {
    let config_rs = r#"//! x
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub homeserver: Homeserver,
    pub metrics: Metrics,
    #[serde(skip)]
    pub loaded_from: String,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Homeserver {
    /// The address.
    pub address: Url,
    pub max_body_bytes: u64,
    #[serde(rename = "domain")]
    pub server_name: String,
}
#[derive(Debug, Deserialize)]
pub struct Metrics {
    pub listen: std::net::SocketAddr,
    pub per_account: bool,
}
struct NotConfig { pub ignored: u8 }
"#;
    let yaml = concat!(
        "homeserver:\n",
        "  address: http://127.0.0.1:8008\n",
        "  max-body-bytes: 1000\n",
        "metrics:\n",
        "  # per_account: true\n",
    );
    check(
        check_bridge_yaml_keys(config_rs, yaml),
        expect![[r#"
            src/config.rs:17: `Homeserver.server_name` (key `domain`) is not documented in bridge.yaml: every key, its default and accepted values
            src/config.rs:21: `Metrics.listen` (key `listen`) is not documented in bridge.yaml: every key, its default and accepted values
        "#]],
    );
}
