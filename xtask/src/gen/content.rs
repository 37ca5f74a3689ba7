//! Payload bytes: application messages laid out on a TCP byte stream, DNS
//! messages, and cheap deterministic filler.

/// Printable filler for text bodies (HTTP).
const TEXT: &[u8; 64] = b"flowscope synthetic body: the quick brown fox jumps over 012345\n";

/// Byte `i` of the binary filler (TLS records, UDP bulk): an affine
/// permutation of 0..=255, so every byte value appears.
const fn binary_byte(i: usize) -> u8 {
    ((i * 167 + 13) & 0xff) as u8
}

const BINARY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = binary_byte(i);
        i += 1;
    }
    t
};

/// Which filler a message body uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filler {
    /// Printable text.
    Text,
    /// Binary bytes.
    Binary,
}

/// Appends `len` filler bytes starting at position `pos` of an endless
/// repetition of the filler, shifted by `salt`.
pub fn fill(buf: &mut Vec<u8>, filler: Filler, salt: u32, pos: u64, len: usize) {
    let table: &[u8] = match filler {
        Filler::Text => TEXT,
        Filler::Binary => &BINARY,
    };
    let mut p = ((pos + u64::from(salt)) % table.len() as u64) as usize;
    let mut left = len;
    while left > 0 {
        let chunk = table.get(p..).unwrap_or(&[]);
        let n = chunk.len().min(left);
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        left -= n;
        p = 0;
    }
}

/// One application message on a byte stream: a header followed by a body.
#[derive(Clone, Debug)]
pub struct Msg {
    /// Stream offset of the first header byte.
    pub start: u64,
    /// Header bytes (HTTP head, TLS record header, …).
    pub head: Vec<u8>,
    /// Body length.
    pub body_len: u64,
    /// Body filler.
    pub filler: Filler,
    /// Filler shift, so flows differ.
    pub salt: u32,
}

impl Msg {
    /// Total length on the stream.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.body_len
    }
}

/// The messages one side writes on a TCP connection, back to back.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    msgs: Vec<Msg>,
    len: u64,
}

impl Stream {
    /// Appends a message; returns its length.
    pub fn push(&mut self, head: Vec<u8>, body_len: u64, filler: Filler, salt: u32) -> u64 {
        let m = Msg {
            start: self.len,
            head,
            body_len,
            filler,
            salt,
        };
        let l = m.len();
        self.len += l;
        self.msgs.push(m);
        l
    }

    /// Appends stream bytes `off..off + len` to `buf`.
    pub fn write(&self, buf: &mut Vec<u8>, off: u64, len: usize) {
        let end = off + len as u64;
        // First message that ends after `off`.
        let first = self.msgs.partition_point(|m| m.start + m.len() <= off);
        for m in self.msgs.get(first..).unwrap_or(&[]) {
            if m.start >= end {
                break;
            }
            let lo = off.max(m.start) - m.start;
            let hi = end.min(m.start + m.len()) - m.start;
            let head_len = m.head.len() as u64;
            if lo < head_len {
                let h_hi = hi.min(head_len);
                buf.extend_from_slice(m.head.get(lo as usize..h_hi as usize).unwrap_or(&[]));
            }
            if hi > head_len {
                let b_lo = lo.max(head_len) - head_len;
                let b_hi = hi - head_len;
                fill(buf, m.filler, m.salt, b_lo, (b_hi - b_lo) as usize);
            }
        }
    }
}

/// A DNS exchange: one question, and an answer unless the name does not exist.
#[derive(Clone, Debug)]
pub struct Dns {
    /// Transaction id.
    pub id: u16,
    /// The question name in wire format (length-prefixed labels, root 0).
    pub qname: Vec<u8>,
    /// QTYPE: 1 (A) or 28 (AAAA).
    pub qtype: u16,
    /// RCODE of the response: 0 (NOERROR) or 3 (NXDOMAIN).
    pub rcode: u8,
    /// The answer's address (first 4 bytes for A).
    pub addr: [u8; 16],
    /// The answer's TTL.
    pub ttl: u32,
}

impl Dns {
    /// Encodes a dotted name as DNS labels (RFC 1035 §3.1).
    pub fn encode_name(name: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(name.len() + 2);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            let l = &label.as_bytes()[..label.len().min(63)];
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        out
    }

    fn header(&self, buf: &mut Vec<u8>, flags: u16, ancount: u16) {
        buf.extend_from_slice(&self.id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        for n in [1u16, ancount, 0, 0] {
            buf.extend_from_slice(&n.to_be_bytes());
        }
        buf.extend_from_slice(&self.qname);
        buf.extend_from_slice(&self.qtype.to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes()); // class IN
    }

    /// A standard recursive query (RD set).
    pub fn write_query(&self, buf: &mut Vec<u8>) {
        self.header(buf, 0x0100, 0);
    }

    /// The response: QR, RD, RA and the rcode; one answer record pointing
    /// back at the question name (compression pointer 0xc00c) on success.
    pub fn write_response(&self, buf: &mut Vec<u8>) {
        let ok = self.rcode == 0;
        self.header(buf, 0x8180 | u16::from(self.rcode & 0x0f), u16::from(ok));
        if ok {
            buf.extend_from_slice(&[0xc0, 0x0c]);
            buf.extend_from_slice(&self.qtype.to_be_bytes());
            buf.extend_from_slice(&1u16.to_be_bytes());
            buf.extend_from_slice(&self.ttl.to_be_bytes());
            let rdata: &[u8] = if self.qtype == 28 {
                &self.addr
            } else {
                &self.addr[..4]
            };
            buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            buf.extend_from_slice(rdata);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_write_spans_messages() {
        let mut s = Stream::default();
        s.push(b"HEAD".to_vec(), 3, Filler::Text, 0);
        s.push(b"XY".to_vec(), 2, Filler::Text, 1);
        // Whole stream: HEAD + "flo" + XY + "lo" (salt 1 shifts the text by one).
        let mut all = Vec::new();
        s.write(&mut all, 0, 11);
        assert_eq!(all, b"HEADfloXYlo");
        // Any sub-range equals the same slice of the whole.
        for off in 0..11u64 {
            for len in 0..=(11 - off as usize) {
                let mut part = Vec::new();
                s.write(&mut part, off, len);
                assert_eq!(
                    part,
                    &all[off as usize..off as usize + len],
                    "off {off} len {len}"
                );
            }
        }
    }

    #[test]
    fn dns_name_encoding() {
        // RFC 1035 §3.1: labels with a length octet, ending with the root.
        assert_eq!(
            Dns::encode_name("www.example.com"),
            b"\x03www\x07example\x03com\x00"
        );
    }
}
