//! The fast path against the extractor: same worker for every frame.
//!
//! Frames are built by hand (RFC 791 / RFC 8200 / RFC 768 / RFC 793 /
//! RFC 7348 / RFC 2784 layouts, Linux cooked headers per the tcpdump
//! LINKTYPE_LINUX_SLL/SLL2 pages), then mutated byte by byte and cut short;
//! a dispatcher with the fast path and one without see the same sequence
//! and must name the same worker for each frame.

use super::*;
use crate::test_frames::*;
use flowscope_core::{LinkType, Timestamp};
use proptest::prelude::*;

fn view(frame: &[u8], link: LinkType, wire_len: u32) -> PacketView<'_> {
    PacketView::new(frame, Timestamp::from_secs_nanos(1, 0), link).with_wire_len(wire_len)
}

fn v6(i: u8) -> [u8; 16] {
    [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i]
}

/// A transport header of kind `k` (TCP, UDP to `port`, ICMP, SCTP, GRE,
/// IP-in-IP, other) with `payload`; returns (protocol, bytes).
fn transport(k: u8, port: u16, payload: &[u8]) -> (u8, Vec<u8>) {
    match k % 8 {
        0 => (TCP, tcp(40_000, port, payload)),
        1 => (UDP, udp(50_000, port, &tunnel_payload(port, payload))),
        2 => (UDP, udp(port, 53, &tunnel_payload(port, payload))),
        // ICMP (RFC 792) or ICMPv6 (RFC 4443, protocol 58 in either IP
        // version: the fast path must follow the extractor anyway): the
        // type from the port's low byte, so every type, with and without a
        // counterpart, comes up; the code from its high byte.
        3 => (
            if port & 0x0100 == 0 { 1 } else { 58 },
            [
                &[port as u8, (port >> 9) as u8, 0, 0, 0, 1, 0, 1][..],
                payload,
            ]
            .concat(),
        ),
        4 => (
            132,
            [&[0u8, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0][..], payload].concat(),
        ),
        // GRE (RFC 2784) carrying IPv4.
        5 => (
            47,
            [
                &[0u8, 0, 8, 0][..],
                &ipv4(v4(7), v4(8), TCP, 1, 0, false, &tcp(1, 2, payload)),
            ]
            .concat(),
        ),
        6 => (
            4,
            ipv4(v4(9), v4(10), UDP, 1, 0, false, &udp(1, 2, payload)),
        ),
        _ => (253, payload.to_vec()),
    }
}

/// What a tunnel on `port` carries, well formed, so the extractor really
/// unwraps it: VXLAN (RFC 7348 §5), Geneve (RFC 8926 §3), GTP-U (3GPP TS
/// 29.281 §5.1: version 1, PT 1, G-PDU), MPLS over UDP (RFC 7510) around
/// an inner IPv4 TCP packet. Other ports carry `payload` as is.
fn tunnel_payload(port: u16, payload: &[u8]) -> Vec<u8> {
    let inner = ipv4(v4(20), v4(21), TCP, 1, 0, false, &tcp(1, 2, payload));
    let len = u16::try_from(inner.len()).unwrap_or(0).to_be_bytes();
    match port {
        4789 | 8472 => [&[8u8, 0, 0, 0, 0, 0, 1, 0][..], &eth(0x0800, &inner)].concat(),
        6081 => [&[0u8, 0, 0x65, 0x58, 0, 0, 1, 0][..], &eth(0x0800, &inner)].concat(),
        2152 => [&[0x30u8, 0xff, len[0], len[1], 0, 0, 0, 1][..], &inner].concat(),
        6635 => [&[0u8, 0, 1, 0x40][..], &inner].concat(),
        _ => payload.to_vec(),
    }
}

/// The ports that matter: tunnels the extractor unwraps and plain ones.
fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(4789u16),
        Just(8472),
        Just(6081),
        Just(2152),
        Just(6635),
        Just(443),
        Just(53),
        any::<u16>(),
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    link: u8,
    tags: u8,
    ip6: bool,
    /// IPv6 extension headers before the transport (see `ext_headers`).
    ext: u8,
    frag: u8,
    kind: u8,
    port: u16,
    host: u8,
    payload: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..5,
        0u8..4,
        any::<bool>(),
        0u8..5,
        0u8..4,
        any::<u8>(),
        port(),
        // Few hosts, so later fragments meet their first ones in the table.
        0u8..4,
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(
            |(link, tags, ip6, ext, frag, kind, port, host, payload)| Spec {
                link,
                tags,
                ip6,
                ext,
                frag,
                kind,
                port,
                host,
                payload,
            },
        )
}

/// The frame `s` describes, its link type, and where its IP and transport
/// headers start (mutations aim there).
fn build(s: &Spec) -> (Vec<u8>, LinkType, [usize; 2]) {
    let (f, link) = frame(s);
    let ip = f.len() - ip_len(s);
    let l4 = if s.ip6 {
        ip + 40 + ext_len(s.ext) + 8 * usize::from(s.frag > 0)
    } else {
        ip + 20
    };
    (f, link, [ip, l4])
}

/// IPv6 extension headers of kind `k` before `body` (whose protocol is
/// `next`): none; hop-by-hop options (RFC 8200 §4.3, a PadN option);
/// a routing header with no segments left (§4.4); an authentication header
/// (RFC 4302 §2, 12 bytes); destination options then hop-by-hop.
fn ext_headers(k: u8, next: u8, body: Vec<u8>) -> (Vec<u8>, u8) {
    let opts = |next: u8| [next, 0, 1, 4, 0, 0, 0, 0];
    match k {
        1 => ([&opts(next)[..], &body].concat(), 0),
        2 => ([&[next, 0, 4, 0, 0, 0, 0, 0][..], &body].concat(), 43),
        3 => (
            [&[next, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1][..], &body].concat(),
            51,
        ),
        4 => ([&opts(0)[..], &opts(next)[..], &body].concat(), 60),
        _ => (body, next),
    }
}

fn ext_len(k: u8) -> usize {
    [0, 8, 8, 12, 16].get(usize::from(k)).copied().unwrap_or(0)
}

fn ip_len(s: &Spec) -> usize {
    let (_, l4) = transport(s.kind, s.port, &s.payload);
    if s.ip6 {
        40 + l4.len() + ext_len(s.ext) + 8 * usize::from(s.frag > 0)
    } else {
        20 + l4.len()
    }
}

fn frame(s: &Spec) -> (Vec<u8>, LinkType) {
    let (proto, l4) = transport(s.kind, s.port, &s.payload);
    // frag: 0 whole, 1 first fragment, 2 later fragment, 3 atomic (v6).
    let (off, more) = match s.frag {
        1 => (0, true),
        2 => (3, false),
        _ => (0, false),
    };
    let (ty, ip) = if s.ip6 {
        let mut next = proto;
        let mut body = l4;
        if s.frag > 0 {
            body = ipv6_frag(next, off, more, 77, &body);
            next = 44;
        }
        (body, next) = ext_headers(s.ext, next, body);
        (0x86dd, ipv6(v6(s.host), v6(1), next, &body))
    } else {
        let frame = ipv4(v4(u32::from(s.host)), v4(1), proto, 77, off, more, &l4);
        (0x0800, frame)
    };
    let mut inner = ip;
    let mut ty: u16 = ty;
    for t in 0..s.tags {
        inner = [&[0, t + 1][..], &ty.to_be_bytes(), &inner].concat();
        ty = if t % 2 == 0 { 0x8100 } else { 0x88a8 };
    }
    match s.link {
        0 | 1 => (eth(ty, &inner), LinkType::ETHERNET),
        2 => {
            let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            h.extend_from_slice(&ty.to_be_bytes());
            h.extend_from_slice(&inner);
            (h, LinkType::LINUX_SLL)
        }
        3 => {
            let mut h = ty.to_be_bytes().to_vec();
            h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            h.extend_from_slice(&inner);
            (h, LinkType::LINUX_SLL2)
        }
        // Raw IP (with tags, the bytes start with a tag: garbage to it).
        _ => (inner, LinkType::RAW),
    }
}

/// One change to a built frame.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite the byte `delta` bytes into the frame, the IP header or
    /// the transport header (`base` 0, 1, 2).
    Byte {
        base: usize,
        delta: usize,
        value: u8,
    },
    /// Move a length field (IPv4 total / IPv6 payload length, UDP length,
    /// TCP data offset: `field` 0, 1, 2) by `by`, or set it when `set`.
    Length {
        field: u8,
        by: i16,
        set: Option<u16>,
    },
    /// Set the IP protocol / IPv6 next header, or the IPv4 header length
    /// (in 4-byte units, when `ihl`).
    Header { value: u8, ihl: bool },
}

impl Mutation {
    fn apply(&self, f: &mut [u8], ip: usize, l4: usize, ip6: bool) {
        match *self {
            Mutation::Byte { base, delta, value } => {
                let at = [0, ip, l4].get(base).copied().unwrap_or(0) + delta;
                if let Some(b) = f.get_mut(at) {
                    *b = value;
                }
            }
            Mutation::Header { value, ihl } => {
                let at = match (ip6, ihl) {
                    (true, _) => ip + 6,
                    (false, false) => ip + 9,
                    (false, true) => {
                        if let Some(b) = f.get_mut(ip) {
                            *b = 0x40 | (value & 0x0f);
                        }
                        return;
                    }
                };
                if let Some(b) = f.get_mut(at) {
                    *b = value;
                }
            }
            Mutation::Length { field, by, set } => {
                let at = match field {
                    0 if ip6 => ip + 4,
                    0 => ip + 2,
                    1 => l4 + 4,
                    _ => {
                        if let Some(b) = f.get_mut(l4 + 12) {
                            let units = (*b >> 4).wrapping_add(by as u8) & 0x0f;
                            *b = set.map_or(units, |v| v as u8 & 0x0f) << 4;
                        }
                        return;
                    }
                };
                if let Some(b) = f.get_mut(at..at + 2) {
                    let old = u16::from_be_bytes([b[0], b[1]]);
                    let new = set.unwrap_or(old.wrapping_add(by as u16));
                    b.copy_from_slice(&new.to_be_bytes());
                }
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..3, 0usize..48, byte()).prop_map(|(base, delta, value)| Mutation::Byte {
            base,
            delta,
            value
        }),
        (0u8..3, -9i16..10, proptest::option::of(0u16..12))
            .prop_map(|(field, by, set)| Mutation::Length { field, by, set }),
        (protocol(), any::<bool>()).prop_map(|(value, ihl)| Mutation::Header { value, ihl }),
    ]
}

/// The protocol numbers the extractor treats apart (extension headers,
/// tunnels, transports).
fn protocol() -> impl Strategy<Value = u8> {
    proptest::sample::select(vec![
        0u8, 1, 4, 6, 17, 41, 43, 44, 47, 51, 58, 59, 60, 132, 135,
    ])
}

/// Mutation values: small numbers hit length fields' edges, the rest is
/// noise.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        0u8..9,
        // Version nibbles, fragment flags.
        Just(0x20),
        Just(0x40),
        Just(0x45),
        Just(0x60),
        protocol(),
        any::<u8>(),
    ]
}

fn configs() -> impl Strategy<Value = ExtractConfig> {
    (any::<bool>(), 0u8..4).prop_map(|(decap, layers)| {
        let mut c = ExtractConfig::default();
        c.decap_tunnels = decap;
        // Small limits make the tag count matter; 16 is the default.
        c.max_layers = if layers == 3 { 16 } else { layers };
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_path_picks_the_extractors_worker(
        config in configs(),
        frames in proptest::collection::vec(
            (
                spec(),
                proptest::collection::vec(mutation(), 0..5),
                proptest::option::of(0usize..120),
                prop_oneof![Just(0u32), 0u32..200],
            ),
            1..12,
        ),
    ) {
        for n in [2usize, 3, 4] {
            let mut fast = Dispatcher::new(config.clone(), n, true);
            let mut slow = Dispatcher::new(config.clone(), n, true).with_fast_path(false);
            // The same through `dispatch`, holding fragments: the same
            // deliveries in the same order.
            let (mut fast_held, mut slow_held) = (fast.clone(), slow.clone());
            let (mut fast_out, mut slow_out) = (Vec::new(), Vec::new());
            for (s, flips, cut, extra_wire) in &frames {
                let (mut f, link, [ip, l4]) = build(s);
                for m in flips {
                    m.apply(&mut f, ip, l4, s.ip6);
                }
                if let Some(c) = cut {
                    f.truncate(*c);
                }
                // Snapped captures: the wire length may exceed the bytes.
                let wire = u32::try_from(f.len()).unwrap_or(u32::MAX) + extra_wire;
                let p = view(&f, link, wire);
                prop_assert_eq!(fast.worker_for(&p), slow.worker_for(&p), "{:?} {:02x?}", s, f);
                fast_held.dispatch(&p, &mut |w, p| fast_out.push((w, p.data.to_vec())));
                slow_held.dispatch(&p, &mut |w, p| slow_out.push((w, p.data.to_vec())));
            }
            fast_held.flush(&mut |w, p| fast_out.push((w, p.data.to_vec())));
            slow_held.flush(&mut |w, p| slow_out.push((w, p.data.to_vec())));
            prop_assert_eq!(fast_out.len(), frames.len(), "every frame exactly once");
            prop_assert_eq!(&fast_out, &slow_out);
        }
    }

    #[test]
    fn flow_hash_is_symmetric_and_sees_every_field(
        a in any::<u128>(), b in any::<u128>(), pa in any::<u16>(), pb in any::<u16>(),
        proto in any::<u8>(), seed in any::<u64>(), v6 in any::<bool>(),
    ) {
        let (a, b) = if v6 {
            (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes()))
        } else {
            (IpAddr::from((a as u32).to_be_bytes()), IpAddr::from((b as u32).to_be_bytes()))
        };
        let h = flow_hash((a, pa), (b, pb), proto, seed);
        prop_assert_eq!(h, flow_hash((b, pb), (a, pa), proto, seed));
        // The extractor's canonical key (FiveTuple::from_directed) hashes
        // like the directed endpoints, whichever way round.
        let (k, _) = FiveTuple::from_directed(b, pb, a, pa, proto);
        prop_assert_eq!(key_hash(&k, seed), h);
        // Each field moves the hash (a 64-bit collision is ~2^-64).
        prop_assert_ne!(h, flow_hash((a, pa ^ 1), (b, pb), proto, seed));
        prop_assert_ne!(h, flow_hash((a, pa), (b, pb ^ 0x8000), proto, seed));
        prop_assert_ne!(h, flow_hash((a, pa), (b, pb), proto ^ 1, seed));
        prop_assert_ne!(h, flow_hash((a, pa), (b, pb), proto, seed ^ 1));
    }
}

/// The shortcut is really taken for plain packets and fragments, and
/// really avoided for tunnels and first fragments too short for their
/// transport header (otherwise the comparison above proves nothing).
#[test]
fn plain_packets_and_fragments_take_the_fast_path_and_the_rest_do_not() {
    let mut d = Dispatcher::new(ExtractConfig::default(), 2, true);
    let fast = [
        eth(
            0x0800,
            &ipv4(v4(1), v4(2), TCP, 1, 0, false, &tcp(1, 80, b"")),
        ),
        eth(0x86dd, &ipv6(v6(1), v6(2), UDP, &udp(1, 53, b"q"))),
        eth(
            0x8100,
            &[
                &[0u8, 5, 8, 0][..],
                &ipv4(v4(1), v4(2), UDP, 1, 0, false, &udp(1, 53, b"q")),
            ]
            .concat(),
        ),
        // First fragments with their transport header.
        eth(
            0x0800,
            &ipv4(v4(1), v4(2), UDP, 9, 0, true, &udp(1, 53, b"q")),
        ),
        eth(
            0x86dd,
            &ipv6(
                v6(1),
                v6(2),
                44,
                &ipv6_frag(UDP, 0, true, 5, &udp(1, 2, b"")),
            ),
        ),
        // Later fragments (offset 3 units = 24 bytes).
        eth(0x0800, &ipv4(v4(1), v4(2), UDP, 9, 3, false, b"rest of it")),
        eth(
            0x86dd,
            &ipv6(v6(1), v6(2), 44, &ipv6_frag(UDP, 3, false, 5, b"rest")),
        ),
    ];
    for f in &fast {
        d.worker_for(&view(f, LinkType::ETHERNET, f.len() as u32));
    }
    assert_eq!(d.counters().fast, 7);
    assert_eq!(d.counters().extracted, 0);
    let other = [
        // VXLAN (RFC 7348: UDP 4789, flags 0x08).
        eth(
            0x0800,
            &ipv4(
                v4(1),
                v4(2),
                UDP,
                1,
                0,
                false,
                &udp(1, 4789, &tunnel_payload(4789, b"")),
            ),
        ),
        // GRE.
        eth(
            0x0800,
            &ipv4(v4(1), v4(2), 47, 1, 0, false, &transport(5, 0, b"").1),
        ),
        // A first fragment holding 4 bytes of its 8-byte UDP header.
        eth(0x0800, &ipv4(v4(1), v4(2), UDP, 9, 0, true, &[0, 1, 0, 53])),
    ];
    for f in &other {
        d.worker_for(&view(f, LinkType::ETHERNET, f.len() as u32));
    }
    assert_eq!(d.counters().fast, 7);
    assert_eq!(d.counters().extracted, 3);
}

/// An IPv6 datagram carrying GRE (RFC 2784) to an inner IPv4 flow, cut in
/// two fragments (RFC 8200 §4.5): the later one, read by the fast path,
/// must follow the first one's inner flow through the fragment table.
#[test]
fn later_ipv6_fragment_of_a_tunnel_follows_its_first_fragment() {
    for inner_host in 1..64u32 {
        let mut fast = Dispatcher::new(ExtractConfig::default(), 2, true);
        let mut slow = Dispatcher::new(ExtractConfig::default(), 2, true).with_fast_path(false);
        let inner = ipv4(
            v4(inner_host),
            v4(500),
            TCP,
            1,
            0,
            false,
            &tcp(1, 2, &[0; 16]),
        );
        let gre = [&[0u8, 0, 8, 0][..], &inner].concat();
        // First 48 bytes (6 units) in the first fragment, the rest after.
        let (head, tail) = gre.split_at(48);
        let first = eth(
            0x86dd,
            &ipv6(v6(1), v6(2), 44, &ipv6_frag(47, 0, true, 0x0102_0304, head)),
        );
        let later = eth(
            0x86dd,
            &ipv6(
                v6(1),
                v6(2),
                44,
                &ipv6_frag(47, 6, false, 0x0102_0304, tail),
            ),
        );
        let outer_worker = reduce(
            pair_hash(IpAddr::from(v6(1)), IpAddr::from(v6(2)), DEFAULT_SEED),
            2,
        );
        let w_first = fast.worker_for(&view(&first, LinkType::ETHERNET, first.len() as u32));
        assert_eq!(
            w_first,
            slow.worker_for(&view(&first, LinkType::ETHERNET, first.len() as u32))
        );
        if w_first == outer_worker {
            // The inner flow hashes like the outer pair: try another.
            continue;
        }
        let p = view(&later, LinkType::ETHERNET, later.len() as u32);
        assert_eq!(fast.worker_for(&p), w_first);
        assert_eq!(slow.worker_for(&p), w_first);
        assert_eq!(
            fast.counters().fast,
            1,
            "the later fragment took the fast path"
        );
        return;
    }
    panic!("no inner flow hashed away from the outer pair");
}

/// A plain first fragment takes its slot of the fragment table on the fast
/// path as it does through the extractor: when it lands in the slot of a
/// tunnel's datagram, that datagram's later fragment no longer finds its
/// first fragment and goes by its own addresses, on both paths.
#[test]
fn plain_first_fragments_take_their_table_slot_on_the_fast_path() {
    let config = ExtractConfig::default;
    let (oa, ob) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let seed = DEFAULT_SEED;
    let outer_worker = reduce(pair_hash(IpAddr::from(oa), IpAddr::from(ob), seed), 2);
    // An IP-in-IP datagram (RFC 2003) whose inner flow hashes elsewhere.
    let Some(inner) = (0..1000u32)
        .map(|i| {
            ipv4(
                v4(i),
                v4(i + 9000),
                TCP,
                1,
                0,
                false,
                &tcp(1234, 80, &[5; 40]),
            )
        })
        .find(|inner| {
            let mut d = Dispatcher::new(config(), 2, true);
            d.worker_for(&view(&eth(0x0800, inner), LinkType::ETHERNET, 200)) != outer_worker
        })
    else {
        panic!("every inner flow hashed like the outer pair");
    };
    let tunnel_id = 4242u16;
    let first = eth(
        0x0800,
        &ipv4(
            oa,
            ob,
            4,
            tunnel_id,
            0,
            true,
            inner.get(..48).unwrap_or(&[]),
        ),
    );
    let later = eth(
        0x0800,
        &ipv4(
            oa,
            ob,
            4,
            tunnel_id,
            6,
            false,
            inner.get(48..).unwrap_or(&[]),
        ),
    );
    // A plain UDP first fragment from other hosts whose identity falls in
    // the tunnel datagram's slot (RFC 791 §3.2 identity).
    let as_u32 = u32::from_be_bytes;
    let slot = slot_of(Frag::v4(as_u32(oa), as_u32(ob), 4, u32::from(tunnel_id)).ident(seed));
    let Some(id) = (0..=u16::MAX).find(|&id| {
        slot_of(Frag::v4(as_u32(v4(1)), as_u32(v4(2)), UDP, u32::from(id)).ident(seed)) == slot
    }) else {
        panic!("no colliding identity");
    };
    let plain = eth(
        0x0800,
        &ipv4(v4(1), v4(2), UDP, id, 0, true, &udp(1, 53, b"q")),
    );
    for fast_path in [true, false] {
        let mut d = Dispatcher::new(config(), 2, true).with_fast_path(fast_path);
        let mut w = |f: &[u8]| d.worker_for(&view(f, LinkType::ETHERNET, f.len() as u32));
        assert_ne!(w(&first), outer_worker);
        w(&plain);
        assert_eq!(w(&later), outer_worker, "fast path {fast_path}");
    }
}
