//! Login password encryption, scheme A (MD5 chain, protocol §1.2.3) and scheme B (RSA + QQ TEA,
//! protocol §1.2.4), plus the emulator-side check of both (the server knows the password, so it
//! needs no RSA private key). Pure functions; nothing here does IO or logs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use num_bigint::BigUint;
use rand::Rng;

/// Why a password check or a TEA decryption failed. Messages never contain the password, its
/// hash, the key or the plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A pre-hashed password was not exactly 32 hex digits.
    #[error("pre-hashed password is not 32 hex digits")]
    BadMd5Hex,
    /// `p` is not base64 (in either the QQ alphabet `-*_` or the standard one).
    #[error("p is not base64")]
    BadBase64,
    /// The TEA ciphertext length is not a multiple of 8, or is below 16 bytes.
    #[error("tea ciphertext length {len} is not a multiple of 8 of at least 16")]
    BadLength {
        /// The ciphertext length in bytes.
        len: usize,
    },
    /// The decrypted TEA frame has a header longer than the frame or non-zero trailing bytes:
    /// almost always a wrong key (wrong password), otherwise a corrupted ciphertext.
    #[error("tea padding check failed (wrong key or corrupted ciphertext)")]
    BadPadding,
    /// The scheme-B plaintext ended before a length field was satisfied, has trailing bytes, or
    /// carries a verify code that is not UTF-8.
    #[error("malformed scheme b plaintext: {0}")]
    Malformed(&'static str),
    /// The scheme-B RSA blob length is 0 or above 128 (a 1024-bit modulus gives at most 128).
    #[error("rsa blob length {len} out of range")]
    BadRsaLength {
        /// The announced length.
        len: usize,
    },
    /// The salt inside the scheme-B plaintext is not the one `check` issued.
    #[error("salt inside p does not match the issued salt")]
    SaltMismatch,
    /// Scheme A: the digest differs. A wrong password and a wrong verify code cannot be told
    /// apart in this scheme.
    #[error("password or verify code does not match")]
    Mismatch,
    /// Scheme B decrypted and parsed fine (so the password is right) but the verify code inside
    /// differs from the expected one: a wrong captcha answer (ptuiCB code 4).
    #[error("verify code does not match")]
    CodeMismatch,
}

/// Which password encryption a `p` parameter used, as found by [`detect_and_verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Scheme A, the MD5 chain (protocol §1.2.3): `p` is 32 hex digits.
    Md5Chain,
    /// Scheme B, RSA + TEA (protocol §1.2.4): `p` is base64 in the QQ alphabet.
    RsaTea,
}

/// A password as the user configured it: the text itself or its MD5 as 32 hex digits (libwebqq
/// accepted a pre-hashed password, protocol §1.2.3). Both schemes only need `MD5(password)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PasswordInput<'a> {
    /// The password text; its UTF-8 bytes are hashed.
    Plain(&'a str),
    /// `MD5(password)` as 32 hex digits, either case.
    Md5Hex(&'a str),
}

impl std::fmt::Debug for PasswordInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordInput::Plain(_) => f.write_str("Plain([redacted])"),
            PasswordInput::Md5Hex(_) => f.write_str("Md5Hex([redacted])"),
        }
    }
}

impl<'a> PasswordInput<'a> {
    /// libwebqq's rule: exactly 32 hex digits are taken as a pre-hashed password, anything else
    /// as the text. (A real password that happens to be 32 hex digits is misread; use
    /// [`PasswordInput::Plain`] explicitly for it.)
    pub fn detect(s: &'a str) -> Self {
        if is_md5_hex(s) { PasswordInput::Md5Hex(s) } else { PasswordInput::Plain(s) }
    }

    /// `MD5(password)` as 16 raw bytes; fails only for an [`PasswordInput::Md5Hex`] that is not 32
    /// hex digits.
    pub fn md5(&self) -> Result<[u8; 16], CryptoError> {
        match self {
            PasswordInput::Plain(p) => Ok(password_md5(p)),
            PasswordInput::Md5Hex(h) => password_md5_from_hex(h),
        }
    }
}

/// `h1 = MD5(bytes(password))` (protocol §1.2.3 and §1.2.4 step 1), over the UTF-8 bytes.
pub fn password_md5(password: &str) -> [u8; 16] {
    md5_parts(&[password.as_bytes()])
}

/// Decodes a pre-hashed password (`MD5(password)` as exactly 32 hex digits, either case).
pub fn password_md5_from_hex(hex_md5: &str) -> Result<[u8; 16], CryptoError> {
    let mut out = [0u8; 16];
    if !is_md5_hex(hex_md5) {
        return Err(CryptoError::BadMd5Hex);
    }
    hex::decode_to_slice(hex_md5, &mut out).map_err(|_| CryptoError::BadMd5Hex)?;
    Ok(out)
}

/// Scheme A (protocol §1.2.3): `UPPER_HEX(MD5(UPPER_HEX(MD5(h1 || salt)) || UPPER(verifycode)))`,
/// the 32 uppercase hex digits sent as `p=`. The code is upper-cased like JS `toUpperCase` and
/// hashed as UTF-8 (real codes are ASCII).
pub fn encrypt_password_md5(password_md5: [u8; 16], salt: &[u8; 8], verifycode: &str) -> String {
    let h2 = hex::encode_upper(md5_parts(&[&password_md5, salt]));
    let code = verifycode.to_uppercase();
    hex::encode_upper(md5_parts(&[h2.as_bytes(), code.as_bytes()]))
}

/// The emulator's check of a scheme-A `p`: true when it is the digest of this password, salt and
/// verify code. Hex case is ignored; the code is upper-cased as the client does.
pub fn verify_md5_chain(p: &str, password_md5: [u8; 16], salt: &[u8; 8], verifycode: &str) -> bool {
    encrypt_password_md5(password_md5, salt, verifycode).eq_ignore_ascii_case(p)
}

/// The 1024-bit RSA modulus of the login page (protocol §1.2.4); the public exponent is 3.
const RSA_MODULUS_HEX: &str = "F20CE00BAE5361F8FA3AE9CEFA495362FF7DA1BA628F64A347F0A8C012BF0B25\
    4A30CD92ABFFE7A6EE0DC424CB6166F8819EFA5BCCB20EDFB4AD02E412CCF579B1CA711D55B8B0B3AEB60153D5E06\
    93A2A86F3167D7847A0CB8B00004716A9095D9BADC977CBB804DBDCBA6029A9710869A453F27DFDDF83C016D928B3\
    CBF4C7";

/// Decoded at compile time so encryption has no failure path; a test checks it against the text.
const RSA_MODULUS: [u8; 128] = decode_hex_128(RSA_MODULUS_HEX);

const fn hex_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    }
}

const fn decode_hex_128(s: &str) -> [u8; 128] {
    let b = s.as_bytes();
    let mut out = [0u8; 128];
    let mut i = 0;
    while i < 128 && 2 * i + 1 < b.len() {
        out[i] = (hex_nibble(b[2 * i]) << 4) | hex_nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Scheme B (protocol §1.2.4): the base64 `p=` for `/login`, in the QQ alphabet (`/`→`-`,
/// `+`→`*`, `=`→`_`). Randomness (RSA padding, TEA header) comes from `rng`.
///
/// The RSA output keeps the JS length: leading zero bytes are dropped, so about once in 256
/// calls the blob is 127 bytes and its length prefix says so. A verify code longer than 65535
/// bytes (never seen) is cut to fit its u16 length prefix.
pub fn encrypt_password_rsa_tea(
    password_md5: [u8; 16],
    salt: &[u8; 8],
    verifycode: &str,
    rng: &mut impl Rng,
) -> String {
    let key = tea_key(password_md5, salt);
    let rsa = rsa_encrypt(&password_md5, rng);
    let code = verifycode.to_uppercase().into_bytes();
    let mut plain = Vec::with_capacity(2 + rsa.len() + 8 + 2 + code.len());
    push_u16_prefixed(&mut plain, &rsa);
    plain.extend_from_slice(salt);
    push_u16_prefixed(&mut plain, &code);
    swap_chars(&STANDARD.encode(tea_encrypt(&plain, &key, rng)), TO_QQ_BASE64)
}

/// The emulator's check of a scheme-B `p` (protocol §1.2.4, emulator note): TEA-decrypts it with
/// `MD5(h1 || salt)`, checks the framing, that the RSA blob has a possible length (1..=128; it
/// cannot be checked further without the private key) and that the embedded salt is `salt`.
/// Returns the verify code found inside, as sent (upper-cased by the client).
///
/// Accepts the QQ alphabet and the standard base64 one. A wrong password shows up as
/// [`CryptoError::BadPadding`] (or, with probability 2^-56, a later parse error).
pub fn verify_rsa_tea(
    p: &str,
    password_md5: [u8; 16],
    salt: &[u8; 8],
) -> Result<String, CryptoError> {
    let cipher =
        STANDARD.decode(swap_chars(p, FROM_QQ_BASE64)).map_err(|_| CryptoError::BadBase64)?;
    let plain = tea_decrypt(&cipher, &tea_key(password_md5, salt))?;
    let mut rest = plain.as_slice();
    let rsa = take_u16_prefixed(&mut rest, "rsa blob")?;
    if rsa.is_empty() || rsa.len() > 128 {
        return Err(CryptoError::BadRsaLength { len: rsa.len() });
    }
    if take(&mut rest, 8, "salt")? != salt.as_slice() {
        return Err(CryptoError::SaltMismatch);
    }
    let code = take_u16_prefixed(&mut rest, "verify code")?;
    if !rest.is_empty() {
        return Err(CryptoError::Malformed("trailing bytes after the verify code"));
    }
    String::from_utf8(code.to_vec()).map_err(|_| CryptoError::Malformed("verify code is not utf-8"))
}

/// The emulator's `/login` check: accepts either scheme (exactly 32 hex digits = scheme A,
/// anything else = scheme B) and compares the verify code case-insensitively with
/// `expected_code`. `Ok` says which scheme the client used; [`CryptoError::CodeMismatch`] means
/// a right password with a wrong captcha (scheme B only); any other error means a wrong password
/// (or, for scheme A, a wrong password or code).
pub fn detect_and_verify(
    p: &str,
    password_md5: [u8; 16],
    salt: &[u8; 8],
    expected_code: &str,
) -> Result<Scheme, CryptoError> {
    if is_md5_hex(p) {
        return if verify_md5_chain(p, password_md5, salt, expected_code) {
            Ok(Scheme::Md5Chain)
        } else {
            Err(CryptoError::Mismatch)
        };
    }
    let code = verify_rsa_tea(p, password_md5, salt)?;
    if code.to_uppercase() == expected_code.to_uppercase() {
        Ok(Scheme::RsaTea)
    } else {
        Err(CryptoError::CodeMismatch)
    }
}

const TEA_DELTA: u32 = 0x9E37_79B9;
/// Tencent's TEA runs 16 rounds, not the usual 32 (protocol §1.2.4).
const TEA_ROUNDS: u32 = 16;

/// QQ TEA encryption with OICQ chaining (protocol §1.2.4): a random header whose first byte
/// carries the pad length, the plaintext, 7 zero bytes; 16-round TEA, big-endian words. The
/// output is `len(plain) + pad + 10` bytes, a multiple of 8. Uses 10 random bytes from `rng`.
pub fn tea_encrypt(plain: &[u8], key: &[u8; 16], rng: &mut impl Rng) -> Vec<u8> {
    let mut random = [0u8; 10];
    rng.fill_bytes(&mut random);
    tea_encrypt_with_random(plain, key, &random)
}

/// [`tea_encrypt`] with its random bytes given: `random[0]` seeds the first header byte,
/// `random[1..=pad]` are the pad bytes and `random[8..10]` the two bytes before the plaintext.
fn tea_encrypt_with_random(plain: &[u8], key: &[u8; 16], random: &[u8; 10]) -> Vec<u8> {
    let pad = (8 - (plain.len() + 10) % 8) % 8;
    let mut buf = Vec::with_capacity(plain.len() + pad + 10);
    // `pad < 8`, so the cast is lossless and the low 3 bits hold it.
    buf.push((random[0] & 0xF8) | pad as u8);
    buf.extend(random.iter().skip(1).take(pad));
    buf.extend(random.iter().skip(8));
    buf.extend_from_slice(plain);
    buf.extend_from_slice(&[0u8; 7]);
    tea_chain_encrypt(&buf, key)
}

/// The OICQ chaining over whole 8-byte blocks (a trailing partial block is ignored; callers
/// pass a multiple of 8).
fn tea_chain_encrypt(buf: &[u8], key: &[u8; 16]) -> Vec<u8> {
    let k = key_words(key);
    let (blocks, _) = buf.as_chunks::<8>();
    let mut out = Vec::with_capacity(buf.len());
    let (mut prev_c, mut prev_x) = (0u64, 0u64);
    for block in blocks {
        let x = u64::from_be_bytes(*block) ^ prev_c;
        let c = tea_block_encrypt(x, &k) ^ prev_x;
        out.extend_from_slice(&c.to_be_bytes());
        (prev_c, prev_x) = (c, x);
    }
    out
}

/// QQ TEA decryption (inverse of [`tea_encrypt`]): checks the length (a multiple of 8, at least
/// 16), that the header fits and that the 7 trailing bytes are zero, and returns the plaintext
/// between them. Never panics, whatever the input.
pub fn tea_decrypt(cipher: &[u8], key: &[u8; 16]) -> Result<Vec<u8>, CryptoError> {
    if !cipher.len().is_multiple_of(8) || cipher.len() < 16 {
        return Err(CryptoError::BadLength { len: cipher.len() });
    }
    let k = key_words(key);
    let (blocks, _) = cipher.as_chunks::<8>();
    let mut out = Vec::with_capacity(cipher.len());
    let (mut prev_c, mut prev_x) = (0u64, 0u64);
    for block in blocks {
        let c = u64::from_be_bytes(*block);
        let x = tea_block_decrypt(c ^ prev_x, &k);
        out.extend_from_slice(&(x ^ prev_c).to_be_bytes());
        (prev_c, prev_x) = (c, x);
    }
    let header = 3 + usize::from(out.first().copied().unwrap_or(0) & 7);
    let body_end = out.len().saturating_sub(7);
    let (body, trailer) = out.split_at_checked(body_end).ok_or(CryptoError::BadPadding)?;
    if trailer.iter().any(|&b| b != 0) {
        return Err(CryptoError::BadPadding);
    }
    body.get(header..).map(<[u8]>::to_vec).ok_or(CryptoError::BadPadding)
}

fn key_words(key: &[u8; 16]) -> [u32; 4] {
    let (words, _) = key.as_chunks::<4>();
    let mut k = [0u32; 4];
    for (dst, src) in k.iter_mut().zip(words) {
        *dst = u32::from_be_bytes(*src);
    }
    k
}

fn tea_block_encrypt(block: u64, k: &[u32; 4]) -> u64 {
    let (mut y, mut z) = ((block >> 32) as u32, block as u32);
    let mut sum = 0u32;
    for _ in 0..TEA_ROUNDS {
        sum = sum.wrapping_add(TEA_DELTA);
        y = y.wrapping_add(tea_mix(z, sum, k[0], k[1]));
        z = z.wrapping_add(tea_mix(y, sum, k[2], k[3]));
    }
    (u64::from(y) << 32) | u64::from(z)
}

fn tea_block_decrypt(block: u64, k: &[u32; 4]) -> u64 {
    let (mut y, mut z) = ((block >> 32) as u32, block as u32);
    let mut sum = TEA_DELTA.wrapping_mul(TEA_ROUNDS);
    for _ in 0..TEA_ROUNDS {
        z = z.wrapping_sub(tea_mix(y, sum, k[2], k[3]));
        y = y.wrapping_sub(tea_mix(z, sum, k[0], k[1]));
        sum = sum.wrapping_sub(TEA_DELTA);
    }
    (u64::from(y) << 32) | u64::from(z)
}

fn tea_mix(v: u32, sum: u32, a: u32, b: u32) -> u32 {
    (v << 4).wrapping_add(a) ^ v.wrapping_add(sum) ^ (v >> 5).wrapping_add(b)
}

/// `MD5(h1 || salt)`: the scheme-B TEA key, and the inner digest of scheme A.
fn tea_key(password_md5: [u8; 16], salt: &[u8; 8]) -> [u8; 16] {
    md5_parts(&[&password_md5, salt])
}

/// PKCS#1 v1.5 type 2 (`00 02 <109 nonzero random bytes> 00 <h1>`), cubed mod N, big-endian
/// without leading zero bytes (the JS drops them when it goes through hex, protocol §1.2.4).
fn rsa_encrypt(h1: &[u8; 16], rng: &mut impl Rng) -> Vec<u8> {
    let mut block = [0u8; 128];
    block[1] = 2;
    for b in block.iter_mut().take(111).skip(2) {
        *b = rng.random_range(1..=255u8);
    }
    for (dst, src) in block.iter_mut().skip(112).zip(h1) {
        *dst = *src;
    }
    let n = BigUint::from_bytes_be(&RSA_MODULUS);
    BigUint::from_bytes_be(&block).modpow(&BigUint::from(3u32), &n).to_bytes_be()
}

fn push_u16_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend(data.iter().take(usize::from(len)));
}

fn take<'a>(rest: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], CryptoError> {
    let (head, tail) = rest.split_at_checked(n).ok_or(CryptoError::Malformed(what))?;
    *rest = tail;
    Ok(head)
}

fn take_u16_prefixed<'a>(rest: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], CryptoError> {
    let len: [u8; 2] = take(rest, 2, what)?.try_into().map_err(|_| CryptoError::Malformed(what))?;
    take(rest, usize::from(u16::from_be_bytes(len)), what)
}

/// The login page's base64 alphabet (protocol §1.2.4 step 7), and its inverse. The inverse
/// leaves standard-alphabet characters alone, so both alphabets decode.
const TO_QQ_BASE64: [(char, char); 3] = [('/', '-'), ('+', '*'), ('=', '_')];
const FROM_QQ_BASE64: [(char, char); 3] = [('-', '/'), ('*', '+'), ('_', '=')];

fn swap_chars(s: &str, pairs: [(char, char); 3]) -> String {
    s.chars().map(|c| pairs.iter().find(|(a, _)| *a == c).map_or(c, |&(_, b)| b)).collect()
}

fn md5_parts(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SALT: [u8; 8] = [0, 0, 0, 0, 0xa5, 0x13, 0xed, 0x18];
    const KEY_00_0F: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    /// A random source that always yields zero bytes, as the JS with its random forced to 0.
    struct ZeroRng;

    impl rand::RngCore for ZeroRng {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(0);
        }
    }

    fn decode_p(p: &str) -> Vec<u8> {
        STANDARD.decode(p.replace('-', "/").replace('*', "+").replace('_', "=")).unwrap()
    }

    fn err<T: std::fmt::Debug>(r: Result<T, CryptoError>) -> String {
        format!("{:?}", r.unwrap_err())
    }

    #[test]
    fn test_scheme_a_vectors() {
        // Protocol §1.2.3.
        let table = [
            ("password", "!ABC", "5EB6CC1162F78480362CE3D2B5D24F56"),
            ("password", "!abc", "5EB6CC1162F78480362CE3D2B5D24F56"),
            ("123456", "!abc", "7102464AA5094115DA4C6DFC88EBC6A2"),
        ];
        for (password, code, want) in table {
            let h1 = password_md5(password);
            assert_eq!(encrypt_password_md5(h1, &SALT, code), want, "{password} {code}");
            assert!(verify_md5_chain(&want.to_lowercase(), h1, &SALT, "!Abc"));
            assert!(!verify_md5_chain(want, h1, &SALT, "!ABD"));
            assert!(!verify_md5_chain(want, password_md5("Password"), &SALT, code));
            assert_eq!(detect_and_verify(want, h1, &SALT, "!aBc").unwrap(), Scheme::Md5Chain);
            assert_eq!(err(detect_and_verify(want, h1, &[0; 8], code)), "Mismatch");
        }
    }

    #[test]
    fn test_password_input_and_intermediates() {
        // Protocol §1.2.4: MD5("password") and the TEA key with the seed's salt.
        let h1 = password_md5("password");
        assert_eq!(hex::encode_upper(h1), "5F4DCC3B5AA765D61D8327DEB882CF99");
        assert_eq!(hex::encode_upper(tea_key(h1, &SALT)), "F0CE821E69A6A17096F71976E909D909");
        let cases = [
            ("password", false),
            ("5f4dcc3b5aa765d61d8327deb882cf99", true),
            ("5F4DCC3B5AA765D61D8327DEB882CF99", true),
            ("5F4DCC3B5AA765D61D8327DEB882CF9", false),
            ("5F4DCC3B5AA765D61D8327DEB882CF9G", false),
        ];
        for (s, hashed) in cases {
            let input = PasswordInput::detect(s);
            assert_eq!(matches!(input, PasswordInput::Md5Hex(_)), hashed, "{s}");
            assert_eq!(input.md5().unwrap(), if hashed { h1 } else { password_md5(s) }, "{s}");
        }
        assert_eq!(err(PasswordInput::Md5Hex("xyz").md5()), "BadMd5Hex");
        assert_eq!(err(password_md5_from_hex(&"é".repeat(16))), "BadMd5Hex");
        assert_eq!(format!("{:?}", PasswordInput::Plain("hunter2")), "Plain([redacted])");
    }

    #[test]
    fn test_tea_vectors() {
        // Protocol §1.2.4, deterministic TEA table (random bytes all 0).
        let k = key_words(&KEY_00_0F);
        let c = tea_block_encrypt(0x0001_0203_0405_0607, &k);
        assert_eq!(format!("{c:016x}"), "6328a50896bde3c8");
        assert_eq!(tea_block_decrypt(c, &k), 0x0001_0203_0405_0607);
        let twenty: Vec<u8> = (0u8..20).collect();
        let table: [(&[u8], &str); 2] = [
            (b"hello", "1c0f18dd779ac5ea3c2165b9ab20558e"),
            (&twenty, "128d23e90a0b40d0753c0e72605a6aa2a8fef045537757724562d156192884f5"),
        ];
        for (plain, want) in table {
            assert_eq!(hex::encode(tea_encrypt_with_random(plain, &KEY_00_0F, &[0; 10])), want);
            assert_eq!(hex::encode(tea_encrypt(plain, &KEY_00_0F, &mut ZeroRng)), want);
            assert_eq!(tea_decrypt(&hex::decode(want).unwrap(), &KEY_00_0F).unwrap(), plain);
        }
    }

    #[test]
    fn test_tea_decrypt_rejects() {
        let good = hex::decode("1c0f18dd779ac5ea3c2165b9ab20558e").unwrap();
        let mut wrong_key = KEY_00_0F;
        wrong_key[15] ^= 1;
        let mut flipped = good.clone();
        flipped[12] ^= 0x40;
        // A header announcing pad 7 (10 header bytes) in a 16-byte frame leaves no room for the
        // 7 zeros; the same frame with pad 6 is a valid empty plaintext.
        let mut raw = [0u8; 16];
        raw[0] = 0xF7;
        let pad7 = tea_chain_encrypt(&raw, &KEY_00_0F);
        raw[0] = 0xF6;
        assert_eq!(
            tea_decrypt(&tea_chain_encrypt(&raw, &KEY_00_0F), &KEY_00_0F).unwrap(),
            Vec::<u8>::new()
        );
        let cases: [(&[u8], &[u8; 16], &str); 7] = [
            (&[], &KEY_00_0F, "BadLength { len: 0 }"),
            (&[0; 8], &KEY_00_0F, "BadLength { len: 8 }"),
            (&[0; 15], &KEY_00_0F, "BadLength { len: 15 }"),
            (&[0; 17], &KEY_00_0F, "BadLength { len: 17 }"),
            (&good, &wrong_key, "BadPadding"),
            (&flipped, &KEY_00_0F, "BadPadding"),
            (&pad7, &KEY_00_0F, "BadPadding"),
        ];
        for (cipher, key, want) in cases {
            assert_eq!(err(tea_decrypt(cipher, key)), want);
        }
    }

    #[test]
    fn test_rsa_modulus_and_padding() {
        assert_eq!(hex::encode_upper(RSA_MODULUS), RSA_MODULUS_HEX);
        assert_eq!(BigUint::from_bytes_be(&RSA_MODULUS).bits(), 1024);
        let a = rsa_encrypt(&[1; 16], &mut StdRng::seed_from_u64(1));
        assert_ne!(a, rsa_encrypt(&[1; 16], &mut StdRng::seed_from_u64(2)), "random padding");
    }

    #[test]
    fn test_scheme_b_round_trip() {
        let h1 = password_md5("password");
        let p = encrypt_password_rsa_tea(h1, &SALT, "!abc", &mut StdRng::seed_from_u64(7));
        assert!(!p.contains(['/', '+', '=']), "{p}");
        // Protocol §1.2.4: 144 plaintext bytes, 160 ciphertext bytes, length prefix 128.
        let cipher = decode_p(&p);
        assert_eq!(cipher.len(), 160);
        let plain = tea_decrypt(&cipher, &tea_key(h1, &SALT)).unwrap();
        assert_eq!((plain.len(), &plain[..2]), (144, &[0u8, 128][..]));
        assert_eq!(verify_rsa_tea(&p, h1, &SALT).unwrap(), "!ABC");
        assert_eq!(detect_and_verify(&p, h1, &SALT, "!abc").unwrap(), Scheme::RsaTea);
        // Standard base64 (a client that forgot the alphabet swap) is accepted too.
        assert_eq!(verify_rsa_tea(&STANDARD.encode(&cipher), h1, &SALT).unwrap(), "!ABC");
        let other_salt = [0, 0, 0, 0, 0xa5, 0x13, 0xed, 0x19];
        let cases = [
            ("!abd", h1, SALT, "CodeMismatch"),
            ("!abc", password_md5("passw0rd"), SALT, "BadPadding"),
            // Another salt changes the TEA key, so decryption fails before the salt check.
            ("!abc", h1, other_salt, "BadPadding"),
        ];
        for (code, key, salt, want) in cases {
            assert_eq!(err(detect_and_verify(&p, key, &salt, code)), want, "{code}");
        }
    }

    #[test]
    fn test_scheme_b_malformed_frames() {
        let h1 = password_md5("password");
        let raw = |m: &[u8]| STANDARD.encode(tea_encrypt(m, &tea_key(h1, &SALT), &mut ZeroRng));
        let frame = |rsa_len: usize, salt: &[u8; 8], tail: &[u8]| {
            let mut m = Vec::new();
            push_u16_prefixed(&mut m, &vec![1; rsa_len]);
            m.extend_from_slice(salt);
            m.extend_from_slice(tail);
            raw(&m)
        };
        let cases = [
            (frame(127, &SALT, b"\0\x01a"), "Ok(\"a\")"),
            (frame(128, &[9; 8], b"\0\x04!ABC"), "Err(SaltMismatch)"),
            (frame(0, &SALT, b"\0\x01A"), "Err(BadRsaLength { len: 0 })"),
            (frame(129, &SALT, b"\0\x01A"), "Err(BadRsaLength { len: 129 })"),
            (frame(128, &SALT, b"\0\x05A"), "Err(Malformed(\"verify code\"))"),
            (frame(128, &SALT, b"\0"), "Err(Malformed(\"verify code\"))"),
            (
                frame(128, &SALT, b"\0\x01AB"),
                "Err(Malformed(\"trailing bytes after the verify code\"))",
            ),
            (frame(128, &SALT, b"\0\x01\xff"), "Err(Malformed(\"verify code is not utf-8\"))"),
            (raw(&[0, 100, 1, 2, 3]), "Err(Malformed(\"rsa blob\"))"),
            (raw(&[0]), "Err(Malformed(\"rsa blob\"))"),
            (frame(128, &SALT, b""), "Err(Malformed(\"verify code\"))"),
            (raw(&[0, 1, 0xAA, 0, 0, 0]), "Err(Malformed(\"salt\"))"),
            (String::from("not base64!"), "Err(BadBase64)"),
        ];
        for (p, want) in cases {
            assert_eq!(format!("{:?}", verify_rsa_tea(&p, h1, &SALT)), want);
        }
    }

    #[test]
    fn test_scheme_b_short_rsa_blob() {
        // About one seed in 256 gives an RSA output with a zero top byte; the JS then sends 127
        // bytes with a 0x007F prefix (protocol §1.2.4) and the verifier must accept it.
        let h1 = password_md5("123456");
        let short = (0..4000u64).find_map(|seed| {
            let p = encrypt_password_rsa_tea(h1, &SALT, "!xyz", &mut StdRng::seed_from_u64(seed));
            let plain = tea_decrypt(&decode_p(&p), &tea_key(h1, &SALT)).unwrap();
            (plain[..2] == [0, 127]).then_some((p, plain.len()))
        });
        let (p, len) = short.unwrap();
        assert_eq!(len, 143);
        assert_eq!(verify_rsa_tea(&p, h1, &SALT).unwrap(), "!XYZ");
    }

    proptest! {
        #[test]
        fn test_tea_round_trip(plain in proptest::collection::vec(any::<u8>(), 0..64),
                               key in any::<[u8; 16]>(), random in any::<[u8; 10]>()) {
            let c = tea_encrypt_with_random(&plain, &key, &random);
            prop_assert!(c.len().is_multiple_of(8) && c.len() >= plain.len() + 10);
            prop_assert!(c.len() < plain.len() + 18);
            prop_assert_eq!(tea_decrypt(&c, &key).unwrap(), plain);
        }

        #[test]
        fn test_garbage_never_panics(p in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                     h1 in any::<[u8; 16]>(), salt in any::<[u8; 8]>()) {
            let _ = detect_and_verify(&p, h1, &salt, "!ABC");
            let _ = verify_rsa_tea(&STANDARD.encode(&bytes), h1, &salt);
            let _ = tea_decrypt(&bytes, &h1);
            // A correctly encrypted frame with arbitrary content reaches the parser.
            let framed = STANDARD.encode(tea_encrypt(&bytes, &tea_key(h1, &salt), &mut ZeroRng));
            let _ = verify_rsa_tea(&framed, h1, &salt);
            let _ = PasswordInput::detect(&p).md5();
        }
    }
}
