//! One packet in: extract -> track -> events out.
//!
//! SKELETON: filled in during integration.

use flowscope_core::{FlowEvent, FlowExtractor, PacketView};

use crate::extract::{ExtractConfig, FiveTupleExtractor};
use crate::track::{FlowTracker, TrackedKey, TrackerConfig};

/// Extractor + tracker + packet accounting for one worker.
pub struct FlowPipeline<E: FlowExtractor>
where
    E::Key: TrackedKey,
{
    _extractor: E,
    _tracker: FlowTracker<E::Key>,
}

impl FlowPipeline<FiveTupleExtractor> {
    /// The usual pipeline: flows keyed by 5-tuple.
    pub fn five_tuple(extract: ExtractConfig, track: TrackerConfig) -> Self {
        FlowPipeline { _extractor: FiveTupleExtractor::new(extract), _tracker: FlowTracker::new(track) }
    }
}

impl<E: FlowExtractor> FlowPipeline<E>
where
    E::Key: TrackedKey,
{
    /// Runs one packet through the pipeline.
    pub fn process(&mut self, _pkt: &PacketView<'_>, _sink: &mut impl FnMut(&FlowEvent<E::Key>)) {
        todo!()
    }
    /// Ends every flow at end of input.
    pub fn finish(&mut self, _sink: &mut impl FnMut(&FlowEvent<E::Key>)) {
        todo!()
    }
}
