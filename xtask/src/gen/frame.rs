//! Ethernet frames: Ethernet II (optionally one 802.1Q tag), IPv4 or IPv6,
//! TCP or UDP, with correct lengths and checksums.
//!
//! Every checksum is computed: the IPv4 header checksum and the TCP/UDP
//! checksums over the RFC 768 / RFC 793 / RFC 8200 §8.1 pseudo-header, so a
//! consumer that verifies checksums sees none bad.

/// Shortest Ethernet frame without FCS. A tap pads shorter frames with
/// zeros, so receivers must trust the IP length, not the frame length.
pub const MIN_FRAME: usize = 60;
/// EtherType IPv4.
const ETH_IPV4: u16 = 0x0800;
/// EtherType IPv6.
const ETH_IPV6: u16 = 0x86dd;
/// EtherType 802.1Q.
const ETH_VLAN: u16 = 0x8100;

/// The two hosts of a flow and how their frames are framed.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    /// IPv6 when true; otherwise only the first 4 bytes of the addresses count.
    pub v6: bool,
    /// Client (initiator) address.
    pub client_ip: [u8; 16],
    /// Server (responder) address.
    pub server_ip: [u8; 16],
    /// Client port.
    pub client_port: u16,
    /// Server port.
    pub server_port: u16,
    /// Client MAC.
    pub client_mac: [u8; 6],
    /// MAC of the next hop towards the server (the gateway).
    pub server_mac: [u8; 6],
    /// 802.1Q VLAN id, when the frames are tagged.
    pub vlan: Option<u16>,
}

/// Per-direction IP header fields that vary by packet.
#[derive(Clone, Copy, Debug)]
pub struct IpFields {
    /// IPv4 identification.
    pub id: u16,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv6 flow label (20 bits).
    pub flow_label: u32,
}

/// The transport header to write.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp {
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flag byte.
        flags: u8,
        /// Window field (unscaled, as on the wire).
        window: u16,
        /// Options, already padded to a multiple of 4 bytes.
        options: &'a [u8],
    },
    /// A UDP datagram.
    Udp,
}

/// Writes one frame into `buf` (cleared first). `payload` appends the
/// transport payload to the buffer it is given.
pub fn build_frame(
    buf: &mut Vec<u8>,
    ep: &Endpoints,
    from_client: bool,
    ip: IpFields,
    transport: Transport<'_>,
    payload: impl FnOnce(&mut Vec<u8>),
) {
    buf.clear();
    let (src_mac, dst_mac) = if from_client {
        (ep.client_mac, ep.server_mac)
    } else {
        (ep.server_mac, ep.client_mac)
    };
    let (src_ip, dst_ip) = if from_client {
        (ep.client_ip, ep.server_ip)
    } else {
        (ep.server_ip, ep.client_ip)
    };
    let (sport, dport) = if from_client {
        (ep.client_port, ep.server_port)
    } else {
        (ep.server_port, ep.client_port)
    };

    buf.extend_from_slice(&dst_mac);
    buf.extend_from_slice(&src_mac);
    if let Some(vid) = ep.vlan {
        buf.extend_from_slice(&ETH_VLAN.to_be_bytes());
        buf.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    buf.extend_from_slice(&(if ep.v6 { ETH_IPV6 } else { ETH_IPV4 }).to_be_bytes());

    let ip_start = buf.len();
    let proto: u8 = match transport {
        Transport::Tcp { .. } => 6,
        Transport::Udp => 17,
    };
    if ep.v6 {
        let vtcfl = (6u32 << 28) | (ip.flow_label & 0x000f_ffff);
        buf.extend_from_slice(&vtcfl.to_be_bytes());
        buf.extend_from_slice(&[0, 0]); // payload length, patched below
        buf.push(proto);
        buf.push(ip.ttl);
        buf.extend_from_slice(&src_ip);
        buf.extend_from_slice(&dst_ip);
    } else {
        buf.extend_from_slice(&[0x45, 0x00, 0, 0]); // version/IHL, DSCP, total length
        buf.extend_from_slice(&ip.id.to_be_bytes());
        buf.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
        buf.push(ip.ttl);
        buf.push(proto);
        buf.extend_from_slice(&[0, 0]); // header checksum, patched below
        buf.extend_from_slice(src_ip.get(..4).unwrap_or(&[0; 4]));
        buf.extend_from_slice(dst_ip.get(..4).unwrap_or(&[0; 4]));
    }
    let l4_start = buf.len();
    let csum_at = match transport {
        Transport::Tcp {
            seq,
            ack,
            flags,
            window,
            options,
        } => {
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&seq.to_be_bytes());
            buf.extend_from_slice(&ack.to_be_bytes());
            let offset_words = (20 + options.len()) / 4;
            buf.push((offset_words as u8) << 4);
            buf.push(flags);
            buf.extend_from_slice(&window.to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
            buf.extend_from_slice(options);
            l4_start + 16
        }
        Transport::Udp => {
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, 0]); // length, checksum
            l4_start + 6
        }
    };
    payload(buf);
    let end = buf.len();
    let l4_len = end - l4_start;

    if proto == 17 {
        put16(buf, l4_start + 4, l4_len as u16);
    }
    if ep.v6 {
        put16(buf, ip_start + 4, l4_len as u16);
    } else {
        put16(buf, ip_start + 2, (end - ip_start) as u16);
        let c = checksum(0, buf.get(ip_start..l4_start).unwrap_or(&[]));
        put16(buf, ip_start + 10, c);
    }

    // Pseudo-header sum, then the transport segment itself.
    let mut sum: u64 = 0;
    let addr_len = if ep.v6 { 16 } else { 4 };
    sum = add_bytes(sum, src_ip.get(..addr_len).unwrap_or(&[]));
    sum = add_bytes(sum, dst_ip.get(..addr_len).unwrap_or(&[]));
    sum += u64::from(proto) + l4_len as u64;
    let mut c = checksum(sum, buf.get(l4_start..end).unwrap_or(&[]));
    if proto == 17 && c == 0 {
        // RFC 768: a computed zero is sent as all ones (zero means "none").
        c = 0xffff;
    }
    put16(buf, csum_at, c);

    if buf.len() < MIN_FRAME {
        buf.resize(MIN_FRAME, 0);
    }
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = buf.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// Adds `data` as big-endian 16-bit words (odd length padded with a zero
/// byte) to a running one's-complement sum.
fn add_bytes(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Adding the two 32-bit halves keeps 16-bit word alignment; the
        // 64-bit accumulator cannot overflow for any IP-sized input.
        sum += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = rest.remainder() {
        sum += u64::from(*b) << 8;
    }
    sum
}

/// The Internet checksum (RFC 1071) of `data` with `initial` already summed in.
pub fn checksum(initial: u64, data: &[u8]) -> u16 {
    let mut sum = add_bytes(initial, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: the words 0001 f203 f4f5 f6f7 sum
        // (one's complement) to ddf2, so the checksum is its complement 220d.
        assert_eq!(
            checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // Same words split across the 8-byte fast path and the tail.
        let data = [
            0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x00, 0x01, 0xf2,
        ];
        let by_words = {
            let mut s: u32 = 0;
            for c in data.chunks(2) {
                s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
            }
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        assert_eq!(checksum(0, &data), by_words);
    }

    #[test]
    fn ipv4_header_example() {
        // The widely used worked example (Wikipedia "IPv4 header checksum"):
        // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(0, &hdr), 0xb861);
    }
}
