//! One side's record layer: record headers, handshake reassembly from
//! record fragments (bounded), and cheap skipping of everything else.

use flowscope_core::{Anomaly, Emit, FlowSide, SessionEvent, Timestamp};

use super::{be24, certificate, client_hello, server_hello, TlsMessage};

/// Record content types (RFC 8446 §5.1, RFC 6520).
const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_HANDSHAKE: u8 = 22;
const CT_HEARTBEAT: u8 = 24;
/// Handshake message types we parse.
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
/// Largest record body TLS allows (2^14 plus the ciphertext expansion).
const MAX_RECORD_LEN: u16 = 16384 + 2048;

/// True when 5 bytes look like a TLS record header of any content type.
pub(super) fn plausible_record_header(h: &[u8; 5]) -> bool {
    let [ty, major, minor, hi, lo] = *h;
    let len = u16::from_be_bytes([hi, lo]);
    (CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&ty)
        && major == 3
        && minor <= 4
        && len <= MAX_RECORD_LEN
}

/// What both sides share while one side's bytes are parsed.
pub(super) struct Shared<'a, 'o> {
    /// Per-side cap on buffered handshake bytes.
    pub cap: usize,
    /// The server chose TLS 1.3 (its handshake records are then either
    /// cleartext type 22 or disguised as application data, and a
    /// ChangeCipherSpec is only the compatibility dummy).
    pub tls13: &'a mut bool,
    pub side: FlowSide,
    pub ts: Timestamp,
    pub out: &'a mut Emit<'o, TlsMessage>,
}

impl Shared<'_, '_> {
    fn anomaly(&mut self, code: &'static str) {
        (self.out)(SessionEvent::Anomaly {
            side: Some(self.side),
            anomaly: Anomaly::new(code),
        });
    }
}

#[derive(Clone, Copy, Debug)]
enum Rec {
    /// No byte seen yet: a TLS record or an SSLv2 hello may start here.
    Start,
    /// Inside a 5-byte TLS record header.
    Header { buf: [u8; 5], fill: u8 },
    /// Inside a record body.
    Body {
        ty: u8,
        version: u16,
        remaining: u16,
    },
    /// Inside the 2-byte header of an SSLv2 record.
    V2Header { buf: [u8; 2], fill: u8 },
    /// Collecting an SSLv2 record body of `len` bytes into the buffer.
    V2Body { len: usize },
    /// Given up on this side (desynchronised, unknown framing, cap reached
    /// on an SSLv2 record, or a gap across records).
    Stopped,
}

#[derive(Clone, Copy, Debug)]
enum Hs {
    /// Inside a 4-byte handshake message header.
    Header { buf: [u8; 4], fill: u8 },
    /// Collecting a message of interest (`len` body bytes) into the buffer.
    Collect { ty: u8, len: usize },
    /// Passing over a message of no interest without keeping it.
    Skip { remaining: usize },
}

/// One direction of a TLS connection.
#[derive(Debug)]
pub(super) struct Side {
    rec: Rec,
    hs: Hs,
    /// Handshake message (or SSLv2 record) being reassembled.
    buf: Vec<u8>,
    /// This side sent ChangeCipherSpec under TLS ≤ 1.2: its handshake
    /// records are ciphertext from now on.
    encrypted: bool,
    /// Handshake reassembly gave up (cap or gap); records are still skipped.
    hs_stopped: bool,
    /// An SSLv2 hello came first: a non-TLS record next means the
    /// connection stayed SSLv2, which is not parsed (no anomaly).
    after_v2: bool,
    /// Version of the record that held the current message's first byte.
    msg_record_version: u16,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            rec: Rec::Start,
            hs: Hs::Header {
                buf: [0; 4],
                fill: 0,
            },
            buf: Vec::new(),
            encrypted: false,
            hs_stopped: false,
            after_v2: false,
            msg_record_version: 0,
        }
    }
}

impl Side {
    /// True once this side is no longer parsed at all.
    pub(super) fn is_stopped(&self) -> bool {
        matches!(self.rec, Rec::Stopped)
    }

    fn stop(&mut self) {
        self.rec = Rec::Stopped;
        self.buf = Vec::new();
    }

    /// Bytes held for reassembly right now.
    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes of the reassembly buffer (its capacity).
    pub(super) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// In-order bytes of this side.
    pub(super) fn feed(&mut self, mut data: &[u8], sh: &mut Shared<'_, '_>) {
        while !data.is_empty() {
            match self.rec {
                Rec::Stopped => return,
                Rec::Start => {
                    self.rec = match data.first() {
                        Some(b) if b & 0x80 != 0 => Rec::V2Header {
                            buf: [0; 2],
                            fill: 0,
                        },
                        _ => Rec::Header {
                            buf: [0; 5],
                            fill: 0,
                        },
                    };
                }
                Rec::Header { mut buf, fill } => {
                    let (n, full) = fill_header(&mut buf, fill, data);
                    data = data.get(n..).unwrap_or_default();
                    let Some(hdr) = full else {
                        self.rec = Rec::Header {
                            buf,
                            fill: fill.saturating_add(n as u8),
                        };
                        continue;
                    };
                    if !plausible_record_header(&hdr) {
                        if !self.after_v2 {
                            sh.anomaly("tls.invalid_record");
                        }
                        self.stop();
                        return;
                    }
                    let [ty, major, minor, hi, lo] = hdr;
                    let remaining = u16::from_be_bytes([hi, lo]);
                    self.after_v2 = false;
                    self.rec = Rec::Body {
                        ty,
                        version: u16::from_be_bytes([major, minor]),
                        remaining,
                    };
                    if remaining == 0 {
                        self.end_record(ty, sh);
                    }
                }
                Rec::Body {
                    ty,
                    version,
                    remaining,
                } => {
                    let n = usize::from(remaining).min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    data = rest;
                    // `n` ≤ `remaining`, a u16.
                    let left = remaining.saturating_sub(n as u16);
                    self.rec = Rec::Body {
                        ty,
                        version,
                        remaining: left,
                    };
                    if ty == CT_HANDSHAKE && !self.encrypted && !self.hs_stopped {
                        self.handshake_bytes(chunk, version, sh);
                        if self.is_stopped() {
                            return;
                        }
                    }
                    if left == 0 {
                        self.end_record(ty, sh);
                    }
                }
                Rec::V2Header { mut buf, fill } => {
                    let (n, full) = fill_header(&mut buf, fill, data);
                    data = data.get(n..).unwrap_or_default();
                    match full {
                        None => {
                            self.rec = Rec::V2Header {
                                buf,
                                fill: fill.saturating_add(n as u8),
                            }
                        }
                        Some([hi, lo]) => {
                            let len = usize::from(u16::from_be_bytes([hi & 0x7f, lo]));
                            if len > sh.cap {
                                sh.anomaly("tls.handshake_too_large");
                                self.stop();
                                return;
                            }
                            self.buf.clear();
                            self.rec = Rec::V2Body { len };
                        }
                    }
                }
                Rec::V2Body { len } => {
                    let need = len.saturating_sub(self.buf.len());
                    let n = need.min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    data = rest;
                    self.buf.extend_from_slice(chunk);
                    if self.buf.len() >= len {
                        self.end_v2_record(sh);
                    }
                }
            }
        }
    }

    /// A whole SSLv2 record is in the buffer.
    fn end_v2_record(&mut self, sh: &mut Shared<'_, '_>) {
        let msg = if self.buf.first() == Some(&HS_CLIENT_HELLO) {
            let ch = client_hello::parse_sslv2(&self.buf, sh.ts);
            if ch.is_none() {
                sh.anomaly("tls.malformed_client_hello");
            }
            ch
        } else {
            None
        };
        match msg {
            Some(ch) => {
                (sh.out)(SessionEvent::Message(TlsMessage::ClientHello(ch)));
                self.buf.clear();
                self.after_v2 = true;
                self.rec = Rec::Header {
                    buf: [0; 5],
                    fill: 0,
                };
            }
            // An SSLv2 server hello or anything else: SSLv2 proper, not parsed.
            None => self.stop(),
        }
    }

    /// The current record ended.
    fn end_record(&mut self, ty: u8, sh: &mut Shared<'_, '_>) {
        if ty == CT_CHANGE_CIPHER_SPEC && !*sh.tls13 {
            self.encrypted = true;
            self.buf = Vec::new();
        }
        self.rec = Rec::Header {
            buf: [0; 5],
            fill: 0,
        };
    }

    /// Cleartext handshake-record bytes, in order.
    fn handshake_bytes(&mut self, mut data: &[u8], rec_version: u16, sh: &mut Shared<'_, '_>) {
        while !data.is_empty() {
            match self.hs {
                Hs::Header { mut buf, fill } => {
                    if fill == 0 {
                        self.msg_record_version = rec_version;
                    }
                    let (n, full) = fill_header(&mut buf, fill, data);
                    data = data.get(n..).unwrap_or_default();
                    let Some([ty, a, b, c]) = full else {
                        self.hs = Hs::Header {
                            buf,
                            fill: fill.saturating_add(n as u8),
                        };
                        continue;
                    };
                    let len = be24(&[a, b, c], 0).unwrap_or(0);
                    let wanted = matches!(ty, HS_CLIENT_HELLO | HS_SERVER_HELLO | HS_CERTIFICATE);
                    if !wanted {
                        self.hs = Hs::Skip { remaining: len };
                    } else if len > sh.cap {
                        sh.anomaly("tls.handshake_too_large");
                        self.hs_stopped = true;
                        self.buf = Vec::new();
                        return;
                    } else {
                        self.buf.clear();
                        self.hs = Hs::Collect { ty, len };
                        if len == 0 {
                            self.message(ty, &[], sh);
                            self.hs = Hs::Header {
                                buf: [0; 4],
                                fill: 0,
                            };
                        }
                    }
                }
                Hs::Skip { remaining } => {
                    let n = remaining.min(data.len());
                    data = data.get(n..).unwrap_or_default();
                    let left = remaining.saturating_sub(n);
                    self.hs = if left == 0 {
                        Hs::Header {
                            buf: [0; 4],
                            fill: 0,
                        }
                    } else {
                        Hs::Skip { remaining: left }
                    };
                }
                Hs::Collect { ty, len } => {
                    if self.buf.is_empty() && data.len() >= len {
                        // The whole message is in this chunk: parse in place.
                        let (body, rest) = data.split_at(len);
                        data = rest;
                        self.message(ty, body, sh);
                    } else {
                        let need = len.saturating_sub(self.buf.len());
                        let n = need.min(data.len());
                        let (chunk, rest) = data.split_at(n);
                        data = rest;
                        self.buf.extend_from_slice(chunk);
                        if self.buf.len() < len {
                            continue;
                        }
                        let body = std::mem::take(&mut self.buf);
                        self.message(ty, &body, sh);
                        // Keep the allocation for a later message.
                        self.buf = body;
                        self.buf.clear();
                    }
                    self.hs = Hs::Header {
                        buf: [0; 4],
                        fill: 0,
                    };
                }
            }
        }
    }

    /// One whole handshake message of interest.
    fn message(&mut self, ty: u8, body: &[u8], sh: &mut Shared<'_, '_>) {
        let side = sh.side;
        let rv = self.msg_record_version;
        let ts = sh.ts;
        let out = &mut *sh.out;
        let mut anomaly = |a: Anomaly| {
            out(SessionEvent::Anomaly {
                side: Some(side),
                anomaly: a,
            })
        };
        let msg = match ty {
            HS_CLIENT_HELLO => {
                client_hello::parse(body, rv, ts, &mut anomaly).map(TlsMessage::ClientHello)
            }
            HS_SERVER_HELLO => server_hello::parse(body, rv, ts, &mut anomaly).map(|s| {
                if s.negotiated_version() == 0x0304 || s.is_hello_retry_request {
                    *sh.tls13 = true;
                }
                TlsMessage::ServerHello(s)
            }),
            HS_CERTIFICATE => {
                certificate::parse(body, ts, &mut anomaly).map(TlsMessage::Certificates)
            }
            _ => None,
        };
        if let Some(m) = msg {
            (sh.out)(SessionEvent::Message(m));
        }
    }

    /// `len` bytes of this side are missing.
    pub(super) fn gap(&mut self, len: u64) {
        let Rec::Body {
            ty,
            version,
            remaining,
        } = self.rec
        else {
            // Inside a header, or before any data: the framing is lost.
            self.stop();
            return;
        };
        let Some(left) = u16::try_from(len)
            .ok()
            .and_then(|l| remaining.checked_sub(l))
        else {
            // The hole runs past this record: the next header is unknown.
            self.stop();
            return;
        };
        self.rec = Rec::Body {
            ty,
            version,
            remaining: left,
        };
        if ty == CT_HANDSHAKE && !self.encrypted && !self.hs_stopped {
            match (self.hs, usize::try_from(len)) {
                (Hs::Skip { remaining }, Ok(l)) if l <= remaining => {
                    self.hs = Hs::Skip {
                        remaining: remaining - l,
                    };
                }
                _ => {
                    // A message lost bytes: handshake boundaries are gone.
                    self.hs_stopped = true;
                    self.buf = Vec::new();
                }
            }
        }
        if left == 0 {
            self.rec = Rec::Header {
                buf: [0; 5],
                fill: 0,
            };
        }
    }
}

/// Copies header bytes from `data` into `buf` after `fill` bytes; returns
/// how many were taken and the header once it is whole.
fn fill_header<const N: usize>(
    buf: &mut [u8; N],
    fill: u8,
    data: &[u8],
) -> (usize, Option<[u8; N]>) {
    let fill = usize::from(fill).min(N);
    let n = (N - fill).min(data.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(fill..fill + n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    if fill + n == N {
        (n, Some(*buf))
    } else {
        (n, None)
    }
}
