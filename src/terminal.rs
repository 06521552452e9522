//! Drawing a QR code PNG in a terminal, for the `qq login qr` command.
//!
//! ptqrshow returns a PNG, not the QR payload, so the image is sampled back into modules: the
//! module size is read off the top-left finder pattern (7 modules wide), then each module's
//! centre is sampled and two rows are drawn per text line with half-block characters.

/// Renders a QR code PNG as text, or says why it cannot.
pub fn render_qr_png(png_bytes: &[u8]) -> Result<String, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().map_err(|e| format!("not a PNG: {e}"))?;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).map_err(|e| format!("PNG frame: {e}"))?;
    let (width, height) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    if info.bit_depth != png::BitDepth::Eight || width == 0 || height == 0 {
        return Err("only 8-bit PNGs are drawn".into());
    }
    let dark = |x: usize, y: usize| -> bool {
        let offset = (y * width + x) * channels;
        buffer.get(offset).is_some_and(|v| *v < 128)
    };
    // Find the first dark pixel on the diagonal: the finder pattern's corner.
    let start = (0..width.min(height)).find(|&i| dark(i, i)).ok_or("no dark pixels")?;
    let run = (start..width).take_while(|&x| dark(x, start)).count();
    let module = (run / 7).max(1);
    let modules = (width - start * 2) / module;
    if modules < 21 {
        return Err("image does not look like a QR code".into());
    }
    let cell = |mx: usize, my: usize| -> bool {
        let x = start + mx * module + module / 2;
        let y = start + my * module + module / 2;
        x < width && y < height && dark(x, y)
    };
    let quiet = 2usize;
    let total = modules + quiet * 2;
    let at = |mx: usize, my: usize| -> bool {
        mx >= quiet
            && my >= quiet
            && mx < quiet + modules
            && my < quiet + modules
            && cell(mx - quiet, my - quiet)
    };
    let mut out = String::new();
    for row in (0..total).step_by(2) {
        for col in 0..total {
            // Light-on-dark terminals read inverted codes badly, so dark modules are drawn as
            // spaces on a light (full block) background.
            let (top, bottom) = (at(col, row), row + 1 < total && at(col, row + 1));
            out.push(match (top, bottom) {
                (true, true) => ' ',
                (true, false) => '▄',
                (false, true) => '▀',
                (false, false) => '█',
            });
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_rejects_non_png() {
        assert!(super::render_qr_png(b"not a png").is_err());
    }
}
