//! The global memory budget of one [`SessionDriver`](super::SessionDriver):
//! what is counted, the emergency mode, and what it shed.
//!
//! Every component keeps an O(1) count of the memory it holds (the flow
//! tables by live flows, reassembly and defragmentation by their own
//! reservation counters, the unclaimed-bytes hold by its budget, parsers by
//! [`SessionParser::memory_used`](flowscope_core::SessionParser::memory_used)
//! read after each call into them), so the driver sums five numbers after a
//! packet and compares them with the budget: no scan, no allocation per
//! packet. Only when the sum passes the budget does the driver enter
//! emergency mode and shed, cheapest loss first, down to the low-water mark
//! (see [`SessionConfig::memory_budget`](super::SessionConfig::memory_budget)
//! for the order).

/// Default [`SessionConfig::memory_budget`](super::SessionConfig::memory_budget):
/// 256 MiB per driver (per worker).
///
/// The per-component caps at their defaults add up to about 200 MiB (flow
/// table 64 MiB, out-of-order bytes 64 MiB, fragments 8 MiB, unclaimed
/// bytes 32 + 32 MiB), so ordinary traffic never reaches the budget; what
/// it stops is the one thing no component cap bounds, parser buffers
/// summed over many flows (about 900 TLS flows each holding a full 64 KiB
/// handshake buffer pass the remaining 56 MiB). Suricata's are of the same
/// order (`suricata.yaml` ships `stream.memcap` 64 MiB and
/// `stream.reassembly.memcap` 256 MiB; its built-in flow memcap is 32 MiB).
pub const DEFAULT_MEMORY_BUDGET: usize = 256 * 1024 * 1024;

/// Emergency mode ends once the accounted memory is at or below this share
/// of the budget (in percent); shedding goes down to it, so that the next
/// emergency is at least 10 % of the budget's worth of new state away.
pub const LOW_WATER_PERCENT: usize = 90;

/// Memory accounted by a [`SessionDriver`](super::SessionDriver), and what
/// its budget shed.
///
/// `used` is the sum of the five components. They count what each
/// component holds for its state: live flows (table slot, index and timer
/// entry, session slot), out-of-order payload bytes held by reassembly,
/// defragmentation buffer capacity, bytes held for parsers not yet chosen
/// plus the spare holds kept for reuse, and parser state (each parser's own
/// size plus its [`memory_used`](flowscope_core::SessionParser::memory_used)).
/// Not counted: the tables' grown capacity once flows leave (the slabs do
/// not shrink), reassembly's per-piece bookkeeping, and fixed buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStats {
    /// The budget ([`SessionConfig::memory_budget`](super::SessionConfig::memory_budget)).
    pub budget: usize,
    /// Where shedding stops and emergency mode ends.
    pub low_water: usize,
    /// Accounted now: the sum of the components below.
    pub used: usize,
    /// Highest `used` seen after a packet, before any shedding: the budget
    /// is exceeded by at most what one packet added.
    pub peak: usize,
    /// Live flows: tracker and session table entries.
    pub flows: usize,
    /// Out-of-order bytes held by TCP reassembly.
    pub reassembly: usize,
    /// Defragmentation buffers (live and spare).
    pub defrag: usize,
    /// Bytes held for parsers not chosen yet, plus spare holds.
    pub holds: usize,
    /// Parser state.
    pub parsers: usize,
    /// True while in emergency mode.
    pub in_emergency: bool,
    /// Times emergency mode was entered (the budget was passed).
    pub emergency_entries: u64,
    /// Step 1: bytes of spare buffers released (nothing lost).
    pub shed_spare_bytes: u64,
    /// Step 2: datagrams in progress dropped, oldest first (their
    /// fragments are in `DefragStats::shed`).
    pub shed_datagrams: u64,
    /// Step 3: flows whose held out-of-order bytes were delivered at once,
    /// the holes before them becoming gaps.
    pub shed_reassembly: u64,
    /// Step 4: flows whose unclaimed held bytes were dropped (a parser
    /// chosen later misses them).
    pub shed_holds: u64,
    /// Step 5: parsers given up (closed, then no longer fed; the flow is
    /// still tracked), largest first. Each also reports the anomaly
    /// [`PARSER_SHED`](super::PARSER_SHED).
    pub shed_parsers: u64,
    /// Step 6: flows ended early, idle the longest first
    /// (`EndReason::Evicted`, also in `TrackerStats::ended_evicted`).
    pub shed_flows: u64,
}

impl MemoryStats {
    /// Every thing shed, all steps but the first (which loses nothing).
    pub fn shed_total(&self) -> u64 {
        self.shed_datagrams
            + self.shed_reassembly
            + self.shed_holds
            + self.shed_parsers
            + self.shed_flows
    }
}

/// The budget's state inside the driver.
#[derive(Debug)]
pub(super) struct MemoryBudget {
    /// Counters; the component fields are filled in when read.
    pub(super) stats: MemoryStats,
    /// Parser state over all flows (kept by deltas).
    pub(super) parsers: usize,
}

impl MemoryBudget {
    pub(super) fn new(budget: usize) -> Self {
        MemoryBudget {
            stats: MemoryStats {
                budget,
                low_water: low_water(budget),
                ..MemoryStats::default()
            },
            parsers: 0,
        }
    }
}

/// `LOW_WATER_PERCENT` of `budget`, without overflow.
fn low_water(budget: usize) -> usize {
    (budget / 100)
        .saturating_mul(LOW_WATER_PERCENT)
        .saturating_add(budget % 100 * LOW_WATER_PERCENT / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_water_is_ninety_percent() {
        assert_eq!(low_water(1000), 900);
        assert_eq!(low_water(8 << 20), (8 << 20) * 9 / 10);
        // 10 % below usize::MAX, no overflow.
        assert!(low_water(usize::MAX) < usize::MAX);
        assert!(low_water(usize::MAX) > usize::MAX / 10 * 8);
        assert_eq!(low_water(0), 0);
    }
}
