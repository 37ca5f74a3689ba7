//! Link types, decapsulation and flow keys: frame bytes in, [`Extracted`] out.
//!
//! SKELETON: the public API below is the contract the other modules build
//! against; bodies are filled in by the extract work.

use flowscope_core::{Extracted, FiveTuple, FlowExtractor, IpPair, MacPair, PacketView, Skip};

/// How extractors decode frames.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExtractConfig {
    /// Unwrap tunnels (GRE, ERSPAN, VXLAN, Geneve, GTP-U, IP-in-IP) to the
    /// inner flow (default). When false, the outer flow is keyed.
    pub decap_tunnels: bool,
    /// Verify TCP/UDP/ICMP checksums (default off: offloaded captures carry
    /// wrong checksums). Bad ones become Zeek's history letter `c`.
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
}

impl FlowExtractor for FiveTupleExtractor {
    type Key = FiveTuple;
    fn extract(&self, _pkt: &PacketView<'_>) -> Result<Extracted<FiveTuple>, Skip> {
        todo!("extract")
    }
}

/// Keys flows by the innermost IP address pair.
#[derive(Clone, Debug, Default)]
pub struct IpPairExtractor {
    /// Decoding options.
    pub config: ExtractConfig,
}

impl FlowExtractor for IpPairExtractor {
    type Key = IpPair;
    fn extract(&self, _pkt: &PacketView<'_>) -> Result<Extracted<IpPair>, Skip> {
        todo!("extract")
    }
}

/// Keys flows by the outermost Ethernet address pair.
#[derive(Clone, Debug, Default)]
pub struct MacPairExtractor {
    /// Decoding options.
    pub config: ExtractConfig,
}

impl FlowExtractor for MacPairExtractor {
    type Key = MacPair;
    fn extract(&self, _pkt: &PacketView<'_>) -> Result<Extracted<MacPair>, Skip> {
        todo!("extract")
    }
}
