//! Message body framing (RFC 9112 §6–7): counts body bytes by
//! `Content-Length`, chunked coding or connection close, and finds where the
//! message ends. No body byte is ever buffered: a chunk-size line and the
//! trailer section are scanned byte by byte with a few counters.

/// Where a body stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// `remaining` bytes of a `Content-Length` body to go.
    Length { remaining: u64 },
    /// A chunked body.
    Chunked(Chunk),
    /// Everything until the connection closes (a response with neither
    /// length nor chunked coding, RFC 9112 §6.3 rule 8).
    UntilClose,
}

/// Inside a chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// The chunk-size line: `value` from `digits` hex digits so far;
    /// `in_ext` once past the size (extensions, spaces); `line` bytes seen.
    Size {
        value: u64,
        digits: u32,
        in_ext: bool,
        line: usize,
    },
    /// Chunk data still to come.
    Data { remaining: u64 },
    /// The CRLF that ends chunk data.
    DataEnd,
    /// Trailer fields after the last chunk: `line` bytes on the current
    /// line, `total` bytes in the section.
    Trailer { line: usize, total: usize },
}

impl Chunk {
    /// A fresh chunk-size line.
    pub(crate) const START: Chunk = Chunk::Size {
        value: 0,
        digits: 0,
        in_ext: false,
        line: 0,
    };
}

/// What one [`Body::feed`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes of the input that belonged to this body (framing included).
    pub consumed: usize,
    /// Body bytes after transfer decoding among them.
    pub body: u64,
    /// The message ended at `consumed`.
    pub done: bool,
    /// A framing oddity that was tolerated.
    pub anomaly: Option<&'static str>,
}

/// What a gap inside a body does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GapOutcome {
    /// The missing bytes were body bytes; `done` when the body ended with them.
    Absorbed { done: bool },
    /// A `Content-Length` body ended inside the gap after `body` more
    /// bytes; the rest of the gap belongs to whatever followed.
    Overran { body: u64 },
    /// The gap covers chunked framing (a chunk-size line, the trailer, or
    /// past a chunk's end): where the message ends is unknown.
    Lost,
}

/// Length of the longest prefix of `data` that `n` body bytes cover.
fn take(data: &[u8], n: u64) -> usize {
    usize::try_from(n).map_or(data.len(), |n| n.min(data.len()))
}

impl Body {
    /// Consumes the body bytes at the start of `data`. `limit` bounds a
    /// chunk-size line and the trailer section. `Err` carries the anomaly
    /// code when the framing cannot be followed.
    pub(crate) fn feed(&mut self, data: &[u8], limit: usize) -> Result<Progress, &'static str> {
        match self {
            Body::Length { remaining } => {
                let n = take(data, *remaining);
                *remaining -= n as u64;
                Ok(Progress {
                    consumed: n,
                    body: n as u64,
                    done: *remaining == 0,
                    anomaly: None,
                })
            }
            Body::UntilClose => Ok(Progress {
                consumed: data.len(),
                body: data.len() as u64,
                done: false,
                anomaly: None,
            }),
            Body::Chunked(chunk) => feed_chunked(chunk, data, limit),
        }
    }

    /// `len` bytes of the stream are missing here.
    pub(crate) fn gap(&mut self, len: u64) -> GapOutcome {
        match self {
            Body::Length { remaining } if len <= *remaining => {
                *remaining -= len;
                GapOutcome::Absorbed {
                    done: *remaining == 0,
                }
            }
            Body::UntilClose => GapOutcome::Absorbed { done: false },
            Body::Chunked(chunk) => match chunk {
                Chunk::Data { remaining } if len <= *remaining => {
                    *remaining -= len;
                    if *remaining == 0 {
                        *chunk = Chunk::DataEnd;
                    }
                    GapOutcome::Absorbed { done: false }
                }
                _ => GapOutcome::Lost,
            },
            Body::Length { remaining } => GapOutcome::Overran { body: *remaining },
        }
    }
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

fn feed_chunked(chunk: &mut Chunk, data: &[u8], limit: usize) -> Result<Progress, &'static str> {
    let mut p = Progress::default();
    let mut i = 0usize;
    while i < data.len() {
        match chunk {
            Chunk::Data { remaining } => {
                let n = take(data.get(i..).unwrap_or(&[]), *remaining);
                *remaining -= n as u64;
                p.body += n as u64;
                i += n;
                if *remaining == 0 {
                    *chunk = Chunk::DataEnd;
                }
                continue;
            }
            Chunk::DataEnd => {
                match data.get(i) {
                    Some(b'\r') => i += 1,
                    Some(b'\n') => {
                        i += 1;
                        *chunk = Chunk::START;
                    }
                    // Tolerated: the next size line starts right away.
                    _ => {
                        p.anomaly = Some("http.chunk_missing_crlf");
                        *chunk = Chunk::START;
                    }
                }
                continue;
            }
            Chunk::Size {
                value,
                digits,
                in_ext,
                line,
            } => {
                let b = data.get(i).copied().unwrap_or(b'\n');
                i += 1;
                *line += 1;
                if *line > limit {
                    return Err("http.chunk_line_too_long");
                }
                if b == b'\n' {
                    if *digits == 0 {
                        return Err("http.invalid_chunk_size");
                    }
                    *chunk = if *value == 0 {
                        Chunk::Trailer { line: 0, total: 0 }
                    } else {
                        Chunk::Data { remaining: *value }
                    };
                } else if *in_ext || b == b'\r' {
                    // Extensions are skipped (RFC 9112 §7.1.1); a CR waits for its LF.
                    *in_ext = *in_ext || *digits > 0;
                    if *digits == 0 {
                        return Err("http.invalid_chunk_size");
                    }
                } else if let Some(d) = hex_value(b) {
                    *value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(d))
                        .ok_or("http.invalid_chunk_size")?;
                    *digits += 1;
                } else if (b == b';' || b == b' ' || b == b'\t') && *digits > 0 {
                    *in_ext = true;
                } else {
                    return Err("http.invalid_chunk_size");
                }
            }
            Chunk::Trailer { line, total } => {
                let b = data.get(i).copied().unwrap_or(b'\n');
                i += 1;
                match b {
                    b'\n' if *line == 0 => {
                        p.consumed = i;
                        p.done = true;
                        return Ok(p);
                    }
                    b'\n' => *line = 0,
                    b'\r' => {}
                    _ => {
                        *line += 1;
                        *total += 1;
                        if *total > limit {
                            return Err("http.header_too_long");
                        }
                    }
                }
            }
        }
    }
    p.consumed = i;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked() -> Body {
        Body::Chunked(Chunk::START)
    }

    /// Feeds `data` one byte at a time: splitting anywhere must not matter.
    fn bytewise(body: &mut Body, data: &[u8]) -> Result<Progress, &'static str> {
        let mut total = Progress::default();
        for (k, b) in data.iter().enumerate() {
            let p = body.feed(std::slice::from_ref(b), 1024)?;
            total.body += p.body;
            total.consumed += p.consumed;
            if p.done {
                total.done = true;
                assert_eq!(total.consumed, k + 1);
                return Ok(total);
            }
        }
        Ok(total)
    }

    #[test]
    fn rfc9112_chunked_example_counts_decoded_bytes() {
        // Two chunks (4 + 5 bytes), an extension, a trailer field, then
        // bytes of the next message that must not be consumed.
        let msg = b"4;name=val\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\nGET";
        let mut b = chunked();
        let p = b.feed(msg, 1024).unwrap();
        assert!(p.done);
        assert_eq!(p.body, 9);
        assert_eq!(p.consumed, msg.len() - 3);
        let mut b = chunked();
        let p = bytewise(&mut b, msg).unwrap();
        assert!(p.done);
        assert_eq!((p.body, p.consumed), (9, msg.len() - 3));
    }

    #[test]
    fn chunk_size_is_hex_and_bare_lf_is_accepted() {
        let mut b = chunked();
        let mut msg = b"1A\n".to_vec();
        msg.extend_from_slice(&[b'x'; 26]);
        msg.extend_from_slice(b"\n0\n\n");
        let p = b.feed(&msg, 1024).unwrap();
        assert_eq!((p.body, p.done, p.consumed), (26, true, msg.len()));
    }

    #[test]
    fn bad_chunk_sizes_are_errors() {
        for bad in [
            &b"\r\n"[..],
            b"zz\r\n",
            b";ext\r\n",
            b"-1\r\n",
            b"11111111111111111\r\n",
        ] {
            assert_eq!(
                chunked().feed(bad, 1024),
                Err("http.invalid_chunk_size"),
                "{bad:?}"
            );
        }
        let long = [b'0'; 40];
        assert_eq!(chunked().feed(&long, 16), Err("http.chunk_line_too_long"));
    }

    #[test]
    fn trailer_section_is_bounded() {
        let mut b = chunked();
        let mut msg = b"0\r\n".to_vec();
        msg.extend_from_slice(&[b'a'; 100]);
        assert_eq!(b.feed(&msg, 50), Err("http.header_too_long"));
    }

    #[test]
    fn content_length_stops_at_the_end() {
        let mut b = Body::Length { remaining: 5 };
        let p = b.feed(b"abcdefgh", 1024).unwrap();
        assert_eq!((p.consumed, p.body, p.done), (5, 5, true));
    }

    #[test]
    fn gaps_inside_bodies() {
        let mut b = Body::Length { remaining: 10 };
        assert_eq!(b.gap(4), GapOutcome::Absorbed { done: false });
        assert_eq!(b.gap(6), GapOutcome::Absorbed { done: true });
        let mut b = Body::Length { remaining: 3 };
        assert_eq!(b.gap(4), GapOutcome::Overran { body: 3 });
        let mut b = chunked();
        assert_eq!(b.gap(1), GapOutcome::Lost);
        let mut b = chunked();
        b.feed(b"8\r\nab", 1024).unwrap();
        assert_eq!(b.gap(6), GapOutcome::Absorbed { done: false });
        let p = b.feed(b"\r\n0\r\n\r\n", 1024).unwrap();
        assert!(p.done);
        assert_eq!(
            Body::UntilClose.gap(u64::MAX),
            GapOutcome::Absorbed { done: false }
        );
    }

    #[test]
    fn missing_crlf_after_chunk_data_is_tolerated_and_reported() {
        let mut b = chunked();
        let p = b.feed(b"2\r\nab0\r\n\r\n", 1024).unwrap();
        assert!(p.done);
        assert_eq!(p.anomaly, Some("http.chunk_missing_crlf"));
    }
}
