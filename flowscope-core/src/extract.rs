//! Turning a captured frame into a flow key plus the facts the tracker needs.

use crate::key::{FlowKey, Orientation};
use crate::packet::{LinkType, PacketView};
use crate::wire::{ChecksumStatus, Encap, L4Proto, PacketAnomalies, TcpInfo};

/// Decodes a frame into a flow key and per-packet facts.
///
/// Implementations must never panic and never allocate per packet: every
/// input, however hostile, ends as `Ok` or as a [`Skip`] that callers count.
pub trait FlowExtractor {
    /// The key flows are tracked by.
    type Key: FlowKey;

    /// Decodes one frame.
    fn extract(&self, pkt: &PacketView<'_>) -> Result<Extracted<Self::Key>, Skip>;

    /// Decodes one frame into `out`, reusing its storage: a per-packet loop
    /// that keeps one `Extracted` avoids building and moving the whole
    /// value (about 400 bytes, most of it the encapsulation stack) each
    /// time. On `Err`, `out` holds unspecified (but valid) data. The default
    /// calls [`FlowExtractor::extract`].
    fn extract_into(
        &self,
        pkt: &PacketView<'_>,
        out: &mut Extracted<Self::Key>,
    ) -> Result<(), Skip> {
        *out = self.extract(pkt)?;
        Ok(())
    }
}

/// Where the transport payload sits inside the frame's captured bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadRange {
    /// Offset of the first payload byte in [`PacketView::data`].
    pub offset: u32,
    /// Number of payload bytes *captured* (may be fewer than on the wire).
    pub len: u32,
}

impl PayloadRange {
    /// The payload bytes of `frame` (empty if the range does not fit, which a
    /// correct extractor never produces).
    #[inline]
    pub fn slice<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let start = self.offset as usize;
        let end = start.saturating_add(self.len as usize);
        frame.get(start..end).unwrap_or(&[])
    }
}

/// Facts about an IP fragment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// Offset of the fragment's (innermost) IP header in the frame.
    pub ip_offset: u32,
    /// IPv4 identification or IPv6 fragment-header identification.
    pub id: u32,
    /// Fragment offset in bytes.
    pub offset: u32,
    /// More-fragments flag.
    pub more: bool,
}

/// What an extractor learned from one frame.
///
/// Build it with [`Extracted::new`] and set the public fields; fields may be
/// added in later versions. Equality compares every field (two extractors
/// that agree on a packet give equal results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extracted<K> {
    /// The canonical flow key.
    pub key: K,
    /// Which way this packet went relative to `key`.
    pub orientation: Orientation,
    /// Transport protocol.
    pub l4: L4Proto,
    /// TCP header facts, for TCP packets.
    pub tcp: Option<TcpInfo>,
    /// IP version of the innermost IP header (4 or 6), 0 when there is none.
    pub ip_version: u8,
    /// Length of the innermost IP packet on the wire (header + payload, from
    /// the IP length fields); Zeek's `*_ip_bytes` and Suricata's `bytes_*`
    /// count this.
    pub ip_len: u32,
    /// Transport payload length on the wire (from the IP length fields).
    pub payload_wire_len: u32,
    /// Where the captured part of the transport payload is in the frame.
    pub payload: PayloadRange,
    /// Outer layers peeled to reach the inner packet, outermost first.
    pub encap: Encap,
    /// Transport checksum verdict, when the extractor verifies checksums.
    pub checksum: ChecksumStatus,
    /// Set for the *first* fragment of a fragmented datagram: it carries the
    /// transport header, so it is tracked, but its payload is partial.
    pub first_fragment: Option<FragmentInfo>,
    /// Inconsistencies tolerated while decoding (counted by the drivers).
    pub anomalies: PacketAnomalies,
}

impl<K> Extracted<K> {
    /// A result with the given key, orientation and protocol; everything else empty.
    pub fn new(key: K, orientation: Orientation, l4: L4Proto) -> Self {
        Extracted {
            key,
            orientation,
            l4,
            tcp: None,
            ip_version: 0,
            ip_len: 0,
            payload_wire_len: 0,
            payload: PayloadRange::default(),
            encap: Encap::default(),
            checksum: ChecksumStatus::Unchecked,
            first_fragment: None,
            anomalies: PacketAnomalies::NONE,
        }
    }
}

/// Why a frame yields no flow. Every skipped frame is counted by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// Not an IP packet (ARP, LLDP, STP, …): the EtherType or equivalent.
    NotIp {
        /// The EtherType (or link-specific protocol number) that was not IP.
        ethertype: u16,
    },
    /// The capture's link type is not one this extractor reads.
    UnsupportedLinkType(LinkType),
    /// A non-first IP fragment: it carries no transport header, so it cannot
    /// be keyed until the datagram is reassembled.
    Fragment(FragmentInfo),
    /// The frame's headers are inconsistent or cut short.
    Malformed(MalformedReason),
}

/// Why a frame was judged malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedReason {
    /// The link-layer header is cut short.
    TruncatedLink,
    /// An IP header is cut short.
    TruncatedIp,
    /// The IP version nibble is neither 4 nor 6.
    BadIpVersion,
    /// The IPv4 header length field is below 20 bytes or past the packet.
    BadIpHeaderLen,
    /// The IP total/payload length is smaller than the header(s).
    BadIpTotalLen,
    /// An IPv6 extension header is cut short or inconsistent.
    BadIpv6ExtHeader,
    /// The transport header is cut short.
    TruncatedTransport,
    /// The transport header is inconsistent (e.g. TCP data offset < 5).
    BadTransportHeader,
    /// A tunnel or link-layer shim (VLAN, MPLS, GRE, VXLAN, Geneve, GTP, PPPoE…) is cut short or invalid.
    BadEncapsulation,
    /// More nested encapsulations than the extractor's limit.
    TooDeep,
}

impl MalformedReason {
    /// Every reason, in a fixed order (for counters indexed by reason).
    pub const ALL: [MalformedReason; 10] = [
        MalformedReason::TruncatedLink,
        MalformedReason::TruncatedIp,
        MalformedReason::BadIpVersion,
        MalformedReason::BadIpHeaderLen,
        MalformedReason::BadIpTotalLen,
        MalformedReason::BadIpv6ExtHeader,
        MalformedReason::TruncatedTransport,
        MalformedReason::BadTransportHeader,
        MalformedReason::BadEncapsulation,
        MalformedReason::TooDeep,
    ];

    /// Position in [`MalformedReason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            MalformedReason::TruncatedLink => 0,
            MalformedReason::TruncatedIp => 1,
            MalformedReason::BadIpVersion => 2,
            MalformedReason::BadIpHeaderLen => 3,
            MalformedReason::BadIpTotalLen => 4,
            MalformedReason::BadIpv6ExtHeader => 5,
            MalformedReason::TruncatedTransport => 6,
            MalformedReason::BadTransportHeader => 7,
            MalformedReason::BadEncapsulation => 8,
            MalformedReason::TooDeep => 9,
        }
    }

    /// A stable snake_case name for stats output.
    pub const fn as_str(self) -> &'static str {
        match self {
            MalformedReason::TruncatedLink => "truncated_link",
            MalformedReason::TruncatedIp => "truncated_ip",
            MalformedReason::BadIpVersion => "bad_ip_version",
            MalformedReason::BadIpHeaderLen => "bad_ip_header_len",
            MalformedReason::BadIpTotalLen => "bad_ip_total_len",
            MalformedReason::BadIpv6ExtHeader => "bad_ipv6_ext_header",
            MalformedReason::TruncatedTransport => "truncated_transport",
            MalformedReason::BadTransportHeader => "bad_transport_header",
            MalformedReason::BadEncapsulation => "bad_encapsulation",
            MalformedReason::TooDeep => "too_deep",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_index_matches_all() {
        for (i, r) in MalformedReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn payload_slice_never_panics() {
        let frame = [1u8, 2, 3, 4];
        assert_eq!(PayloadRange { offset: 1, len: 2 }.slice(&frame), &[2, 3]);
        assert_eq!(
            PayloadRange { offset: 3, len: 9 }.slice(&frame),
            &[] as &[u8]
        );
        assert_eq!(
            PayloadRange {
                offset: u32::MAX,
                len: u32::MAX
            }
            .slice(&frame),
            &[] as &[u8]
        );
    }
}
