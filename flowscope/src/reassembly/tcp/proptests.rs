//! Property tests: exact reassembly under any split and order, overlap
//! policy against a per-byte model, and memory bounds under hostile input.

use flowscope_core::{FlowSide, Reassembler, ReassemblerFactory, TcpFlags, TcpSegment, Timestamp};
use proptest::prelude::*;

use super::tests::{flagged, seg, Ev, Rec, H};
use super::*;

const I: FlowSide = FlowSide::Initiator;
const R: FlowSide = FlowSide::Responder;

/// A stream, cut points, and an order in which to send the pieces plus
/// some identical re-sends with other boundaries.
fn split_and_shuffle() -> impl Strategy<Value = (Vec<u8>, Vec<(usize, usize)>, u32, bool)> {
    (
        prop::collection::vec(any::<u8>(), 1..3000),
        prop::collection::vec(any::<prop::sample::Index>(), 0..150),
        prop::collection::vec((any::<prop::sample::Index>(), 1usize..200), 0..20),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_flat_map(|(data, cuts, extras, isn, syn)| {
            let n = data.len();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(n)).collect();
            points.push(0);
            points.push(n);
            points.sort_unstable();
            points.dedup();
            let mut pieces: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
            for (at, len) in extras {
                let s = at.index(n);
                pieces.push((s, (s + len).min(n)));
            }
            (
                Just(data),
                Just(pieces).prop_shuffle(),
                Just(isn),
                Just(syn),
            )
        })
}

/// Segments at `[start, start + len)` (1-based offsets, never the first
/// byte) each filled with its own tag, then a plug `[0, plug)` with tag 0.
fn overlapping() -> impl Strategy<Value = (Vec<(u64, u64)>, u64)> {
    (prop::collection::vec((1u64..64, 1u64..20), 1..20), 1u64..70)
}

fn cfg_policy(last: bool) -> TcpReassemblyConfig {
    let policy = if last {
        OverlapPolicy::LastWins
    } else {
        OverlapPolicy::FirstWins
    };
    TcpReassemblyConfig::default().with_overlap(policy)
}

/// One hostile operation: who sends, where, what.
#[derive(Clone, Debug)]
struct Op {
    side: bool,
    seq: u32,
    len: usize,
    extra_wire: u32,
    flags: u8,
    ack: Option<u32>,
    flush: bool,
}

const BASE: u32 = u32::MAX - 3000;

fn seq_near() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => (0u32..4000).prop_map(|d| BASE.wrapping_add(d)),
        1 => any::<u32>(),
        1 => (0u32..64).prop_map(|d| BASE.wrapping_sub(d)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (
        any::<bool>(),
        seq_near(),
        0usize..400,
        prop_oneof![4 => Just(0u32), 1 => 0u32..2000, 1 => any::<u32>()],
        any::<u8>(),
        prop::option::of(seq_near()),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(side, seq, len, extra_wire, flags, ack, flush)| Op {
            side,
            seq,
            len,
            extra_wire,
            flags,
            ack,
            flush,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any split, any order, identical re-sends: exactly the original bytes.
    #[test]
    fn any_split_and_order_gives_the_original((data, pieces, isn, syn) in split_and_shuffle()) {
        let mut h = H::new(TcpReassemblyConfig::default());
        // With a SYN the stream starts at ISN+1 whatever arrives first;
        // without one, the first piece to arrive would anchor it, so send
        // the first byte first.
        let first = if syn { isn.wrapping_add(1) } else { isn };
        if syn {
            h.feed(I, flagged(isn, TcpFlags::SYN, b""));
        } else {
            h.feed(I, seg(first, data.get(..1).unwrap_or_default()));
        }
        for &(a, b) in &pieces {
            let bytes = data.get(a..b).unwrap_or_default();
            h.feed(I, seg(first.wrapping_add(a as u32), bytes));
            prop_assert!(h.r.held_segments(I) <= 512);
        }
        let want: Vec<Option<u8>> = data.iter().map(|&b| Some(b)).collect();
        prop_assert_eq!(h.rec.stream(I), want);
        prop_assert!(h.rec.anomalies(I).is_empty());
        prop_assert_eq!(h.r.buffered_bytes(), 0);
        prop_assert_eq!(h.f.held_total(), 0);
        prop_assert_eq!(h.r.stats().bytes_delivered, data.len() as u64);
    }

    /// Conflicting overlaps: every byte comes from its first (or last)
    /// writer in arrival order; holes are gaps after a flush.
    #[test]
    fn overlaps_follow_the_policy((segs, plug) in overlapping(), last in any::<bool>()) {
        let mut h = H::new(cfg_policy(last));
        let isn = 0xFFFF_FFC0u32; // the stream crosses the wrap
        h.feed(I, flagged(isn, TcpFlags::SYN, b""));
        let mut model: Vec<Option<u8>> = Vec::new();
        let mut conflicts = 0u64;
        let all = segs.iter().enumerate().map(|(i, &(s, l))| (s, l, i as u8 + 1))
            .chain(std::iter::once((0, plug, 0u8)));
        for (start, len, tag) in all {
            let end = (start + len) as usize;
            if model.len() < end {
                model.resize(end, None);
            }
            let mut conflict = false;
            for slot in model.get_mut(start as usize..end).unwrap_or_default() {
                match slot {
                    None => *slot = Some(tag),
                    Some(old) => {
                        // Tags are distinct, so any overlap disagrees.
                        conflict = true;
                        if last {
                            *old = tag;
                        }
                    }
                }
            }
            conflicts += u64::from(conflict);
            let bytes = vec![tag; len as usize];
            h.feed(I, seg(isn.wrapping_add(1).wrapping_add(start as u32), &bytes));
        }
        h.flush(I);
        prop_assert_eq!(h.rec.stream(I), model);
        prop_assert_eq!(h.r.stats().overlap_conflicts, conflicts);
        let anomalies = h.rec.anomalies(I);
        prop_assert_eq!(anomalies.len() as u64, conflicts);
        prop_assert!(anomalies.iter().all(|&a| a == "tcp.overlap_conflict"));
        prop_assert_eq!(h.f.held_total(), 0);
    }

    /// Hostile mixes of sequence numbers, lengths, flags, ACKs and flushes
    /// on two flows of one factory with small caps: memory stays under the
    /// caps, events stay consecutive, and dropping returns the budget.
    #[test]
    fn hostile_input_stays_bounded(ops in prop::collection::vec(op(), 1..300), last in any::<bool>()) {
        let cfg = cfg_policy(last)
            .with_max_held_per_side(800)
            .with_max_held_segments_per_side(8)
            .with_max_held_total(1000)
            .with_window(5000);
        let f = TcpReassemblerFactory::new(cfg);
        let mut flows = [f.new_reassembler(), f.new_reassembler()];
        let mut recs = [Rec::default(), Rec::default()];
        let payload: Vec<u8> = (0..400u32).map(|i| (i * 7) as u8).collect();
        for (n, op) in ops.iter().enumerate() {
            let k = n % 2;
            let (Some(r), Some(rec)) = (flows.get_mut(k), recs.get_mut(k)) else { continue };
            let side = if op.side { R } else { I };
            let body = payload.get(..op.len).unwrap_or_default();
            let mut s = TcpSegment::new(Timestamp::ZERO, op.seq, TcpFlags(op.flags), body)
                .with_wire_len((op.len as u32).saturating_add(op.extra_wire));
            if let Some(a) = op.ack {
                s = s.with_ack(a);
            }
            r.segment(side, &s, &mut |sd, ev| rec.push(sd, ev));
            if op.flush {
                r.flush(side, &mut |sd, ev| rec.push(sd, ev));
            }
            prop_assert!(rec.broken.is_none(), "{:?}", rec.broken);
            prop_assert!(r.buffered_bytes() <= 1600);
            prop_assert!(r.held_segments(I) <= 8 && r.held_segments(R) <= 8);
            let total: usize = flows.iter().map(|r| r.buffered_bytes()).sum();
            prop_assert_eq!(f.held_total(), total);
            prop_assert!(total <= 1000);
        }
        for rec in &recs {
            for ev in rec.init.iter().chain(&rec.resp) {
                if let Ev::Anomaly(code) = ev {
                    prop_assert!(code.starts_with("tcp."));
                }
            }
        }
        drop(flows);
        prop_assert_eq!(f.held_total(), 0);
    }
}
