//! The classic QQ face (smiley) table, protocol §5.7: face id ↔ Chinese name ↔ closest emoji,
//! and the parsing of `/名字` and emoji in Matrix text back into face segments.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use crate::webqq::content::Segment;

/// `(id, name as QQ shows it, closest emoji)`. Ids are the web client's face indices, which are
/// not in display order (protocol §5.7); names checked against the tables named there. Each emoji
/// stands for one face only, so the emoji → face direction is unambiguous.
const FACES: &[(u32, &str, Option<&str>)] = &[
    (0, "惊讶", Some("😲")),
    (1, "撇嘴", Some("😕")),
    (2, "色", Some("😍")),
    (3, "发呆", Some("😶")),
    (4, "得意", Some("😏")),
    (5, "流泪", Some("😢")),
    (6, "害羞", Some("😊")),
    (7, "闭嘴", Some("🤐")),
    (8, "睡", Some("😴")),
    (9, "大哭", Some("😭")),
    (10, "尴尬", Some("😬")),
    (11, "发怒", Some("😡")),
    (12, "调皮", Some("😜")),
    (13, "呲牙", Some("😁")),
    (14, "微笑", Some("🙂")),
    (21, "飞吻", Some("😘")),
    (23, "跳跳", None),
    (25, "发抖", None),
    (26, "怄火", Some("😤")),
    (27, "爱情", Some("💑")),
    (29, "足球", Some("⚽")),
    (32, "西瓜", Some("🍉")),
    (33, "玫瑰", Some("🌹")),
    (34, "凋谢", Some("🥀")),
    (36, "爱心", Some("❤\u{fe0f}")),
    (37, "心碎", Some("💔")),
    (38, "蛋糕", Some("🎂")),
    (39, "礼物", Some("🎁")),
    (42, "太阳", Some("☀\u{fe0f}")),
    (45, "月亮", Some("🌙")),
    (46, "强", Some("👍")),
    (47, "弱", Some("👎")),
    (50, "难过", Some("🙁")),
    (51, "酷", Some("😎")),
    (53, "抓狂", Some("😫")),
    (54, "吐", Some("🤮")),
    (55, "惊恐", Some("😱")),
    (56, "流汗", Some("😓")),
    (57, "憨笑", Some("😄")),
    (58, "大兵", None),
    (59, "猪头", Some("🐷")),
    (62, "拥抱", Some("🤗")),
    (63, "咖啡", Some("☕")),
    (64, "饭", Some("🍚")),
    (71, "握手", Some("🤝")),
    (72, "便便", Some("💩")),
    (73, "偷笑", Some("🤭")),
    (74, "可爱", None),
    (75, "白眼", Some("🙄")),
    (76, "傲慢", None),
    (77, "饥饿", Some("🤤")),
    (78, "困", Some("😪")),
    (79, "奋斗", Some("💪")),
    (80, "咒骂", Some("🤬")),
    (81, "疑问", Some("🤔")),
    (82, "嘘", Some("🤫")),
    (83, "晕", Some("😵")),
    (84, "折磨", None),
    (85, "衰", None),
    (86, "骷髅", Some("💀")),
    (87, "敲打", None),
    (88, "再见", None),
    (90, "雾", None),
    (91, "闪电", Some("⚡")),
    (92, "炸弹", Some("💣")),
    (93, "刀", Some("🔪")),
    (94, "女人", Some("👩")),
    (95, "胜利", Some("✌\u{fe0f}")),
    (96, "冷汗", Some("😰")),
    (97, "擦汗", None),
    (98, "抠鼻", None),
    (99, "鼓掌", Some("👏")),
    (100, "糗大了", None),
    (101, "坏笑", None),
    (102, "左哼哼", None),
    (103, "右哼哼", None),
    (104, "哈欠", Some("🥱")),
    (105, "鄙视", None),
    (106, "委屈", Some("🥺")),
    (107, "快哭了", None),
    (108, "阴险", None),
    (109, "亲亲", Some("😗")),
    (110, "吓", Some("😨")),
    (111, "可怜", None),
    (112, "菜刀", None),
    (113, "啤酒", Some("🍺")),
    (114, "篮球", Some("🏀")),
    (115, "乒乓", Some("🏓")),
    (116, "示爱", Some("💋")),
    (117, "瓢虫", Some("🐞")),
    (118, "抱拳", None),
    (119, "勾引", None),
    (120, "拳头", Some("👊")),
    (121, "差劲", None),
    (122, "爱你", Some("🤟")),
    (123, "NO", Some("🙅")),
    (124, "OK", Some("👌")),
    (125, "转圈", None),
    (126, "磕头", None),
    (127, "回头", None),
    (128, "跳绳", None),
    (129, "挥手", Some("👋")),
    (130, "激动", None),
    (131, "街舞", Some("🕺")),
    (132, "献吻", None),
    (133, "左太极", None),
    (134, "右太极", None),
    (135, "招财猫", None),
    (136, "双喜", None),
    (137, "鞭炮", Some("🧨")),
    (138, "灯笼", Some("🏮")),
    (139, "发财", Some("💰")),
    (140, "K歌", Some("🎤")),
    (141, "购物", Some("🛒")),
    (142, "邮件", Some("📧")),
    (143, "帅", None),
    (144, "喝彩", Some("🎉")),
    (145, "祈祷", Some("🙏")),
    (146, "劲爆", Some("💥")),
    (147, "棒棒糖", Some("🍭")),
    (148, "喝奶", Some("🍼")),
    (149, "面条", Some("🍜")),
    (150, "香蕉", Some("🍌")),
    (151, "飞机", Some("✈\u{fe0f}")),
    (152, "开车", Some("🚗")),
    (153, "高铁左车头", None),
    (154, "车厢", Some("🚃")),
    (155, "高铁右车头", None),
    (156, "多云", Some("⛅")),
    (157, "下雨", Some("🌧\u{fe0f}")),
    (158, "钞票", Some("💵")),
    (159, "熊猫", Some("🐼")),
    (160, "灯泡", Some("💡")),
    (161, "风车", None),
    (162, "闹钟", Some("⏰")),
    (168, "药", Some("💊")),
    (169, "手枪", Some("🔫")),
    (170, "青蛙", Some("🐸")),
    (171, "粥", Some("🥣")),
    (172, "眨眼睛", Some("😉")),
    (173, "泪奔", None),
    (174, "无奈", None),
    (175, "卖萌", None),
    (176, "小纠结", None),
    (177, "喷血", None),
    (178, "斜眼笑", None),
    (179, "doge", Some("🐶")),
    (180, "惊喜", Some("🤩")),
    (181, "骚扰", None),
    (182, "笑哭", Some("😂")),
    (183, "我最美", None),
    (184, "河蟹", Some("🦀")),
    (185, "羊驼", Some("🦙")),
    (187, "幽灵", Some("👻")),
    (188, "蛋", Some("🥚")),
    (189, "马赛克", None),
    (190, "菊花", Some("🌼")),
    (191, "肥皂", Some("🧼")),
    (192, "红包", Some("🧧")),
    (193, "大笑", Some("😆")),
    (194, "不开心", Some("😞")),
    (195, "啊", None),
    (196, "恐慌", None),
    (197, "冷漠", Some("😑")),
    (198, "呃", None),
    (199, "好棒", None),
    (200, "拜托", None),
    (201, "点赞", None),
    (202, "无聊", None),
    (203, "托脸", None),
    (204, "吃", None),
    (205, "送花", Some("💐")),
    (206, "害怕", None),
    (207, "花痴", None),
    (208, "小样儿", None),
    (209, "脸红", Some("😳")),
    (210, "飙泪", None),
    (211, "我不看", Some("🙈")),
    (212, "托腮", None),
];

/// The face's Chinese name (`14` → `微笑`), `None` for an id outside the table.
pub fn face_name(id: u32) -> Option<&'static str> {
    FACES.iter().find(|(face, _, _)| *face == id).map(|(_, name, _)| *name)
}

/// The face's closest emoji, `None` when none is close or the id is unknown.
pub fn face_emoji(id: u32) -> Option<&'static str> {
    FACES.iter().find(|(face, _, _)| *face == id).and_then(|(_, _, emoji)| *emoji)
}

/// How a face reads on Matrix: its emoji if one is close, else `/名字` as QQ users type it, and
/// `[face N]` for an id outside the table (never dropped).
pub fn face_to_text(id: u32) -> Cow<'static, str> {
    match FACES.iter().find(|(face, _, _)| *face == id) {
        Some((_, _, Some(emoji))) => Cow::Borrowed(emoji),
        Some((_, name, None)) => Cow::Owned(format!("/{name}")),
        None => Cow::Owned(format!("[face {id}]")),
    }
}

/// `(name, id)` sorted longest name first, so `/蛋糕` wins over `/蛋`.
static NAMES_LONGEST_FIRST: LazyLock<Vec<(&'static str, u32)>> = LazyLock::new(|| {
    let mut names: Vec<(&'static str, u32)> =
        FACES.iter().map(|(id, name, _)| (*name, *id)).collect();
    names.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    names
});

/// Emoji spellings by first character, longest first: each table emoji as written, and without
/// its trailing VARIATION SELECTOR-16 too, since clients send both.
static EMOJI_BY_FIRST_CHAR: LazyLock<HashMap<char, Vec<(&'static str, u32)>>> =
    LazyLock::new(|| {
        let mut map: HashMap<char, Vec<(&'static str, u32)>> = HashMap::new();
        for (id, _, emoji) in FACES {
            let Some(emoji) = emoji else { continue };
            let Some(first) = emoji.chars().next() else { continue };
            let entry = map.entry(first).or_default();
            entry.push((emoji, *id));
            if let Some(bare) = emoji.strip_suffix('\u{fe0f}') {
                entry.push((bare, *id));
            }
        }
        for spellings in map.values_mut() {
            spellings.sort_by_key(|(emoji, _)| std::cmp::Reverse(emoji.len()));
        }
        map
    });

/// Whether a `/name` may start after `prev`: at the start, after whitespace, CJK text or an
/// emoji, but not after letters, digits or URL punctuation, so `http://a/b` and `x/OK` stay text.
fn may_start_face_after(prev: Option<char>) -> bool {
    match prev {
        None => true,
        Some(c) => !(c.is_ascii_alphanumeric() || "/:.?#@!$&'*+,;=%-_~\\|^`".contains(c)),
    }
}

/// The face named at the start of `rest` (just after a `/`): the longest exact name, and for a
/// name ending in an ASCII letter (`OK`, `NO`, `doge`) only when no letter or digit follows, so
/// `/NOW` stays text. Returns the id and the name's length in bytes.
fn face_name_at(rest: &str) -> Option<(u32, usize)> {
    NAMES_LONGEST_FIRST.iter().find_map(|(name, id)| {
        let tail = rest.strip_prefix(name)?;
        let ascii_end = name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
        let glued = tail.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        (!(ascii_end && glued)).then_some((*id, name.len()))
    })
}

/// The face whose emoji starts `rest`, with the bytes it covers (a following VS-16 included).
fn face_emoji_at(rest: &str) -> Option<(u32, usize)> {
    let first = rest.chars().next()?;
    let spellings = EMOJI_BY_FIRST_CHAR.get(&first)?;
    let (emoji, id) = spellings.iter().find(|(emoji, _)| rest.starts_with(emoji))?;
    let after = rest.get(emoji.len()..).unwrap_or_default();
    let selector = if after.starts_with('\u{fe0f}') { '\u{fe0f}'.len_utf8() } else { 0 };
    Some((*id, emoji.len() + selector))
}

/// Splits Matrix text into QQ text and face segments (Matrix → QQ). `/名字` becomes a face when the
/// name is an exact table name (longest first) and the slash stands where a QQ user would type it
/// (see the rules above); a table emoji becomes its face. Everything else, including URLs and
/// unknown `/words`, stays text. Text segments are never empty; concatenating the segments with
/// each face written as `/名字` or its emoji gives `text` back.
pub fn text_to_faces(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut plain_start = 0usize;
    let mut prev: Option<char> = None;
    let mut pos = 0usize;
    while let Some(rest) = text.get(pos..) {
        let Some(c) = rest.chars().next() else { break };
        let found = if c == '/' && may_start_face_after(prev) {
            rest.get(1..).and_then(face_name_at).map(|(id, len)| (id, len + 1))
        } else if !c.is_ascii() {
            face_emoji_at(rest)
        } else {
            None
        };
        match found {
            Some((id, len)) => {
                if let Some(plain) = text.get(plain_start..pos).filter(|p| !p.is_empty()) {
                    segments.push(Segment::Text(plain.to_owned()));
                }
                segments.push(Segment::Face(id));
                pos += len;
                plain_start = pos;
                prev = None;
            }
            None => {
                pos += c.len_utf8();
                prev = Some(c);
            }
        }
    }
    if let Some(plain) = text.get(plain_start..).filter(|p| !p.is_empty()) {
        segments.push(Segment::Text(plain.to_owned()));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn text(s: &str) -> Segment {
        Segment::Text(s.to_owned())
    }

    #[test]
    fn test_table_is_consistent() {
        assert!(FACES.len() >= 170, "{} faces", FACES.len());
        let ids: HashSet<u32> = FACES.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids.len(), FACES.len(), "duplicate id");
        let names: HashSet<&str> = FACES.iter().map(|(_, name, _)| *name).collect();
        assert_eq!(names.len(), FACES.len(), "duplicate name");
        let emoji: Vec<&str> = FACES.iter().filter_map(|(_, _, e)| *e).collect();
        assert_eq!(emoji.iter().collect::<HashSet<_>>().len(), emoji.len(), "duplicate emoji");
        assert!(FACES.iter().all(|(id, _, _)| *id <= 212));
    }

    #[test]
    fn test_protocol_5_7_ids() {
        let cases = [(14, "微笑"), (1, "撇嘴"), (2, "色"), (0, "惊讶"), (13, "呲牙"), (74, "可爱")];
        for (id, name) in cases {
            assert_eq!(face_name(id), Some(name), "id {id}");
        }
    }

    #[test]
    fn test_face_to_text() {
        let cases = [
            (14, "🙂"),
            (36, "❤\u{fe0f}"),
            (74, "/可爱"),
            (212, "/托腮"),
            (15, "[face 15]"),
            (999, "[face 999]"),
            (u32::MAX, "[face 4294967295]"),
        ];
        for (id, want) in cases {
            assert_eq!(face_to_text(id), want, "id {id}");
        }
    }

    #[test]
    fn test_every_face_round_trips() {
        for (id, name, _) in FACES {
            assert_eq!(text_to_faces(&face_to_text(*id)), vec![Segment::Face(*id)], "id {id}");
            assert_eq!(text_to_faces(&format!("/{name}")), vec![Segment::Face(*id)], "{name}");
        }
    }

    #[test]
    fn test_text_to_faces() {
        let cases: Vec<(&str, Vec<Segment>)> = vec![
            ("/微笑", vec![Segment::Face(14)]),
            ("hi /微笑 there", vec![text("hi "), Segment::Face(14), text(" there")]),
            ("你好/微笑", vec![text("你好"), Segment::Face(14)]),
            // A Chinese name glued to following text still matches, as QQ's own parser did.
            ("/微笑x", vec![Segment::Face(14), text("x")]),
            ("/蛋糕", vec![Segment::Face(38)]),
            ("/蛋", vec![Segment::Face(188)]),
            ("/微笑/呲牙", vec![Segment::Face(14), Segment::Face(13)]),
            ("🙂🙂", vec![Segment::Face(14), Segment::Face(14)]),
            ("❤", vec![Segment::Face(36)]),
            ("a❤\u{fe0f}b", vec![text("a"), Segment::Face(36), text("b")]),
            ("/OK", vec![Segment::Face(124)]),
            ("/OK!", vec![Segment::Face(124), text("!")]),
            ("/NOW", vec![text("/NOW")]),
            ("x/OK", vec![text("x/OK")]),
            ("http://a/b", vec![text("http://a/b")]),
            ("https://example.org/微笑", vec![text("https://example.org/微笑")]),
            ("a/微笑", vec![text("a/微笑")]),
            ("//微笑", vec![text("//微笑")]),
            ("/unknown /不存在", vec![text("/unknown /不存在")]),
            ("/", vec![text("/")]),
            ("", vec![]),
            ("😀 not a face", vec![text("😀 not a face")]),
        ];
        for (input, want) in cases {
            assert_eq!(text_to_faces(input), want, "input {input:?}");
        }
    }

    proptest! {
        #[test]
        fn test_text_to_faces_never_panics(text in "(?s).{0,200}") {
            let segments = text_to_faces(&text);
            prop_assert!(segments.iter().all(|s| !matches!(s, Segment::Text(t) if t.is_empty())));
        }

        #[test]
        fn test_ascii_without_slash_is_plain(text in "[ -.0-~\n]{1,100}") {
            // Without a slash and without emoji nothing can be a face.
            let segments = text_to_faces(&text);
            prop_assert_eq!(segments, vec![Segment::Text(text)]);
        }
    }
}
