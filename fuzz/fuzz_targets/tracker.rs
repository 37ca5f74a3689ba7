//! FlowPipeline (5-tuple extractor + flow tracker) fed a sequence of frames
//! split from the input, then finished. Asserts after every packet that
//! every packet is accounted for (`counters().is_balanced()`) and that every
//! flow created is either ended or still active; after `finish`, that no
//! flow is left, every created flow ended exactly once as an event, and
//! the flow table never outgrew `max_flows`.
#![no_main]

use core::time::Duration;

use flowscope::driver::FlowPipeline;
use flowscope::extract::ExtractConfig;
use flowscope::track::TrackerConfig;
use flowscope_core::{FlowEvent, PacketView};
use flowscope_fuzz::{Frames, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let cfg_byte = input.u8();
    let mut extract = ExtractConfig::default();
    extract.verify_checksums = cfg_byte & 1 != 0;
    extract.decap_tunnels = cfg_byte & 2 == 0;
    let mut track = TrackerConfig::default();
    // A small table so that eviction runs; short timeouts so that expiry does.
    track.max_flows = 1 + usize::from(cfg_byte >> 4);
    if cfg_byte & 4 != 0 {
        track.tcp_timeout = Duration::from_secs(2);
        track.udp_timeout = Duration::from_secs(1);
        track.icmp_timeout = Duration::from_secs(1);
        track.other_timeout = Duration::from_secs(1);
    }
    let max_flows = track.max_flows as u64;
    let mut pipeline = FlowPipeline::five_tuple(extract, track);
    let (mut started, mut ended) = (0u64, 0u64);
    let mut on_event = |ev: &FlowEvent<_>| match ev {
        FlowEvent::Started { .. } => started += 1,
        FlowEvent::Ended(_) => ended += 1,
        _ => {}
    };
    for frame in Frames::new(input) {
        let view = PacketView::new(frame.data, frame.ts, frame.link);
        pipeline.process(&view, &mut on_event);
        let c = pipeline.counters();
        assert!(c.is_balanced(), "{c:?}");
        let s = pipeline.tracker_stats();
        assert_eq!(s.flows_created, s.ended() + s.active, "{s:?}");
        assert!(s.active <= max_flows, "{s:?}");
        assert_eq!(s.packets, c.tracked, "{s:?} {c:?}");
    }
    pipeline.finish(&mut on_event);
    let c = pipeline.counters();
    assert!(c.is_balanced(), "{c:?}");
    let s = pipeline.tracker_stats();
    assert_eq!(s.active, 0, "{s:?}");
    assert_eq!(s.flows_created, s.ended(), "{s:?}");
    assert_eq!(ended, s.flows_created, "{s:?}");
    assert!(started <= s.flows_created, "{s:?}");
});
