//! The defragmenter's limits.

use core::time::Duration;

/// Limits that keep defragmentation bounded whatever the input.
///
/// Build it with [`DefragConfig::default`] and set the public fields; fields
/// may be added in later versions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefragConfig {
    /// Most datagrams being reassembled at once (default 4096). IPv6 datagrams
    /// discarded for an overlap keep their entry until they time out, so they
    /// count too. When the table is full, a fragment that would start a new
    /// datagram is dropped (`dropped_table_full`): datagrams already in
    /// progress are never evicted by a flood of new ones.
    pub max_datagrams: usize,
    /// How long a datagram may wait for its missing fragments, counted from
    /// its first fragment (default 30 s, Linux's `ipfrag_time`; used for IPv6
    /// too, where RFC 8200 §4.5 suggests 60 s and Linux also uses 30 s).
    pub timeout: Duration,
    /// Largest reassembled payload in bytes, that is the IPv4 data after the
    /// header or the IPv6 fragmentable part after the Fragment header
    /// (default 65 535). A fragment whose offset plus length passes it is
    /// dropped as too big. Independently of this setting the rebuilt packet
    /// must fit its 16-bit length field (IPv4 total length, IPv6 payload
    /// length): jumbograms are not supported.
    pub max_datagram_len: u32,
    /// Most bytes of buffer held for datagrams in progress, across all of them
    /// (default 8 MiB). It counts reserved buffer capacity, including spare
    /// capacity kept for reuse (released before a fragment is refused), so it
    /// bounds the defragmenter's heap use apart from its fixed per-entry
    /// bookkeeping and the one output buffer of the last completed datagram.
    pub max_memory: usize,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 4096,
            timeout: Duration::from_secs(30),
            max_datagram_len: 65_535,
            max_memory: 8 << 20,
        }
    }
}
