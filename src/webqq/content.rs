//! Message content: the font, the segment list, and their received / sent wire forms.
//!
//! Protocol §5 (content, escaping, splitting) and §2.18 (picture elements). Shared by the client
//! and the emulator: every form decodes and re-encodes to the same JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The largest text part, in UTF-8 bytes, that [`split_text`] callers should send (protocol §5.5,
/// pandolia's limit).
pub const MAX_TEXT_BYTES: usize = 720;

/// How far back, in bytes, [`split_text`] looks for a whitespace boundary (protocol §5.5).
pub const SPLIT_LOOKBACK_BYTES: usize = 100;

/// Why a content value could not be read at all. Bad single elements never fail: they become
/// [`Segment::Unknown`].
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The content is valid JSON but not an array.
    #[error("content is not a JSON array but {found}")]
    NotArray {
        /// The JSON kind that was found instead (`"object"`, `"string"`, …).
        found: &'static str,
    },
    /// A sent content string is not JSON at all.
    #[error("content is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
}

/// The font element `["font", {...}]` (protocol §5.2).
///
/// Decoding is lenient: a member that is missing or of the wrong type takes its value from
/// [`Font::default`], since the font is cosmetic and must never cost a message. The serde form is
/// the font object alone; [`Font::to_wire`] gives the whole `["font", {...}]` element.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Font {
    /// The font family, e.g. `宋体`, `STKaiti`.
    pub name: String,
    /// Point size; received as a number or a numeric string, sizes below 8 are raised to 8 (as
    /// lwqq did). Always sent as a number (both forms worked, protocol §0.3).
    pub size: u32,
    /// `[bold, italic, underline]`, each 0 or 1.
    pub style: [u8; 3],
    /// Six hex digits without `#`.
    pub color: String,
}

impl Default for Font {
    /// The font most bots sent: `{"name":"宋体","size":10,"style":[0,0,0],"color":"000000"}`.
    fn default() -> Self {
        Font { name: "宋体".to_owned(), size: 10, style: [0, 0, 0], color: "000000".to_owned() }
    }
}

impl Font {
    /// The smallest size kept on receive (protocol §5.2).
    pub const MIN_SIZE: u32 = 8;

    /// Reads the font object (the second member of a font element); `None` if it is not an object.
    pub fn from_wire(value: &Value) -> Option<Font> {
        let object = value.as_object()?;
        let default = Font::default();
        let name = object.get("name").and_then(Value::as_str).map_or(default.name, str::to_owned);
        let color =
            object.get("color").and_then(Value::as_str).map_or(default.color, str::to_owned);
        let size =
            object.get("size").and_then(lax_size).unwrap_or(default.size).max(Self::MIN_SIZE);
        let style = match object.get("style").and_then(Value::as_array) {
            Some(flags) => {
                let flag = |i: usize| {
                    flags.get(i).and_then(Value::as_u64).map_or(0, |n| u8::try_from(n).unwrap_or(1))
                };
                [flag(0), flag(1), flag(2)]
            }
            None => default.style,
        };
        Some(Font { name, size, style, color })
    }

    /// The font element `["font", {...}]` as sent and received.
    pub fn to_wire(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".to_owned(), Value::from(self.name.as_str()));
        object.insert("size".to_owned(), Value::from(self.size));
        object.insert("style".to_owned(), Value::from(self.style.to_vec()));
        object.insert("color".to_owned(), Value::from(self.color.as_str()));
        Value::Array(vec![Value::from("font"), Value::Object(object)])
    }
}

impl<'de> Deserialize<'de> for Font {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Font::from_wire(&value).ok_or_else(|| serde::de::Error::custom("font is not an object"))
    }
}

/// A font size written as a number or a numeric string; negative sizes read as 0 (then clamped).
fn lax_size(value: &Value) -> Option<u32> {
    let raw = match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|_| 0))?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    Some(u32::try_from(raw).unwrap_or(u32::MAX))
}

/// One content element other than the font (protocol §5.1 received forms, §5.3 send forms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Plain text, exactly as on the wire (still HTML-escaped when received, protocol §5.6).
    Text(String),
    /// `["face", id]`: a built-in smiley (protocol §5.7).
    Face(u32),
    /// Received `["cface", {"name","file_id","key","server"}]`: a group or discussion picture,
    /// fetched with `get_group_pic` (protocol §2.18).
    GroupPicture {
        /// `{GUID}.jpg`-style name.
        name: String,
        /// The picture's file id (`fid`).
        file_id: u64,
        /// 16-character key.
        key: String,
        /// `ip:port` of the picture server (`rip`, `rport`).
        server: String,
    },
    /// A buddy custom face: received `["cface","<name>.jpg",""]`, sent `["cface","<name>"]`.
    CustomFace {
        /// The uploaded or received file name.
        name: String,
    },
    /// Received `["offpic",{"success":1,"file_path":"/<uuid>"}]`: a buddy or session picture,
    /// fetched with `get_offpic2`.
    OffPic {
        /// The server path, e.g. `/7acccf74-...`.
        file_path: String,
        /// `success` was non-zero.
        success: bool,
    },
    /// Send form `["cface","group","<name>"]` of a group/discussion picture (needs key/sig in `r`).
    GroupCface {
        /// The name `cface_upload` answered.
        name: String,
    },
    /// Send form `["offpic","<filepath>","<filename>",<filesize>]` of a buddy picture (2013).
    OffPicSend {
        /// `filepath` from the upload answer.
        file_path: String,
        /// `filename` from the upload answer.
        file_name: String,
        /// `filesize` from the upload answer.
        file_size: u64,
    },
    /// Any other element (including a second font element), kept raw so it re-encodes unchanged.
    Unknown(Value),
}

/// Which wire form a [`Segment::CustomFace`] takes; all other segments have a single form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Received,
    Sent,
}

impl Segment {
    /// Reads one content element in either the received or the send form; never fails.
    pub fn from_wire(value: &Value) -> Segment {
        match value {
            Value::String(text) => Segment::Text(text.clone()),
            Value::Array(items) => Self::from_tagged(items).unwrap_or_else(|| Self::unknown(value)),
            _ => Self::unknown(value),
        }
    }

    fn unknown(value: &Value) -> Segment {
        Segment::Unknown(value.clone())
    }

    fn from_tagged(items: &[Value]) -> Option<Segment> {
        let tag = items.first()?.as_str()?;
        let arg = |i: usize| items.get(i);
        let text = |i: usize| arg(i).and_then(Value::as_str);
        match (tag, items.len()) {
            ("face", 2) => {
                let id = arg(1)?.as_u64()?;
                Some(Segment::Face(u32::try_from(id).ok()?))
            }
            ("cface", 2) => match arg(1)? {
                Value::String(name) => Some(Segment::CustomFace { name: name.clone() }),
                Value::Object(object) => Some(Segment::GroupPicture {
                    name: object.get("name")?.as_str()?.to_owned(),
                    file_id: lax_u64(object.get("file_id")?)?,
                    key: object.get("key")?.as_str()?.to_owned(),
                    server: object.get("server")?.as_str()?.to_owned(),
                }),
                _ => None,
            },
            // `["cface","group",""]` is ambiguous: a buddy custom face named `group` wins, since a
            // group picture's send form always carries the name cface_upload gave (§2.18), and
            // the other order did not survive a received round trip.
            ("cface", 3) => match (text(1)?, text(2)?) {
                (name, "") => Some(Segment::CustomFace { name: name.to_owned() }),
                ("group", name) => Some(Segment::GroupCface { name: name.to_owned() }),
                _ => None,
            },
            ("offpic", 2) => {
                let object = arg(1)?.as_object()?;
                let success = match object.get("success")? {
                    Value::Bool(b) => *b,
                    other => lax_u64(other)? != 0,
                };
                let file_path = object.get("file_path")?.as_str()?.to_owned();
                Some(Segment::OffPic { file_path, success })
            }
            ("offpic", 4) => Some(Segment::OffPicSend {
                file_path: text(1)?.to_owned(),
                file_name: text(2)?.to_owned(),
                file_size: lax_u64(arg(3)?)?,
            }),
            _ => None,
        }
    }

    /// The received wire form (what poll2 carries); send-only segments use their send form.
    pub fn to_received(&self) -> Value {
        self.to_wire(Form::Received)
    }

    /// The send wire form (protocol §5.3); received-only segments keep their received form, which
    /// the real server would not have accepted: build sends from send-form variants.
    pub fn to_sent(&self) -> Value {
        self.to_wire(Form::Sent)
    }

    fn to_wire(&self, form: Form) -> Value {
        let tagged = |tag: &str, rest: Vec<Value>| {
            let mut items = vec![Value::from(tag)];
            items.extend(rest);
            Value::Array(items)
        };
        match self {
            Segment::Text(text) => Value::from(text.as_str()),
            Segment::Face(id) => tagged("face", vec![Value::from(*id)]),
            Segment::GroupPicture { name, file_id, key, server } => {
                let mut object = Map::new();
                object.insert("name".to_owned(), Value::from(name.as_str()));
                object.insert("file_id".to_owned(), Value::from(*file_id));
                object.insert("key".to_owned(), Value::from(key.as_str()));
                object.insert("server".to_owned(), Value::from(server.as_str()));
                tagged("cface", vec![Value::Object(object)])
            }
            Segment::CustomFace { name } if form == Form::Sent => {
                tagged("cface", vec![Value::from(name.as_str())])
            }
            Segment::CustomFace { name } => {
                tagged("cface", vec![Value::from(name.as_str()), Value::from("")])
            }
            Segment::OffPic { file_path, success } => {
                let mut object = Map::new();
                object.insert("success".to_owned(), Value::from(u8::from(*success)));
                object.insert("file_path".to_owned(), Value::from(file_path.as_str()));
                tagged("offpic", vec![Value::Object(object)])
            }
            Segment::GroupCface { name } => {
                tagged("cface", vec![Value::from("group"), Value::from(name.as_str())])
            }
            Segment::OffPicSend { file_path, file_name, file_size } => tagged(
                "offpic",
                vec![
                    Value::from(file_path.as_str()),
                    Value::from(file_name.as_str()),
                    Value::from(*file_size),
                ],
            ),
            Segment::Unknown(raw) => raw.clone(),
        }
    }

    /// Whether this segment is a picture of any form.
    pub fn is_picture(&self) -> bool {
        matches!(
            self,
            Segment::GroupPicture { .. }
                | Segment::CustomFace { .. }
                | Segment::OffPic { .. }
                | Segment::GroupCface { .. }
                | Segment::OffPicSend { .. }
        )
    }
}

impl Serialize for Segment {
    /// The received form ([`Segment::to_received`]).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_received().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Segment {
    /// Any JSON value; unrecognised ones become [`Segment::Unknown`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|value| Segment::from_wire(&value))
    }
}

/// A whole message: optional font plus segments in display order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content {
    /// The font element; `None` when the array had none (or `[]` in its place, protocol §5.3).
    pub font: Option<Font>,
    /// The segments in display order, font excluded.
    pub segments: Vec<Segment>,
}

impl Content {
    /// A content holding one text segment and no font.
    pub fn text(text: impl Into<String>) -> Content {
        Content { font: None, segments: vec![Segment::Text(text.into())] }
    }

    /// Sets the font (builder style).
    pub fn with_font(mut self, font: Font) -> Content {
        self.font = Some(font);
        self
    }

    /// Appends a text segment.
    pub fn push_text(&mut self, text: impl Into<String>) -> &mut Content {
        self.segments.push(Segment::Text(text.into()));
        self
    }

    /// Appends a face (smiley) segment.
    pub fn push_face(&mut self, id: u32) -> &mut Content {
        self.segments.push(Segment::Face(id));
        self
    }

    /// Appends any segment.
    pub fn push(&mut self, segment: Segment) -> &mut Content {
        self.segments.push(segment);
        self
    }

    /// True when there is no segment at all: a received message of only a font carried something
    /// the web client could not render, typically a SmartQQ-era picture (protocol §5.1).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Reads the poll2 `content` array (protocol §5.1). The first font element is taken wherever
    /// it stands; bad elements become [`Segment::Unknown`]. Fails only if `value` is not an array.
    pub fn from_received(value: &Value) -> Result<Content, ContentError> {
        let items = value.as_array().ok_or(ContentError::NotArray { found: kind(value) })?;
        Ok(Self::from_elements(items, false))
    }

    /// The received wire form: font first (when present), then the segments.
    pub fn to_received(&self) -> Value {
        let font = self.font.iter().map(Font::to_wire);
        Value::Array(font.chain(self.segments.iter().map(Segment::to_received)).collect())
    }

    /// The `content` member of a send's `r` object: the JSON text of the array, segments in send
    /// form, font LAST ([`Font::default`] if `None`), protocol §5.3.
    ///
    /// Without any text segment an empty text `""` is added after the others, as the 2013 page
    /// did, because the server needed at least one text segment. The text is built by serde_json;
    /// the caller serialises the `r` object, so both JSON levels are escaped by a serializer.
    pub fn encode_for_send(&self) -> String {
        let mut items: Vec<Value> = self.segments.iter().map(Segment::to_sent).collect();
        if !self.segments.iter().any(|s| matches!(s, Segment::Text(_))) {
            items.push(Value::from(""));
        }
        items.push(self.font.clone().unwrap_or_default().to_wire());
        Value::Array(items).to_string()
    }

    /// Reads the `content` string of a received send (what the emulator does, protocol §8).
    /// A font element in the last place wins; otherwise the first one anywhere is taken. The font
    /// may be missing, or an empty array `[]` in the last place (one 2015 client sent that).
    /// Fails if the text is not JSON or not an array; other bad elements become `Unknown`.
    pub fn decode_sent(content_text: &str) -> Result<Content, ContentError> {
        let value: Value = serde_json::from_str(content_text).map_err(ContentError::InvalidJson)?;
        let items = value.as_array().ok_or(ContentError::NotArray { found: kind(&value) })?;
        Ok(Self::from_elements(items, true))
    }

    /// Builds a content from array elements. For a send (`sent`), the last element is the font
    /// slot: a font there wins, and `[]` there is dropped (protocol §5.3).
    fn from_elements(items: &[Value], sent: bool) -> Content {
        let mut content = Content::default();
        let mut body = items;
        if sent && let Some((last, rest)) = items.split_last() {
            if let Some(font) = font_element(last) {
                content.font = Some(font);
                body = rest;
            } else if last.as_array().is_some_and(Vec::is_empty) {
                body = rest;
            }
        }
        for item in body {
            if content.font.is_none()
                && let Some(font) = font_element(item)
            {
                content.font = Some(font);
                continue;
            }
            content.segments.push(Segment::from_wire(item));
        }
        content
    }

    /// A readable rendering: text segments as they are (not unescaped), faces as `[face:N]`, any
    /// picture as `[picture]`, unknown elements as `[unknown]`. Used for notices, logs at TRACE
    /// and [`normalize_for_echo`].
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            push_token(&mut out, segment);
        }
        out
    }
}

/// Appends a segment as [`Content::plain_text`] renders it.
fn push_token(out: &mut String, segment: &Segment) {
    match segment {
        Segment::Text(text) => out.push_str(text),
        Segment::Face(id) => out.push_str(&format!("[face:{id}]")),
        Segment::Unknown(_) => out.push_str("[unknown]"),
        _ => out.push_str("[picture]"),
    }
}

impl Serialize for Content {
    /// The received form ([`Content::to_received`]).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_received().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Content {
    /// [`Content::from_received`] semantics: any array is accepted.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Content::from_received(&value).map_err(serde::de::Error::custom)
    }
}

/// The font of a `["font", {...}]` element, or `None` if `item` is anything else.
fn font_element(item: &Value) -> Option<Font> {
    match item.as_array()?.as_slice() {
        [tag, object] if tag.as_str() == Some("font") => Font::from_wire(object),
        _ => None,
    }
}

/// A non-negative integer written as a number or a decimal string (protocol §0.3).
fn lax_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes HTML entities in received text (protocol §5.6): named ones (`&lt;`, `&amp;`, …) and
/// numeric ones (`&#39;`, `&#x4F60;`), once (so `&amp;lt;` gives `&lt;`); `&nbsp;` and U+00A0
/// become a plain space. Unknown entities stay as written.
pub fn unescape_entities(s: &str) -> String {
    html_escape::decode_html_entities(s).replace('\u{a0}', " ")
}

/// The form in which our own sends and their poll2 echoes are compared (RELIABILITY.md §1.4).
///
/// Per text segment: entities unescaped, `\r\n` (and a lone `\r`) turned into `\n`, trailing
/// whitespace of every line and of the segment removed (the 2013 server appended a space to
/// text segments, protocol §5.1). Other segments render as in [`Content::plain_text`], so a
/// sent `GroupCface` matches a received `GroupPicture`. The font is ignored.
pub fn normalize_for_echo(content: &Content) -> String {
    let mut out = String::new();
    for segment in &content.segments {
        match segment {
            Segment::Text(text) => {
                let text = unescape_entities(text).replace("\r\n", "\n").replace('\r', "\n");
                let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
                out.push_str(lines.join("\n").trim_end());
            }
            other => push_token(&mut out, other),
        }
    }
    out.trim_end().to_owned()
}

/// Splits text into ordered parts of at most `max_bytes` UTF-8 bytes (protocol §5.5).
///
/// A cut prefers the end of the last whitespace character within the final
/// [`SPLIT_LOOKBACK_BYTES`] bytes of the part (the whitespace stays at the end of that part),
/// else the last character boundary. Never splits inside a character; concatenating the parts
/// gives `text` back. A part always holds at least one character, so it exceeds `max_bytes` only
/// when `max_bytes` is smaller than that character (below 4 bytes). Empty text gives no parts:
/// there is nothing to send.
pub fn split_text(text: &str, max_bytes: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= max_bytes {
            parts.push(rest.to_owned());
            break;
        }
        let Some((head, tail)) = rest.split_at_checked(cut_point(rest, max_bytes)) else {
            parts.push(rest.to_owned());
            break;
        };
        parts.push(head.to_owned());
        rest = tail;
    }
    parts
}

/// Where to end the next part of `rest` (longer than `max_bytes`); always a char boundary > 0.
fn cut_point(rest: &str, max_bytes: usize) -> usize {
    let mut hard = max_bytes.min(rest.len());
    while hard > 0 && !rest.is_char_boundary(hard) {
        hard -= 1;
    }
    if hard == 0 {
        return rest.chars().next().map_or(rest.len(), char::len_utf8);
    }
    let floor = hard.saturating_sub(SPLIT_LOOKBACK_BYTES);
    rest.get(..hard)
        .and_then(|window| {
            window
                .char_indices()
                .rev()
                .take_while(|(start, _)| *start >= floor)
                .find(|(_, c)| c.is_whitespace())
                .map(|(start, c)| start + c.len_utf8())
        })
        .unwrap_or(hard)
}

#[cfg(test)]
pub(crate) mod tests;
