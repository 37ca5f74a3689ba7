//! Decoding one DNS message (RFC 1035 §4.1) into a [`DnsMessage`].
//!
//! Lenient the way Zeek and Wireshark are: the header is always kept, the
//! sections are read in order, and the first fault stops decoding with the
//! records read so far kept and the fault recorded. Nothing is reserved
//! from the header counts; every record read consumes at least 5 bytes, and
//! at most `max_records` are kept, so memory follows the bytes seen.

use std::net::{Ipv4Addr, Ipv6Addr};

use flowscope_core::{FlowSide, Timestamp};

use super::message::{
    DnsCounts, DnsError, DnsFlags, DnsMessage, DnsQuestion, DnsRdata, DnsRecord, DnsSoa, EdnsOption,
};
use super::name::{read_name, NameFault};

/// Size of the fixed header.
pub const HEADER_LEN: usize = 12;

/// The fixed header, read without looking further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub id: u16,
    pub flags: u16,
    pub counts: DnsCounts,
}

impl Header {
    pub fn parse(msg: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = msg.get(..HEADER_LEN)?.try_into().ok()?;
        let [i0, i1, f0, f1, q0, q1, an0, an1, au0, au1, ad0, ad1] = *h;
        let w = |hi: u8, lo: u8| u16::from_be_bytes([hi, lo]);
        Some(Header {
            id: w(i0, i1),
            flags: w(f0, f1),
            counts: DnsCounts {
                questions: w(q0, q1),
                answers: w(an0, an1),
                authorities: w(au0, au1),
                additionals: w(ad0, ad1),
            },
        })
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
}

/// A cursor over the message with checked big-endian reads.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self
            .msg
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<2>)
            .ok_or(DnsError::Truncated)?;
        self.pos += 2;
        Ok(u16::from_be_bytes(*b))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let b = self
            .msg
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<4>)
            .ok_or(DnsError::Truncated)?;
        self.pos += 4;
        Ok(u32::from_be_bytes(*b))
    }

    fn name(&mut self) -> Result<String, DnsError> {
        let mut s = String::new();
        self.pos = read_name(self.msg, self.pos, &mut s).map_err(|f| f.error)?;
        Ok(s)
    }

    /// A question's name: on a fault whose name still has a known end, the
    /// partial name and the fault, so QTYPE and QCLASS can be read after it
    /// (as Wireshark does); other faults stop decoding.
    fn question_name(&mut self) -> Result<(String, Option<DnsError>), DnsError> {
        let mut s = String::new();
        match read_name(self.msg, self.pos, &mut s) {
            Ok(next) => {
                self.pos = next;
                Ok((s, None))
            }
            Err(NameFault {
                error,
                resume: Some(next),
            }) => {
                self.pos = next;
                Ok((s, Some(error)))
            }
            Err(f) => Err(f.error),
        }
    }
}

/// Decodes `msg` (one whole message, no TCP length prefix). `None` when it
/// is shorter than the header: not a DNS message at all.
pub(crate) fn decode(
    msg: &[u8],
    ts: Timestamp,
    side: FlowSide,
    max_records: usize,
) -> Option<DnsMessage> {
    let h = Header::parse(msg)?;
    let mut m = DnsMessage {
        ts,
        side,
        id: h.id,
        is_response: h.flags & 0x8000 != 0,
        opcode: h.opcode(),
        rcode: (h.flags & 0x000f) as u8,
        flags: DnsFlags::from_word(h.flags),
        counts: h.counts,
        questions: Vec::new(),
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
        query_ts: None,
        malformed: None,
        len: u16::try_from(msg.len()).unwrap_or(u16::MAX),
    };
    let mut r = Reader {
        msg,
        pos: HEADER_LEN,
    };
    m.malformed = decode_sections(&mut r, &h.counts, &mut m, max_records).err();
    if m.malformed.is_none() && r.pos < msg.len() {
        m.malformed = Some(DnsError::TrailingBytes);
    }
    Some(m)
}

fn decode_sections(
    r: &mut Reader<'_>,
    c: &DnsCounts,
    m: &mut DnsMessage,
    max_records: usize,
) -> Result<(), DnsError> {
    let mut kept = 0usize;
    let mut room = || {
        kept += 1;
        if kept > max_records {
            Err(DnsError::TooManyRecords)
        } else {
            Ok(())
        }
    };
    for _ in 0..c.questions {
        room()?;
        let (name, name_fault) = r.question_name()?;
        let qtype = r.u16()?;
        let qclass = r.u16()?;
        m.questions.push(DnsQuestion {
            name,
            qtype,
            qclass,
            name_fault,
        });
        // Past a broken name the framing is a guess: keep this question's
        // type, read nothing further.
        if let Some(e) = name_fault {
            return Err(e);
        }
    }
    // An RDATA fault leaves the record framing intact: keep going and
    // report the first fault at the end.
    let mut rdata_fault = None;
    for (count, section) in [
        (c.answers, &mut m.answers),
        (c.authorities, &mut m.authorities),
        (c.additionals, &mut m.additionals),
    ] {
        for _ in 0..count {
            room()?;
            let rec = record(r)?;
            if matches!(rec.data, DnsRdata::Malformed { .. }) {
                rdata_fault.get_or_insert(DnsError::BadRdata);
            }
            section.push(rec);
        }
    }
    rdata_fault.map_or(Ok(()), Err)
}

/// One resource record; the reader ends just past its RDATA.
fn record(r: &mut Reader<'_>) -> Result<DnsRecord, DnsError> {
    let name = r.name()?;
    let rtype = r.u16()?;
    let rclass = r.u16()?;
    let ttl = r.u32()?;
    let len = r.u16()?;
    let start = r.pos;
    let end = start + usize::from(len);
    if end > r.msg.len() {
        return Err(DnsError::Truncated);
    }
    let data = rdata(r.msg, start, end, rtype).unwrap_or(DnsRdata::Malformed { rtype, len });
    r.pos = end;
    Ok(DnsRecord {
        name,
        rtype,
        rclass,
        ttl,
        data,
    })
}

/// Decodes the RDATA in `msg[start..end]`; `None` when it does not fit the
/// type's layout exactly (names may point anywhere in `msg`, but their
/// in-place bytes must end inside the RDATA).
fn rdata(msg: &[u8], start: usize, end: usize, rtype: u16) -> Option<DnsRdata> {
    let bytes = msg.get(start..end)?;
    let len = u16::try_from(bytes.len()).ok()?;
    // Reads a name at `at`, which must end by `end`.
    let name_at = |at: usize| -> Option<(String, usize)> {
        let mut s = String::new();
        let next = read_name(msg, at, &mut s).ok()?;
        (next <= end).then_some((s, next))
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = msg.get(at..)?.first_chunk::<2>()?;
        (at + 2 <= end).then(|| u16::from_be_bytes(*b))
    };
    let whole = |next: usize, d: DnsRdata| (next == end).then_some(d);
    match rtype {
        1 => {
            let a: [u8; 4] = bytes.try_into().ok()?;
            Some(DnsRdata::A(Ipv4Addr::from(a)))
        }
        28 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            Some(DnsRdata::Aaaa(Ipv6Addr::from(a)))
        }
        2 | 5 | 12 => {
            let (n, next) = name_at(start)?;
            let d = match rtype {
                2 => DnsRdata::Ns(n),
                5 => DnsRdata::Cname(n),
                _ => DnsRdata::Ptr(n),
            };
            whole(next, d)
        }
        15 => {
            let preference = u16_at(start)?;
            let (exchange, next) = name_at(start + 2)?;
            whole(
                next,
                DnsRdata::Mx {
                    preference,
                    exchange,
                },
            )
        }
        16 => {
            let mut strings = Vec::new();
            let mut rest = bytes;
            while let Some((&n, tail)) = rest.split_first() {
                let s = tail.get(..usize::from(n))?;
                strings.push(s.to_vec());
                rest = tail.get(usize::from(n)..)?;
            }
            Some(DnsRdata::Txt(strings))
        }
        6 => {
            let (mname, next) = name_at(start)?;
            let (rname, next) = name_at(next)?;
            let nums = msg.get(next..end)?;
            let n: &[u8; 20] = nums.try_into().ok()?;
            // Constant offsets <= 16 into the 20-byte array.
            #[allow(clippy::indexing_slicing)]
            let w = |i: usize| u32::from_be_bytes([n[i], n[i + 1], n[i + 2], n[i + 3]]);
            Some(DnsRdata::Soa(Box::new(DnsSoa {
                mname,
                rname,
                serial: w(0),
                refresh: w(4),
                retry: w(8),
                expire: w(12),
                minimum: w(16),
            })))
        }
        33 => {
            let priority = u16_at(start)?;
            let weight = u16_at(start + 2)?;
            let port = u16_at(start + 4)?;
            let (target, next) = name_at(start + 6)?;
            whole(
                next,
                DnsRdata::Srv {
                    priority,
                    weight,
                    port,
                    target,
                },
            )
        }
        64 | 65 => {
            let priority = u16_at(start)?;
            // RFC 9460 §2.2: TargetName is uncompressed, but a pointer here
            // is still bounded; accept it like other decoders do.
            let (target, next) = name_at(start + 2)?;
            let params_len = u16::try_from(end - next).ok()?;
            Some(DnsRdata::Svcb {
                rtype,
                priority,
                target,
                params_len,
            })
        }
        41 => {
            let mut options = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let &[c0, c1, l0, l1] = rest.first_chunk::<4>()?;
                let code = u16::from_be_bytes([c0, c1]);
                let olen = usize::from(u16::from_be_bytes([l0, l1]));
                let data = rest.get(4..4 + olen)?;
                options.push(EdnsOption {
                    code,
                    data: data.to_vec(),
                });
                rest = rest.get(4 + olen..)?;
            }
            Some(DnsRdata::Opt(options))
        }
        _ => Some(DnsRdata::Other { rtype, len }),
    }
}
