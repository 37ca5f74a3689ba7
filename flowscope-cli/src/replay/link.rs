//! Where the network layer starts in a frame of each link type, and the
//! one link-layer conversion replay does: raw IP to Ethernet, so raw-IP
//! captures can be sent on an Ethernet interface.

use flowscope_core::LinkType;

/// The network-layer payload of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// An IPv4 header at this byte offset.
    Ipv4(usize),
    /// An IPv6 header at this byte offset.
    Ipv6(usize),
    /// An ARP packet at this byte offset.
    Arp(usize),
    /// Not IP or ARP (LLDP, STP, 802.3 LLC, …).
    Other,
    /// A payload that is neither IP nor plain L2 (an MPLS pseudowire):
    /// addresses inside it cannot be found.
    Opaque,
}

/// Why a frame's network layer could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The frame ends inside its link-layer headers.
    Truncated,
    /// A link type this module does not read.
    Unsupported(LinkType),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;
/// Most VLAN tags or MPLS labels walked before giving up.
const MAX_TAGS: usize = 16;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// IPv4 or IPv6 by the version nibble at `at`.
fn by_version(frame: &[u8], at: usize) -> Result<Network, LinkError> {
    match frame.get(at).map(|b| b >> 4) {
        Some(4) => Ok(Network::Ipv4(at)),
        Some(6) => Ok(Network::Ipv6(at)),
        Some(_) => Ok(Network::Other),
        None => Err(LinkError::Truncated),
    }
}

fn by_ethertype(frame: &[u8], ethertype: u16, at: usize) -> Result<Network, LinkError> {
    match ethertype {
        ETHERTYPE_IPV4 => Ok(Network::Ipv4(at)),
        ETHERTYPE_IPV6 => Ok(Network::Ipv6(at)),
        ETHERTYPE_ARP => Ok(Network::Arp(at)),
        // MPLS unicast / multicast: walk the label stack to the bottom.
        0x8847 | 0x8848 => {
            let mut at = at;
            for _ in 0..MAX_TAGS {
                let bos = frame.get(at.checked_add(2).ok_or(LinkError::Truncated)?);
                let bos = bos.ok_or(LinkError::Truncated)? & 1 == 1;
                at = at.checked_add(4).ok_or(LinkError::Truncated)?;
                if bos {
                    return match by_version(frame, at)? {
                        Network::Other => Ok(Network::Opaque),
                        n => Ok(n),
                    };
                }
            }
            Ok(Network::Opaque)
        }
        _ => Ok(Network::Other),
    }
}

/// PPP protocol field (after optional address/control bytes) at `at`.
fn by_ppp(frame: &[u8], at: usize) -> Result<Network, LinkError> {
    let at = if be16(frame, at) == Some(0xff03) {
        at + 2
    } else {
        at
    };
    match be16(frame, at).ok_or(LinkError::Truncated)? {
        0x0021 => Ok(Network::Ipv4(at + 2)),
        0x0057 => Ok(Network::Ipv6(at + 2)),
        _ => Ok(Network::Other),
    }
}

/// Finds the network layer of `frame` (link type `link`), walking 802.1Q /
/// 802.1ad tags, PPPoE sessions and MPLS label stacks on Ethernet.
pub fn network(link: LinkType, frame: &[u8]) -> Result<Network, LinkError> {
    match link {
        LinkType::ETHERNET => {
            let mut at = 12;
            for _ in 0..MAX_TAGS {
                let et = be16(frame, at).ok_or(LinkError::Truncated)?;
                match et {
                    0x8100 | 0x88a8 | 0x9100 => at += 4,
                    // PPPoE session: 6-byte header, then the PPP protocol.
                    0x8864 => return by_ppp(frame, at + 8),
                    et if et < 0x0600 => return Ok(Network::Other),
                    et => return by_ethertype(frame, et, at + 2),
                }
            }
            Ok(Network::Other)
        }
        LinkType::RAW
        | LinkType::IPV4
        | LinkType::IPV6
        | LinkType::RAW_DLT12
        | LinkType::RAW_DLT14 => by_version(frame, 0),
        // The 4-byte address family differs between systems; the version
        // nibble does not.
        LinkType::NULL | LinkType::LOOP => by_version(frame, 4),
        LinkType::LINUX_SLL => {
            let et = be16(frame, 14).ok_or(LinkError::Truncated)?;
            by_ethertype(frame, et, 16)
        }
        LinkType::LINUX_SLL2 => {
            let et = be16(frame, 0).ok_or(LinkError::Truncated)?;
            if frame.len() < 20 {
                return Err(LinkError::Truncated);
            }
            by_ethertype(frame, et, 20)
        }
        LinkType::PPP => by_ppp(frame, 0),
        LinkType::C_HDLC => {
            let et = be16(frame, 2).ok_or(LinkError::Truncated)?;
            by_ethertype(frame, et, 4)
        }
        other => Err(LinkError::Unsupported(other)),
    }
}

/// True for link types whose frames are raw IP packets (no link header).
pub fn is_raw_ip(link: LinkType) -> bool {
    matches!(
        link,
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 | LinkType::RAW_DLT12 | LinkType::RAW_DLT14
    )
}

/// Source MAC of Ethernet headers added to raw IP (locally administered).
pub const SYNTH_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of Ethernet headers added to raw IP (locally administered).
pub const SYNTH_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Puts `frame` into `out` as an Ethernet frame: Ethernet frames as they
/// are; raw IP behind a synthetic header ([`SYNTH_SRC_MAC`] →
/// [`SYNTH_DST_MAC`], EtherType from the IP version). Any other link type,
/// or raw IP that is neither v4 nor v6, is an error.
pub fn to_ethernet(link: LinkType, frame: &[u8], out: &mut Vec<u8>) -> Result<(), LinkError> {
    out.clear();
    if link == LinkType::ETHERNET {
        out.extend_from_slice(frame);
        return Ok(());
    }
    if !is_raw_ip(link) {
        return Err(LinkError::Unsupported(link));
    }
    let ethertype = match frame.first().map(|b| b >> 4) {
        Some(4) => ETHERTYPE_IPV4,
        Some(6) => ETHERTYPE_IPV6,
        _ => return Err(LinkError::Truncated),
    };
    out.extend_from_slice(&SYNTH_DST_MAC);
    out.extend_from_slice(&SYNTH_SRC_MAC);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(frame);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(tags: &[u16], et: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 7]);
        }
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn finds_ip_behind_tags() {
        let f = eth(&[], 0x0800, &[0x45]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Ipv4(14)));
        let f = eth(&[0x88a8, 0x8100], 0x86dd, &[0x60]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Ipv6(22)));
        let f = eth(&[], 0x0806, &[0; 28]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Arp(14)));
        let f = eth(&[], 0x88cc, &[]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Other));
        // Two MPLS labels (bottom-of-stack bit on the second), then IPv4.
        let f = eth(&[], 0x8847, &[0, 0, 0x10, 64, 0, 0, 0x11, 64, 0x45]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Ipv4(22)));
        // An MPLS pseudowire (control word 0): opaque.
        let f = eth(&[], 0x8847, &[0, 0, 0x11, 64, 0, 0, 0, 0]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Opaque));
        // PPPoE session carrying IPv6.
        let f = eth(&[], 0x8864, &[0x11, 0, 0, 1, 0, 42, 0x00, 0x57, 0x60]);
        assert_eq!(network(LinkType::ETHERNET, &f), Ok(Network::Ipv6(22)));
        assert_eq!(
            network(LinkType::ETHERNET, &[0; 13]),
            Err(LinkError::Truncated)
        );
        assert_eq!(
            network(LinkType(147), &[0; 64]),
            Err(LinkError::Unsupported(LinkType(147)))
        );
    }

    #[test]
    fn raw_ip_becomes_ethernet() {
        let mut out = Vec::new();
        to_ethernet(LinkType::RAW, &[0x60, 1, 2], &mut out).unwrap();
        assert_eq!(out.len(), 17);
        assert_eq!(out.get(12..14), Some(&[0x86, 0xdd][..]));
        assert_eq!(network(LinkType::ETHERNET, &out), Ok(Network::Ipv6(14)));
        assert!(to_ethernet(LinkType::LINUX_SLL, &[0; 20], &mut out).is_err());
        assert!(to_ethernet(LinkType::RAW, &[], &mut out).is_err());
    }
}
