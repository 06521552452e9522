//! Generated images: the ptqrshow QR code (PNG), captcha pictures (JPEG, drawn with a tiny
//! built-in 5x7 bitmap font so a person can read them), avatars and sample chat pictures.

use bytes::Bytes;
use rand::Rng;

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
const GLYPHS: &[(char, [u8; 7])] = &[
    ('A', [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11]),
    ('B', [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E]),
    ('C', [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E]),
    ('D', [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E]),
    ('E', [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F]),
    ('F', [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10]),
    ('G', [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F]),
    ('H', [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11]),
    ('I', [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E]),
    ('J', [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C]),
    ('K', [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11]),
    ('L', [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F]),
    ('M', [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11]),
    ('N', [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11]),
    ('O', [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E]),
    ('P', [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10]),
    ('Q', [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D]),
    ('R', [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11]),
    ('S', [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E]),
    ('T', [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04]),
    ('U', [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E]),
    ('V', [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04]),
    ('W', [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A]),
    ('X', [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11]),
    ('Y', [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04]),
    ('Z', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F]),
    ('2', [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F]),
    ('3', [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E]),
    ('4', [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02]),
    ('5', [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E]),
    ('6', [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E]),
    ('7', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
    ('8', [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E]),
    ('9', [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C]),
];

/// Characters a captcha code is drawn from (no 0/O, 1/I/L look-alikes).
pub(crate) const CAPTCHA_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn glyph(c: char) -> Option<&'static [u8; 7]> {
    GLYPHS.iter().find(|(g, _)| *g == c.to_ascii_uppercase()).map(|(_, rows)| rows)
}

/// An RGB canvas.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize, rgb: [u8; 3]) -> Canvas {
        Canvas { width, height, pixels: rgb.repeat(width * height) }
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            if let Some(p) = self.pixels.get_mut(i..i + 3) {
                p.copy_from_slice(&rgb);
            }
        }
    }

    fn text(&mut self, text: &str, x0: usize, y0: usize, scale: usize, rgb: [u8; 3], jitter: bool) {
        let mut rng = rand::rng();
        for (i, c) in text.chars().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            let dy = if jitter { rng.random_range(0..6) } else { 0 };
            let left = x0 + i * 6 * scale;
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                self.set(left + col * scale + sx, y0 + dy + row * scale + sy, rgb);
                            }
                        }
                    }
                }
            }
        }
    }

    fn png(&self) -> Bytes {
        encode_png(&self.pixels, self.width, self.height, png::ColorType::Rgb)
    }
}

fn encode_png(pixels: &[u8], width: usize, height: usize, color: png::ColorType) -> Bytes {
    let mut out = Vec::new();
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Bytes::new();
    };
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let written = encoder.write_header().and_then(|mut writer| writer.write_image_data(pixels));
        if written.is_err() {
            return Bytes::new();
        }
    }
    Bytes::from(out)
}

/// A captcha JPEG (130x53, the real size) showing `code` with noise. Empty on encoder failure.
pub(crate) fn captcha_jpeg(code: &str) -> Bytes {
    let mut canvas = Canvas::new(130, 53, [0xF4, 0xF1, 0xE6]);
    let mut rng = rand::rng();
    for _ in 0..300 {
        let (x, y) = (rng.random_range(0..130), rng.random_range(0..53));
        canvas.set(x, y, [rng.random_range(120..220), rng.random_range(120..220), 0x90]);
    }
    canvas.text(code, 10, 10, 4, [0x1A, 0x3C, 0x8C], true);
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 85);
    if encoder.encode(&canvas.pixels, 130, 53, jpeg_encoder::ColorType::Rgb).is_err() {
        return Bytes::new();
    }
    Bytes::from(out)
}

/// A PNG QR code encoding `data` (4 pixels per module, quiet zone of 4 modules).
pub(crate) fn qr_png(data: &str) -> Bytes {
    let Ok(code) = qrcode::QrCode::new(data.as_bytes()) else {
        return Bytes::new();
    };
    let modules = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (4, 4);
    let size = (modules + 2 * quiet) * scale;
    let mut pixels = vec![0xFF_u8; size * size];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + quiet, i / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                if let Some(row) =
                    pixels.get_mut(y * size + mx * scale..y * size + (mx + 1) * scale)
                {
                    row.fill(0);
                }
            }
        }
    }
    encode_png(&pixels, size, size, png::ColorType::Grayscale)
}

/// An avatar PNG (40x40) coloured by the face id, showing the id's last digits.
pub(crate) fn avatar_png(face: u64) -> Bytes {
    let hue = face.wrapping_mul(2_654_435_761);
    let rgb = [(hue >> 8) as u8 | 0x40, (hue >> 16) as u8 | 0x40, (hue >> 24) as u8 | 0x40];
    let mut canvas = Canvas::new(40, 40, rgb);
    canvas.text(
        &format!("{:02}", face % 100).replace('0', "O").replace('1', "I"),
        8,
        13,
        2,
        [0xFF, 0xFF, 0xFF],
        false,
    );
    canvas.png()
}

/// A small sample chat picture (PNG, 96x64) with a label, for control-API messages that ask
/// for `"image": true`.
pub(crate) fn sample_picture(label: &str) -> Bytes {
    let mut canvas = Canvas::new(96, 64, [0x2E, 0x8B, 0x57]);
    for y in 0..64 {
        for x in 0..96 {
            if (x / 8 + y / 8) % 2 == 0 {
                canvas.set(x, y, [0x3C, 0xB3, 0x71]);
            }
        }
    }
    canvas.text(label, 6, 24, 2, [0xFF, 0xFF, 0xFF], false);
    canvas.png()
}

/// A random captcha code of four characters.
pub(crate) fn random_captcha_code() -> String {
    let mut rng = rand::rng();
    (0..4)
        .map(|_| {
            let i = rng.random_range(0..CAPTCHA_ALPHABET.len());
            char::from(CAPTCHA_ALPHABET.get(i).copied().unwrap_or(b'A'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_every_captcha_char_has_a_glyph() {
        for c in CAPTCHA_ALPHABET {
            assert!(glyph(char::from(*c)).is_some(), "{}", char::from(*c));
        }
    }

    #[test]
    fn test_images_have_magic_numbers() {
        assert!(qr_png("https://ssl.ptlogin2.qq.com/x?k=abc").starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(captcha_jpeg("AB3D").starts_with(&[0xFF, 0xD8]));
        assert!(avatar_png(522).starts_with(b"\x89PNG"));
        assert!(sample_picture("HELLO").starts_with(b"\x89PNG"));
        assert_eq!(random_captcha_code().len(), 4);
    }
}
