//! Unit tests: one or more hand-built segment sequences per rule.
//!
//! Expected values come from TCP's sequence rules (RFC 9293 §3.4: a SYN and
//! a FIN each take one sequence number; data starts at ISN+1) and from the
//! byte arithmetic written out next to each case.

use flowscope_core::{
    FlowSide, Reassembler, ReassemblerFactory, StreamEvent, TcpFlags, TcpSegment, Timestamp,
};

use super::*;

const I: FlowSide = FlowSide::Initiator;
const R: FlowSide = FlowSide::Responder;

/// An owned copy of a [`StreamEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    Data(u64, Vec<u8>),
    Gap(u64, u64),
    Anomaly(&'static str),
}

/// Records events per side and checks, as they come, that each side's
/// `Data`/`Gap` events are non-empty and consecutive from offset 0.
#[derive(Debug, Default)]
pub(super) struct Rec {
    pub(super) init: Vec<Ev>,
    pub(super) resp: Vec<Ev>,
    end: [u64; 2],
    pub(super) broken: Option<String>,
}

impl Rec {
    pub(super) fn push(&mut self, side: FlowSide, ev: StreamEvent<'_>) {
        let i = usize::from(side == R);
        let (offset, len, owned) = match ev {
            StreamEvent::Data { offset, bytes } => {
                (offset, bytes.len() as u64, Ev::Data(offset, bytes.to_vec()))
            }
            StreamEvent::Gap { offset, len } => (offset, len, Ev::Gap(offset, len)),
            StreamEvent::Anomaly(a) => {
                self.list(side).push(Ev::Anomaly(a.code));
                return;
            }
            _ => {
                self.broken = Some("unknown event".into());
                return;
            }
        };
        if len == 0 {
            self.broken = Some(format!("empty event {owned:?}"));
        }
        if offset != self.end[i] {
            self.broken = Some(format!("{side:?}: {owned:?} after offset {}", self.end[i]));
        }
        self.end[i] = offset + len;
        self.list(side).push(owned);
    }

    fn list(&mut self, side: FlowSide) -> &mut Vec<Ev> {
        match side {
            FlowSide::Initiator => &mut self.init,
            FlowSide::Responder => &mut self.resp,
        }
    }

    pub(super) fn events(&self, side: FlowSide) -> &[Ev] {
        match side {
            FlowSide::Initiator => &self.init,
            FlowSide::Responder => &self.resp,
        }
    }

    /// The side's stream, one entry per offset: `None` inside gaps.
    pub(super) fn stream(&self, side: FlowSide) -> Vec<Option<u8>> {
        let mut s = Vec::new();
        for ev in self.events(side) {
            match ev {
                Ev::Data(_, b) => s.extend(b.iter().map(|&x| Some(x))),
                Ev::Gap(_, n) => s.extend(std::iter::repeat_n(None, *n as usize)),
                Ev::Anomaly(_) => {}
            }
        }
        s
    }

    pub(super) fn anomalies(&self, side: FlowSide) -> Vec<&'static str> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                Ev::Anomaly(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

/// A reassembler, its factory and a recorder.
pub(super) struct H {
    pub(super) f: TcpReassemblerFactory,
    pub(super) r: TcpReassembler,
    pub(super) rec: Rec,
}

impl H {
    pub(super) fn new(cfg: TcpReassemblyConfig) -> Self {
        let f = TcpReassemblerFactory::new(cfg);
        let r = f.new_reassembler();
        H {
            f,
            r,
            rec: Rec::default(),
        }
    }

    pub(super) fn feed(&mut self, side: FlowSide, seg: TcpSegment<'_>) {
        let rec = &mut self.rec;
        self.r.segment(side, &seg, &mut |s, ev| rec.push(s, ev));
        assert!(rec.broken.is_none(), "{:?}", rec.broken);
    }

    pub(super) fn flush(&mut self, side: FlowSide) {
        let rec = &mut self.rec;
        self.r.flush(side, &mut |s, ev| rec.push(s, ev));
        assert!(rec.broken.is_none(), "{:?}", rec.broken);
    }
}

pub(super) fn seg(seq: u32, payload: &[u8]) -> TcpSegment<'_> {
    TcpSegment::new(Timestamp::ZERO, seq, TcpFlags(TcpFlags::ACK), payload)
}

pub(super) fn flagged(seq: u32, flags: u8, payload: &[u8]) -> TcpSegment<'_> {
    TcpSegment::new(Timestamp::ZERO, seq, TcpFlags(flags), payload)
}

fn data(offset: u64, b: &[u8]) -> Ev {
    Ev::Data(offset, b.to_vec())
}

fn bytes_of(stream: &[Option<u8>]) -> Vec<u8> {
    stream.iter().map(|b| b.unwrap_or(b'?')).collect()
}

const ISN: u32 = 1000;

/// A harness whose initiator sent its SYN with [`ISN`]: offset `o` is
/// sequence number `ISN + 1 + o`.
fn synced(cfg: TcpReassemblyConfig) -> H {
    let mut h = H::new(cfg);
    h.feed(I, flagged(ISN, TcpFlags::SYN, b""));
    h
}

fn at(o: u32) -> u32 {
    ISN + 1 + o
}

#[test]
fn in_order_data_is_borrowed_from_the_segment() {
    let f = TcpReassemblerFactory::default();
    let mut r = f.new_reassembler();
    let payload = b"hello".to_vec();
    let mut seen = Vec::new();
    r.segment(I, &seg(7, &payload), &mut |side, ev| {
        if let StreamEvent::Data { offset, bytes } = ev {
            seen.push((side, offset, bytes.as_ptr(), bytes.len()));
        }
    });
    // Same address as the payload: handed on without a copy.
    assert_eq!(seen, vec![(I, 0, payload.as_ptr(), 5)]);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.stats().in_order_segments, 1);
    assert_eq!(r.stats().bytes_delivered, 5);
}

#[test]
fn syn_takes_one_sequence_number() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(ISN + 1, b"abc"));
    assert_eq!(h.rec.init, vec![data(0, b"abc")]);
}

#[test]
fn data_on_a_syn_starts_after_the_isn() {
    let mut h = H::new(TcpReassemblyConfig::default());
    h.feed(I, flagged(500, TcpFlags::SYN, b"hi"));
    // "hi" takes 501..503, so the next byte is 503.
    h.feed(I, seg(503, b"x"));
    assert_eq!(h.rec.init, vec![data(0, b"hi"), data(2, b"x")]);
}

#[test]
fn midstream_pickup_starts_at_the_first_data_not_at_a_pure_ack() {
    let mut h = H::new(TcpReassemblyConfig::default());
    // A keep-alive-like empty segment one byte early must not anchor.
    h.feed(I, seg(4999, b""));
    h.feed(I, seg(5000, b"abc"));
    h.feed(I, seg(5003, b"d"));
    assert_eq!(h.rec.init, vec![data(0, b"abc"), data(3, b"d")]);
}

#[test]
fn out_of_order_data_is_held_then_released() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(3), b"def"));
    assert!(h.rec.init.is_empty());
    assert_eq!(h.r.buffered_bytes(), 3);
    assert_eq!(h.f.held_total(), 3);
    h.feed(I, seg(at(0), b"abc"));
    assert_eq!(h.rec.init, vec![data(0, b"abc"), data(3, b"def")]);
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.f.held_total(), 0);
    assert_eq!(h.r.stats().out_of_order_segments, 1);
    assert_eq!(h.r.stats().in_order_segments, 1);
}

#[test]
fn resent_delivered_bytes_are_trimmed() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(0), b"abcdef"));
    // Bytes 2..6 again plus two new ones: only "gh" at 6 is new.
    h.feed(I, seg(at(2), b"cdefgh"));
    h.feed(I, seg(at(0), b"abcdefgh"));
    assert_eq!(h.rec.init, vec![data(0, b"abcdef"), data(6, b"gh")]);
    assert_eq!(h.r.stats().retransmitted_bytes, 4 + 8);
}

#[test]
fn bytes_before_a_midstream_pickup_are_trimmed() {
    let mut h = H::new(TcpReassemblyConfig::default());
    h.feed(I, seg(1000, b"abc"));
    // Covers 995..1005: 5 bytes before the pickup, 3 delivered, 2 new.
    h.feed(I, seg(995, b"vwxyzabcDE"));
    assert_eq!(h.rec.init, vec![data(0, b"abc"), data(3, b"DE")]);
    assert_eq!(h.r.stats().retransmitted_bytes, 8);
}

#[test]
fn identical_overlap_among_held_bytes_is_dropped_quietly() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(5), b"fghij"));
    h.feed(I, seg(at(7), b"hijkl"));
    // Only "kl" was new: 5 + 2 bytes held.
    assert_eq!(h.r.buffered_bytes(), 7);
    h.feed(I, seg(at(0), b"abcde"));
    assert_eq!(bytes_of(&h.rec.stream(I)), b"abcdefghijkl");
    assert!(h.rec.anomalies(I).is_empty());
    assert_eq!(h.r.stats().retransmitted_bytes, 3);
    assert_eq!(h.r.stats().overlap_conflicts, 0);
}

fn conflicting_held(policy: OverlapPolicy) -> H {
    let mut h = synced(TcpReassemblyConfig::default().with_overlap(policy));
    h.feed(I, seg(at(4), b"XXXX")); // 4..8
    h.feed(I, seg(at(6), b"YYYY")); // 6..10, disagrees on 6..8
    h.feed(I, seg(at(0), b"abcd"));
    h
}

#[test]
fn conflicting_held_overlap_first_wins() {
    let h = conflicting_held(OverlapPolicy::FirstWins);
    assert_eq!(bytes_of(&h.rec.stream(I)), b"abcdXXXXYY");
    assert_eq!(h.rec.anomalies(I), vec!["tcp.overlap_conflict"]);
    assert_eq!(h.r.stats().overlap_conflicts, 1);
}

#[test]
fn conflicting_held_overlap_last_wins() {
    let h = conflicting_held(OverlapPolicy::LastWins);
    assert_eq!(bytes_of(&h.rec.stream(I)), b"abcdXXYYYY");
    assert_eq!(h.rec.anomalies(I), vec!["tcp.overlap_conflict"]);
}

fn in_order_over_held(policy: OverlapPolicy) -> H {
    let mut h = synced(TcpReassemblyConfig::default().with_overlap(policy));
    h.feed(I, seg(at(4), b"XXXX")); // held 4..8
    h.feed(I, seg(at(0), b"abcdefghij")); // in order 0..10, disagrees on 4..8
    h
}

#[test]
fn in_order_segment_over_held_bytes_first_wins() {
    let h = in_order_over_held(OverlapPolicy::FirstWins);
    assert_eq!(bytes_of(&h.rec.stream(I)), b"abcdXXXXij");
    assert_eq!(h.rec.anomalies(I), vec!["tcp.overlap_conflict"]);
    assert_eq!(h.r.buffered_bytes(), 0);
}

#[test]
fn in_order_segment_over_held_bytes_last_wins() {
    let h = in_order_over_held(OverlapPolicy::LastWins);
    assert_eq!(bytes_of(&h.rec.stream(I)), b"abcdefghij");
    assert_eq!(h.rec.anomalies(I), vec!["tcp.overlap_conflict"]);
}

#[test]
fn in_order_segment_ending_inside_a_held_piece_delivers_its_rest() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(4), b"efgh")); // held 4..8
    h.feed(I, seg(at(0), b"abcdef")); // 0..6, agrees on 4..6
    assert_eq!(bytes_of(&h.rec.stream(I)), b"abcdefgh");
    assert!(h.rec.anomalies(I).is_empty());
    assert_eq!(h.r.stats().retransmitted_bytes, 2);
}

#[test]
fn in_order_bytes_fill_what_a_held_piece_lost_to_the_snap_length() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(4), b"ef").with_wire_len(4)); // 4..8, 6..8 not captured
    h.feed(I, seg(at(0), b"abcdefghij")); // has 6..8: no hole is left
    assert_eq!(
        h.rec.stream(I),
        b"abcdefghij".iter().map(|&b| Some(b)).collect::<Vec<_>>()
    );
    assert!(h.rec.anomalies(I).is_empty());
    assert_eq!(h.r.stats().gaps, 0);
}

#[test]
fn snap_length_cut_tail_is_a_gap() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(0), b"ab").with_wire_len(5));
    h.feed(I, seg(at(5), b"cd"));
    assert_eq!(
        h.rec.init,
        vec![data(0, b"ab"), Ev::Gap(2, 3), data(5, b"cd")]
    );
}

#[test]
fn snap_length_cut_out_of_order_segment_keeps_its_hole() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(5), b"fg").with_wire_len(4)); // 5..9, 7..9 not captured
    h.feed(I, seg(at(0), b"abcde"));
    h.feed(I, seg(at(9), b"j"));
    assert_eq!(
        h.rec.init,
        vec![
            data(0, b"abcde"),
            data(5, b"fg"),
            Ev::Gap(7, 2),
            data(9, b"j")
        ]
    );
}

#[test]
fn peer_ack_past_a_hole_makes_a_gap_and_releases_held_data() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(0), b"abc"));
    h.feed(I, seg(at(6), b"ghi")); // 3..6 never captured
                                   // The responder acknowledges everything up to offset 9.
    h.feed(R, seg(7000, b"").with_ack(at(9)));
    assert_eq!(
        h.rec.init,
        vec![data(0, b"abc"), Ev::Gap(3, 3), data(6, b"ghi")]
    );
    assert!(h.rec.resp.is_empty());
    assert_eq!(h.r.buffered_bytes(), 0);
}

#[test]
fn peer_ack_past_everything_held_is_a_gap_to_the_ack() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(4), b"ef"));
    h.feed(R, seg(7000, b"").with_ack(at(10)));
    assert_eq!(
        h.rec.init,
        vec![Ev::Gap(0, 4), data(4, b"ef"), Ev::Gap(6, 4)]
    );
    // Later data continues at offset 10.
    h.feed(I, seg(at(10), b"k"));
    assert_eq!(h.rec.init.last(), Some(&data(10, b"k")));
}

#[test]
fn ack_of_the_fin_is_not_a_gap() {
    let mut h = synced(TcpReassemblyConfig::default());
    // "abc" is 1001..1004 and the FIN takes 1004: the peer ACKs 1005.
    h.feed(I, flagged(at(0), TcpFlags::FIN | TcpFlags::ACK, b"abc"));
    h.feed(R, seg(7000, b"").with_ack(at(4)));
    assert_eq!(h.rec.init, vec![data(0, b"abc")]);
    assert_eq!(h.r.stats().gaps, 0);
}

#[test]
fn fin_behind_delivered_bytes_does_not_hide_later_gaps() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(0), b"abc"));
    h.feed(I, flagged(at(1), TcpFlags::FIN | TcpFlags::ACK, b""));
    h.feed(R, seg(7000, b"").with_ack(at(5)));
    assert_eq!(h.rec.init, vec![data(0, b"abc"), Ev::Gap(3, 2)]);
}

#[test]
fn ack_of_our_isn_plus_one_is_no_gap() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(
        R,
        flagged(9000, TcpFlags::SYN | TcpFlags::ACK, b"").with_ack(ISN + 1),
    );
    assert!(h.rec.init.is_empty());
}

#[test]
fn ack_far_beyond_the_window_is_ignored_and_counted() {
    let mut h = synced(TcpReassemblyConfig::default().with_window(1000));
    h.feed(I, seg(at(0), b"abc"));
    h.feed(R, seg(7000, b"").with_ack(at(3 + 1001)));
    assert_eq!(
        h.rec.init,
        vec![data(0, b"abc"), Ev::Anomaly("tcp.ack_out_of_window")]
    );
    assert_eq!(h.r.stats().out_of_window, 1);
    // Exactly at the window is believed: 1000 bytes missing.
    h.feed(R, seg(7000, b"").with_ack(at(3 + 1000)));
    assert_eq!(h.rec.init.last(), Some(&Ev::Gap(3, 1000)));
}

#[test]
fn ack_for_a_side_never_seen_is_ignored() {
    let mut h = H::new(TcpReassemblyConfig::default());
    h.feed(R, seg(7000, b"xyz").with_ack(123_456));
    assert!(h.rec.init.is_empty());
    assert_eq!(h.rec.resp, vec![data(0, b"xyz")]);
}

#[test]
fn segment_beyond_the_window_is_not_buffered() {
    let mut h = synced(TcpReassemblyConfig::default().with_window(1000));
    h.feed(I, seg(at(1001), b"late"));
    assert_eq!(h.rec.init, vec![Ev::Anomaly("tcp.seq_out_of_window")]);
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.f.held_total(), 0);
    assert_eq!(h.r.stats().out_of_window, 1);
    // Starting exactly `window` past the next byte is still held.
    h.feed(I, seg(at(1000), b"edge"));
    assert_eq!(h.r.buffered_bytes(), 4);
}

#[test]
fn absurd_sequence_numbers_never_allocate() {
    let mut h = synced(TcpReassemblyConfig::default());
    let big = vec![7u8; 1400];
    // 2 MiB and 1 GiB ahead, 2 GiB either way, 2 MiB behind: all beyond
    // the default 1 MiB window.
    for d in [
        1u32 << 21,
        1 << 30,
        1 << 31,
        (1 << 31) + 5,
        0u32.wrapping_sub(1 << 21),
    ] {
        h.feed(I, seg(at(0).wrapping_add(d), &big));
    }
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.f.held_total(), 0);
    assert_eq!(h.r.stats().out_of_window, 5);
    assert_eq!(h.rec.anomalies(I), vec!["tcp.seq_out_of_window"; 5]);
}

#[test]
fn flush_delivers_held_data_with_gaps_and_up_to_the_fin() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(0), b"ab"));
    h.feed(I, seg(at(5), b"fg"));
    h.feed(I, seg(at(9), b"j"));
    // FIN at offset 12: bytes 10..12 were sent and never seen.
    h.feed(I, flagged(at(12), TcpFlags::FIN | TcpFlags::ACK, b""));
    h.flush(I);
    assert_eq!(
        h.rec.init,
        vec![
            data(0, b"ab"),
            Ev::Gap(2, 3),
            data(5, b"fg"),
            Ev::Gap(7, 2),
            data(9, b"j"),
            Ev::Gap(10, 2),
        ]
    );
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.r.stats().gaps, 3);
    assert_eq!(h.r.stats().gap_bytes, 7);
}

#[test]
fn flush_touches_only_its_side() {
    let mut h = synced(TcpReassemblyConfig::default());
    h.feed(I, seg(at(3), b"d"));
    h.feed(R, seg(50, b"x"));
    h.feed(R, seg(52, b"z"));
    h.flush(R);
    assert_eq!(
        h.rec.resp,
        vec![data(0, b"x"), Ev::Gap(1, 1), data(2, b"z")]
    );
    assert!(h.rec.init.is_empty());
    assert_eq!(h.r.buffered_bytes(), 1);
}

#[test]
fn per_side_byte_cap_overflow_drops_held_data_and_stops_the_side() {
    let mut h = synced(TcpReassemblyConfig::default().with_max_held_per_side(10));
    h.feed(I, seg(at(0), b"a"));
    h.feed(I, seg(at(2), b"cdefgh")); // held 2..8: 6 bytes
    h.feed(I, seg(at(10), b"klmnop")); // 10..16 would make 12 > 10
                                       // Lost: from the next byte (1) to the end of what was seen (16).
    assert_eq!(
        h.rec.init,
        vec![
            data(0, b"a"),
            Ev::Gap(1, 15),
            Ev::Anomaly("tcp.reassembly_overflow")
        ]
    );
    assert!(h.r.is_stopped(I));
    assert!(!h.r.is_stopped(R));
    assert_eq!(h.r.buffered_bytes(), 0);
    assert_eq!(h.f.held_total(), 0);
    assert_eq!(h.r.stats().overflows, 1);
    // Later segments of the side are counted and ignored, ACKs too.
    let before = h.r.stats().segments;
    h.feed(I, seg(at(1), b"b"));
    h.feed(R, seg(7000, b"").with_ack(at(100)));
    h.flush(I);
    assert_eq!(h.rec.init.len(), 3);
    assert_eq!(h.r.stats().segments, before + 2);
}

#[test]
fn per_side_piece_cap_overflow() {
    let mut h = synced(TcpReassemblyConfig::default().with_max_held_segments_per_side(2));
    h.feed(I, seg(at(2), b"c"));
    h.feed(I, seg(at(4), b"e"));
    assert!(!h.r.is_stopped(I));
    h.feed(I, seg(at(6), b"g"));
    assert!(h.r.is_stopped(I));
    assert_eq!(
        h.rec.init,
        vec![Ev::Gap(0, 7), Ev::Anomaly("tcp.reassembly_overflow")]
    );
}

#[test]
fn global_cap_is_shared_by_the_factory_and_returned_on_drop() {
    let f = TcpReassemblerFactory::new(TcpReassemblyConfig::default().with_max_held_total(10));
    let mut r1 = f.new_reassembler();
    let mut r2 = f.new_reassembler();
    let mut rec = Rec::default();
    let mut sink = |s: FlowSide, ev: StreamEvent<'_>| rec.push(s, ev);
    r1.segment(I, &seg(100, b"a"), &mut sink);
    r1.segment(I, &seg(102, b"cdefghij"), &mut sink); // 8 held
    assert_eq!(f.held_total(), 8);
    r2.segment(R, &seg(500, b"a"), &mut sink);
    r2.segment(R, &seg(502, b"cde"), &mut sink); // 8 + 3 > 10
    assert!(r2.is_stopped(R));
    assert!(!r1.is_stopped(I));
    assert_eq!(f.held_total(), 8);
    assert_eq!(r1.buffered_bytes(), 8);
    // A fitting piece in a third flow still goes in: 8 + 2 = 10.
    let mut r3 = f.new_reassembler();
    r3.segment(I, &seg(1, b"a"), &mut sink);
    r3.segment(I, &seg(3, b"cd"), &mut sink);
    assert!(!r3.is_stopped(I));
    assert_eq!(f.held_total(), 10);
    drop(r1);
    assert_eq!(f.held_total(), 2);
    drop(r3);
    drop(r2);
    assert_eq!(f.held_total(), 0);
}

#[test]
fn sequence_wrap_is_crossed() {
    let isn = u32::MAX - 9;
    let mut h = H::new(TcpReassemblyConfig::default());
    h.feed(I, flagged(isn, TcpFlags::SYN, b""));
    // Offset 0 is isn + 1 = 2^32 - 9; 16 bytes reach 2^32 + 7 = 7.
    h.feed(I, seg(7, b"XYZ")); // offset 16, out of order across the wrap
    h.feed(I, seg(isn.wrapping_add(1), b"0123456789abcdef"));
    h.feed(I, seg(10, b"!"));
    assert_eq!(
        h.rec.init,
        vec![
            data(0, b"0123456789abcdef"),
            data(16, b"XYZ"),
            data(19, b"!")
        ]
    );
    // An ACK of sequence 12 (= 2^32 + 12) is offset 21: byte 20 was missed.
    h.feed(R, seg(1, b"").with_ack(12));
    assert_eq!(h.rec.init.last(), Some(&Ev::Gap(20, 1)));
}

#[test]
fn many_wraps_keep_u64_offsets() {
    let mut h = H::new(TcpReassemblyConfig::default().with_window(TcpReassemblyConfig::MAX_WINDOW));
    let chunk = vec![0u8; 1 << 16];
    let mut seq = 0u32;
    // 3 * 2^16 segments of 2^16 bytes: 3 * 2^32 bytes of stream, only the
    // first captured in full, the others snap-cut to one byte.
    h.feed(I, seg(seq, &chunk));
    seq = seq.wrapping_add(1 << 16);
    let mut off: u64 = 1 << 16;
    for _ in 1..(3u32 << 16) {
        h.feed(I, seg(seq, &chunk[..1]).with_wire_len(1 << 16));
        seq = seq.wrapping_add(1 << 16);
        off += 1 << 16;
    }
    assert_eq!(off, 3 << 32);
    h.feed(I, seg(seq, b"end"));
    assert_eq!(h.rec.init.last(), Some(&data(3 << 32, b"end")));
    assert_eq!(h.r.stats().gaps, (3 << 16) - 1);
}

#[test]
fn reverse_order_one_byte_segments_hit_the_piece_cap() {
    // 100 001 one-byte segments, the first one last: the default cap of
    // 512 pieces stops the side at the 513th held piece.
    let mut h = synced(TcpReassemblyConfig::default());
    for o in (1..=100_000u32).rev() {
        h.feed(I, seg(at(o), &[o as u8]));
        assert!(h.r.buffered_bytes() <= 512);
        assert!(h.r.held_segments(I) <= 512);
    }
    h.feed(I, seg(at(0), b"x"));
    assert!(h.r.is_stopped(I));
    // Everything from 0 to the highest byte seen (100 000) is lost.
    assert_eq!(
        h.rec.init,
        vec![Ev::Gap(0, 100_001), Ev::Anomaly("tcp.reassembly_overflow")]
    );
    assert_eq!(h.f.held_total(), 0);
}

#[test]
fn reverse_order_one_byte_segments_within_caps_are_reassembled() {
    let n = 100_000u32;
    let cfg = TcpReassemblyConfig::default().with_max_held_segments_per_side(n as usize);
    let mut h = synced(cfg);
    for o in (1..n).rev() {
        h.feed(I, seg(at(o), &[(o % 251) as u8]));
    }
    assert_eq!(h.r.buffered_bytes(), (n - 1) as usize);
    h.feed(I, seg(at(0), &[0]));
    let want: Vec<Option<u8>> = (0..n).map(|o| Some((o % 251) as u8)).collect();
    assert_eq!(h.rec.stream(I), want);
    assert_eq!(h.f.held_total(), 0);
}

#[test]
fn endless_overlapping_segments_stay_bounded() {
    for policy in [OverlapPolicy::FirstWins, OverlapPolicy::LastWins] {
        let mut h = synced(TcpReassemblyConfig::default().with_overlap(policy));
        let (mut last, mut last_at_1) = (0u8, 0u8);
        for i in 0..10_000u32 {
            last = (i % 200) as u8 + 1;
            let start = 1 + (i % 7);
            if start == 1 {
                last_at_1 = last;
            }
            h.feed(I, seg(at(start), &vec![last; 1000]));
            assert!(h.r.buffered_bytes() <= 1006);
            assert!(h.r.held_segments(I) <= 7);
        }
        h.feed(I, seg(at(0), b"z"));
        let s = h.rec.stream(I);
        assert_eq!(s.len(), 1007);
        // Offset 1 is written by the segments with i % 7 == 0, offset 500
        // by all; the first of them had fill 1 (i = 0).
        let (want_1, want_500) = match policy {
            OverlapPolicy::FirstWins => (1, 1),
            _ => (last_at_1, last),
        };
        assert_eq!(s.get(1), Some(&Some(want_1)));
        assert_eq!(s.get(500), Some(&Some(want_500)));
        assert_eq!(h.f.held_total(), 0);
    }
}

#[test]
fn both_sides_are_independent_and_tagged() {
    let mut h = H::new(TcpReassemblyConfig::default());
    h.feed(I, flagged(100, TcpFlags::SYN, b""));
    h.feed(
        R,
        flagged(900, TcpFlags::SYN | TcpFlags::ACK, b"").with_ack(101),
    );
    h.feed(I, seg(101, b"GET").with_ack(901));
    h.feed(R, seg(901, b"200").with_ack(104));
    assert_eq!(h.rec.init, vec![data(0, b"GET")]);
    assert_eq!(h.rec.resp, vec![data(0, b"200")]);
}

#[test]
fn stats_add_up() {
    let mut a = ReassemblyStats {
        segments: 1,
        gaps: 2,
        bytes_delivered: 3,
        ..Default::default()
    };
    let b = ReassemblyStats {
        segments: 10,
        overflows: 1,
        bytes_delivered: u64::MAX,
        ..Default::default()
    };
    let sum = a + b;
    a.merge(&b);
    assert_eq!(a, sum);
    assert_eq!(sum.segments, 11);
    assert_eq!(sum.gaps, 2);
    assert_eq!(sum.overflows, 1);
    assert_eq!(sum.bytes_delivered, u64::MAX);
}

#[test]
fn reassembler_and_factory_are_send() {
    fn is_send<T: Send>() {}
    is_send::<TcpReassembler>();
    is_send::<TcpReassemblerFactory>();
}

#[test]
fn skip_holes_delivers_held_bytes_after_gaps_and_frees_them() {
    // ISN 100: data starts at 101. Bytes 2..5 and 8..10 arrive, 0..2 and
    // 5..8 never do: skipping the holes gives gap 0+2, data 2..5, gap 5+3,
    // data 8..10, and nothing stays held; the stream goes on at 10.
    let f = TcpReassemblerFactory::default();
    let mut r = f.new_reassembler();
    let mut rec = Rec::default();
    let t = Timestamp::from_nanos(1);
    let syn = TcpSegment::new(t, 100, TcpFlags(TcpFlags::SYN), &[]);
    r.segment(I, &syn, &mut |s, e| rec.push(s, e));
    r.segment(
        I,
        &TcpSegment::new(t, 103, TcpFlags(0), b"cde"),
        &mut |s, e| rec.push(s, e),
    );
    r.segment(
        I,
        &TcpSegment::new(t, 109, TcpFlags(0), b"ij"),
        &mut |s, e| rec.push(s, e),
    );
    assert_eq!((r.buffered_bytes(), f.held_total()), (5, 5));
    let freed = r.skip_holes(&mut |s, e| rec.push(s, e));
    assert_eq!(freed, 5);
    assert_eq!((r.buffered_bytes(), f.held_total()), (0, 0));
    assert_eq!(
        rec.init,
        vec![
            Ev::Gap(0, 2),
            Ev::Data(2, b"cde".to_vec()),
            Ev::Gap(5, 3),
            Ev::Data(8, b"ij".to_vec()),
        ]
    );
    // Not an end: the next in-order byte (offset 10 = seq 111) is delivered.
    r.segment(
        I,
        &TcpSegment::new(t, 111, TcpFlags(0), b"k"),
        &mut |s, e| rec.push(s, e),
    );
    assert_eq!(rec.init.last(), Some(&Ev::Data(10, b"k".to_vec())));
    assert!(rec.broken.is_none(), "{:?}", rec.broken);
}
