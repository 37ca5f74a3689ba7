//! Tracker scenarios built from small hand-made packets.
//!
//! Expected histories and conn_states are derived by hand from Zeek's code
//! (see the citations in `tcp.rs`, `conn_state.rs` and the notes below):
//! `update_history` adds one letter per new kind of packet per direction,
//! upper case for the originator; `conn_state()` in
//! `scripts/base/protocols/conn/main.zeek` maps the final endpoint states.

use core::time::Duration;
use std::net::IpAddr;

use flowscope_core::{
    ChecksumStatus, ConnState, EncapLayer, EndReason, Extracted, FiveTuple, FlowEvent, FlowRecord,
    FlowSide, FlowState, L4Proto, LinkType, Orientation, PacketView, TcpEndpointState, TcpFlags,
    TcpInfo, Timestamp,
};
use proptest::prelude::*;

use super::{FlowTracker, TrackOutcome, TrackerConfig};

const S: u8 = TcpFlags::SYN;
const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
const A: u8 = TcpFlags::ACK;
const PA: u8 = TcpFlags::PSH | TcpFlags::ACK;
const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;
const R: u8 = TcpFlags::RST;
const RA: u8 = TcpFlags::RST | TcpFlags::ACK;

/// The community-id-spec TCP vector: client 128.232.110.120:34855, server
/// 66.35.250.204:80. The server is the key's `lo` endpoint.
fn client() -> (IpAddr, u16) {
    ("128.232.110.120".parse().expect("addr"), 34855)
}
fn server() -> (IpAddr, u16) {
    ("66.35.250.204".parse().expect("addr"), 80)
}

fn ms(t: u64) -> Timestamp {
    Timestamp::from_nanos(t * 1_000_000)
}

/// A packet from `src` to `dst`.
fn ex(src: (IpAddr, u16), dst: (IpAddr, u16), l4: L4Proto, len: u32) -> Extracted<FiveTuple> {
    let (key, o) = FiveTuple::from_directed(src.0, src.1, dst.0, dst.1, l4.ip_proto());
    let mut e = Extracted::new(key, o, l4);
    e.ip_version = 4;
    e.ip_len = 20 + if l4 == L4Proto::Tcp { 20 } else { 8 } + len;
    e.payload_wire_len = len;
    e
}

fn tcp_ex(
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
    win: u16,
) -> Extracted<FiveTuple> {
    let (src, dst) = if from_client {
        (client(), server())
    } else {
        (server(), client())
    };
    let mut e = ex(src, dst, L4Proto::Tcp, len);
    e.tcp = Some(TcpInfo::new(seq, ack, win, TcpFlags(flags)));
    e
}

struct Harness {
    t: FlowTracker<FiveTuple>,
    ev: Vec<FlowEvent<FiveTuple>>,
}

impl Harness {
    fn new() -> Self {
        Self::with(TrackerConfig::default())
    }
    fn with(cfg: TrackerConfig) -> Self {
        Harness {
            t: FlowTracker::new(cfg),
            ev: Vec::new(),
        }
    }
    fn check_invariants(&self) {
        let s = self.t.stats();
        assert_eq!(s.flows_created, s.ended() + s.active);
        assert_eq!(s.active, self.t.active_flows() as u64);
        assert!(self.t.active_flows() <= self.t.config().max_flows.max(1));
    }
    fn send(&mut self, ts: Timestamp, e: &Extracted<FiveTuple>) -> TrackOutcome {
        let frame = [0u8; 0];
        let pkt = PacketView::new(&frame, ts, LinkType::ETHERNET).with_wire_len(e.ip_len + 14);
        let ev = &mut self.ev;
        let out = self.t.track(&pkt, e, &mut |x| ev.push(*x));
        self.check_invariants();
        out
    }
    /// A TCP segment with a full window.
    fn tcp(
        &mut self,
        t: u64,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> TrackOutcome {
        self.send(ms(t), &tcp_ex(from_client, flags, seq, ack, len, 65535))
    }
    fn advance(&mut self, t: u64) {
        let ev = &mut self.ev;
        self.t.advance_to(ms(t), &mut |x| ev.push(*x));
        self.check_invariants();
    }
    fn finish(&mut self) {
        let ev = &mut self.ev;
        self.t.finish(&mut |x| ev.push(*x));
        self.check_invariants();
        assert_eq!(self.t.active_flows(), 0);
    }
    fn ended(&self) -> Vec<FlowRecord<FiveTuple>> {
        self.ev
            .iter()
            .filter_map(|e| match e {
                FlowEvent::Ended(r) => Some(*r),
                _ => None,
            })
            .collect()
    }
    fn started(&self) -> usize {
        self.ev
            .iter()
            .filter(|e| matches!(e, FlowEvent::Started { .. }))
            .count()
    }
    /// Finishes and returns the only flow's record.
    fn only(&mut self) -> FlowRecord<FiveTuple> {
        self.finish();
        let e = self.ended();
        assert_eq!(e.len(), 1, "{e:?}");
        e[0]
    }
    /// The three-way handshake: client ISN 100, server ISN 300.
    fn handshake(&mut self) {
        self.tcp(0, true, S, 100, 0, 0);
        self.tcp(1, false, SA, 300, 101, 0);
        self.tcp(2, true, A, 101, 301, 0);
    }
}

fn hist(r: &FlowRecord<FiveTuple>) -> &str {
    r.history.as_str()
}

#[test]
fn handshake_data_fin_both_ways_is_sf() {
    let mut h = Harness::new();
    h.handshake(); // S h A
    h.tcp(3, true, PA, 101, 301, 10); // D
    h.tcp(4, false, A, 301, 111, 0); // a
    h.tcp(5, false, PA, 301, 111, 20); // d
    h.tcp(6, true, FA, 111, 321, 0); // F
    h.tcp(7, false, FA, 321, 112, 0); // f
    h.tcp(8, true, A, 112, 322, 0); // nothing new: A already seen
    let r = h.only();
    assert_eq!(hist(&r), "ShADadFf");
    assert_eq!(r.conn_state, ConnState::SF);
    assert_eq!(r.state, FlowState::Closed);
    assert_eq!(r.end_reason, EndReason::Finished);
    assert_eq!(
        r.tcp_states,
        (TcpEndpointState::Closed, TcpEndpointState::Closed)
    );
    assert_eq!(r.l4, L4Proto::Tcp);
    // The client is the key's `hi` endpoint.
    assert_eq!(r.initiator, Orientation::HiToLo);
    assert_eq!(
        r.endpoints(),
        (client().0, client().1, server().0, server().1)
    );
    let (i, s) = (&r.stats.initiator, &r.stats.responder);
    assert_eq!((i.packets, s.packets), (5, 4));
    assert_eq!((i.payload_bytes, s.payload_bytes), (10, 20));
    // Zeek Size(): sequence span minus the SYN and FIN octets.
    assert_eq!((i.stream_bytes, s.stream_bytes), (10, 20));
    assert_eq!((i.ip_bytes, s.ip_bytes), (5 * 40 + 10, 4 * 40 + 20));
    assert_eq!((i.frame_bytes, s.frame_bytes), (5 * 54 + 10, 4 * 54 + 20));
    assert_eq!((r.stats.first, r.stats.last), (ms(0), ms(8)));
    assert_eq!(r.stats.max_idle, Duration::from_millis(1));
    let all = TcpFlags(S | A | TcpFlags::PSH | TcpFlags::FIN);
    assert_eq!(r.tcp_flags, (all, all));
    // community-id-spec baseline_deflt.json, this very tuple.
    assert_eq!(
        r.community_id.map(|c| c.to_string()).as_deref(),
        Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
    );
}

#[test]
fn refused_is_rej() {
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.tcp(1, false, RA, 0, 101, 0);
    let r = h.only();
    // Responder RST while the originator is SYN_SENT: REJ.
    assert_eq!((hist(&r), r.conn_state), ("Sr", ConnState::REJ));
    assert_eq!(r.state, FlowState::Closed);
}

#[test]
fn syn_only_is_s0_and_repeated_syns_add_no_letter() {
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.tcp(1000, true, S, 100, 0, 0); // same sequence number: no new `S`
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("S", ConnState::S0));
    assert_eq!(r.state, FlowState::New);
    assert_eq!(r.stats.initiator.stream_bytes, 0);
    assert_eq!(r.stats.initiator.packets, 2);
}

#[test]
fn syn_with_a_new_isn_while_syn_sent_is_a_new_connection() {
    // Zeek IsReuse: on a connection that is not closed, a SYN whose sequence
    // number differs from the originator's start is a reuse ("SYN_seq_jump").
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    let o = h.tcp(3000, true, S, 5000, 0, 0);
    assert!(o.new_flow);
    h.finish();
    let e = h.ended();
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].end_reason, hist(&e[0])), (EndReason::Reused, "S"));
    assert_eq!((e[1].end_reason, hist(&e[1])), (EndReason::Finished, "S"));
}

#[test]
fn syn_retransmitted_after_a_reset_is_a_new_connection() {
    // A challenge ACK answered by the client's RST, then the client's SYN
    // again with the same ISN (seen in suricata-verify tls-subjectaltname):
    // the RST sets did_close, so Zeek's IsClosed() holds and IsReuse is true.
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.tcp(1, false, A, 7000, 9999, 0);
    h.tcp(2, true, R, 9999, 0, 0);
    let o = h.tcp(3000, true, S, 100, 0, 0);
    assert!(o.new_flow);
    h.finish();
    let e = h.ended();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].end_reason, EndReason::Reused);
    assert_eq!(e[0].conn_state, ConnState::RSTOS0);
}

#[test]
fn syn_and_syn_ack_only_is_s1() {
    // The SYN-ACK moves both endpoints to ESTABLISHED (UpdateInactiveState),
    // so a half-open handshake already reads S1.
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.tcp(1, false, SA, 300, 101, 0);
    let r = h.only();
    assert_eq!(
        (hist(&r), r.conn_state, r.state),
        ("Sh", ConnState::S1, FlowState::Established)
    );
}

#[test]
fn three_way_handshake_is_s1() {
    let mut h = Harness::new();
    h.handshake();
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("ShA", ConnState::S1));
}

#[test]
fn midstream_is_oth_without_s() {
    let mut h = Harness::new();
    h.tcp(0, true, PA, 1000, 5000, 10);
    h.tcp(1, false, PA, 5000, 1010, 5);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("Dd", ConnState::OTH));
    assert_eq!(
        r.tcp_states,
        (TcpEndpointState::Partial, TcpEndpointState::Partial)
    );
    assert_eq!(r.state, FlowState::Established);
    // Partial endpoints are numbered as if a SYN preceded the first packet.
    assert_eq!(
        (
            r.stats.initiator.stream_bytes,
            r.stats.responder.stream_bytes
        ),
        (10, 5)
    );
}

#[test]
fn reset_by_originator_is_rsto() {
    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, true, R, 101, 0, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("ShAR", ConnState::RSTO));
}

#[test]
fn reset_by_responder_is_rstr() {
    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, false, R, 301, 0, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("ShAr", ConnState::RSTR));
}

#[test]
fn syn_then_originator_rst_is_rstos0() {
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.tcp(1, true, R, 101, 0, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("SR", ConnState::RSTOS0));
}

#[test]
fn syn_ack_then_rst_is_rstrh() {
    let mut h = Harness::new();
    let o = h.tcp(0, false, SA, 300, 101, 0);
    assert_eq!(o.side, FlowSide::Responder);
    h.tcp(1, false, R, 301, 0, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("^hr", ConnState::RSTRH));
    assert_eq!(r.initiator, Orientation::HiToLo); // the client, who received the SYN-ACK
}

#[test]
fn syn_then_fin_is_sh() {
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.tcp(1, true, TcpFlags::FIN, 101, 0, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("SF", ConnState::SH));
}

#[test]
fn syn_ack_then_fin_is_shr() {
    let mut h = Harness::new();
    h.tcp(0, false, SA, 300, 101, 0);
    h.tcp(1, false, FA, 301, 101, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("^hf", ConnState::SHR));
}

#[test]
fn originator_close_only_is_s2_and_responder_close_only_is_s3() {
    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, true, FA, 101, 301, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("ShAF", ConnState::S2));

    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, false, FA, 301, 101, 0);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("ShAf", ConnState::S3));
}

#[test]
fn syn_ack_first_flips_roles() {
    let mut h = Harness::new();
    let first = h.tcp(0, false, SA, 300, 101, 0);
    assert!(first.new_flow);
    assert_eq!(first.side, FlowSide::Responder);
    match h.ev.first() {
        Some(FlowEvent::Started { initiator, .. }) => assert_eq!(*initiator, Orientation::HiToLo),
        other => panic!("expected Started, got {other:?}"),
    }
    let second = h.tcp(1, true, A, 101, 301, 0);
    assert_eq!(
        (second.side, second.new_flow, second.first),
        (FlowSide::Initiator, false, first.first)
    );
    let r = h.only();
    // The originator's pure ACK after a SYN-ACK establishes it
    // (UpdateInactiveState: "missed the SYN but saw the SYN-ACK").
    assert_eq!((hist(&r), r.conn_state), ("^hA", ConnState::S1));
    assert_eq!(r.stats.responder.packets, 1);
}

#[test]
fn retransmissions_are_logarithmic() {
    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, true, PA, 101, 301, 10); // D
    for i in 0..100 {
        h.tcp(4 + i, true, PA, 101, 301, 10); // T at the 1st, 10th, 100th
    }
    // A responder retransmission is lower case.
    h.tcp(200, false, PA, 301, 111, 5);
    h.tcp(201, false, PA, 301, 111, 5);
    let r = h.only();
    assert_eq!(hist(&r), "ShADTTTdt");
    // Retransmitted bytes count in payload_bytes but not in stream_bytes.
    assert_eq!(
        (
            r.stats.initiator.payload_bytes,
            r.stats.initiator.stream_bytes
        ),
        (1010, 10)
    );
    assert_eq!(
        (
            r.stats.responder.payload_bytes,
            r.stats.responder.stream_bytes
        ),
        (10, 5)
    );
}

#[test]
fn zero_window_is_logarithmic() {
    let mut h = Harness::new();
    h.handshake();
    for i in 0..10 {
        h.send(ms(3 + i), &tcp_ex(false, A, 301, 101, 0, 0));
    }
    // A zero window on a RST is not counted.
    h.send(ms(20), &tcp_ex(true, R, 101, 0, 0, 0));
    let r = h.only();
    // First pure ACK from the responder: `a`, then `w` at the 1st and 10th.
    assert_eq!(hist(&r), "ShAawwR");
}

#[test]
fn bad_tcp_checksum_is_c_and_skips_the_state_machine() {
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    let mut bad = tcp_ex(false, SA, 300, 101, 0, 65535);
    bad.checksum = ChecksumStatus::Bad;
    h.send(ms(1), &bad);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("Sc", ConnState::S0));
    assert_eq!(r.stats.responder.packets, 1);
}

#[test]
fn udp_one_way_and_two_way() {
    let c: (IpAddr, u16) = ("192.168.1.52".parse().expect("addr"), 54585);
    let s: (IpAddr, u16) = ("8.8.8.8".parse().expect("addr"), 53);
    let mut h = Harness::new();
    h.send(ms(0), &ex(c, s, L4Proto::Udp, 30));
    h.send(ms(1), &ex(c, s, L4Proto::Udp, 30));
    let r = h.only();
    assert_eq!(
        (hist(&r), r.conn_state, r.state),
        ("D", ConnState::S0, FlowState::New)
    );
    assert_eq!(r.stats.initiator.stream_bytes, 60);

    let mut h = Harness::new();
    h.send(ms(0), &ex(c, s, L4Proto::Udp, 30));
    h.send(ms(2), &ex(s, c, L4Proto::Udp, 90));
    let r = h.only();
    assert_eq!(
        (hist(&r), r.conn_state, r.state),
        ("Dd", ConnState::SF, FlowState::Established)
    );
    assert_eq!(
        (r.stats.responder.stream_bytes, r.stats.responder.ip_bytes),
        (90, 118)
    );
    assert_eq!(
        r.community_id.map(|c| c.to_string()).as_deref(),
        Some("1:d/FP5EW3wiY1vCndhwleRRKHowQ=") // community-id-spec baseline
    );
    assert_eq!(
        r.tcp_states,
        (TcpEndpointState::Inactive, TcpEndpointState::Inactive)
    );

    // Only bad checksums from the originator: `C`, and no side is active.
    let mut h = Harness::new();
    let mut e = ex(c, s, L4Proto::Udp, 30);
    e.checksum = ChecksumStatus::Bad;
    h.send(ms(0), &e);
    let r = h.only();
    assert_eq!((hist(&r), r.conn_state), ("C", ConnState::OTH));
}

#[test]
fn icmp_echo_is_one_flow_oth() {
    // Echo request 8 <-> reply 0 share a key (see FiveTuple's docs).
    let a: IpAddr = "192.168.0.89".parse().expect("addr");
    let b: IpAddr = "192.168.0.1".parse().expect("addr");
    let mut h = Harness::new();
    h.send(ms(0), &ex((a, 8), (b, 0), L4Proto::Icmp, 56));
    h.send(ms(1), &ex((b, 0), (a, 8), L4Proto::Icmp, 56));
    let r = h.only();
    assert_eq!(
        (hist(&r), r.conn_state, r.state),
        ("", ConnState::OTH, FlowState::Established)
    );
    assert_eq!(
        (r.stats.initiator.packets, r.stats.responder.packets),
        (1, 1)
    );
    assert_eq!(
        r.community_id.map(|c| c.to_string()).as_deref(),
        Some("1:X0snYXpgwiv9TZtqg64sgzUn6Dk=") // community-id-spec baseline
    );
}

#[test]
fn syn_timeout_is_shorter_than_established() {
    let mut h = Harness::new();
    h.tcp(0, true, S, 100, 0, 0);
    h.advance(5_000); // exactly at the deadline: still alive
    assert_eq!(h.t.active_flows(), 1);
    h.advance(5_001);
    let e = h.ended();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].end_reason, EndReason::Timeout);
    // The end time is the last packet's, not the sweep time.
    assert_eq!(e[0].stats.last, ms(0));

    let mut h = Harness::new();
    h.handshake();
    h.advance(250_000);
    assert_eq!(h.t.active_flows(), 1);
    h.advance(302_001);
    assert_eq!(h.t.stats().ended_timeout, 1);
    assert_eq!(h.ended()[0].stats.last, ms(2));
}

#[test]
fn closed_flows_linger() {
    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, true, FA, 101, 301, 0);
    h.tcp(4, false, FA, 301, 102, 0);
    h.advance(5_004);
    assert_eq!(h.t.active_flows(), 1);
    h.advance(5_005);
    assert_eq!(h.t.active_flows(), 0);
    assert_eq!(h.ended()[0].conn_state, ConnState::SF);
}

#[test]
fn expired_flow_ends_when_its_next_packet_arrives() {
    let other: (IpAddr, u16) = ("10.9.9.9".parse().expect("addr"), 999);
    let c: (IpAddr, u16) = ("10.0.0.1".parse().expect("addr"), 1000);
    let s: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 53);
    let mut h = Harness::new();
    h.handshake(); // TCP flow at t=0..2: idle the longest, 300 s timeout
    h.send(ms(500), &ex(c, s, L4Proto::Udp, 10)); // UDP flow, 60 s timeout
    h.send(ms(60_000), &ex(other, s, L4Proto::Udp, 10)); // sweeps at 60.0 s: UDP not yet expired
                                                         // 60.6 s: the UDP flow expired at 60.5 s, it is not the oldest and the
                                                         // next sweep is at 61 s, so it is found by its own packet.
    let o = h.send(ms(60_600), &ex(c, s, L4Proto::Udp, 10));
    assert!(o.new_flow);
    let e = h.ended();
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].end_reason, e[0].stats.last),
        (EndReason::Timeout, ms(500))
    );
    assert_eq!(h.started(), 4);
    // The new flow has a different id (different first timestamp).
    assert_ne!(Some(o.id(&e[0].key)), e.first().map(|r| r.id));
}

#[test]
fn sweep_ends_short_timeouts_behind_long_ones_oldest_first() {
    let mut h = Harness::new();
    h.handshake(); // idle the longest, 300 s
    let s: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 53);
    for p in 0..3u16 {
        let c: (IpAddr, u16) = ("10.0.0.1".parse().expect("addr"), 1000 + p);
        h.send(ms(10 + u64::from(p)), &ex(c, s, L4Proto::Udp, 10));
    }
    h.advance(61_000);
    let e = h.ended();
    let ports: Vec<u16> = e.iter().map(|r| r.endpoints().1).collect();
    assert_eq!(ports, [1000, 1001, 1002]);
    assert!(e.iter().all(|r| r.end_reason == EndReason::Timeout));
    assert_eq!(h.t.active_flows(), 1);
}

#[test]
fn lru_eviction_counts_and_order() {
    let mut h = Harness::with(TrackerConfig {
        max_flows: 2,
        ..TrackerConfig::default()
    });
    let s: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 53);
    let c = |p: u16| -> (IpAddr, u16) { ("10.0.0.1".parse().expect("addr"), p) };
    h.send(ms(1), &ex(c(1), s, L4Proto::Udp, 1));
    h.send(ms(2), &ex(c(2), s, L4Proto::Udp, 1));
    h.send(ms(3), &ex(c(1), s, L4Proto::Udp, 1)); // flow 1 is now the most recent
    h.send(ms(4), &ex(c(3), s, L4Proto::Udp, 1)); // evicts flow 2
    h.send(ms(5), &ex(c(4), s, L4Proto::Udp, 1)); // evicts flow 1
    let e = h.ended();
    let ports: Vec<u16> = e.iter().map(|r| r.endpoints().1).collect();
    assert_eq!(ports, [2, 1]);
    assert!(e.iter().all(|r| r.end_reason == EndReason::Evicted));
    assert_eq!(h.t.stats().ended_evicted, 2);
    // The evicted flow's Ended comes before the new flow's Started.
    assert!(matches!(h.ev.get(2), Some(FlowEvent::Ended(_))));
    assert!(matches!(h.ev.get(3), Some(FlowEvent::Started { .. })));
    h.finish();
    let ports: Vec<u16> = h.ended().iter().skip(2).map(|r| r.endpoints().1).collect();
    assert_eq!(ports, [3, 4]); // finish: least recently active first
    assert_eq!(h.t.stats().ended_finished, 2);
}

#[test]
fn backwards_timestamps_are_counted_and_harmless() {
    let mut h = Harness::new();
    h.tcp(10_000, true, S, 100, 0, 0);
    h.tcp(4_000, false, SA, 300, 101, 0);
    h.tcp(10_500, true, A, 101, 301, 0);
    assert_eq!(h.t.stats().ts_backwards, 1);
    let r = h.only();
    assert_eq!((r.stats.first, r.stats.last), (ms(10_000), ms(10_500)));
    assert_eq!(r.stats.max_idle, Duration::from_millis(500));
    assert_eq!(r.conn_state, ConnState::S1);
}

#[test]
fn new_syn_after_close_reuses_the_tuple() {
    let mut h = Harness::new();
    h.handshake();
    h.tcp(3, true, FA, 101, 301, 0);
    h.tcp(4, false, FA, 301, 102, 0);
    h.tcp(5, true, A, 102, 302, 0);
    let o = h.tcp(1000, true, S, 9000, 0, 0);
    assert!(o.new_flow);
    h.finish();
    let e = h.ended();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].end_reason, e[0].conn_state),
        (EndReason::Reused, ConnState::SF)
    );
    assert_eq!(
        (e[1].end_reason, e[1].conn_state),
        (EndReason::Finished, ConnState::S0)
    );
    assert_eq!(h.t.stats().ended_reused, 1);
    assert_ne!(e[0].id, e[1].id);
}

#[test]
fn encapsulation_and_source_are_summarised() {
    let c: (IpAddr, u16) = ("10.0.0.1".parse().expect("addr"), 1000);
    let s: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 53);
    let o1: IpAddr = "192.0.2.1".parse().expect("addr");
    let o2: IpAddr = "192.0.2.2".parse().expect("addr");
    let i1: IpAddr = "198.51.100.1".parse().expect("addr");
    let mut e = ex(c, s, L4Proto::Udp, 10);
    for l in [
        EncapLayer::Vlan { id: 10 },
        EncapLayer::Vlan { id: 20 },
        EncapLayer::Vlan { id: 30 },
        EncapLayer::Ip { src: o1, dst: o2 },
        EncapLayer::Gre { proto: 0x6558 },
        EncapLayer::Ip { src: i1, dst: o2 },
        EncapLayer::Udp {
            sport: 1,
            dport: 4789,
        },
        EncapLayer::Vxlan { vni: 42 },
    ] {
        e.encap.push(l);
    }
    let mut h = Harness::new();
    let frame = [0u8; 0];
    let pkt = PacketView::new(&frame, ms(0), LinkType::ETHERNET).with_source(3);
    let ev = &mut h.ev;
    h.t.track(&pkt, &e, &mut |x| ev.push(*x));
    assert_eq!(h.t.extras_in_use(), 1);
    let r = h.only();
    assert_eq!(r.encap.vlan_ids(), &[10, 20]);
    assert_eq!(r.encap.tunnel, Some(EncapLayer::Vxlan { vni: 42 }));
    assert_eq!(r.encap.outer, Some((o1, o2)));
    assert_eq!(r.source, Some(3));
    assert_eq!(h.t.extras_in_use(), 0);
}

#[test]
fn gaps_are_logarithmic_and_counted() {
    let mut h = Harness::new();
    h.handshake();
    let key = tcp_ex(true, A, 0, 0, 0, 0).key;
    for _ in 0..10 {
        assert!(h.t.note_gap(&key, FlowSide::Responder, 100));
    }
    assert!(h.t.note_gap(&key, FlowSide::Initiator, 7));
    let other = tcp_ex(true, A, 0, 0, 0, 0).key;
    let mut missing = other;
    missing.proto = 17;
    assert!(!h.t.note_gap(&missing, FlowSide::Initiator, 1));
    let r = h.only();
    assert_eq!(hist(&r), "ShAggG");
    assert_eq!(
        (r.stats.responder.missed_bytes, r.stats.responder.gaps),
        (1000, 10)
    );
    assert_eq!(
        (r.stats.initiator.missed_bytes, r.stats.initiator.gaps),
        (7, 1)
    );
}

#[test]
fn syn_answering_a_syn_ack_flips_roles() {
    // The first packet is dropped by its bad checksum, so its sender (the
    // server) stays INACTIVE and becomes SYN_ACK_SENT on its SYN-ACK; the
    // client's SYN then reverses the roles (UpdateInactiveState, FlipRoles).
    let mut h = Harness::new();
    let mut bad = tcp_ex(false, A, 300, 100, 0, 65535);
    bad.checksum = ChecksumStatus::Bad;
    h.send(ms(0), &bad);
    h.tcp(1, false, SA, 300, 101, 0);
    let o = h.tcp(2, true, S, 100, 0, 0);
    assert_eq!(o.side, FlowSide::Initiator);
    let r = h.only();
    assert_eq!(hist(&r), "CHs^");
    assert_eq!(r.initiator, Orientation::HiToLo); // the client now
    assert_eq!(
        (r.stats.initiator.packets, r.stats.responder.packets),
        (1, 2)
    );
    assert_eq!(r.conn_state, ConnState::S1);
}

#[test]
fn finish_ends_everything_and_ids_are_deterministic() {
    let run = || {
        let mut h = Harness::new();
        h.handshake();
        h.send(ms(5), &ex(client(), server(), L4Proto::Udp, 1));
        h.finish();
        h.ended()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|r| r.end_reason == EndReason::Finished));
    let ids = |v: &[FlowRecord<FiveTuple>]| v.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert!(a.iter().all(|r| r.id.0 < 1 << 53));
}

#[test]
fn five_tuple_entry_fits_256_bytes() {
    assert_eq!(core::mem::size_of::<FiveTuple>(), 40);
    let n = FlowTracker::<FiveTuple>::entry_bytes();
    assert!(n <= 256, "entry is {n} bytes");
}

#[test]
fn zero_max_flows_means_one() {
    let mut h = Harness::with(TrackerConfig {
        max_flows: 0,
        ..TrackerConfig::default()
    });
    h.handshake();
    h.send(ms(3), &ex(client(), server(), L4Proto::Udp, 1));
    assert_eq!(h.t.active_flows(), 1);
    assert_eq!(h.t.stats().ended_evicted, 1);
}

/// One random packet: which of a few tuples, direction, protocol, flags,
/// sequence numbers, length, checksum verdict and a time step that may go
/// backwards.
#[derive(Clone, Debug)]
struct RandPkt {
    tuple: u8,
    reverse: bool,
    proto: u8,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
    window: u16,
    bad_checksum: bool,
    dt_ms: i64,
}

fn rand_pkt() -> impl Strategy<Value = RandPkt> {
    (
        (
            0u8..4,
            any::<bool>(),
            prop_oneof![Just(6u8), Just(17), Just(1), Just(47)],
        ),
        (
            any::<u8>(),
            prop_oneof![any::<u32>(), 0u32..2000],
            prop_oneof![any::<u32>(), 0u32..2000],
        ),
        (
            prop_oneof![0u32..1500, any::<u32>()],
            prop_oneof![Just(0u16), any::<u16>()],
            any::<bool>(),
        ),
        -2_000i64..120_000,
    )
        .prop_map(
            |((tuple, reverse, proto), (flags, seq, ack), (len, window, bad), dt_ms)| RandPkt {
                tuple,
                reverse,
                proto,
                flags,
                seq,
                ack,
                len,
                window,
                bad_checksum: bad,
                dt_ms,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_packets_keep_the_accounting(
        pkts in proptest::collection::vec(rand_pkt(), 1..120),
        max_flows in 1usize..4,
        advances in proptest::collection::vec(0u64..400_000, 0..3),
    ) {
        let mut h = Harness::with(TrackerConfig { max_flows, ..TrackerConfig::default() });
        let mut t: i64 = 1_000_000;
        for (n, p) in pkts.iter().enumerate() {
            t = (t + p.dt_ms).max(0);
            let a: (IpAddr, u16) = ("10.0.0.1".parse().expect("addr"), 1000 + u16::from(p.tuple));
            let b: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 80);
            let (src, dst) = if p.reverse { (b, a) } else { (a, b) };
            let l4 = L4Proto::from_ip_proto(p.proto);
            let mut e = ex(src, dst, l4, p.len.min(60_000));
            e.payload_wire_len = p.len;
            if l4 == L4Proto::Tcp {
                e.tcp = Some(TcpInfo::new(p.seq, p.ack, p.window, TcpFlags(p.flags)));
            }
            if p.bad_checksum {
                e.checksum = ChecksumStatus::Bad;
            }
            h.send(ms(t as u64), &e);
            if let Some(&adv) = advances.get(n % 7) {
                if n % 7 == 3 {
                    h.advance(t as u64 + adv);
                }
            }
            prop_assert!(h.t.active_flows() <= max_flows);
        }
        h.finish();
        let s = h.t.stats();
        prop_assert_eq!(s.active, 0);
        prop_assert_eq!(s.flows_created, s.ended());
        prop_assert_eq!(s.packets, pkts.len() as u64);
        prop_assert_eq!(h.started() as u64, s.flows_created);
        prop_assert_eq!(h.ended().len() as u64, s.ended());
        prop_assert_eq!(h.t.extras_in_use(), 0);
        for r in h.ended() {
            prop_assert!(r.stats.last >= r.stats.first);
            prop_assert!(r.id.0 < 1 << 53);
            prop_assert!(r.stats.packets() >= 1);
        }
    }
}

#[test]
fn active_flow_is_requeued_not_expired_at_its_first_deadline() {
    // Established at t=2 ms: queued with deadline 300.002 s. A packet at
    // 200 s moves the real deadline to 500 s; when the queued entry comes
    // due it is re-queued, and the flow ends only after 500 s.
    let mut h = Harness::new();
    h.handshake();
    h.tcp(200_000, true, A, 101, 301, 0);
    h.advance(300_010);
    assert_eq!(h.t.active_flows(), 1);
    assert!(h.ended().is_empty());
    h.advance(500_001);
    assert_eq!(h.t.active_flows(), 0);
    let e = h.ended();
    assert_eq!((e.len(), e[0].end_reason), (1, EndReason::Timeout));
    assert_eq!(e[0].stats.last, ms(200_000));
}

#[test]
fn timer_queues_stay_bounded_under_a_syn_flood() {
    // 50 000 distinct SYNs within one second into a table of 1 000 flows:
    // 49 000 are evicted, none times out, and the queued deadlines of the
    // evicted flows are compacted away instead of piling up.
    let cfg = TrackerConfig {
        max_flows: 1_000,
        ..Default::default()
    };
    let mut h = Harness::with(cfg);
    let s: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 80);
    for i in 0..50_000u32 {
        let c: (IpAddr, u16) = (
            IpAddr::from((0x0a01_0000u32 + i / 60_000).to_be_bytes()),
            (i % 60_000) as u16 + 1024,
        );
        let mut x = ex(c, s, L4Proto::Tcp, 0);
        x.tcp = Some(TcpInfo::new(i, 0, 65535, TcpFlags(S)));
        h.send(Timestamp::from_micros(u64::from(i) * 20), &x);
        assert!(
            h.t.timers_len() <= 2 * 1_000 + 1_024 + 1,
            "queue grew to {}",
            h.t.timers_len()
        );
    }
    assert_eq!(h.t.stats().ended_evicted, 49_000);
    assert_eq!(h.t.active_flows(), 1_000);
    h.ev.clear();
    h.advance(7_000);
    assert_eq!(h.t.active_flows(), 0, "every unanswered SYN timed out");
    assert_eq!(h.t.stats().ended_timeout, 1_000);
}

#[test]
fn five_tuple_table_hash_spreads_keys_that_differ_in_one_field() {
    // Keys that differ only in a port, or only in one address's last bits,
    // must not pile into a few buckets: 4096 keys over 1024 buckets leave
    // about 18 empty on average with a good hash (1024·e^-4); a weak hash
    // that ignores a field leaves almost all of them empty.
    let seed = 0x0123_4567_89ab_cdef;
    let v4 = |a: u32, p: u16| FiveTuple {
        lo_addr: IpAddr::from(a.to_be_bytes()),
        hi_addr: "10.9.9.9".parse().expect("addr"),
        lo_port: p,
        hi_port: 443,
        proto: 6,
    };
    let v6 = |a: u128| FiveTuple {
        lo_addr: IpAddr::from(a.to_be_bytes()),
        hi_addr: "2001:db8::1".parse().expect("addr"),
        lo_port: 1000,
        hi_port: 53,
        proto: 17,
    };
    let families: [Vec<FiveTuple>; 3] = [
        (0..4096u16).map(|p| v4(0x0a00_0001, 1024 + p)).collect(),
        (0..4096u32).map(|a| v4(0x0a00_0000 + a, 5555)).collect(),
        (0..4096u128)
            .map(|a| v6(0x2001_0db8_0000_0000_0000_0000_0000_0000 + a))
            .collect(),
    ];
    for keys in families {
        let mut used = [false; 1024];
        for k in &keys {
            let h = super::TrackedKey::table_hash(k, seed);
            let b = ((h ^ (h >> 32)) as usize) & 1023;
            used[b] = true;
        }
        let empty = used.iter().filter(|u| !**u).count();
        assert!(empty < 60, "{empty} of 1024 buckets empty");
    }
}

#[test]
fn a_requeued_flow_is_not_held_past_its_deadline_by_later_entries() {
    // UDP, 60 s timeout. X is created at 0 s and active until 4 s, so its
    // first entry (deadline 60 s) is stale when it comes due and X is
    // queued again for 64 s. Y, created at 30 s, queued at 90 s before
    // that. Appended behind Y, X would stay until 90 s; in deadline order
    // it ends at 64 s, when its last packet + 60 s has passed.
    let a: (IpAddr, u16) = ("10.0.0.1".parse().expect("addr"), 1000);
    let b: (IpAddr, u16) = ("10.0.0.2".parse().expect("addr"), 53);
    let c: (IpAddr, u16) = ("10.0.0.3".parse().expect("addr"), 2000);
    let mut h = Harness::new();
    for t in [0, 1_000, 2_000, 3_000, 4_000] {
        h.send(ms(t), &ex(a, b, L4Proto::Udp, 10));
    }
    h.send(ms(30_000), &ex(c, b, L4Proto::Udp, 10));
    h.advance(60_001); // X's first entry is due: X is queued again
    assert_eq!(h.t.active_flows(), 2);
    h.advance(64_001);
    let e = h.ended();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].end_reason, EndReason::Timeout);
    assert_eq!(e[0].stats.last, ms(4_000));
    h.advance(90_001);
    assert_eq!(h.ended().len(), 2);
}
