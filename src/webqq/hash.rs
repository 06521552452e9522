//! The friend-list / group-list `hash` functions (protocol §3) and the small string hashes used
//! around login: `hash33` (ptqrtoken), `bkn` (g_tk) and `time33` (protocol §1.3.2).
//!
//! All functions are pure, total and never panic, whatever the input.

use serde::{Deserialize, Serialize};

/// One of the four known versions of the `hash` parameter of `get_user_friends2` and
/// `get_group_name_list_mask2` (protocol §3.1). lwqq called them hashP, hashO, hashQ and hashN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashVariant {
    /// H-ECOK (protocol §3.2): the SmartQQ one, current 2015-03 until the end of the service.
    Ecok,
    /// H-PWERR (protocol §3.3): `ptwebqq + "password error"` xored with the uin digits.
    Pwerr,
    /// H-QSORT (protocol §3.4): operation counts of a quicksort of `ptwebqq`.
    Qsort,
    /// H-WALK (protocol §3.5): the oldest one, a walk over `ptwebqq` driven by the uin digits.
    Walk,
}

impl HashVariant {
    /// Every variant, in the order a client that does not know the era should try them: the
    /// last-known one (H-ECOK) first, then the older ones from the most to the least recent.
    pub const ALL: [HashVariant; 4] =
        [HashVariant::Ecok, HashVariant::Pwerr, HashVariant::Qsort, HashVariant::Walk];

    /// The variant to try after this one answered retcode 50 (lwqq's fallback, protocol §3.1);
    /// `None` once all of [`HashVariant::ALL`] were tried.
    pub fn next(self) -> Option<HashVariant> {
        match self {
            HashVariant::Ecok => Some(HashVariant::Pwerr),
            HashVariant::Pwerr => Some(HashVariant::Qsort),
            HashVariant::Qsort => Some(HashVariant::Walk),
            HashVariant::Walk => None,
        }
    }
}

/// The `hash` parameter for `uin` (own uin from login2) and the `ptwebqq` cookie value, computed
/// with `variant`; uppercase hex. Pure and cheap (H-QSORT is quadratic on sorted input, which is
/// harmless for a 64-character cookie).
pub fn friend_list_hash(variant: HashVariant, uin: u64, ptwebqq: &str) -> String {
    match variant {
        HashVariant::Ecok => hash_ecok(uin, ptwebqq),
        HashVariant::Pwerr => hash_pwerr(uin, ptwebqq),
        HashVariant::Qsort => hash_qsort(uin, ptwebqq),
        HashVariant::Walk => hash_walk(uin, ptwebqq),
    }
}

/// H-ECOK (protocol §3.2): 16 uppercase hex characters.
///
/// Only the low 32 bits of `uin` are used: the JS original applies `>>` to it, which converts to
/// a 32-bit integer first. Code units above 0xFF contribute their low byte only, as the JS hex
/// printer (`>> 4 & 15`, `& 15`) does.
pub fn hash_ecok(uin: u64, ptwebqq: &str) -> String {
    let mut n = [0u16; 4];
    for (i, c) in ptwebqq.encode_utf16().enumerate() {
        n[i % 4] ^= c;
    }
    let v = uin_bytes(uin);
    let k = *b"ECOK";
    let mut out = [0u8; 8];
    for i in 0..4 {
        out[2 * i] = n[i].to_be_bytes()[1];
        out[2 * i + 1] = v[i] ^ k[i];
    }
    upper_hex(&out)
}

/// H-PWERR (protocol §3.3): `2 * (len(ptwebqq) + 14)` uppercase hex characters (length counted
/// in UTF-16 code units).
///
/// The uin enters as its decimal string, as in the JS string concatenation; a uin above 2^32
/// (bad input) simply contributes all its digits.
pub fn hash_pwerr(uin: u64, ptwebqq: &str) -> String {
    let a: Vec<u16> = ptwebqq.encode_utf16().chain("password error".encode_utf16()).collect();
    let digits = uin.to_string().into_bytes();
    let out: Vec<u8> = a
        .iter()
        .zip(digits.iter().cycle())
        .map(|(&c, &d)| (c ^ u16::from(d)).to_be_bytes()[1])
        .collect();
    upper_hex(&out)
}

/// H-QSORT (protocol §3.4): 8 uppercase hex characters.
///
/// Only the low 32 bits of `uin` are used (the JS shifts it). The sort is iterative (explicit
/// stack), so a long `ptwebqq` cannot overflow the call stack; its cost is quadratic at worst.
pub fn hash_qsort(uin: u64, ptwebqq: &str) -> String {
    let mut r = uin_bytes(uin);
    let mut arr: Vec<u16> = ptwebqq.encode_utf16().collect();
    let mut stack: Vec<(usize, usize)> = Vec::new();
    if arr.len() >= 2 {
        stack.push((0, arr.len() - 1));
    }
    // Ranges are only pushed when `lo < hi <= len - 1`, which replaces the JS bounds checks
    // (`lo >= hi || lo < 0 || hi >= len`) and keeps every index below in range.
    while let Some((lo, hi)) = stack.pop() {
        if lo + 1 == hi {
            if arr[lo] > arr[hi] {
                arr.swap(lo, hi);
            }
            continue;
        }
        let (mut s, mut e) = (lo, hi);
        let pivot = arr[lo];
        while s < e {
            while s < e && arr[e] >= pivot {
                e -= 1;
                r[0] = r[0].wrapping_add(3);
            }
            if s < e {
                arr[s] = arr[e];
                s += 1;
                r[1] = r[1].wrapping_mul(13).wrapping_add(43);
            }
            while s < e && arr[s] <= pivot {
                s += 1;
                r[2] = r[2].wrapping_sub(3);
            }
            if s < e {
                arr[e] = arr[s];
                e -= 1;
                // Precedence as in the JS: `r3 + 1` first, then the XORs (protocol §3.4).
                r[3] = r[0] ^ r[1] ^ r[2] ^ r[3].wrapping_add(1);
            }
        }
        arr[s] = pivot;
        if s > lo + 1 {
            stack.push((lo, s - 1));
        }
        if s + 1 < hi {
            stack.push((s + 1, hi));
        }
    }
    upper_hex(&r)
}

/// H-WALK (protocol §3.5): 8 uppercase hex characters, or the empty string when `ptwebqq` is
/// empty (the JS divides by its length there, so the value is undefined).
///
/// Follows the JS semantics: an index past the end of `ptwebqq` reads as 0, a code unit
/// contributes its low byte, and the odd wrap-around branch is kept as every port has it. The
/// uin enters as its decimal digits (all of them, even above 2^32).
pub fn hash_walk(uin: u64, ptwebqq: &str) -> String {
    let p: Vec<u16> = ptwebqq.encode_utf16().collect();
    let len = p.len();
    if len == 0 {
        return String::new();
    }
    let byte_at = |i: usize| u32::from(p.get(i).copied().unwrap_or(0).to_be_bytes()[1]);
    let mut k: u32 = 0xFFFF_FFFF;
    let mut b = 0usize;
    for d in uin.to_string().bytes() {
        b = (b + usize::from(d - b'0')) % len;
        let mut f = 0u32;
        for h in 0..4usize {
            // `b < len` so `g <= 3`, and `h >= g` in the second arm, hence no underflow.
            let idx = if b + 4 > len {
                let g = b + 4 - len;
                if h < g { b + h } else { h - g }
            } else {
                b + h
            };
            f |= byte_at(idx) << (8 * (3 - h));
        }
        k ^= f;
    }
    upper_hex(&k.to_be_bytes())
}

/// `hash33` (protocol §1.3.2): the `ptqrtoken` computed from the `qrsig` cookie. Iterates over
/// UTF-16 code units, result masked to 31 bits.
pub fn hash33(s: &str) -> u32 {
    times33(0, s) & 0x7FFF_FFFF
}

/// `bkn` / `g_tk` for the qun.qq.com APIs (protocol §1.3.2): the `hash33` loop seeded with 5381
/// over `skey`, masked to 31 bits.
pub fn bkn(skey: &str) -> u32 {
    times33(5381, skey) & 0x7FFF_FFFF
}

/// `time33` (protocol §1.3.2): the `hash33` loop without the final mask (full 32 bits), used for
/// `pt4_auth?auth_token=` and logout's `pt4_hkey=`.
pub fn time33(s: &str) -> u32 {
    times33(0, s)
}

fn times33(seed: u32, s: &str) -> u32 {
    s.encode_utf16().fold(seed, |h, c| h.wrapping_mul(33).wrapping_add(u32::from(c)))
}

/// The four big-endian bytes of the low 32 bits of `uin`, as the JS `>> 24 & 255` etc. give
/// (JS `>>` truncates to 32 bits first).
fn uin_bytes(uin: u64) -> [u8; 4] {
    let low = (uin & 0xFFFF_FFFF) as u32;
    low.to_be_bytes()
}

fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P1: &str = "636683b80e7b0b46e26cc6b07c33432a4ab692e52f96e105d4d06fabd0735986";
    const P2: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

    /// uin, ptwebqq, H-ECOK, H-QSORT, H-WALK; `None` = no vector given.
    type Row = (u64, &'static str, &'static str, Option<&'static str>, Option<&'static str>);

    /// Protocol §3.6, H-ECOK / H-QSORT / H-WALK table.
    const TABLE: &[Row] = &[
        (2769546520, P1, "52E00C5006A20C53", Some("822BA632"), Some("AFABA5F8")),
        (2440652742, P2, "5FD4593A59285F8D", Some("FF8B251E"), Some("F2F2ABAF")),
        (123456789, "", "004200180082005E", Some("075BCD15"), None),
        (2440652742, "", "00D4003A0028008D", None, None),
        (10001, "abc", "614562436368005A", Some("06002711"), Some("9CFFFF9E")),
    ];

    #[test]
    fn test_ecok_qsort_walk_vectors() {
        for &(uin, p, ecok, qsort, walk) in TABLE {
            assert_eq!(hash_ecok(uin, p), ecok, "ecok {uin} {p:?}");
            assert_eq!(friend_list_hash(HashVariant::Ecok, uin, p), ecok);
            if let Some(q) = qsort {
                assert_eq!(hash_qsort(uin, p), q, "qsort {uin} {p:?}");
                assert_eq!(friend_list_hash(HashVariant::Qsort, uin, p), q);
            }
            if let Some(w) = walk {
                assert_eq!(hash_walk(uin, p), w, "walk {uin} {p:?}");
                assert_eq!(friend_list_hash(HashVariant::Walk, uin, p), w);
            }
        }
    }

    #[test]
    fn test_pwerr_vectors() {
        let table: &[(u64, &str, &str)] = &[
            (
                2769546520,
                P1,
                "0404000F0D07540D02550555065B010253070453510154090257050606030056025857020F075705\
                 00510F0F5005060056045607005F545652050503070E0E0F45554546455F4053165C47465947",
            ),
            (
                2440652742,
                P2,
                "5305560255065603510754020407070D000E075306560153005105520C540B044451454645584656\
                 125146425947",
            ),
            (123456789, "", "415340474259455C195440415B47"),
            (10001, "abc", "50525340504243475F4355105542435E42"),
        ];
        for &(uin, p, want) in table {
            assert_eq!(hash_pwerr(uin, p), want, "pwerr {uin} {p:?}");
            assert_eq!(friend_list_hash(HashVariant::Pwerr, uin, p), want);
            assert_eq!(want.len(), 2 * (p.len() + 14));
        }
    }

    #[test]
    fn test_walk_empty_ptwebqq_is_empty() {
        assert_eq!(hash_walk(123456789, ""), "");
        assert_eq!(friend_list_hash(HashVariant::Walk, 0, ""), "");
    }

    #[test]
    fn test_uin_above_u32_is_masked_where_the_js_shifts() {
        let big = (1u64 << 32) + 2769546520;
        assert_eq!(hash_ecok(big, P1), "52E00C5006A20C53");
        assert_eq!(hash_qsort(big, P1), "822BA632");
        assert_eq!(hash_ecok(u64::MAX, ""), "00BA00BC00B000B4");
        // The digit-based ones use every digit, so they differ from the masked uin.
        assert_ne!(hash_pwerr(big, P1), hash_pwerr(2769546520, P1));
        assert_eq!(hash_walk(u64::MAX, "abc").len(), 8);
    }

    #[test]
    fn test_small_and_non_ascii_inputs() {
        // Non-ASCII code units contribute their low byte: 'é' = 0xE9 alone in slot 0.
        assert_eq!(hash_ecok(0, "é"), "E9450043004F004B");
        assert_eq!(hash_ecok(0, "\u{1E9}"), "E9450043004F004B");
        assert_eq!(hash_qsort(0, "ba"), "00000000");
        assert_eq!(hash_qsort(0, "x"), "00000000");
        assert_eq!(hash_walk(0, "a"), "9EFFFF9E");
    }

    #[test]
    fn test_variant_order_and_fallback() {
        assert_eq!(HashVariant::ALL[0], HashVariant::Ecok);
        let mut seen = vec![HashVariant::ALL[0]];
        while let Some(next) = seen.last().and_then(|v| v.next()) {
            seen.push(next);
        }
        assert_eq!(seen, HashVariant::ALL.to_vec());
    }

    #[test]
    fn test_variant_serde_names() {
        let names: Vec<String> =
            HashVariant::ALL.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
        assert_eq!(names, ["\"ecok\"", "\"pwerr\"", "\"qsort\"", "\"walk\""]);
        for v in HashVariant::ALL {
            let back: HashVariant =
                serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn test_login_string_hashes() {
        let qrsig = "hJ9GvNx*oIvLjP5I5dQ19KPa3zwxNI62eALLO*g2JLbKPYsZIRsnbJIxNe74NzQQ";
        let table = [
            ("hash33", "abc", 108966),
            ("hash33", qrsig, 1178303247),
            ("hash33", "", 0),
            ("bkn", "@SoxMZ1bd4", 1016657201),
            ("bkn", "", 5381),
            ("time33", "@SoxMZ1bd4", 116069868),
            ("time33", "abc", 108966),
        ];
        for (f, s, want) in table {
            let got = match f {
                "hash33" => hash33(s),
                "bkn" => bkn(s),
                _ => time33(s),
            };
            assert_eq!(got, want, "{f}({s:?})");
        }
        // time33 keeps bit 31 where hash33 masks it.
        let s = "zzzzzzzzzz";
        assert_eq!(hash33(s), time33(s) & 0x7FFF_FFFF);
        assert_ne!(hash33(s), time33(s));
    }

    proptest! {
        #[test]
        fn test_no_function_panics(uin in any::<u64>(), p in any::<String>()) {
            for v in HashVariant::ALL {
                let h = friend_list_hash(v, uin, &p);
                prop_assert!(h.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
            }
            prop_assert_eq!(hash_ecok(uin, &p).len(), 16);
            prop_assert_eq!(hash_qsort(uin, &p).len(), 8);
            let _ = (hash33(&p), bkn(&p), time33(&p));
        }
    }
}
