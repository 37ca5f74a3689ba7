//! One packet in: extract -> track -> (defragment, reassemble, parse) ->
//! events out, with every packet accounted for.
//!
//! Two drivers, both what one run-to-completion worker owns; neither reads a
//! clock:
//! - [`FlowPipeline`]: flows only, any extractor; no allocation per packet
//!   once a flow exists;
//! - [`SessionDriver`]: 5-tuple flows plus IP defragmentation, TCP
//!   reassembly and application parsers, emitting [`DriverEvent`]s (flow
//!   events and typed messages) in wire order.
//!
//! [`run_capture`] and [`collect_messages`] are the one-call helpers for a
//! capture file.

mod erased;
#[cfg(feature = "pcap")]
mod file;
mod memory;
mod session;
#[cfg(test)]
#[path = "tests.rs"]
mod session_tests;

#[cfg(feature = "pcap")]
pub use file::{collect_messages, run_capture, CollectedMessage};
pub use memory::{MemoryStats, DEFAULT_MEMORY_BUDGET, LOW_WATER_PERCENT};
pub use session::{
    DriverEvent, SessionConfig, SessionCounters, SessionDriver, SessionInfo, PARSER_SHED,
};

use flowscope_core::{
    Extracted, FlowEvent, FlowExtractor, MalformedReason, PacketAnomalies, PacketView, Skip,
    Timestamp,
};

use crate::extract::{ExtractConfig, FiveTupleExtractor};
use crate::track::{FlowTracker, TrackedKey, TrackerConfig, TrackerStats};

/// Where every packet handed to a [`FlowPipeline`] went.
///
/// Invariant (checked by [`PacketCounters::is_balanced`]): `packets` equals
/// `tracked + not_ip + unsupported_link + fragments + malformed_total()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacketCounters {
    /// Packets handed in.
    pub packets: u64,
    /// Their frame bytes (wire length).
    pub frame_bytes: u64,
    /// Packets counted into a flow.
    pub tracked: u64,
    /// Frames that carry no IP (ARP, LLDP, …).
    pub not_ip: u64,
    /// Frames of a link type the extractor does not read.
    pub unsupported_link: u64,
    /// Non-first IP fragments (no transport header to key them by).
    pub fragments: u64,
    /// Malformed frames, indexed by [`MalformedReason::index`].
    pub malformed: [u64; MalformedReason::ALL.len()],
    /// Tracked packets whose UDP length field exceeded the IP payload
    /// (Zeek's weird `UDP_datagram_length_mismatch`): kept, with the IP
    /// payload as the datagram. A subset of `tracked`, outside the balance.
    pub udp_length_exceeds_ip: u64,
}

impl PacketCounters {
    /// Malformed frames of every reason.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }
    /// Packets that went somewhere: counted into a flow or skipped for a reason.
    pub fn accounted(&self) -> u64 {
        self.tracked + self.not_ip + self.unsupported_link + self.fragments + self.malformed_total()
    }
    /// True when every packet handed in is accounted for.
    pub fn is_balanced(&self) -> bool {
        self.accounted() == self.packets
    }
    /// `(reason, count)` for every malformed reason with a non-zero count.
    pub fn malformed_by_reason(&self) -> impl Iterator<Item = (MalformedReason, u64)> + '_ {
        MalformedReason::ALL
            .iter()
            .zip(self.malformed.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (*r, *n))
    }
    /// Counts a packet going into a flow, with the anomalies it carried.
    #[inline]
    pub(crate) fn count_tracked(&mut self, anomalies: PacketAnomalies) {
        self.tracked += 1;
        if anomalies.contains(PacketAnomalies::UDP_LENGTH_EXCEEDS_IP) {
            self.udp_length_exceeds_ip += 1;
        }
    }

    pub(crate) fn count_skip(&mut self, skip: Skip) {
        match skip {
            Skip::NotIp { .. } => self.not_ip += 1,
            Skip::UnsupportedLinkType(_) => self.unsupported_link += 1,
            Skip::Fragment(_) => self.fragments += 1,
            Skip::Malformed(reason) => {
                if let Some(n) = self.malformed.get_mut(reason.index()) {
                    *n += 1;
                }
            }
            // `Skip` may grow; anything new is malformed until it has its own counter.
            #[allow(unreachable_patterns)]
            _ => {
                if let Some(n) = self
                    .malformed
                    .get_mut(MalformedReason::BadEncapsulation.index())
                {
                    *n += 1;
                }
            }
        }
    }
}

/// Extractor + tracker + packet accounting for one worker.
pub struct FlowPipeline<E: FlowExtractor>
where
    E::Key: TrackedKey,
{
    extractor: E,
    tracker: FlowTracker<E::Key>,
    counters: PacketCounters,
    /// The extraction result, reused packet after packet
    /// ([`FlowExtractor::extract_into`]); empty until the first success.
    scratch: Option<Extracted<E::Key>>,
}

impl FlowPipeline<FiveTupleExtractor> {
    /// The usual pipeline: flows keyed by the innermost 5-tuple.
    pub fn five_tuple(extract: ExtractConfig, track: TrackerConfig) -> Self {
        FlowPipeline::new(FiveTupleExtractor::new(extract), track)
    }
}

impl<E: FlowExtractor> FlowPipeline<E>
where
    E::Key: TrackedKey,
{
    /// A pipeline with any extractor.
    pub fn new(extractor: E, track: TrackerConfig) -> Self {
        FlowPipeline {
            extractor,
            tracker: FlowTracker::new(track),
            counters: PacketCounters::default(),
            scratch: None,
        }
    }

    /// Runs one packet through the pipeline; flow events go to `sink`.
    #[inline]
    pub fn process(&mut self, pkt: &PacketView<'_>, sink: &mut impl FnMut(&FlowEvent<E::Key>)) {
        self.counters.packets += 1;
        self.counters.frame_bytes += u64::from(pkt.wire_len);
        let result = match &mut self.scratch {
            Some(ex) => self.extractor.extract_into(pkt, ex).map(|()| {
                self.tracker.track(pkt, ex, sink);
                ex.anomalies
            }),
            None => self.extractor.extract(pkt).map(|ex| {
                self.tracker.track(pkt, &ex, sink);
                let anomalies = ex.anomalies;
                self.scratch = Some(ex);
                anomalies
            }),
        };
        match result {
            Ok(anomalies) => self.counters.count_tracked(anomalies),
            Err(skip) => {
                self.counters.count_skip(skip);
                // A packet that makes no flow still moves time forward, so
                // idle flows expire on schedule in sparse or odd traffic.
                self.tracker.advance_to(pkt.ts, sink);
            }
        }
    }

    /// Moves time to `now` without a packet (live capture), expiring idle flows.
    pub fn advance_to(&mut self, now: Timestamp, sink: &mut impl FnMut(&FlowEvent<E::Key>)) {
        self.tracker.advance_to(now, sink);
    }

    /// Ends every flow at end of input.
    pub fn finish(&mut self, sink: &mut impl FnMut(&FlowEvent<E::Key>)) {
        self.tracker.finish(sink);
    }

    /// Where the packets went so far.
    pub fn counters(&self) -> &PacketCounters {
        &self.counters
    }

    /// The tracker's counters.
    pub fn tracker_stats(&self) -> TrackerStats {
        self.tracker.stats()
    }

    /// The flow table, for callers that need more than counters.
    pub fn tracker(&self) -> &FlowTracker<E::Key> {
        &self.tracker
    }

    /// The extractor.
    pub fn extractor(&self) -> &E {
        &self.extractor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowscope_core::{FragmentInfo, LinkType};

    #[test]
    fn skip_counters_balance() {
        let mut c = PacketCounters::default();
        let skips = [
            Skip::NotIp { ethertype: 0x0806 },
            Skip::UnsupportedLinkType(LinkType(999)),
            Skip::Fragment(FragmentInfo::default()),
            Skip::Malformed(MalformedReason::TruncatedIp),
            Skip::Malformed(MalformedReason::TruncatedIp),
            Skip::Malformed(MalformedReason::TooDeep),
        ];
        for s in skips {
            c.packets += 1;
            c.count_skip(s);
        }
        assert!(c.is_balanced());
        assert_eq!(c.malformed_total(), 3);
        let reasons: Vec<_> = c.malformed_by_reason().collect();
        assert_eq!(
            reasons,
            vec![
                (MalformedReason::TruncatedIp, 2),
                (MalformedReason::TooDeep, 1)
            ]
        );
        c.packets += 1; // one packet nobody counted
        assert!(!c.is_balanced());
    }
}
