//! Hand-built flow records shared by the writer tests.
//!
//! Times: 1_700_000_000 s since the epoch is 2023-11-14T22:13:20Z
//! (19_675 days * 86_400 + 22 h 13 min 20 s; checked in `fixture_times`).

use std::net::IpAddr;
use std::time::Duration;

use flowscope_core::{
    CommunityId, ConnState, EncapLayer, EndReason, FiveTuple, FlowId, FlowRecord, FlowState,
    HistoryString, L4Proto, TcpEndpointState, TcpFlags, Timestamp,
};

/// 2023-11-14T22:13:20.123456789Z.
pub(crate) const T0: u64 = 1_700_000_000_123_456_789;

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub(crate) fn history(s: &str) -> HistoryString {
    let mut h = HistoryString::default();
    for b in s.bytes() {
        h.push(b);
    }
    h
}

/// A record with the initiator at `src:sport`.
pub(crate) fn record(
    l4: L4Proto,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    id: u64,
) -> FlowRecord<FiveTuple> {
    let (key, o) = FiveTuple::from_directed(ip(src), sport, ip(dst), dport, l4.ip_proto());
    FlowRecord::new(key, FlowId(id), o, l4)
}

/// A complete TCP connection, 192.168.1.100:49152 -> 10.0.0.1:80, 1.5 s,
/// closed by FIN both ways. The initiator has the larger address, so the
/// key stores it as `hi` (orientation `HiToLo`): output must still show it
/// as the source.
pub(crate) fn tcp_sf() -> FlowRecord<FiveTuple> {
    let mut r = record(L4Proto::Tcp, "192.168.1.100", 49152, "10.0.0.1", 80, 4242);
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0 + 1_500_000_000);
    r.stats.max_idle = Duration::from_millis(700);
    let i = &mut r.stats.initiator;
    (
        i.packets,
        i.frame_bytes,
        i.ip_bytes,
        i.payload_bytes,
        i.stream_bytes,
    ) = (6, 520, 436, 120, 100);
    let s = &mut r.stats.responder;
    (
        s.packets,
        s.frame_bytes,
        s.ip_bytes,
        s.payload_bytes,
        s.stream_bytes,
    ) = (4, 760, 704, 500, 500);
    r.state = FlowState::Closed;
    r.end_reason = EndReason::Timeout;
    r.history = history("ShADadFf");
    r.conn_state = ConnState::SF;
    r.tcp_states = (TcpEndpointState::Closed, TcpEndpointState::Closed);
    // SYN|ACK|PSH|FIN = 0x1b from the client, SYN|ACK|FIN = 0x13 from the server.
    r.tcp_flags = (TcpFlags(0x1b), TcpFlags(0x13));
    let mut cid = [0u8; 20];
    for (n, b) in cid.iter_mut().enumerate() {
        *b = n as u8;
    }
    r.community_id = Some(CommunityId(cid)); // displays as 1:AAECAwQFBgcICQoLDA0ODxAREhM=
    r.source = Some(1);
    r
}

/// UDP one way: 10.0.0.5:5353 -> 224.0.0.251:5353, 3 packets over 2 s.
pub(crate) fn udp_oneway() -> FlowRecord<FiveTuple> {
    let mut r = record(L4Proto::Udp, "10.0.0.5", 5353, "224.0.0.251", 5353, 7);
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0 + 2_000_000_000);
    let i = &mut r.stats.initiator;
    (
        i.packets,
        i.frame_bytes,
        i.ip_bytes,
        i.payload_bytes,
        i.stream_bytes,
    ) = (3, 300, 258, 174, 174);
    r.end_reason = EndReason::Timeout;
    r.history = history("D");
    r.conn_state = ConnState::S0;
    r
}

/// ICMP echo request 10.0.0.1 -> 10.0.0.2 and its reply, 1 ms apart.
pub(crate) fn icmp_echo() -> FlowRecord<FiveTuple> {
    // Key ports: the request's type 8 and its counterpart 0 (key.rs, Zeek).
    let mut r = record(L4Proto::Icmp, "10.0.0.1", 8, "10.0.0.2", 0, 99);
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0 + 1_000_000);
    let i = &mut r.stats.initiator;
    (
        i.packets,
        i.frame_bytes,
        i.ip_bytes,
        i.payload_bytes,
        i.stream_bytes,
    ) = (1, 98, 84, 56, 56);
    let s = &mut r.stats.responder;
    (
        s.packets,
        s.frame_bytes,
        s.ip_bytes,
        s.payload_bytes,
        s.stream_bytes,
    ) = (1, 98, 84, 56, 56);
    r.state = FlowState::Established;
    r.end_reason = EndReason::Finished;
    r.conn_state = ConnState::OTH;
    r
}

/// TCP over IPv6, established and still open at the end of the input.
pub(crate) fn tcp_v6() -> FlowRecord<FiveTuple> {
    let mut r = record(
        L4Proto::Tcp,
        "2001:db8::1",
        51000,
        "2001:db8::2",
        443,
        1_000_000_007,
    );
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0 + 250_000_000);
    let i = &mut r.stats.initiator;
    (
        i.packets,
        i.frame_bytes,
        i.ip_bytes,
        i.payload_bytes,
        i.stream_bytes,
    ) = (3, 300, 246, 50, 50);
    let s = &mut r.stats.responder;
    (
        s.packets,
        s.frame_bytes,
        s.ip_bytes,
        s.payload_bytes,
        s.stream_bytes,
    ) = (2, 200, 164, 0, 0);
    r.state = FlowState::Established;
    r.end_reason = EndReason::Finished;
    r.history = history("ShAD");
    r.conn_state = ConnState::S1;
    r.tcp_states = (TcpEndpointState::Established, TcpEndpointState::Established);
    r.tcp_flags = (TcpFlags(0x1a), TcpFlags(0x12));
    r
}

/// UDP in two VLANs (QinQ 100 outer, 200 inner), both directions.
pub(crate) fn udp_vlan() -> FlowRecord<FiveTuple> {
    let mut r = record(L4Proto::Udp, "10.1.1.1", 33000, "10.1.1.53", 53, 12);
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0 + 30_000_000);
    let i = &mut r.stats.initiator;
    (
        i.packets,
        i.frame_bytes,
        i.ip_bytes,
        i.payload_bytes,
        i.stream_bytes,
    ) = (1, 82, 60, 32, 32);
    let s = &mut r.stats.responder;
    (
        s.packets,
        s.frame_bytes,
        s.ip_bytes,
        s.payload_bytes,
        s.stream_bytes,
    ) = (1, 98, 76, 48, 48);
    r.state = FlowState::Established;
    r.end_reason = EndReason::Evicted;
    r.history = history("Dd");
    r.conn_state = ConnState::SF;
    r.encap.vlans = [100, 200];
    r.encap.vlan_count = 2;
    r
}

/// UDP inside VXLAN (VNI 42) between 192.0.2.1 and 192.0.2.2, with gaps in
/// a direction's counters to show `missed_bytes`.
pub(crate) fn udp_tunnel() -> FlowRecord<FiveTuple> {
    let mut r = record(L4Proto::Udp, "172.16.0.1", 1000, "172.16.0.2", 2000, 13);
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0 + 1_000);
    let i = &mut r.stats.initiator;
    (
        i.packets,
        i.frame_bytes,
        i.ip_bytes,
        i.payload_bytes,
        i.stream_bytes,
    ) = (2, 200, 100, 44, 44);
    (i.missed_bytes, i.gaps) = (10, 1);
    r.stats.responder.missed_bytes = 5;
    r.end_reason = EndReason::Reused;
    r.history = history("D");
    r.conn_state = ConnState::S0;
    r.encap.tunnel = Some(EncapLayer::Vxlan { vni: 42 });
    r.encap.outer = Some((ip("192.0.2.1"), ip("192.0.2.2")));
    r
}

/// A single SYN, no answer: zero duration.
pub(crate) fn syn_only() -> FlowRecord<FiveTuple> {
    let mut r = record(L4Proto::Tcp, "10.0.0.9", 12345, "10.0.0.10", 22, 1);
    r.stats.first = Timestamp::from_nanos(T0);
    r.stats.last = Timestamp::from_nanos(T0);
    let i = &mut r.stats.initiator;
    (i.packets, i.frame_bytes, i.ip_bytes) = (1, 74, 60);
    r.end_reason = EndReason::Timeout;
    r.history = history("S");
    r.conn_state = ConnState::S0;
    r.tcp_states = (TcpEndpointState::SynSent, TcpEndpointState::Inactive);
    r.tcp_flags = (TcpFlags(TcpFlags::SYN), TcpFlags(0));
    r
}

/// Every fixture, for tests that check a property over all of them.
pub(crate) fn all() -> Vec<FlowRecord<FiveTuple>> {
    vec![
        tcp_sf(),
        udp_oneway(),
        icmp_echo(),
        tcp_v6(),
        udp_vlan(),
        udp_tunnel(),
        syn_only(),
    ]
}

#[test]
fn fixture_times() {
    // 2023-11-14 is 19_675 days after 1970-01-01: 53 years of 365 days plus
    // 13 leap days (1972..=2020) is 19_358, plus 317 days to Nov 14 in 2023.
    assert_eq!(53 * 365 + 13 + 317, 19_675);
    assert_eq!(
        19_675 * 86_400 + 22 * 3_600 + 13 * 60 + 20,
        1_700_000_000u64
    );
}
