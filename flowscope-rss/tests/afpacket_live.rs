//! Live capture over a veth pair inside a network namespace this test
//! creates (root only; prints `SKIP` and passes otherwise).
//!
//! Frames are sent with `TxSocket` on `va` and captured with
//! `AfPacketSource` on its peer `vb`. Only locally administered MACs and
//! 198.18.0.0/15 addresses are used, and only inside the namespace; IPv6 is
//! disabled in it so the kernel sends nothing of its own (no DAD, no router
//! solicitations), which lets the counts be exact.
#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use flowscope_core::{LinkType, Timestamp};
use flowscope_rss::afpacket::{
    enter_network_namespace, AfPacketConfig, AfPacketSource, BpfProgram, FanoutMode, TxSocket,
};
use flowscope_rss::{Batch, PacketSource};

// ---------------------------------------------------------------- namespace

fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\tsaved\tfs".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A network namespace holding the veth pair `va` <-> `vb`, removed (with
/// the veths) on drop, also when the test panics.
struct Netns {
    name: String,
}

impl Netns {
    /// `None` (after printing why) when the test cannot run here.
    fn create(tag: &str) -> Option<Netns> {
        if !is_root() {
            println!("SKIP: not root");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fsl{}{tag}{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = run(&["ip", "netns", "add", &name]) {
            println!("SKIP: cannot create a network namespace: {e}");
            return None;
        }
        let ns = Netns { name };
        let n = ns.name.as_str();
        // No IPv6 means no DAD/RS/MLD frames of the kernel's own on the veths.
        for key in ["all", "default"] {
            let _ = run(&[
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ]);
        }
        let setup = [
            vec![
                "ip", "-n", n, "link", "add", "va", "type", "veth", "peer", "name", "vb",
            ],
            vec!["ip", "-n", n, "link", "set", "va", "up"],
            vec!["ip", "-n", n, "link", "set", "vb", "up"],
        ];
        for cmd in setup {
            run(&cmd).unwrap_or_else(|e| panic!("namespace setup: {e}"));
        }
        Some(ns)
    }

    /// Runs `f` on a thread that has entered the namespace (setns(2) is per
    /// thread); sockets it opens stay in the namespace.
    fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = PathBuf::from("/run/netns").join(&self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_network_namespace(&path).expect("setns into the test namespace");
                f()
            })
            .join()
            .expect("namespace thread")
        })
    }

    /// The device's promiscuity count (`ip -d link`): packet-socket
    /// membership raises it without setting the IFF_PROMISC flag that
    /// `ip link` shows (the kernel reports only the user-set flag there).
    fn promiscuity(&self, dev: &str) -> u32 {
        let out = Command::new("ip")
            .args(["-d", "-n", &self.name, "link", "show", dev])
            .output()
            .expect("ip -d link show");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = text.split_whitespace();
        words
            .by_ref()
            .find(|w| *w == "promiscuity")
            .and_then(|_| words.next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no promiscuity count in {text:?}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run(&["ip", "netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

// ------------------------------------------------------------------- frames

const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// RFC 1071 checksum of an IPv4 header.
fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame with the given VLAN tags `(tpid, tci)` (outermost
/// first) carrying IPv4 with protocol `proto` (17 UDP, 6 TCP) between
/// 198.18.0.0/15 addresses; `seq` and `pad` make each frame unique and set
/// its size.
fn frame(
    tags: &[(u16, u16)],
    proto: u8,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    pad: usize,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let l4_len = if proto == 6 { 20 } else { 8 };
    let payload_len = 4 + pad;
    let total = (20 + l4_len + payload_len) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src.0);
    ip.extend_from_slice(&dst.0);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    if proto == 6 {
        // seq, ack, offset 5 words, flags ACK, window; checksum 0 (nobody checks).
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]); // UDP checksum 0: none (RFC 768).
    }
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend(std::iter::repeat_n(0xa5u8, pad));
    f
}

fn udp(seq: u32, pad: usize) -> Vec<u8> {
    frame(
        &[],
        17,
        ([198, 18, 0, 1], 40000),
        ([198, 18, 0, 2], 53),
        seq,
        pad,
    )
}

// ---------------------------------------------------------------- capturing

fn rx_config(group_tag: u32) -> AfPacketConfig {
    AfPacketConfig::new("vb")
        .ring(1 << 16, 8)
        .block_timeout(Duration::from_millis(5))
        .poll_timeout(Duration::from_millis(50))
        .source_id(group_tag)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Got {
    data: Vec<u8>,
    wire_len: u32,
    source: Option<u32>,
    ts: Timestamp,
}

/// Reads from every source until each has reported an idle tick with at
/// least `want` frames in hand (so extras would be seen too), or 5 s pass.
fn drain(sources: &mut [&mut AfPacketSource], want: usize) -> Vec<Got> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    loop {
        let mut all_idle = true;
        for src in sources.iter_mut() {
            let b = src
                .next_batch(&mut |v| {
                    assert_eq!(v.link_type, LinkType::ETHERNET);
                    got.push(Got {
                        data: v.data.to_vec(),
                        wire_len: v.wire_len,
                        source: v.source,
                        ts: v.ts,
                    })
                })
                .expect("next_batch");
            match b {
                Batch::Packets(n) => {
                    assert!(n > 0);
                    all_idle = false
                }
                Batch::Idle { .. } => {}
                other => panic!("a live source returned {other:?}"),
            }
        }
        if (all_idle && got.len() >= want) || Instant::now() > deadline {
            return got;
        }
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970");
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

// -------------------------------------------------------------------- tests

#[test]
fn frames_arrive_byte_identical_and_kernel_stats_are_totals() {
    let Some(ns) = Netns::create("a") else { return };
    let mut rx = ns
        .inside(|| AfPacketSource::open(&rx_config(7)))
        .expect("open rx");
    let mut tx = ns.inside(|| TxSocket::open("va")).expect("open tx");
    assert_eq!(rx.link_type(), LinkType::ETHERNET);

    // Nothing sent yet: an idle tick on the realtime clock.
    let before = now();
    match rx
        .next_batch(&mut |_| panic!("no frame was sent"))
        .expect("poll")
    {
        Batch::Idle { now: t } => assert!(t >= before && t <= now(), "{t} vs {before}"),
        other => panic!("expected idle, got {other:?}"),
    }

    // Sizes 64..1514 bytes (the veth MTU of 1500 plus 14), so the 100 frames
    // (~78 KB) span more than one 64 KiB block.
    let sent: Vec<Vec<u8>> = (0..100u32)
        .map(|i| udp(i, (i as usize * 37) % 1472))
        .collect();
    let t0 = now();
    let mut got = Vec::new();
    let mut totals = Vec::new();
    for half in sent.chunks(50) {
        for f in half {
            tx.send(f).expect("send");
        }
        got.extend(drain(&mut [&mut rx], got.len() + half.len()));
        // The kernel clears its counters on each read; stats() must add up.
        totals.push(rx.stats());
    }
    let t1 = now();

    assert_eq!(got.len(), 100, "frames captured");
    // Two CPUs may reorder the veth backlog, so compare as sets.
    let got_frames: BTreeSet<Vec<u8>> = got.iter().map(|g| g.data.clone()).collect();
    let sent_frames: BTreeSet<Vec<u8>> = sent.iter().cloned().collect();
    assert_eq!(got_frames, sent_frames, "every frame byte-identical");
    for g in &got {
        assert_eq!(g.wire_len as usize, g.data.len());
        assert_eq!(g.source, Some(7));
        assert!(
            g.ts >= t0 && g.ts <= t1,
            "timestamp {} outside the send window",
            g.ts
        );
    }
    assert_eq!((totals[0].packets, totals[0].drops), (50, 0));
    assert_eq!((totals[1].packets, totals[1].drops), (100, 0));
    assert_eq!(rx.stats().packets, 100, "no more reads, no more packets");
    assert_eq!(rx.malformed_blocks(), 0);
    println!("captured {} frames, stats {:?}", got.len(), totals[1]);
}

#[test]
fn cluster_flow_fanout_keeps_each_flow_and_both_directions_on_one_socket() {
    let Some(ns) = Netns::create("f") else { return };
    let group = (std::process::id() & 0xffff) as u16;
    let open = |id| {
        ns.inside(|| AfPacketSource::open(&rx_config(id).fanout(group, FanoutMode::ClusterFlow)))
            .expect("open fanout member")
    };
    let (mut a, mut b) = (open(0), open(1));
    let mut tx = ns.inside(|| TxSocket::open("va")).expect("open tx");

    // 32 flows, 3 frames each way.
    let mut sent = 0usize;
    for flow in 0..32u8 {
        let client = ([198, 18, 1, flow], 40000 + u16::from(flow));
        let server = ([198, 19, 0, 1], 443);
        for k in 0..3u32 {
            tx.send(&frame(&[], 17, client, server, k, 10))
                .expect("send");
            tx.send(&frame(&[], 17, server, client, k, 10))
                .expect("send");
            sent += 2;
        }
    }
    let got = drain(&mut [&mut a, &mut b], sent);
    assert_eq!(got.len(), sent, "every frame captured once by the group");

    // Flow = the unordered pair of (address, port) ends (Ethernet 14 bytes,
    // then IPv4 addresses at 12..20 and ports right after the 20-byte header).
    let mut owner: BTreeMap<Vec<[u8; 6]>, BTreeSet<u32>> = BTreeMap::new();
    for g in &got {
        let d = &g.data;
        let end = |ip: usize, port: usize| {
            let mut e = [0u8; 6];
            e[..4].copy_from_slice(&d[14 + ip..14 + ip + 4]);
            e[4..].copy_from_slice(&d[34 + port..34 + port + 2]);
            e
        };
        let mut key = vec![end(12, 0), end(16, 2)];
        key.sort();
        owner
            .entry(key)
            .or_default()
            .insert(g.source.expect("tagged"));
    }
    assert_eq!(owner.len(), 32);
    for (flow, sources) in &owner {
        assert_eq!(sources.len(), 1, "flow {flow:?} split over {sources:?}");
    }
    let on_a = owner.values().filter(|s| s.contains(&0)).count();
    // 32 flows hashed over 2 sockets all landing on one: p = 2^-31.
    assert!(on_a > 0 && on_a < 32, "{on_a} of 32 flows on socket 0");
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.packets + sb.packets, sent as u64);
    assert_eq!(sa.drops + sb.drops, 0);
    println!(
        "fanout: {on_a} flows on socket 0, {} on socket 1; stats {sa:?} {sb:?}",
        32 - on_a
    );
}

#[test]
fn stripped_vlan_tags_are_put_back_as_sent() {
    let Some(ns) = Netns::create("v") else { return };
    let mut rx = ns
        .inside(|| AfPacketSource::open(&rx_config(0)))
        .expect("open rx");
    let mut tx = ns.inside(|| TxSocket::open("va")).expect("open tx");
    let (src, dst) = (([198, 18, 0, 1], 1000), ([198, 18, 0, 2], 2000));
    let sent = [
        // 802.1Q, PCP 1, VID 100.
        frame(&[(0x8100, 0x2064)], 17, src, dst, 1, 0),
        // QinQ: 802.1ad outer VID 200 (the kernel strips this one and reports
        // TPID 0x88a8), 802.1Q inner VID 300 (stays in the payload).
        frame(&[(0x88a8, 0x00c8), (0x8100, 0x012c)], 17, src, dst, 2, 0),
        // VID 0, priority only: still a tag the kernel strips.
        frame(&[(0x8100, 0xe000)], 17, src, dst, 3, 0),
        frame(&[], 17, src, dst, 4, 0),
    ];
    for f in &sent {
        tx.send(f).expect("send");
    }
    let got = drain(&mut [&mut rx], sent.len());
    let got: BTreeSet<(Vec<u8>, u32)> = got.into_iter().map(|g| (g.data, g.wire_len)).collect();
    let want: BTreeSet<(Vec<u8>, u32)> = sent.iter().map(|f| (f.clone(), f.len() as u32)).collect();
    assert_eq!(got, want, "tagged frames arrive exactly as sent");
    assert_eq!(rx.stats().packets, sent.len() as u64);
}

#[test]
fn bpf_filter_from_tcpdump_text_keeps_only_udp() {
    let Some(ns) = Netns::create("b") else { return };
    // `tcpdump -ddd -y EN10MB udp` (tcpdump 4.99.3 / libpcap 1.10.3):
    //  0: ldh [12]              EtherType
    //  1: jeq 0x800 ? 2 : 4     IPv4?
    //  2: ldb [23]              IPv4 protocol
    //  3: jeq 17 ? 10 : 11
    //  4: jeq 0x86dd ? 5 : 11   IPv6?
    //  5: ldb [20]              next header
    //  6: jeq 17 ? 10 : 7
    //  7: jeq 44 ? 8 : 11       fragment header
    //  8: ldb [54]              its next header
    //  9: jeq 17 ? 10 : 11
    // 10: ret 262144            accept (snap length)
    // 11: ret 0                 drop
    let text = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 17\n21 0 6 34525\n\
                48 0 0 20\n21 3 0 17\n21 0 3 44\n48 0 0 54\n21 0 1 17\n\
                6 0 0 262144\n6 0 0 0\n";
    let filter = BpfProgram::parse_tcpdump_ddd(text).expect("parse");
    let mut rx = ns
        .inside(|| AfPacketSource::open(&rx_config(0).filter(filter)))
        .expect("open rx");
    let mut tx = ns.inside(|| TxSocket::open("va")).expect("open tx");
    let (src, dst) = (([198, 18, 0, 1], 1000), ([198, 18, 0, 2], 80));
    let mut want = BTreeSet::new();
    for i in 0..10u32 {
        let u = frame(&[], 17, src, dst, i, 0);
        tx.send(&u).expect("send udp");
        want.insert(u);
        tx.send(&frame(&[], 6, src, dst, i, 0)).expect("send tcp");
    }
    let got: BTreeSet<Vec<u8>> = drain(&mut [&mut rx], want.len())
        .into_iter()
        .map(|g| g.data)
        .collect();
    assert_eq!(got, want, "only the UDP frames pass");
    // Frames the filter refuses never reach the ring nor tp_packets.
    let st = rx.stats();
    assert_eq!((st.packets, st.drops), (10, 0));
}

#[test]
fn promiscuous_mode_lasts_as_long_as_the_socket() {
    let Some(ns) = Netns::create("p") else { return };
    assert_eq!(ns.promiscuity("vb"), 0);
    let rx = ns
        .inside(|| AfPacketSource::open(&rx_config(0).promiscuous(true)))
        .expect("open rx");
    let plain = ns
        .inside(|| AfPacketSource::open(&rx_config(1)))
        .expect("open rx");
    assert_eq!(ns.promiscuity("vb"), 1);
    drop(rx);
    assert_eq!(ns.promiscuity("vb"), 0);
    drop(plain);
}

#[test]
fn opening_a_missing_interface_fails_cleanly() {
    let Some(ns) = Netns::create("m") else { return };
    let err = ns
        .inside(|| AfPacketSource::open(&AfPacketConfig::new("nosuchif0")))
        .expect_err("no such interface");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}
