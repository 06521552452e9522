//! A small `multipart/form-data` reader for the two upload endpoints (protocol §2.18): enough
//! for browser-style forms (text fields and one file), bounded by the body cap before it runs.

use bytes::Bytes;

/// One part of the form.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// The `name` of the Content-Disposition.
    pub name: String,
    /// The `filename`, for file parts.
    pub filename: Option<String>,
    /// The part's bytes.
    pub data: Bytes,
}

/// The boundary from a `Content-Type: multipart/form-data; boundary=…` header.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn disposition_param(line: &str, name: &str) -> Option<String> {
    line.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits a body into parts; malformed parts are skipped.
pub(crate) fn parse(body: &Bytes, boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let Some(mut pos) = find(body, delimiter, 0) else { return parts };
    loop {
        let start = pos + delimiter.len();
        // `--` after the delimiter closes the form.
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(next) = find(body, delimiter, start) else { break };
        let Some(headers_end) = find(body, b"\r\n\r\n", start).filter(|h| *h < next) else {
            pos = next;
            continue;
        };
        let headers = String::from_utf8_lossy(body.get(start..headers_end).unwrap_or_default());
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or_default();
        // The data ends with the CRLF that precedes the next delimiter.
        let data_end = next.saturating_sub(2).max(headers_end + 4);
        if let Some(name) = disposition_param(disposition, "name") {
            parts.push(Part {
                name,
                filename: disposition_param(disposition, "filename"),
                data: body.slice(headers_end + 4..data_end),
            });
        }
        pos = next;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_fields_and_file() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"vfwebqq\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"custom_face\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x00\x01\r\n--XyZ--\r\n",
        );
        assert_eq!(boundary("multipart/form-data; boundary=XyZ").as_deref(), Some("XyZ"));
        let parts = parse(&body, "XyZ");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "vfwebqq");
        assert_eq!(&parts[0].data[..], b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(&parts[1].data[..], b"\x89PNG\r\n\x00\x01");
        assert!(parse(&Bytes::from_static(b"garbage"), "XyZ").is_empty());
        assert!(boundary("text/plain").is_none());
    }
}
