//! What a capture source hands to the pipeline: frame bytes with a timestamp
//! and a link type.

use core::fmt;
use core::time::Duration;

/// A capture timestamp: nanoseconds since the Unix epoch.
///
/// The only notion of time inside flowscope. It is never read from a clock in
/// the library; it comes from the capture (or from the caller for live
/// timeouts), which keeps every run reproducible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The largest representable time (year 2554).
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: u64) -> Self {
        Timestamp(ns)
    }
    /// From microseconds since the epoch (saturating).
    pub const fn from_micros(us: u64) -> Self {
        Timestamp(us.saturating_mul(1_000))
    }
    /// From whole seconds and a sub-second part in nanoseconds (saturating).
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    }
    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    /// The nanoseconds past the last whole second.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }
    /// The microseconds past the last whole second.
    pub const fn subsec_micros(self) -> u32 {
        self.subsec_nanos() / 1_000
    }
    /// Seconds since the epoch as a float (for display only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ns))
    }
    /// `self - d`, saturating at [`Timestamp::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(ns))
    }
    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later
    /// (capture timestamps may go backwards).
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    /// `secs.nanos`, e.g. `1700000000.000123456`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

/// A capture link type: the `LINKTYPE_*` number of the tcpdump.org registry
/// (the value pcap and pcapng files carry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    /// BSD loopback / null: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661 framing, with or without address/control bytes).
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP, version taken from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// Cisco HDLC.
    pub const C_HDLC: LinkType = LinkType(104);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux "cooked" capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// Some captures use DLT 12 (OpenBSD raw IP) for raw IP.
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// Some captures use DLT 14 for raw IP.
    pub const RAW_DLT14: LinkType = LinkType(14);
}

/// One captured frame as a capture source hands it over.
///
/// Borrowed: the bytes live in the source's buffer. Fields may grow, so build
/// it with [`PacketView::new`] and the `with_*` methods.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PacketView<'a> {
    /// The captured bytes, starting at the link-layer header.
    pub data: &'a [u8],
    /// Capture timestamp.
    pub ts: Timestamp,
    /// How to read `data`.
    pub link_type: LinkType,
    /// Length of the frame on the wire (≥ `data.len()` when the capture was snapped).
    pub wire_len: u32,
    /// Which capture interface or source this came from (pcapng interface id,
    /// RSS queue, …), when there are several.
    pub source: Option<u32>,
}

impl<'a> PacketView<'a> {
    /// A frame that was captured whole (`wire_len == data.len()`), from no particular source.
    pub fn new(data: &'a [u8], ts: Timestamp, link_type: LinkType) -> Self {
        PacketView {
            data,
            ts,
            link_type,
            wire_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            source: None,
        }
    }
    /// Sets the original length on the wire.
    pub fn with_wire_len(mut self, wire_len: u32) -> Self {
        self.wire_len = wire_len;
        self
    }
    /// Sets the capture source index.
    pub fn with_source(mut self, source: u32) -> Self {
        self.source = Some(source);
        self
    }
    /// True when the capture kept fewer bytes than were on the wire.
    pub fn is_snapped(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.wire_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parts_and_arith() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(t.secs(), 1_700_000_000);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(t.subsec_micros(), 123_456);
        assert_eq!(t.to_string(), "1700000000.123456789");
        let later = t.saturating_add(Duration::from_millis(1500));
        assert_eq!(
            later.saturating_duration_since(t),
            Duration::from_millis(1500)
        );
        // Backwards time gives zero, never a panic.
        assert_eq!(t.saturating_duration_since(later), Duration::ZERO);
        assert_eq!(
            Timestamp::ZERO.saturating_sub(Duration::from_secs(1)),
            Timestamp::ZERO
        );
        assert_eq!(
            Timestamp::MAX.saturating_add(Duration::from_secs(1)),
            Timestamp::MAX
        );
        assert_eq!(Timestamp::from_micros(1_500_000).as_nanos(), 1_500_000_000);
    }

    #[test]
    fn packet_view_snapped() {
        let bytes = [0u8; 60];
        let p = PacketView::new(&bytes, Timestamp::ZERO, LinkType::ETHERNET);
        assert!(!p.is_snapped());
        assert!(p.with_wire_len(1514).is_snapped());
        assert_eq!(p.with_source(3).source, Some(3));
    }
}
