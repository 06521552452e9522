//! Matrix → QQ: an `m.room.message` as an ordered list of QQ messages to send, or the reason
//! WebQQ cannot carry it. Text is split at QQ's limits (protocol §5.5); pictures are references.

use ruma::events::room::MediaSource;
use ruma::events::room::message::{
    FormattedBody, MessageFormat, MessageType, Relation, RoomMessageEventContent,
};
use ruma::{EventId, OwnedMxcUri};

use crate::bridge::convert::faces::text_to_faces;
use crate::bridge::convert::html::html_to_text;
use crate::bridge::convert::text::{
    relay_parts, sanitize_displayname, strip_controls, truncate_with_marker,
};
use crate::webqq::content::{Content, Font, MAX_TEXT_BYTES, Segment, split_text};

/// Default cap on the text taken from one Matrix message, in bytes (a whole Matrix event is at
/// most 64 KiB); longer text is cut with a visible marker.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// The relay template of MATRIX.md §6.3.
pub const DEFAULT_RELAY_TEMPLATE: &str = "{displayname}: {message}";

/// Put before the new text of an edit: QQ cannot edit, so the new version is sent again.
pub const EDIT_MARKER: &str = "[edit] ";

/// How many characters of the replied-to text the quote shows.
pub const REPLY_QUOTE_CHARS: usize = 30;

/// What a face costs against the per-message byte budget: the size of `["face",212],` on the wire.
const FACE_COST: usize = 13;

/// The replied-to message, resolved by the caller inside the same portal (RELIABILITY.md §2:
/// never across rooms). Without it a reply is sent without a quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyQuote<'a> {
    /// Display name of the original sender (sanitised here).
    pub name: &'a str,
    /// Plain text of the original message.
    pub text: &'a str,
}

/// How a Matrix message is written on QQ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToQqOptions<'a> {
    /// The Matrix sender's display name: used by emotes and relay mode.
    pub displayname: &'a str,
    /// The Matrix sender's user id: the relay template's `{userid}`.
    pub userid: &'a str,
    /// Relay mode: the template ([`DEFAULT_RELAY_TEMPLATE`]) naming the sender; `None` when the
    /// message goes out through the sender's own QQ account. For an emote it replaces the
    /// `* name ` prefix.
    pub relay_template: Option<&'a str>,
    /// The replied-to message, when the caller found it.
    pub reply_to: Option<ReplyQuote<'a>>,
    /// Longest text taken from the message, in bytes.
    pub max_body_bytes: usize,
    /// Longest text of one QQ message, in bytes ([`MAX_TEXT_BYTES`], protocol §5.5).
    pub max_part_bytes: usize,
    /// The font for every message; `None` sends the default font.
    pub font: Option<Font>,
}

impl<'a> ToQqOptions<'a> {
    /// Options for a message from `displayname` through their own account: no relay, no quote,
    /// default limits and font.
    pub fn new(displayname: &'a str) -> ToQqOptions<'a> {
        ToQqOptions {
            displayname,
            userid: "",
            relay_template: None,
            reply_to: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_part_bytes: MAX_TEXT_BYTES,
            font: None,
        }
    }
}

/// One QQ message to send, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutgoingQq {
    /// A text message: text and face segments, within the per-message limit.
    Text(Content),
    /// A picture: the caller downloads `mxc`, uploads it to QQ and sends one message of `caption`
    /// followed by the picture segment.
    Image {
        /// The Matrix media to download.
        mxc: OwnedMxcUri,
        /// The file name, if the event gave one.
        filename: Option<String>,
        /// The MIME type the sender claimed (sniff before trusting it).
        mimetype: Option<String>,
        /// The size the sender claimed, in bytes.
        size: Option<u64>,
        /// Text and faces to send with the picture (relay name, quote, caption); may be empty.
        caption: Vec<Segment>,
    },
}

/// Why a message cannot go to QQ; the reason is a sentence for the Matrix user (MATRIX.md §6.6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unsupported {
    /// What happened and why, e.g. "QQ (WebQQ) cannot receive files; the file was not sent".
    pub reason: String,
}

impl Unsupported {
    fn new(reason: &str) -> Unsupported {
        Unsupported { reason: reason.to_owned() }
    }
}

/// The event a message replies to: `m.in_reply_to`, also inside a thread unless it is only the
/// thread's fallback. The caller resolves it (same portal only) into [`ToQqOptions::reply_to`].
pub fn replied_event_id(content: &RoomMessageEventContent) -> Option<&EventId> {
    match content.relates_to.as_ref()? {
        Relation::Reply(reply) => Some(&reply.in_reply_to.event_id),
        Relation::Thread(thread) if !thread.is_falling_back => {
            thread.in_reply_to.as_ref().map(|r| &*r.event_id)
        }
        _ => None,
    }
}

/// The event an edit (`m.replace`) replaces; `None` for other messages.
pub fn edited_event_id(content: &RoomMessageEventContent) -> Option<&EventId> {
    match content.relates_to.as_ref()? {
        Relation::Replacement(replacement) => Some(&replacement.event_id),
        _ => None,
    }
}

/// The size of the text a message asks to send, in bytes: its `body` (an edit's new one), or its
/// formatted body when the body is empty; 0 for media without text. Checked against the hard
/// cap before converting.
pub fn text_bytes(content: &RoomMessageEventContent) -> usize {
    let msgtype = match &content.relates_to {
        Some(Relation::Replacement(replacement)) => &replacement.new_content.msgtype,
        _ => &content.msgtype,
    };
    let (body, formatted) = match msgtype {
        MessageType::Text(text) => (text.body.as_str(), text.formatted.as_ref()),
        MessageType::Notice(notice) => (notice.body.as_str(), notice.formatted.as_ref()),
        MessageType::Emote(emote) => (emote.body.as_str(), emote.formatted.as_ref()),
        MessageType::Image(image) => (image.body.as_str(), image.formatted.as_ref()),
        other => (other.body(), None),
    };
    match formatted {
        Some(f) if body.trim().is_empty() => f.body.len(),
        _ => body.len(),
    }
}

/// What a later reply quotes of this message: its plain text (an edit's new text, reply fallback
/// removed, HTML as text when the body is empty), whitespace collapsed, at most
/// `2 ×` [`REPLY_QUOTE_CHARS`] characters; a picture is `[picture]`, other media their kind.
pub fn excerpt(content: &RoomMessageEventContent) -> String {
    let (msgtype, edit) = match &content.relates_to {
        Some(Relation::Replacement(replacement)) => (&replacement.new_content.msgtype, true),
        _ => (&content.msgtype, false),
    };
    let is_reply = !edit && content.relates_to.is_some();
    let text = match msgtype {
        MessageType::Image(_) => "[picture]".to_owned(),
        MessageType::File(_) => "[file]".to_owned(),
        MessageType::Audio(_) => "[audio]".to_owned(),
        MessageType::Video(_) => "[video]".to_owned(),
        MessageType::Location(_) => "[location]".to_owned(),
        MessageType::Text(text) => message_text(&text.body, text.formatted.as_ref(), is_reply),
        MessageType::Notice(notice) => {
            message_text(&notice.body, notice.formatted.as_ref(), is_reply)
        }
        MessageType::Emote(emote) => {
            format!("* {}", message_text(&emote.body, emote.formatted.as_ref(), is_reply))
        }
        other => message_text(other.body(), None, is_reply),
    };
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(2 * REPLY_QUOTE_CHARS)
        .collect()
}

/// Converts a Matrix message into QQ messages (pure, no IO).
///
/// Text, notices and unknown types with a body become text: the plain `body` (reply fallback
/// removed) or, when it is empty, the `formatted_body` as plain text; controls stripped; `/名字`
/// and emoji turned into faces; cut at `max_body_bytes` with a marker, then split in order at
/// `max_part_bytes` (protocol §5.5). Emotes read `* name text`; edits (`m.new_content`) get
/// [`EDIT_MARKER`]; a resolved reply gets `「name: first 30 chars」` and a newline; relay mode wraps
/// the result in the template (an emote's template replaces its `* name `). Images become
/// [`OutgoingQq::Image`]. Files, audio, video, locations, encrypted media, picture edits and
/// messages without text give [`Unsupported`].
pub fn matrix_to_qq(
    content: &RoomMessageEventContent,
    opts: &ToQqOptions<'_>,
) -> Result<Vec<OutgoingQq>, Unsupported> {
    let (msgtype, edit) = match &content.relates_to {
        Some(Relation::Replacement(replacement)) => (&replacement.new_content.msgtype, true),
        _ => (&content.msgtype, false),
    };
    let is_reply = !edit && content.relates_to.is_some();
    let quote = opts.reply_to.filter(|_| !edit).map(quote_line).unwrap_or_default();
    let edit_marker = if edit { EDIT_MARKER } else { "" };
    let relay = || match opts.relay_template {
        Some(template) => relay_parts(template, opts.displayname, opts.userid),
        None => (String::new(), String::new()),
    };
    match msgtype {
        MessageType::Image(image) => {
            if edit {
                return Err(Unsupported::new(
                    "QQ cannot edit messages, and an edited picture is not sent again",
                ));
            }
            let MediaSource::Plain(mxc) = &image.source else {
                return Err(Unsupported::new("encrypted pictures cannot be bridged to QQ yet"));
            };
            // MSC2530: the body is a caption only when a separate file name is given.
            let caption = match &image.filename {
                Some(name) if *name != image.body => {
                    message_text(&image.body, image.formatted.as_ref(), is_reply)
                }
                _ => String::new(),
            };
            let (before, after) = relay();
            let caption = truncate_with_marker(&caption, opts.max_body_bytes);
            let prefix = format!("{before}{quote}");
            let mut messages = text_messages(&prefix, &caption, &after, opts);
            let caption = match messages.pop() {
                Some(Content { segments, .. }) if messages.is_empty() => trim_caption(segments),
                Some(last) => {
                    messages.push(last);
                    Vec::new()
                }
                None => Vec::new(),
            };
            let mut out: Vec<OutgoingQq> = messages.into_iter().map(OutgoingQq::Text).collect();
            out.push(OutgoingQq::Image {
                mxc: mxc.clone(),
                filename: image.filename.clone(),
                mimetype: image.info.as_ref().and_then(|info| info.mimetype.clone()),
                size: image.info.as_ref().and_then(|info| info.size).map(u64::from),
                caption,
            });
            Ok(out)
        }
        MessageType::File(_) => Err(Unsupported::new(
            "QQ (WebQQ) cannot receive files from the bridge; the file was not sent",
        )),
        MessageType::Audio(_) => Err(Unsupported::new(
            "QQ (WebQQ) cannot receive audio or voice messages; the message was not sent",
        )),
        MessageType::Video(_) => {
            Err(Unsupported::new("QQ (WebQQ) cannot receive videos; the video was not sent"))
        }
        MessageType::Location(_) => {
            Err(Unsupported::new("QQ (WebQQ) cannot receive locations; the location was not sent"))
        }
        MessageType::VerificationRequest(_) => {
            Err(Unsupported::new("key verification requests are not bridged to QQ"))
        }
        MessageType::Emote(emote) => {
            let body = message_text(&emote.body, emote.formatted.as_ref(), is_reply);
            let (prefix, after) = match opts.relay_template {
                Some(_) => {
                    let (before, after) = relay();
                    (format!("{before}{quote}{edit_marker}"), after)
                }
                None => {
                    let name = sanitize_displayname(opts.displayname);
                    (format!("{quote}{edit_marker}* {name} "), String::new())
                }
            };
            non_empty(&body)?;
            let body = truncate_with_marker(&body, opts.max_body_bytes);
            Ok(text_messages(&prefix, &body, &after, opts)
                .into_iter()
                .map(OutgoingQq::Text)
                .collect())
        }
        other => {
            let (body, formatted) = match other {
                MessageType::Text(text) => (text.body.as_str(), text.formatted.as_ref()),
                MessageType::Notice(notice) => (notice.body.as_str(), notice.formatted.as_ref()),
                other => (other.body(), None),
            };
            let body = message_text(body, formatted, is_reply);
            non_empty(&body)?;
            let body = truncate_with_marker(&body, opts.max_body_bytes);
            let (before, after) = relay();
            let prefix = format!("{before}{quote}{edit_marker}");
            Ok(text_messages(&prefix, &body, &after, opts)
                .into_iter()
                .map(OutgoingQq::Text)
                .collect())
        }
    }
}

/// Refuses a message that has no text at all (after the reply fallback is removed).
fn non_empty(body: &str) -> Result<(), Unsupported> {
    if body.trim().is_empty() {
        return Err(Unsupported::new("the message has no text that QQ could show"));
    }
    Ok(())
}

/// The message's text: `body` without a reply fallback, or the HTML as text when `body` is empty;
/// controls stripped, outer whitespace trimmed.
fn message_text(body: &str, formatted: Option<&FormattedBody>, is_reply: bool) -> String {
    let plain = if is_reply { strip_reply_fallback(body) } else { body };
    let text = match formatted {
        Some(f) if plain.trim().is_empty() && f.format == MessageFormat::Html => {
            html_to_text(&f.body)
        }
        _ => plain.to_owned(),
    };
    strip_controls(&text).trim().to_owned()
}

/// Removes the plain reply fallback (`> <@user:server> text` lines and the blank line after them)
/// from the start of a reply's body. A quote not starting with `> <` (or `> * <` for an emote) is
/// the user's own text and stays.
fn strip_reply_fallback(body: &str) -> &str {
    if !(body.starts_with("> <") || body.starts_with("> * <")) {
        return body;
    }
    let quoted: usize =
        body.split_inclusive('\n').take_while(|line| line.starts_with('>')).map(str::len).sum();
    let rest = body.get(quoted..).unwrap_or_default();
    rest.strip_prefix("\r\n").or_else(|| rest.strip_prefix('\n')).unwrap_or(rest)
}

/// `「name: first 30 characters…」` and a newline; line breaks in the original become spaces.
fn quote_line(reply: ReplyQuote<'_>) -> String {
    let flat = strip_controls(reply.text).split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = flat.chars().take(REPLY_QUOTE_CHARS).collect();
    if flat.chars().nth(REPLY_QUOTE_CHARS).is_some() {
        short.push('…');
    }
    format!("「{}: {short}」\n", sanitize_displayname(reply.name))
}

/// The QQ messages for `prefix` + `body` + `suffix`: faces parsed in `body` only (names and
/// markers stay literal), split in order at `opts.max_part_bytes`.
fn text_messages(prefix: &str, body: &str, suffix: &str, opts: &ToQqOptions<'_>) -> Vec<Content> {
    let mut segments = Vec::new();
    push_text(&mut segments, prefix);
    for segment in text_to_faces(body) {
        match segment {
            Segment::Text(text) => push_text(&mut segments, &text),
            other => segments.push(other),
        }
    }
    push_text(&mut segments, suffix);
    split_segments(segments, opts.max_part_bytes)
        .into_iter()
        .map(|segments| Content { font: opts.font.clone(), segments })
        .collect()
}

/// Appends text, merging it into a text segment already at the end.
fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if text.is_empty() {
        return;
    }
    match segments.last_mut() {
        Some(Segment::Text(last)) => last.push_str(text),
        _ => segments.push(Segment::Text(text.to_owned())),
    }
}

/// A caption without trailing whitespace (a relay template's `": "` before an empty caption).
fn trim_caption(mut segments: Vec<Segment>) -> Vec<Segment> {
    if let Some(Segment::Text(last)) = segments.last_mut() {
        last.truncate(last.trim_end().len());
        if last.is_empty() {
            segments.pop();
        }
    }
    segments
}

/// Groups segments into messages of at most `max_bytes` of text (faces count [`FACE_COST`]),
/// keeping order. Text is cut with [`split_text`]'s rule (protocol §5.5: a whitespace boundary
/// near the end, else a character boundary); a message that has less than a quarter of its budget
/// left is closed rather than given a tiny fragment.
fn split_segments(segments: Vec<Segment>, max_bytes: usize) -> Vec<Vec<Segment>> {
    let mut messages = Vec::new();
    let mut current: Vec<Segment> = Vec::new();
    let mut used = 0usize;
    for segment in segments {
        let Segment::Text(text) = segment else {
            if !current.is_empty() && used.saturating_add(FACE_COST) > max_bytes {
                messages.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(segment);
            used = used.saturating_add(FACE_COST);
            continue;
        };
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let room = max_bytes.saturating_sub(used);
            if rest.len() <= room {
                current.push(Segment::Text(rest.to_owned()));
                used += rest.len();
                break;
            }
            if !current.is_empty() && room < (max_bytes / 4).max(1) {
                messages.push(std::mem::take(&mut current));
                used = 0;
                continue;
            }
            let (head, tail) =
                rest.split_at_checked(first_part_len(rest, room)).unwrap_or((rest, ""));
            current.push(Segment::Text(head.to_owned()));
            messages.push(std::mem::take(&mut current));
            used = 0;
            rest = tail;
        }
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// The length of the first [`split_text`] part of `rest` for a budget of `room` bytes, computed on
/// a window just past the budget so long text is not re-split for every message.
fn first_part_len(rest: &str, room: usize) -> usize {
    let mut end = room.saturating_add(4).min(rest.len());
    while end < rest.len() && !rest.is_char_boundary(end) {
        end += 1;
    }
    let window = rest.get(..end).unwrap_or(rest);
    split_text(window, room.max(1)).first().map_or(rest.len(), String::len).max(1)
}

#[cfg(test)]
mod tests;
