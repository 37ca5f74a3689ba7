//! Domain name decoding (RFC 1035 §3.1, §4.1.4) into presentation format.
//!
//! Written here rather than taken from simple-dns: its `Packet::parse`
//! rejects whole messages for a set Z bit or an unknown CLASS, reserves
//! `Vec` capacity from the header counts (a 12-byte datagram can ask for
//! 65 535 records), and gives nothing back on a fault. This decoder is
//! bounded on every path: a name's expansion stops at 255 wire bytes, and a
//! walk follows at most [`MAX_JUMPS`] compression pointers, so pointer loops
//! (to itself, between two names, forward then back) end as an error.

use std::fmt::Write as _;

use super::message::{DnsError, ROOT_NAME};

/// Longest name on the wire, root byte included (RFC 1035 §2.3.4).
pub(crate) const MAX_NAME_WIRE: usize = 255;

/// Most compression pointers one name may follow. A well-formed name has at
/// most one pointer per label plus one, and at most 127 labels fit in 255
/// bytes; anything beyond is a loop.
pub(crate) const MAX_JUMPS: usize = 128;

/// Why a name did not decode, and where the question it belongs to can
/// still be read on from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NameFault {
    /// What was wrong.
    pub error: DnsError,
    /// Offset just past the name's in-place bytes, when the fault leaves
    /// them delimited: after the first compression pointer if one was
    /// followed, else after an extended-label byte (its length is unknown,
    /// so the name is taken to end there) or, for a name that is only too
    /// long, after its root byte. `None` when the bytes ran out, or for
    /// the reserved label type 10: nothing sensible follows.
    pub resume: Option<usize>,
}

impl NameFault {
    const fn stop(error: DnsError) -> Self {
        NameFault {
            error,
            resume: None,
        }
    }
}

/// Decodes the name starting at `start` in `msg`, appending its presentation
/// form to `out` (which is cleared first). Returns the offset just past the
/// name's in-place bytes (after its root byte or its first pointer). On a
/// fault `out` keeps the labels decoded before it.
///
/// Forward pointers are followed (RFC 1035 asks for prior occurrences, but
/// Wireshark and real encoders accept them); the jump limit keeps them safe.
pub(crate) fn read_name(msg: &[u8], start: usize, out: &mut String) -> Result<usize, NameFault> {
    out.clear();
    let mut pos = start;
    let mut end: Option<usize> = None;
    let mut jumps = 0usize;
    // Wire length of the expanded name so far (length bytes + labels).
    let mut wire = 0usize;
    loop {
        let len_byte = *msg.get(pos).ok_or(NameFault::stop(DnsError::Truncated))?;
        match len_byte >> 6 {
            0b00 => {
                let len = usize::from(len_byte);
                wire += len + 1;
                if wire > MAX_NAME_WIRE {
                    return Err(NameFault {
                        error: DnsError::NameTooLong,
                        resume: end.or_else(|| in_place_end(msg, pos)),
                    });
                }
                if len == 0 {
                    if out.is_empty() {
                        out.push_str(ROOT_NAME);
                    }
                    return Ok(end.unwrap_or(pos + 1));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(NameFault::stop(DnsError::Truncated))?;
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(out, label);
                pos += 1 + len;
            }
            0b11 => {
                let low = *msg
                    .get(pos + 1)
                    .ok_or(NameFault::stop(DnsError::Truncated))?;
                let resume = *end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(NameFault {
                        error: DnsError::CompressionLoop,
                        resume: Some(resume),
                    });
                }
                let target = (usize::from(len_byte & 0x3f) << 8) | usize::from(low);
                if target >= msg.len() {
                    return Err(NameFault::stop(DnsError::Truncated));
                }
                pos = target;
            }
            // 01: extended label types (RFC 6891 §5 deprecates them all).
            // Their length is unknown, so the name is taken to end at this
            // byte, as Wireshark reads it, except when that is known to be
            // wrong: 0x41 (RFC 2673 bit-string label) has a length byte
            // and data after it, and a non-root name takes at least 2
            // bytes in place (Wireshark's `MIN_DNAME_LEN`).
            0b01 => {
                let resume = match end {
                    Some(e) => Some(e),
                    None if len_byte == 0x41 || pos == start => None,
                    None => Some(pos + 1),
                };
                return Err(NameFault {
                    error: DnsError::BadLabelType,
                    resume,
                });
            }
            // 10: reserved, no reading of it is better than another.
            _ => return Err(NameFault::stop(DnsError::BadLabelType)),
        }
    }
}

/// Where a name that is already too long ends in place: its labels are
/// skipped up to the root byte or a pointer. Each step moves forward, so
/// this is bounded by the message length.
fn in_place_end(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len_byte = *msg.get(pos)?;
        match len_byte >> 6 {
            0b00 if len_byte == 0 => return Some(pos + 1),
            0b00 => {
                pos += 1 + usize::from(len_byte);
                msg.get(pos - 1)?;
            }
            0b11 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Appends one label, escaped as RFC 1035 §5.1 master files do.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'!'..=b'~' => out.push(char::from(b)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}
