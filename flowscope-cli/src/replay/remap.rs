//! Address rewriting for safe replay: every IP address of a frame is mapped
//! into a chosen range (`--remap-ipv4 198.18.0.0/15`, `--remap-ipv6
//! 2001:2::/48`) and the checksums that cover it are fixed incrementally
//! (RFC 1624), so a receiving stack and flowscope both see valid checksums.
//!
//! # Mapping
//! Deterministic and flow-preserving: the first choice for an address is the
//! range's prefix with the address's own host bits (10.1.2.3 → 198.19.2.3
//! in a /15), which keeps the mapping readable. When that address is already
//! taken by a different original, the next free host number is used (linear
//! probing), so distinct addresses stay distinct while the range has room.
//! The table of assignments lives for the whole run (all `--loop` passes),
//! so the same address always gets the same new address, in both
//! directions of a flow and in every fragment. Past the range's capacity
//! (or [`Remapper::MAX_MAPPED`] addresses), new addresses fall back to the
//! host-bit choice without the uniqueness guarantee, and are counted
//! ([`RemapStats::overflow`]).
//!
//! # What is rewritten
//! - the IPv4/IPv6 header's source and destination, the IPv4 header
//!   checksum, and the TCP, UDP, UDP-Lite, DCCP and ICMPv6 checksums (their
//!   pseudo-header holds the addresses; ICMPv4 and SCTP checksums do not);
//! - the inner header of IP-in-IP (IPv4 or IPv6 inside IPv4 or IPv6),
//!   recursively;
//! - ARP sender and target protocol addresses (Ethernet/IPv4 ARP).
//!
//! Not rewritten, and so **refused** (the frame is dropped and counted):
//! frames of other tunnels (GRE, EtherIP, L2TPv3; VXLAN, VXLAN-GPE,
//! Geneve, GTP-U, MPLS-over-UDP and Teredo by their UDP ports; MPLS
//! pseudowires), IPv6
//! frames with a routing header that still has segments left (the
//! pseudo-header's destination is the routing header's last address), and
//! IP frames of a family that has no range. Not rewritten and kept:
//! addresses quoted inside ICMP error messages and inside IPv4 options.
//! Frames that carry no IP at all (LLDP, STP, …) pass unchanged.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use flowscope_core::LinkType;

use super::link::{self, LinkError, Network};

/// An IPv4 range in CIDR form (`198.18.0.0/15`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// An IPv6 range in CIDR form (`2001:2::/48`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Net {
    network: Ipv6Addr,
    prefix_len: u8,
}

fn split_cidr(s: &str, max: u8) -> Result<(&str, u8), String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not in CIDR form (address/prefix length)"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("bad prefix length in {s:?} (0 to {max})"))?;
    Ok((addr, len))
}

fn mask(bits: u32, prefix_len: u8) -> u128 {
    let all = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let host = all.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    all & !host
}

impl Ipv4Net {
    /// The range with these host bits cleared.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 32).then(|| Ipv4Net {
            network: Ipv4Addr::from(u32::from(addr) & mask(32, prefix_len) as u32),
            prefix_len,
        })
    }
    /// The first address of the range.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }
    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    /// True when `a` is in the range.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & mask(32, self.prefix_len) as u32 == u32::from(self.network)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    /// `a.b.c.d/len`; host bits are cleared.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, len) = split_cidr(s, 32)?;
        let a: Ipv4Addr = a.parse().map_err(|e| format!("{s:?}: {e}"))?;
        Ipv4Net::new(a, len).ok_or_else(|| format!("bad range {s:?}"))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl Ipv6Net {
    /// The range with these host bits cleared.
    pub fn new(addr: Ipv6Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 128).then(|| Ipv6Net {
            network: Ipv6Addr::from(u128::from(addr) & mask(128, prefix_len)),
            prefix_len,
        })
    }
    /// The first address of the range.
    pub fn network(&self) -> Ipv6Addr {
        self.network
    }
    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    /// True when `a` is in the range.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & mask(128, self.prefix_len) == u128::from(self.network)
    }
}

impl FromStr for Ipv6Net {
    type Err = String;
    /// `addr/len`; host bits are cleared.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, len) = split_cidr(s, 128)?;
        let a: Ipv6Addr = a.parse().map_err(|e| format!("{s:?}: {e}"))?;
        Ipv6Net::new(a, len).ok_or_else(|| format!("bad range {s:?}"))
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// One family's assignments: original address → address in the range.
#[derive(Debug)]
struct AddrMap {
    prefix: u128,
    host_mask: u128,
    /// Addresses the range holds (2^host bits), saturating.
    capacity: u128,
    assigned: HashMap<u128, u128>,
    taken: HashSet<u128>,
}

/// Most probes for a free address before giving up on uniqueness.
const MAX_PROBES: u128 = 4096;

impl AddrMap {
    fn new(bits: u32, network: u128, prefix_len: u8) -> Self {
        let net_mask = mask(bits, prefix_len);
        let all = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let host_bits = bits.saturating_sub(u32::from(prefix_len));
        AddrMap {
            prefix: network & net_mask,
            host_mask: all & !net_mask,
            capacity: 1u128.checked_shl(host_bits).unwrap_or(u128::MAX),
            assigned: HashMap::new(),
            taken: HashSet::new(),
        }
    }

    /// The new address of `a`; `overflow` is set when it may not be unique.
    fn map(&mut self, a: u128, max_mapped: usize, stats: &mut RemapStats) -> u128 {
        if let Some(n) = self.assigned.get(&a) {
            return *n;
        }
        let host = a & self.host_mask;
        let first = self.prefix | host;
        let full = self.taken.len() as u128 >= self.capacity || self.assigned.len() >= max_mapped;
        if full {
            // No room to remember it: deterministic, but may collide.
            stats.overflow += 1;
            return first;
        }
        let mut chosen = None;
        for k in 0..MAX_PROBES.min(self.capacity) {
            let cand = self.prefix | (host.wrapping_add(k) & self.host_mask);
            if !self.taken.contains(&cand) {
                chosen = Some(cand);
                if k > 0 {
                    stats.probed += 1;
                }
                break;
            }
        }
        let new = chosen.unwrap_or_else(|| {
            stats.overflow += 1;
            first
        });
        self.assigned.insert(a, new);
        self.taken.insert(new);
        new
    }
}

/// Why a frame was refused (dropped rather than replayed with addresses
/// that could not be rewritten).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// IP of a family that has no remap range.
    NoRange,
    /// A tunnel whose inner addresses are not rewritten.
    Tunnel,
    /// IPv6 with a routing header that has segments left.
    RoutingHeader,
    /// Headers cut short or inconsistent before the addresses.
    Malformed,
    /// A link type whose network layer cannot be found.
    LinkType,
}

/// What [`Remapper::remap_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Addresses rewritten; checksums fixed.
    Rewritten,
    /// No IP or ARP in the frame: left as it was, safe to replay.
    NotIp,
    /// Must not be replayed; the frame's bytes may be partly rewritten.
    Refused(Refusal),
}

/// What the remapper did, by frame and by address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemapStats {
    /// Frames rewritten.
    pub rewritten: u64,
    /// Frames without IP, left as they were.
    pub not_ip: u64,
    /// Frames refused: IP family without a range.
    pub refused_no_range: u64,
    /// Frames refused: tunnel whose inner addresses are not rewritten.
    pub refused_tunnel: u64,
    /// Frames refused: IPv6 routing header with segments left.
    pub refused_routing_header: u64,
    /// Frames refused: malformed headers.
    pub refused_malformed: u64,
    /// Frames refused: link type not read.
    pub refused_link_type: u64,
    /// Rewritten frames whose transport checksum lies past the captured
    /// bytes (a snapped capture): it could not be fixed.
    pub checksum_not_captured: u64,
    /// Addresses that did not get their first-choice (host-bit) address.
    pub probed: u64,
    /// Addresses mapped without the uniqueness guarantee (range full).
    pub overflow: u64,
}

impl RemapStats {
    /// Frames refused for any reason.
    pub fn refused(&self) -> u64 {
        self.refused_no_range
            + self.refused_tunnel
            + self.refused_routing_header
            + self.refused_malformed
            + self.refused_link_type
    }
}

/// Rewrites frames' addresses into the configured ranges. Keep one for a
/// whole run: it holds the assignments.
#[derive(Debug)]
pub struct Remapper {
    v4: Option<AddrMap>,
    v6: Option<AddrMap>,
    v4_net: Option<Ipv4Net>,
    v6_net: Option<Ipv6Net>,
    max_mapped: usize,
    stats: RemapStats,
}

/// UDP ports of tunnels whose inner addresses are not rewritten: VXLAN
/// (IANA and Linux's old default), VXLAN-GPE, Geneve, GTP-U, MPLS-over-UDP,
/// Teredo. (Every UDP tunnel flowscope's extractor unwraps is here.)
const TUNNEL_UDP_PORTS: [u16; 7] = [4789, 8472, 4790, 6081, 2152, 6635, 3544];
/// IP protocols of tunnels not rewritten: GRE, EtherIP, L2TPv3.
const TUNNEL_PROTOS: [u8; 3] = [47, 97, 115];
/// Deepest IP-in-IP nesting rewritten.
const MAX_DEPTH: u8 = 4;

impl Remapper {
    /// Most distinct addresses remembered per family (bounds memory).
    pub const MAX_MAPPED: usize = 1 << 20;

    /// A remapper into these ranges; a family without a range is refused.
    pub fn new(v4: Option<Ipv4Net>, v6: Option<Ipv6Net>) -> Self {
        Remapper {
            v4: v4.map(|n| AddrMap::new(32, u128::from(u32::from(n.network)), n.prefix_len)),
            v6: v6.map(|n| AddrMap::new(128, u128::from(n.network), n.prefix_len)),
            v4_net: v4,
            v6_net: v6,
            max_mapped: Self::MAX_MAPPED,
            stats: RemapStats::default(),
        }
    }

    /// The IPv4 range, if any.
    pub fn ipv4_range(&self) -> Option<Ipv4Net> {
        self.v4_net
    }

    /// The IPv6 range, if any.
    pub fn ipv6_range(&self) -> Option<Ipv6Net> {
        self.v6_net
    }

    /// Counters so far.
    pub fn stats(&self) -> &RemapStats {
        &self.stats
    }

    /// The new address of `a` (assigning one if it is new); `None` when
    /// there is no IPv4 range.
    pub fn map_v4(&mut self, a: Ipv4Addr) -> Option<Ipv4Addr> {
        let m = self.v4.as_mut()?;
        let n = m.map(u128::from(u32::from(a)), self.max_mapped, &mut self.stats);
        Some(Ipv4Addr::from(u32::try_from(n).unwrap_or(0)))
    }

    /// The new address of `a`; `None` when there is no IPv6 range.
    pub fn map_v6(&mut self, a: Ipv6Addr) -> Option<Ipv6Addr> {
        let m = self.v6.as_mut()?;
        Some(Ipv6Addr::from(m.map(
            u128::from(a),
            self.max_mapped,
            &mut self.stats,
        )))
    }

    /// Rewrites `frame` (of link type `link`) in place. On
    /// [`Verdict::Refused`] the frame must be dropped.
    pub fn remap_frame(&mut self, link: LinkType, frame: &mut [u8]) -> Verdict {
        let verdict = match link::network(link, frame) {
            Ok(Network::Ipv4(at)) => self.ipv4(frame, at, 0),
            Ok(Network::Ipv6(at)) => self.ipv6(frame, at, 0),
            Ok(Network::Arp(at)) => self.arp(frame, at),
            Ok(Network::Other) => Ok(Verdict::NotIp),
            Ok(Network::Opaque) => Err(Refusal::Tunnel),
            Err(LinkError::Truncated) => Err(Refusal::Malformed),
            Err(LinkError::Unsupported(_)) => Err(Refusal::LinkType),
        };
        let verdict = verdict.unwrap_or_else(Verdict::Refused);
        let s = &mut self.stats;
        match verdict {
            Verdict::Rewritten => s.rewritten += 1,
            Verdict::NotIp => s.not_ip += 1,
            Verdict::Refused(r) => match r {
                Refusal::NoRange => s.refused_no_range += 1,
                Refusal::Tunnel => s.refused_tunnel += 1,
                Refusal::RoutingHeader => s.refused_routing_header += 1,
                Refusal::Malformed => s.refused_malformed += 1,
                Refusal::LinkType => s.refused_link_type += 1,
            },
        }
        verdict
    }

    fn map4(&mut self, frame: &mut [u8], at: usize) -> Result<([u8; 4], [u8; 4]), Refusal> {
        let old: [u8; 4] = read(frame, at).ok_or(Refusal::Malformed)?;
        let new = self
            .map_v4(Ipv4Addr::from(old))
            .ok_or(Refusal::NoRange)?
            .octets();
        write(frame, at, &new).ok_or(Refusal::Malformed)?;
        Ok((old, new))
    }

    fn map6(&mut self, frame: &mut [u8], at: usize) -> Result<([u8; 16], [u8; 16]), Refusal> {
        let old: [u8; 16] = read(frame, at).ok_or(Refusal::Malformed)?;
        let new = self
            .map_v6(Ipv6Addr::from(old))
            .ok_or(Refusal::NoRange)?
            .octets();
        write(frame, at, &new).ok_or(Refusal::Malformed)?;
        Ok((old, new))
    }

    fn arp(&mut self, frame: &mut [u8], at: usize) -> Result<Verdict, Refusal> {
        // Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4)
        // carries IPv4 addresses at fixed places.
        let head: [u8; 6] = read(frame, at).ok_or(Refusal::Malformed)?;
        if head != [0, 1, 8, 0, 6, 4] {
            return Ok(Verdict::NotIp);
        }
        self.map4(frame, at + 14)?;
        self.map4(frame, at + 24)?;
        Ok(Verdict::Rewritten)
    }

    fn ipv4(&mut self, frame: &mut [u8], at: usize, depth: u8) -> Result<Verdict, Refusal> {
        let vihl = *frame.get(at).ok_or(Refusal::Malformed)?;
        let ihl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || ihl < 20 || frame.len() < at + ihl {
            return Err(Refusal::Malformed);
        }
        let (old_src, new_src) = self.map4(frame, at + 12)?;
        let (old_dst, new_dst) = self.map4(frame, at + 16)?;
        let old = concat(&old_src, &old_dst);
        let new = concat(&new_src, &new_dst);
        let hc = read16(frame, at + 10).ok_or(Refusal::Malformed)?;
        write16(frame, at + 10, adjust(hc, &old, &new)).ok_or(Refusal::Malformed)?;
        let total = usize::from(read16(frame, at + 2).ok_or(Refusal::Malformed)?);
        if total < ihl {
            return Err(Refusal::Malformed);
        }
        let frag = read16(frame, at + 6).ok_or(Refusal::Malformed)?;
        let l4 = L4 {
            proto: *frame.get(at + 9).ok_or(Refusal::Malformed)?,
            at: at + ihl,
            // The IP length, not the frame's: Ethernet pads short frames.
            end: at + total,
            frag_off: usize::from(frag & 0x1fff) * 8,
        };
        self.transport(frame, l4, &old, &new, depth)
    }

    fn ipv6(&mut self, frame: &mut [u8], at: usize, depth: u8) -> Result<Verdict, Refusal> {
        if frame.get(at).map(|b| b >> 4) != Some(6) || frame.len() < at + 40 {
            return Err(Refusal::Malformed);
        }
        let (old_src, new_src) = self.map6(frame, at + 8)?;
        let (old_dst, new_dst) = self.map6(frame, at + 24)?;
        let old = concat(&old_src, &old_dst);
        let new = concat(&new_src, &new_dst);
        let payload_len = usize::from(read16(frame, at + 4).ok_or(Refusal::Malformed)?);
        // Payload length 0 is a jumbogram (RFC 2675): the frame's length.
        let end = if payload_len == 0 {
            frame.len()
        } else {
            at + 40 + payload_len
        };
        let mut frag_off = 0;
        let mut next = *frame.get(at + 6).ok_or(Refusal::Malformed)?;
        let mut pos = at + 40;
        // Extension headers, bounded: hop-by-hop, routing, fragment,
        // destination options, AH.
        for _ in 0..8 {
            let hdr = match frame.get(pos..pos.saturating_add(4)) {
                Some(h) => h,
                // Snapped inside the extension headers: nothing more to fix.
                None if matches!(next, 0 | 43 | 44 | 60 | 51) => {
                    self.stats.checksum_not_captured += 1;
                    return Ok(Verdict::Rewritten);
                }
                None => break,
            };
            let (nh, len_byte) = (hdr.first().copied(), hdr.get(1).copied());
            let (Some(nh), Some(len_byte)) = (nh, len_byte) else {
                return Err(Refusal::Malformed);
            };
            match next {
                0 | 60 => pos += (usize::from(len_byte) + 1) * 8,
                43 => {
                    if hdr.get(3).copied().unwrap_or(0) > 0 {
                        return Err(Refusal::RoutingHeader);
                    }
                    pos += (usize::from(len_byte) + 1) * 8;
                }
                44 => {
                    let off = read16(frame, pos + 2).ok_or(Refusal::Malformed)?;
                    frag_off = usize::from(off >> 3) * 8;
                    pos += 8;
                }
                51 => pos += (usize::from(len_byte) + 2) * 4,
                _ => break,
            }
            next = nh;
        }
        let l4 = L4 {
            proto: next,
            at: pos,
            end,
            frag_off,
        };
        self.transport(frame, l4, &old, &new, depth)
    }

    /// Fixes the transport checksum of `l4`, whose pseudo-header
    /// addresses went from `old` to `new`; recurses into IP-in-IP; refuses
    /// other tunnels. In a fragmented datagram the checksum field is fixed
    /// in whichever fragment carries it.
    fn transport(
        &mut self,
        frame: &mut [u8],
        l4: L4,
        old: &[u8],
        new: &[u8],
        depth: u8,
    ) -> Result<Verdict, Refusal> {
        let first = l4.frag_off == 0;
        let ck_off: usize = match l4.proto {
            6 => 16,            // TCP
            17 | 136 | 33 => 6, // UDP, UDP-Lite, DCCP
            // ICMPv6 (its pseudo-header exists only over IPv6).
            58 if old.len() == 32 => 2,
            4 | 41 if first => {
                if depth >= MAX_DEPTH {
                    return Err(Refusal::Tunnel);
                }
                return if l4.proto == 4 {
                    self.ipv4(frame, l4.at, depth + 1)
                } else {
                    self.ipv6(frame, l4.at, depth + 1)
                };
            }
            p if TUNNEL_PROTOS.contains(&p) => return Err(Refusal::Tunnel),
            _ => return Ok(Verdict::Rewritten),
        };
        if l4.proto == 17 && first {
            let sport = read16(frame, l4.at);
            let dport = read16(frame, l4.at + 2);
            if [sport, dport]
                .iter()
                .flatten()
                .any(|p| TUNNEL_UDP_PORTS.contains(p))
            {
                return Err(Refusal::Tunnel);
            }
        }
        // Where the field sits in this fragment's payload, if it does.
        // (Fragment payloads are multiples of 8 bytes, so an even 2-byte
        // field never straddles two fragments.)
        let Some(rel) = ck_off.checked_sub(l4.frag_off) else {
            return Ok(Verdict::Rewritten);
        };
        let field = l4.at + rel;
        if field + 2 > l4.end {
            // In a later fragment, or the datagram is too short to hold it.
            return Ok(Verdict::Rewritten);
        }
        let Some(ck) = read16(frame, field) else {
            self.stats.checksum_not_captured += 1;
            return Ok(Verdict::Rewritten);
        };
        // RFC 768: UDP over IPv4 with checksum 0 has none; leave it so.
        if l4.proto == 17 && ck == 0 && old.len() == 8 {
            return Ok(Verdict::Rewritten);
        }
        let mut fixed = adjust(ck, old, new);
        if l4.proto == 17 && fixed == 0 {
            // RFC 768: a computed 0 is sent as all ones.
            fixed = 0xffff;
        }
        write16(frame, field, fixed).ok_or(Refusal::Malformed)?;
        Ok(Verdict::Rewritten)
    }
}

/// A transport payload within one IP packet (or fragment).
#[derive(Clone, Copy, Debug)]
struct L4 {
    /// IP protocol number.
    proto: u8,
    /// Where the payload starts in the frame.
    at: usize,
    /// Where it ends by the IP header's length (may exceed the frame when snapped).
    end: usize,
    /// Its offset within the datagram, in bytes (0 unless a later fragment).
    frag_off: usize,
}

/// Up to 32 bytes: two addresses, concatenated on the stack.
struct Pair {
    buf: [u8; 32],
    len: usize,
}

impl std::ops::Deref for Pair {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

fn concat(a: &[u8], b: &[u8]) -> Pair {
    let mut buf = [0u8; 32];
    let len = a.len() + b.len();
    for (d, s) in buf.iter_mut().zip(a.iter().chain(b.iter())) {
        *d = *s;
    }
    Pair {
        buf,
        len: len.min(32),
    }
}

fn read<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn write(b: &mut [u8], at: usize, v: &[u8]) -> Option<()> {
    b.get_mut(at..at.checked_add(v.len())?)?.copy_from_slice(v);
    Some(())
}

fn read16(b: &[u8], at: usize) -> Option<u16> {
    read::<2>(b, at).map(u16::from_be_bytes)
}

fn write16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    write(b, at, &v.to_be_bytes())
}

/// RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, over every 16-bit word of
/// `old` → `new` (same even length): the checksum after the change.
pub fn adjust(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u32::from(!check);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        let o = o.try_into().map(u16::from_be_bytes).unwrap_or(0);
        let n = n.try_into().map(u16::from_be_bytes).unwrap_or(0);
        sum += u32::from(!o) + u32::from(n);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
#[path = "remap_tests.rs"]
mod tests;
