//! [`Decoder`]: an incremental HTTP/1.x answer reader (status line, headers, Content-Length,
//! chunked or read-to-close body) for the long poll. Pure: bytes in, answer out, no IO.

/// The largest status line plus headers accepted (WebQQ answers carry a few Set-Cookie at most).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers parsed per answer; more is treated as a malformed answer.
const MAX_HEADERS: usize = 64;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// Why the bytes are not an acceptable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Not HTTP/1.x, or inconsistent framing.
    Protocol,
    /// The body is larger than the cap.
    TooLarge,
    /// The connection ended before the answer was complete.
    Truncated,
}

/// What the status line and headers said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Head {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, when present and text.
    pub content_type: Option<String>,
    /// Every `Set-Cookie` value (protocol §7.7: read cookies from every answer).
    pub set_cookies: Vec<String>,
    /// The server allows the connection to carry the next request.
    pub keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Head,
    Length(usize),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Reads one answer from the bytes pushed into [`Decoder::buffer`].
#[derive(Debug)]
pub(crate) struct Decoder {
    cap: usize,
    pending: Vec<u8>,
    stage: Stage,
    head: Head,
    body: Vec<u8>,
}

impl Decoder {
    /// A decoder for an answer whose body may be at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Decoder {
            cap,
            pending: Vec::new(),
            stage: Stage::Head,
            head: Head::default(),
            body: Vec::new(),
        }
    }

    /// Where the next read appends its bytes; call [`Decoder::advance`] after each read.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// The head, once parsed (taken cookies are no longer in it).
    pub(crate) fn head_mut(&mut self) -> Option<&mut Head> {
        if self.stage == Stage::Head { None } else { Some(&mut self.head) }
    }

    /// Consumes the buffered bytes; `Ok(true)` once the answer is complete.
    pub(crate) fn advance(&mut self) -> Result<bool, Fault> {
        let mut pos = 0;
        let result = self.consume(&mut pos);
        self.pending.drain(..pos.min(self.pending.len()));
        result
    }

    /// The connection closed: `Ok(())` if that completes the answer (a body read to close).
    pub(crate) fn finish_at_close(&mut self) -> Result<(), Fault> {
        match self.stage {
            Stage::UntilClose => {
                self.stage = Stage::Done;
                Ok(())
            }
            Stage::Done => Ok(()),
            _ => Err(Fault::Truncated),
        }
    }

    /// Whether the connection may carry another request: the server said keep-alive, the body
    /// had its own framing and nothing followed it.
    pub(crate) fn reusable(&self) -> bool {
        self.stage == Stage::Done && self.head.keep_alive && self.pending.is_empty()
    }

    /// The answer: head and body. Meaningful once complete.
    pub(crate) fn into_parts(self) -> (Head, Vec<u8>) {
        (self.head, self.body)
    }

    fn consume(&mut self, pos: &mut usize) -> Result<bool, Fault> {
        loop {
            let rest = self.pending.get(*pos..).unwrap_or_default();
            match self.stage {
                Stage::Done => return Ok(true),
                Stage::Head => match parse_head(rest)? {
                    None if rest.len() > MAX_HEAD_BYTES => return Err(Fault::Protocol),
                    None => return Ok(false),
                    Some((len, head, framing)) => {
                        *pos += len;
                        // 1xx answers (100 Continue) precede the real one (RFC 9112 §4).
                        if (100..200).contains(&head.status) {
                            continue;
                        }
                        if let Stage::Length(n) = framing
                            && n > self.cap
                        {
                            return Err(Fault::TooLarge);
                        }
                        self.head = head;
                        self.stage = framing;
                        if framing == Stage::UntilClose {
                            self.head.keep_alive = false;
                        }
                    }
                },
                Stage::Length(0) => self.stage = Stage::Done,
                Stage::Length(n) => {
                    let take = n.min(rest.len());
                    if take == 0 {
                        return Ok(false);
                    }
                    self.push_body(pos, take)?;
                    self.stage = Stage::Length(n - take);
                }
                Stage::UntilClose => {
                    let take = rest.len();
                    self.push_body(pos, take)?;
                    return Ok(false);
                }
                Stage::Chunked(chunk) => {
                    if !self.chunked(chunk, pos)? {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// One step of the chunked framing; `Ok(false)` when more bytes are needed.
    fn chunked(&mut self, chunk: Chunk, pos: &mut usize) -> Result<bool, Fault> {
        let rest = self.pending.get(*pos..).unwrap_or_default();
        match chunk {
            Chunk::Size => {
                let Some((line, used)) = line(rest)? else {
                    return Ok(false);
                };
                let size = chunk_size(line)?;
                if self.body.len().saturating_add(size) > self.cap {
                    return Err(Fault::TooLarge);
                }
                *pos += used;
                self.stage =
                    Stage::Chunked(if size == 0 { Chunk::Trailers } else { Chunk::Data(size) });
            }
            Chunk::Data(n) => {
                let take = n.min(rest.len());
                if take == 0 {
                    return Ok(false);
                }
                self.push_body(pos, take)?;
                let left = n - take;
                self.stage =
                    Stage::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
            }
            Chunk::DataEnd => {
                let used = match rest {
                    [b'\r', b'\n', ..] => 2,
                    [b'\n', ..] => 1,
                    [] | [b'\r'] => return Ok(false),
                    _ => return Err(Fault::Protocol),
                };
                *pos += used;
                self.stage = Stage::Chunked(Chunk::Size);
            }
            Chunk::Trailers => {
                let Some((line, used)) = line(rest)? else {
                    return Ok(false);
                };
                *pos += used;
                if line.is_empty() {
                    self.stage = Stage::Done;
                }
            }
        }
        Ok(true)
    }

    fn push_body(&mut self, pos: &mut usize, take: usize) -> Result<(), Fault> {
        if self.body.len().saturating_add(take) > self.cap {
            return Err(Fault::TooLarge);
        }
        let end = pos.saturating_add(take);
        let bytes = self.pending.get(*pos..end).ok_or(Fault::Protocol)?;
        self.body.extend_from_slice(bytes);
        *pos = end;
        Ok(())
    }
}

/// One line ending in LF (CR optional) and the bytes it used, or `None` if incomplete.
fn line(rest: &[u8]) -> Result<Option<(&[u8], usize)>, Fault> {
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let text = rest.get(..i).unwrap_or_default();
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            Ok(Some((text, i + 1)))
        }
        None if rest.len() > MAX_LINE_BYTES => Err(Fault::Protocol),
        None => Ok(None),
    }
}

/// A chunk-size line: hex digits, then optional `;extensions`.
fn chunk_size(line: &[u8]) -> Result<usize, Fault> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = std::str::from_utf8(digits).map_err(|_| Fault::Protocol)?.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Fault::Protocol);
    }
    usize::from_str_radix(digits, 16).map_err(|_| Fault::Protocol)
}

/// Parses the status line and headers: `None` while incomplete, else the bytes used, the head
/// and how the body is framed.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head, Stage)>, Fault> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Fault::Protocol),
    };
    let status = response.code.ok_or(Fault::Protocol)?;
    let http11 = response.version == Some(1);
    let mut head = Head { status, keep_alive: http11, ..Head::default() };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut other_coding = false;
    for header in response.headers.iter() {
        let name = header.name;
        let value = std::str::from_utf8(header.value).ok();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.and_then(|v| v.trim().parse::<usize>().ok()).ok_or(Fault::Protocol)?;
            if length.is_some_and(|old| old != n) {
                return Err(Fault::Protocol);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.and_then(|v| v.rsplit(',').next()).map(str::trim);
            if last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")) {
                chunked = true;
            } else {
                other_coding = true;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.unwrap_or_default().split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = value.map(str::to_owned);
        } else if name.eq_ignore_ascii_case("set-cookie")
            && let Some(v) = value
        {
            head.set_cookies.push(v.to_owned());
        }
    }
    // RFC 9112 §6.3: no body for 1xx, 204, 304; chunked wins over Content-Length; an unknown
    // coding or no length at all means the body runs until the server closes.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Stage::Length(0)
    } else if other_coding {
        Stage::UntilClose
    } else if chunked {
        Stage::Chunked(Chunk::Size)
    } else {
        match length {
            Some(n) => Stage::Length(n),
            None => Stage::UntilClose,
        }
    };
    Ok(Some((len, head, framing)))
}
