//! Two TcpReassemblers of one factory (two flows sharing its budget) fed
//! segments decoded from the input: record `[ctl u8][flags u8][seq u32 LE]
//! [ack u32 LE][len u16 LE][payload]`; ctl bit 0 = side, bit 1 = flow,
//! bit 6 = snapped (wire length larger than the payload), bit 7 = flush the
//! side instead of a segment. The first byte picks the caps and policy.
//!
//! Asserts after every call: held bytes stay under every configured cap
//! (per side, per factory), held pieces under their cap, the factory's
//! budget equals what its reassemblers hold; every side's events tile its
//! stream (each Data or Gap starts where the previous one ended); and the
//! budget returns to zero when the reassemblers are dropped.
#![no_main]

use flowscope::reassembly::tcp::{OverlapPolicy, TcpReassemblerFactory, TcpReassemblyConfig};
use flowscope_core::{
    FlowSide, Reassembler, ReassemblerFactory, StreamEvent, TcpFlags, TcpSegment, Timestamp,
};
use flowscope_fuzz::Input;
use libfuzzer_sys::fuzz_target;

/// Next expected stream offset of each (flow, side), once known.
type Cursors = [[Option<u64>; 2]; 2];

fn side_index(side: FlowSide) -> usize {
    match side {
        FlowSide::Initiator => 0,
        FlowSide::Responder => 1,
    }
}

fn observe(cursors: &mut Cursors, flow: usize, side: FlowSide, ev: StreamEvent<'_>) {
    let (offset, len) = match ev {
        StreamEvent::Data { offset, bytes } => (offset, bytes.len() as u64),
        StreamEvent::Gap { offset, len } => (offset, len),
        _ => return,
    };
    let Some(cur) = cursors
        .get_mut(flow)
        .and_then(|c| c.get_mut(side_index(side)))
    else {
        return;
    };
    if let Some(expected) = *cur {
        assert_eq!(
            offset, expected,
            "flow {flow} {side:?}: event {ev:?} does not continue the stream"
        );
    }
    *cur = Some(offset + len);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let base = TcpReassemblyConfig::default();
    let config = match (sel >> 1) & 3 {
        0 => base,
        1 => base
            .with_max_held_per_side(4096)
            .with_max_held_segments_per_side(16)
            .with_max_held_total(6000)
            .with_window(65_536),
        2 => base
            .with_max_held_per_side(64)
            .with_max_held_segments_per_side(4)
            .with_max_held_total(100)
            .with_window(1024),
        _ => base.with_window(u32::MAX),
    };
    let config = if sel & 1 != 0 {
        config.with_overlap(OverlapPolicy::LastWins)
    } else {
        config
    };
    let factory = TcpReassemblerFactory::new(config);
    let mut flows = [factory.new_reassembler(), factory.new_reassembler()];
    let mut cursors: Cursors = [[None; 2]; 2];
    let mut ts = 1_000_000u64;
    while !input.is_empty() {
        let ctl = input.u8();
        let flags = TcpFlags(input.u8());
        let seq = input.u32();
        let ack = input.u32();
        let len = usize::from(input.u16());
        let payload = input.bytes(len);
        let side = if ctl & 1 == 0 {
            FlowSide::Initiator
        } else {
            FlowSide::Responder
        };
        let flow = usize::from(ctl >> 1 & 1);
        ts += 1000;
        let Some(r) = flows.get_mut(flow) else {
            continue;
        };
        let mut out = |s: FlowSide, ev: StreamEvent<'_>| observe(&mut cursors, flow, s, ev);
        if ctl & 0x80 != 0 {
            r.flush(side, &mut out);
        } else {
            let mut seg = TcpSegment::new(Timestamp::from_nanos(ts), seq, flags, payload);
            if flags.ack() {
                seg = seg.with_ack(ack);
            }
            if ctl & 0x40 != 0 {
                seg = seg.with_wire_len((payload.len() as u32).saturating_mul(2).saturating_add(1));
            }
            r.segment(side, &seg, &mut out);
        }
        let mut sum = 0;
        for r in &flows {
            let held = r.buffered_bytes();
            assert!(held <= 2 * config.max_held_per_side, "{held} {config:?}");
            for s in [FlowSide::Initiator, FlowSide::Responder] {
                assert!(
                    r.held_segments(s) <= config.max_held_segments_per_side,
                    "{config:?}"
                );
            }
            sum += held;
        }
        assert!(sum <= config.max_held_total, "{sum} {config:?}");
        assert_eq!(factory.held_total(), sum);
    }
    for (flow, r) in flows.iter_mut().enumerate() {
        for side in [FlowSide::Initiator, FlowSide::Responder] {
            r.flush(side, &mut |s, ev| observe(&mut cursors, flow, s, ev));
        }
    }
    drop(flows);
    assert_eq!(factory.held_total(), 0);
});
