//! Transport headers: TCP, UDP, ICMP/ICMPv6 and SCTP ports, TCP facts.

use flowscope_core::{L4Proto, MalformedReason, PacketAnomalies, Skip, TcpFlags, TcpInfo};

use super::bytes::{chunk, pair, quad};

const TRUNCATED: Skip = Skip::Malformed(MalformedReason::TruncatedTransport);
const BAD: Skip = Skip::Malformed(MalformedReason::BadTransportHeader);

/// What the transport header says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transport {
    pub l4: L4Proto,
    /// Key "ports" of the sender and receiver (ICMP: Community ID mapping).
    pub sport: u16,
    pub dport: u16,
    pub tcp: Option<TcpInfo>,
    /// The payload starts this many bytes after the transport header.
    pub hdr_len: usize,
    /// Payload length on the wire.
    pub payload_wire: u32,
    /// Bytes the transport checksum covers (header included).
    pub seg_len: u32,
    /// The checksum field as sent (UDP uses 0 for "none").
    pub csum_field: u16,
    /// Inconsistencies tolerated in this header.
    pub anomalies: PacketAnomalies,
}

/// Facts about the IP packet the transport header sits in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpContext {
    /// IP payload length on the wire, from the IP length fields.
    pub wire: u32,
    /// The datagram is a first fragment (or inside one): lengths beyond
    /// this packet are expected.
    pub partial: bool,
    /// IPv6 jumbogram or TSO: the IP length fields were zero.
    pub zero_len: bool,
}

/// Decodes the transport header of protocol `proto` at `off`.
#[inline(always)]
pub(crate) fn parse(d: &[u8], off: usize, proto: u8, ip: IpContext) -> Result<Transport, Skip> {
    match proto {
        6 => tcp(d, off, ip),
        17 => udp(d, off, ip),
        1 => icmp(d, off, ip, icmp4_counterpart, L4Proto::Icmp),
        58 => icmp(d, off, ip, icmp6_counterpart, L4Proto::Icmpv6),
        132 => sctp(d, off, ip),
        p => Ok(Transport {
            l4: L4Proto::Other(p),
            sport: 0,
            dport: 0,
            tcp: None,
            hdr_len: 0,
            payload_wire: ip.wire,
            seg_len: ip.wire,
            csum_field: 0,
            anomalies: PacketAnomalies::NONE,
        }),
    }
}

#[inline]
fn tcp(d: &[u8], off: usize, ip: IpContext) -> Result<Transport, Skip> {
    if ip.wire < 20 {
        return Err(TRUNCATED);
    }
    let h: &[u8; 20] = chunk(d, off).ok_or(TRUNCATED)?;
    let hdr_len = usize::from(h[12] >> 4) * 4;
    if hdr_len < 20 || hdr_len as u32 > ip.wire {
        return Err(BAD);
    }
    let flags = TcpFlags(h[13]);
    let mut info = TcpInfo::new(
        quad(h[4], h[5], h[6], h[7]),
        quad(h[8], h[9], h[10], h[11]),
        pair(h[14], h[15]),
        flags,
    );
    // Options must be captured whole; the window scale only counts on a SYN
    // (RFC 7323 §2.2), so other segments skip the option walk entirely.
    let opts = d.get(off + 20..off + hdr_len).ok_or(TRUNCATED)?;
    if flags.syn() {
        info.window_scale = window_scale(opts);
    }
    Ok(Transport {
        l4: L4Proto::Tcp,
        sport: pair(h[0], h[1]),
        dport: pair(h[2], h[3]),
        tcp: Some(info),
        hdr_len,
        payload_wire: ip.wire - hdr_len as u32,
        seg_len: ip.wire,
        csum_field: pair(h[16], h[17]),
        anomalies: PacketAnomalies::NONE,
    })
}

/// The shift count of a window scale option (kind 3, length 3), if present.
pub(crate) fn window_scale(mut opts: &[u8]) -> Option<u8> {
    loop {
        match *opts {
            [] | [0, ..] => return None,
            [1, ref rest @ ..] => opts = rest,
            [3, 3, shift, ..] => return Some(shift),
            [_, len, ..] if len >= 2 => opts = opts.get(usize::from(len)..)?,
            // A length below 2 would loop forever: the options are garbage.
            _ => return None,
        }
    }
}

#[inline]
fn udp(d: &[u8], off: usize, ip: IpContext) -> Result<Transport, Skip> {
    if ip.wire < 8 {
        return Err(TRUNCATED);
    }
    let h: &[u8; 8] = chunk(d, off).ok_or(TRUNCATED)?;
    let mut len = u32::from(pair(h[4], h[5]));
    if len == 0 && ip.zero_len {
        // RFC 2675: a jumbogram's UDP length is zero; the IP length rules.
        len = ip.wire;
    }
    if len < 8 {
        return Err(BAD);
    }
    // A UDP length past the IP payload (not a first fragment, whose datagram
    // goes on in later fragments): Zeek keeps the packet, delivers the IP
    // payload and raises the weird `UDP_datagram_length_mismatch`; tshark
    // dissects it with "Bad length value". Suricata drops it
    // (`UDP_PKT_TOO_SMALL`). The payload and the checksummed segment then
    // end where the IP payload ends, as in Zeek, and the packet carries a
    // counted anomaly.
    let mut anomalies = PacketAnomalies::NONE;
    if len > ip.wire && !ip.partial {
        anomalies = PacketAnomalies::UDP_LENGTH_EXCEEDS_IP;
    }
    // Bytes after the UDP length are trailer, not payload; a first fragment
    // holds only part of the datagram.
    let dgram = len.min(ip.wire);
    Ok(Transport {
        l4: L4Proto::Udp,
        sport: pair(h[0], h[1]),
        dport: pair(h[2], h[3]),
        tcp: None,
        hdr_len: 8,
        payload_wire: dgram - 8,
        seg_len: if anomalies.is_empty() { len } else { ip.wire },
        csum_field: pair(h[6], h[7]),
        anomalies,
    })
}

#[inline]
fn icmp(
    d: &[u8],
    off: usize,
    ip: IpContext,
    counterpart: fn(u8) -> Option<u8>,
    l4: L4Proto,
) -> Result<Transport, Skip> {
    // Zeek's ICMP_MINLEN: type, code, checksum and the 4-byte rest of header.
    if ip.wire < 8 {
        return Err(TRUNCATED);
    }
    let h: &[u8; 8] = chunk(d, off).ok_or(TRUNCATED)?;
    let (ty, code) = (h[0], h[1]);
    Ok(Transport {
        l4,
        sport: u16::from(ty),
        dport: u16::from(counterpart(ty).unwrap_or(code)),
        tcp: None,
        hdr_len: 8,
        payload_wire: ip.wire - 8,
        seg_len: ip.wire,
        csum_field: pair(h[2], h[3]),
        anomalies: PacketAnomalies::NONE,
    })
}

#[inline]
fn sctp(d: &[u8], off: usize, ip: IpContext) -> Result<Transport, Skip> {
    // The common header: ports, verification tag, CRC32c (RFC 9260 §3.1).
    if ip.wire < 12 {
        return Err(TRUNCATED);
    }
    let h: &[u8; 12] = chunk(d, off).ok_or(TRUNCATED)?;
    Ok(Transport {
        l4: L4Proto::Sctp,
        sport: pair(h[0], h[1]),
        dport: pair(h[2], h[3]),
        tcp: None,
        hdr_len: 12,
        payload_wire: ip.wire - 12,
        seg_len: ip.wire,
        csum_field: 0,
        anomalies: PacketAnomalies::NONE,
    })
}

/// The ICMP (`proto` 1) or ICMPv6 (`proto` 58) type answering `ty`, per the
/// Community ID spec: a flow's key uses it as the second "port" (the code
/// when there is none), and Community ID keeps the order of one-way types.
/// `None` for one-way types and other protocols.
pub const fn icmp_counterpart(proto: u8, ty: u8) -> Option<u8> {
    match proto {
        1 => icmp4_counterpart(ty),
        58 => icmp6_counterpart(ty),
        _ => None,
    }
}

/// The ICMPv4 type answering `ty`, per the Community ID spec (which takes
/// Zeek's `ICMP4_counterpart`): echo, timestamp, information, address mask,
/// router solicitation/advertisement.
pub(crate) const fn icmp4_counterpart(ty: u8) -> Option<u8> {
    match ty {
        8 => Some(0),
        0 => Some(8),
        13 => Some(14),
        14 => Some(13),
        15 => Some(16),
        16 => Some(15),
        10 => Some(9),
        9 => Some(10),
        17 => Some(18),
        18 => Some(17),
        _ => None,
    }
}

/// The ICMPv6 type answering `ty`, per the Community ID spec: echo, MLD
/// query/report, router and neighbor discovery, node information (WRU),
/// home agent address discovery.
pub(crate) const fn icmp6_counterpart(ty: u8) -> Option<u8> {
    match ty {
        128 => Some(129),
        129 => Some(128),
        130 => Some(131),
        131 => Some(130),
        133 => Some(134),
        134 => Some(133),
        135 => Some(136),
        136 => Some(135),
        139 => Some(140),
        140 => Some(139),
        144 => Some(145),
        145 => Some(144),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_scale_walks_options() {
        // MSS(4) NOP WS(3)=7: the common Linux SYN layout.
        assert_eq!(window_scale(&[2, 4, 5, 0xb4, 1, 3, 3, 7]), Some(7));
        assert_eq!(
            window_scale(&[2, 4, 5, 0xb4, 0, 3, 3, 7]),
            None,
            "EOL ends the list"
        );
        assert_eq!(
            window_scale(&[2, 1, 3, 3, 7]),
            None,
            "length < 2 is garbage"
        );
        assert_eq!(window_scale(&[2, 40, 3, 3, 7]), None, "option past the end");
        assert_eq!(window_scale(&[3, 3]), None, "cut short");
        assert_eq!(window_scale(&[]), None);
    }

    #[test]
    fn icmp_counterparts_are_symmetric() {
        for t in 0..=255u8 {
            if let Some(c) = icmp4_counterpart(t) {
                assert_eq!(icmp4_counterpart(c), Some(t));
            }
            if let Some(c) = icmp6_counterpart(t) {
                assert_eq!(icmp6_counterpart(c), Some(t));
            }
        }
    }
}
