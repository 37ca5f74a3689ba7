//! Link types, decapsulation and flow keys: frame bytes in, [`Extracted`] out.
//!
//! One shared layer walk ([`decode`]) turns a frame into the facts of its
//! innermost IP packet ([`Decoded`]); the extractors only differ in the key
//! they build from those facts. Data flow, module by module:
//! link header (`decode::link_start`) → shims (`shim`: Ethernet, VLAN, MPLS,
//! PPPoE, PPP) → IP (`ip`) → tunnels (`tunnel`, back to a shim or IP) →
//! transport (`transport`), optionally checksums (`checksum`).
//! [`FiveTupleExtractor`] first tries a straight-line fast path (`fast`) for
//! plain Ethernet/VLAN/raw/cooked IPv4, or IPv6 with at most one hop-by-hop
//! header, carrying TCP, UDP, ICMP or ICMPv6, with the same result as the
//! walk; anything else goes to the walk.
//!
//! Supported link types: Ethernet, raw IP (101, 12, 14, 228, 229), BSD
//! null/loopback (0, 108), Linux cooked v1/v2 (113, 276), PPP (9) and Cisco
//! HDLC (104). Tunnels unwrapped (with [`ExtractConfig::decap_tunnels`]):
//! IP-in-IP and 6in4, GRE (plain, keyed, sequenced, transparent Ethernet,
//! MPLS, ERSPAN I/II/III, PPTP), VXLAN, Geneve, GTP-U and MPLS-over-UDP.
//! A packet on a tunnel port that does not look like the tunnel, or a tunnel
//! payload that is not IP (GRE keepalives, PPTP control), keys the outer flow.
//!
//! Lengths: `ip_len` and `payload_wire_len` come from the IP length fields.
//! A packet longer than the captured bytes is fine when the capture was
//! snapped (`PacketView::wire_len` says so) and `Malformed(TruncatedIp)`
//! when it was not (Zeek's `truncated_IP`). Bytes past the IP length (link
//! padding, trailers) are never payload. A zero IPv4 total length (TCP
//! segmentation offload) or IPv6 payload length (jumbogram) stands for the
//! captured length.
//!
//! Non-first fragments are `Skip::Fragment` for every extractor; first
//! fragments are keyed and flagged in `Extracted::first_fragment`.

mod addr;
mod bytes;
mod checksum;
mod decode;
mod fast;
mod ip;
mod shim;
mod transport;
mod tunnel;

#[cfg(test)]
mod tests;

pub use decode::{decode, Decoded};
pub use ip::MAX_IPV6_EXT_HEADERS;
pub use transport::icmp_counterpart;

use std::net::{IpAddr, Ipv4Addr};

use flowscope_core::{
    Extracted, FiveTuple, FlowExtractor, IpPair, L4Proto, LinkType, MacPair, MalformedReason,
    Orientation, PacketView, Skip,
};

/// How extractors decode frames.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExtractConfig {
    /// Unwrap tunnels (GRE, ERSPAN, VXLAN, Geneve, GTP-U, IP-in-IP) to the
    /// inner flow (default). When false, the outer flow is keyed.
    pub decap_tunnels: bool,
    /// Verify the innermost IPv4 header and TCP/UDP/ICMP/ICMPv6 checksums
    /// (default off: offloaded captures carry wrong checksums). Bad ones
    /// become Zeek's history letter `c`.
    pub verify_checksums: bool,
    /// UDP destination ports decoded as VXLAN (default 4789 and 8472).
    pub vxlan_ports: [u16; 2],
    /// UDP destination port decoded as Geneve (default 6081).
    pub geneve_port: u16,
    /// UDP port decoded as GTP-U (default 2152).
    pub gtpu_port: u16,
    /// Most encapsulation layers peeled before giving up with `TooDeep` (default 16).
    pub max_layers: u8,
}

impl ExtractConfig {
    /// True for the UDP ports on which the extractor tries a tunnel when
    /// [`decap_tunnels`](Self::decap_tunnels) is on: VXLAN, Geneve and
    /// MPLS over UDP (RFC 7510) by destination, GTP-U by either port. A
    /// caller that keys packets without the extractor (the workers'
    /// dispatcher) must hand these to it.
    #[inline(always)]
    pub fn is_udp_tunnel_port(&self, sport: u16, dport: u16) -> bool {
        self.vxlan_ports.contains(&dport)
            || dport == self.geneve_port
            || dport == tunnel::MPLS_UDP_PORT
            || dport == self.gtpu_port
            || sport == self.gtpu_port
    }
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            decap_tunnels: true,
            verify_checksums: false,
            vxlan_ports: [4789, 8472],
            geneve_port: 6081,
            gtpu_port: 2152,
            max_layers: 16,
        }
    }
}

/// Keys flows by the innermost transport 5-tuple.
#[derive(Clone, Debug, Default)]
pub struct FiveTupleExtractor {
    /// Decoding options.
    pub config: ExtractConfig,
}

impl FiveTupleExtractor {
    /// An extractor with these options.
    pub fn new(config: ExtractConfig) -> Self {
        FiveTupleExtractor { config }
    }

    /// [`FlowExtractor::extract`] through the general layer walk only,
    /// bypassing the fast path (for differential tests and fuzzing: both
    /// must give the same result).
    #[doc(hidden)]
    pub fn extract_general(&self, pkt: &PacketView<'_>) -> Result<Extracted<FiveTuple>, Skip> {
        extract_with(pkt, &self.config, blank_five_tuple(), |d| {
            d.addrs.five_tuple(d.sport, d.dport, d.proto)
        })
    }

    /// [`FlowExtractor::extract_into`] through the general layer walk only.
    #[doc(hidden)]
    #[inline(always)]
    pub fn extract_into_general(
        &self,
        pkt: &PacketView<'_>,
        out: &mut Extracted<FiveTuple>,
    ) -> Result<(), Skip> {
        out.encap.clear();
        let d = decode(pkt, &self.config, &mut out.encap)?;
        (out.key, out.orientation) = d.addrs.five_tuple(d.sport, d.dport, d.proto);
        fill(out, &d);
        Ok(())
    }

    /// True when the fast path (`extract/fast.rs`) decodes `pkt` itself
    /// rather than handing it to the general walk (for tests that check it
    /// is exercised).
    #[doc(hidden)]
    pub fn takes_fast_path(&self, pkt: &PacketView<'_>) -> bool {
        fast::parse(pkt, &self.config).is_some()
    }
}

/// A 5-tuple placeholder for results the walk fills in.
#[inline(always)]
fn blank_five_tuple() -> FiveTuple {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    FiveTuple {
        lo_addr: any,
        hi_addr: any,
        lo_port: 0,
        hi_port: 0,
        proto: 0,
    }
}

/// Plain Ethernet/VLAN/raw/cooked IPv4 (or IPv6 with at most one hop-by-hop
/// header) TCP, UDP, ICMP and ICMPv6 frames take the fast path (`fast.rs`);
/// everything else, and every frame when checksums are verified, takes the
/// general layer walk. Both give identical results.
impl FlowExtractor for FiveTupleExtractor {
    type Key = FiveTuple;
    #[inline(always)]
    fn extract(&self, pkt: &PacketView<'_>) -> Result<Extracted<FiveTuple>, Skip> {
        if let Some(f) = fast::parse(pkt, &self.config) {
            let mut e = Extracted::new(blank_five_tuple(), Orientation::LoToHi, L4Proto::Tcp);
            f.write(&mut e);
            return Ok(e);
        }
        self.extract_general(pkt)
    }

    #[inline(always)]
    fn extract_into(
        &self,
        pkt: &PacketView<'_>,
        out: &mut Extracted<FiveTuple>,
    ) -> Result<(), Skip> {
        if let Some(f) = fast::parse(pkt, &self.config) {
            f.write(out);
            return Ok(());
        }
        self.extract_into_general(pkt, out)
    }
}

/// Keys flows by the innermost IP address pair.
#[derive(Clone, Debug, Default)]
pub struct IpPairExtractor {
    /// Decoding options.
    pub config: ExtractConfig,
}

impl IpPairExtractor {
    /// An extractor with these options.
    pub fn new(config: ExtractConfig) -> Self {
        IpPairExtractor { config }
    }
}

impl FlowExtractor for IpPairExtractor {
    type Key = IpPair;
    #[inline(always)]
    fn extract(&self, pkt: &PacketView<'_>) -> Result<Extracted<IpPair>, Skip> {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let blank = IpPair { lo: any, hi: any };
        extract_with(pkt, &self.config, blank, |d| d.addrs.ip_pair())
    }
}

/// Keys flows by the outermost Ethernet address pair.
#[derive(Clone, Debug, Default)]
pub struct MacPairExtractor {
    /// Decoding options.
    pub config: ExtractConfig,
}

impl MacPairExtractor {
    /// An extractor with these options.
    pub fn new(config: ExtractConfig) -> Self {
        MacPairExtractor { config }
    }
}

impl FlowExtractor for MacPairExtractor {
    type Key = MacPair;
    /// Frames of other link types are `UnsupportedLinkType`. Non-IP frames
    /// (ARP, LLDP, …) are flows too, with `l4 = Other(0)` and no IP facts;
    /// malformed IP packets and non-first fragments are skipped as for the
    /// other extractors.
    #[inline(always)]
    fn extract(&self, pkt: &PacketView<'_>) -> Result<Extracted<MacPair>, Skip> {
        if pkt.link_type != LinkType::ETHERNET {
            return Err(Skip::UnsupportedLinkType(pkt.link_type));
        }
        let Some(h) = pkt.data.first_chunk::<14>() else {
            return Err(Skip::Malformed(MalformedReason::TruncatedLink));
        };
        let (dst, src) = mac_pair(h);
        let (key, o) = MacPair::from_directed(src, dst);
        let mut e = Extracted::new(key, o, L4Proto::Other(0));
        match decode(pkt, &self.config, &mut e.encap) {
            Ok(d) => {
                fill(&mut e, &d);
                Ok(e)
            }
            // The encapsulation peeled before the non-IP payload stays.
            Err(Skip::NotIp { .. }) => Ok(e),
            Err(skip) => Err(skip),
        }
    }
}

/// `(dst, src)` of an Ethernet header.
#[inline]
fn mac_pair(h: &[u8; 14]) -> ([u8; 6], [u8; 6]) {
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, _, _] = *h;
    ([d0, d1, d2, d3, d4, d5], [s0, s1, s2, s3, s4, s5])
}

/// Decodes `pkt` and keys it with `key`.
///
/// The result is built in place: the walk writes the encapsulation stack
/// straight into the returned value, which saves copying the ~400-byte
/// [`Extracted`] on every packet.
#[inline(always)]
fn extract_with<K>(
    pkt: &PacketView<'_>,
    config: &ExtractConfig,
    blank: K,
    key: impl FnOnce(&Decoded) -> (K, Orientation),
) -> Result<Extracted<K>, Skip> {
    let mut r = Ok(Extracted::new(
        blank,
        Orientation::LoToHi,
        L4Proto::Other(0),
    ));
    if let Ok(e) = &mut r {
        match decode(pkt, config, &mut e.encap) {
            Ok(d) => {
                (e.key, e.orientation) = key(&d);
                fill(e, &d);
            }
            Err(skip) => return Err(skip),
        }
    }
    r
}

/// Copies the per-packet facts every extractor reports.
#[inline(always)]
fn fill<K>(e: &mut Extracted<K>, d: &Decoded) {
    e.l4 = d.l4;
    e.tcp = d.tcp;
    e.ip_version = d.ip_version;
    e.ip_len = d.ip_len;
    e.payload_wire_len = d.payload_wire_len;
    e.payload = d.payload;
    e.checksum = d.checksum;
    e.first_fragment = d.first_fragment;
    e.anomalies = d.anomalies;
}
