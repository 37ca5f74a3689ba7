//! SessionDriver::with_default_parsers (extract, defrag, track, reassemble,
//! HTTP/TLS/DNS) fed a sequence of frames split from the input, then
//! finished, with small limits so that eviction, timeouts and caps run.
//! Asserts after every packet: every packet accounted for, flows created =
//! ended + active, every fragment accounted for by the defragmenter, held
//! bytes and sessions under their caps, accounted memory within the global
//! budget (tiny budgets by config byte). After `finish`: no flow or session
//! left, and every tracker packet is a tracked frame or a rebuilt datagram.
#![no_main]

use core::time::Duration;

use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope_core::{FlowEvent, PacketView};
use flowscope_fuzz::{Frames, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let mut config = SessionConfig::default();
    config.extract.verify_checksums = sel & 1 != 0;
    config.track.max_flows = 2 + usize::from(sel >> 4);
    if sel & 2 != 0 {
        config.track.tcp_timeout = Duration::from_secs(2);
        config.track.udp_timeout = Duration::from_secs(1);
        config.defrag.timeout = Duration::from_secs(1);
    }
    if sel & 4 != 0 {
        config.reassembly = config
            .reassembly
            .with_max_held_per_side(512)
            .with_max_held_segments_per_side(8)
            .with_max_held_total(1024);
        config.defrag.max_datagrams = 2;
        config.defrag.max_memory = 4096;
        config.hold_per_side = 64;
        config.hold_total = 256;
    }
    config.no_defrag = sel & 8 != 0;
    // The global budget: default, or small enough that emergency shedding
    // (every step down to evicting flows) runs.
    config.memory_budget = match input.u8() % 4 {
        0 => config.memory_budget,
        1 => 4 << 10,
        2 => 64 << 10,
        _ => 1 << 20,
    };
    let max_flows = config.track.max_flows;
    let hold_total = config.hold_total;
    let max_memory = config.defrag.max_memory as u64;
    let mut driver = SessionDriver::with_default_parsers(config);
    let mut ended = 0u64;
    let mut sink = |ev: DriverEvent<'_, _>| {
        if let DriverEvent::Flow {
            event: FlowEvent::Ended(_),
            ..
        } = ev
        {
            ended += 1;
        }
    };
    for frame in Frames::new(input) {
        let view = PacketView::new(frame.data, frame.ts, frame.link);
        driver.process(&view, &mut sink);
        let c = driver.counters();
        assert!(c.is_balanced(), "{c:?}");
        let t = driver.tracker_stats();
        assert_eq!(t.flows_created, t.ended() + t.active, "{t:?}");
        assert!(driver.active_sessions() <= max_flows);
        assert!(driver.held_bytes() <= hold_total);
        let ds = driver.defrag_stats();
        assert_eq!(ds.fragments, ds.accounted(), "{ds:?}");
        assert!(ds.memory_reserved <= max_memory, "{ds:?}");
        // Shedding ends at the low-water mark, or nothing is left to shed.
        let m = driver.memory_stats();
        assert!(m.used <= m.budget, "{m:?}");
    }
    driver.finish(&mut sink);
    let c = *driver.counters();
    assert!(c.is_balanced(), "{c:?}");
    let t = driver.tracker_stats();
    let sc = *driver.session_counters();
    assert_eq!(t.active, 0, "{t:?}");
    assert_eq!(t.flows_created, t.ended(), "{t:?}");
    assert_eq!(ended, t.flows_created, "{t:?}");
    assert_eq!(driver.active_sessions(), 0);
    assert_eq!(
        t.packets,
        c.tracked + sc.datagrams_reassembled,
        "{t:?} {c:?} {sc:?}"
    );
    let ds = driver.defrag_stats();
    assert_eq!(ds.fragments, ds.accounted(), "{ds:?}");
});
