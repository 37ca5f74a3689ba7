//! The XDP program on a real interface (root only; prints `SKIP` and passes
//! otherwise, or when this build has no XDP object).
//!
//! Two network namespaces this test creates hold the veth pair `va` (in
//! the sending one) <-> `vb` (in the receiving one); the program is
//! attached in generic (SKB) mode on `vb` and frames are sent with
//! `TxSocket` on `va`. `vb` is read with an AF_PACKET socket, which sees a
//! frame only when XDP passed it.
//!
//! The key-layout check: the Rust side builds each flow's key from the
//! very frames it sends (flowscope's extractor, then
//! `BypassFlow::from_extracted`), inserts it, and the kernel must then drop
//! exactly those frames and count exactly their packets and bytes. A hash
//! lookup only hits when every key byte is equal, so a byte-order slip in
//! any field (the VLAN id, the ports) shows as frames that still pass and
//! counters left at zero.
//!
//! Only 198.18.0.0/15, 2001:2::/48 and locally administered MACs are used;
//! IPv6 is disabled on the interfaces so the kernel sends nothing itself.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope_core::{FlowExtractor, LinkType, PacketView, Timestamp};
use flowscope_prefilter::{
    embedded_object, AttachMode, AttachedMode, BidiCounters, BypassFlow, Expiry, FlowCounters,
    MapKind, Prefilter, PrefilterConfig,
};
use flowscope_rss::afpacket::{enter_network_namespace, AfPacketConfig, AfPacketSource, TxSocket};
use flowscope_rss::PacketSource;

// ---------------------------------------------------------------- namespaces

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn run(args: &[&str]) -> Result<String, String> {
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
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Two namespaces joined by the veth pair `va` (in `tx`) <-> `vb` (in
/// `rx`); both are deleted on drop, also when the test panics.
struct NetnsPair {
    tx: String,
    rx: String,
}

const VA_MAC: &str = "02:00:00:00:0a:01";
const VB_MAC: &str = "02:00:00:00:0b:01";

impl NetnsPair {
    fn create(tag: &str) -> Option<NetnsPair> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tx = format!("fspf{pid}{tag}{n}t");
        let rx = format!("fspf{pid}{tag}{n}r");
        if let Err(e) = run(&["ip", "netns", "add", &tx]) {
            println!("SKIP: cannot create a network namespace: {e}");
            return None;
        }
        // From here on the guard owns both names (deleting a missing one
        // only prints an error).
        let pair = NetnsPair { tx, rx };
        run(&["ip", "netns", "add", &pair.rx]).expect("second namespace");
        for ns in [&pair.tx, &pair.rx] {
            for key in ["all", "default"] {
                let _ = run(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ]);
            }
        }
        let (t, r) = (pair.tx.as_str(), pair.rx.as_str());
        let setup: [&[&str]; 5] = [
            &[
                "ip", "-n", t, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
                r,
            ],
            &["ip", "-n", t, "link", "set", "va", "address", VA_MAC, "up"],
            &["ip", "-n", r, "link", "set", "vb", "address", VB_MAC, "up"],
            &["ip", "-n", t, "link", "set", "lo", "up"],
            &["ip", "-n", r, "link", "set", "lo", "up"],
        ];
        for cmd in setup {
            run(cmd).unwrap_or_else(|e| panic!("namespace setup: {e}"));
        }
        Some(pair)
    }

    fn path(name: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(name)
    }

    /// A send socket on `va`, opened from a thread inside the sending
    /// namespace (the socket stays there whichever thread uses it).
    fn tx_socket(&self) -> TxSocket {
        let path = Self::path(&self.tx);
        std::thread::spawn(move || {
            enter_network_namespace(&path).expect("setns into the sending namespace");
            TxSocket::open("va").expect("TxSocket on va")
        })
        .join()
        .expect("tx thread")
    }

    /// `ip link show vb` in the receiving namespace.
    fn link_vb(&self) -> String {
        run(&["ip", "-n", &self.rx, "link", "show", "vb"]).expect("ip link show vb")
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.tx, &self.rx] {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

// -------------------------------------------------------------------- frames

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];

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

/// TCP (20 bytes, ACK) or UDP (8 bytes) header plus a payload whose first
/// four bytes are `seq` (every frame unique) and `pad` more bytes.
fn l4(proto: u8, sport: u16, dport: u16, seq: u32, pad: usize) -> Vec<u8> {
    let payload_len = 4 + pad;
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        h.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0]); // no UDP checksum (RFC 768)
    }
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend(std::iter::repeat_n(0x5a, pad));
    h
}

/// Ethernet header with VLAN tags `(tpid, tci)`, outermost first.
fn eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

#[derive(Clone, Copy)]
struct V4 {
    tags: &'static [(u16, u16)],
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    /// IPv4 flags + fragment offset field.
    frag: u16,
}

fn v4_frame(s: &V4, seq: u32, pad: usize) -> Vec<u8> {
    let body = l4(s.proto, s.sport, s.dport, seq, pad);
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, s.proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&s.frag.to_be_bytes());
    ip.extend_from_slice(&s.src);
    ip.extend_from_slice(&s.dst);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = eth(s.tags, 0x0800);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&body);
    f
}

#[derive(Clone, Copy)]
struct V6 {
    tags: &'static [(u16, u16)],
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    /// Extension headers before the transport header: (type, total length
    /// in bytes, a multiple of 8).
    ext: &'static [(u8, usize)],
}

fn v6_frame(s: &V6, seq: u32, pad: usize) -> Vec<u8> {
    let body = l4(s.proto, s.sport, s.dport, seq, pad);
    let mut exts = Vec::new();
    for (i, (_, len)) in s.ext.iter().enumerate() {
        // Next header: the following extension's type, or the transport.
        let next = s.ext.get(i + 1).map(|e| e.0).unwrap_or(s.proto);
        let mut h = vec![next, (len / 8 - 1) as u8];
        // PadN option filling the rest (RFC 8200 4.2): type 1, length.
        h.extend_from_slice(&[1, (len - 4) as u8]);
        h.extend(std::iter::repeat_n(0, len - 4));
        exts.extend_from_slice(&h);
    }
    let first = s.ext.first().map(|e| e.0).unwrap_or(s.proto);
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&((exts.len() + body.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[first, 64]);
    ip.extend_from_slice(&s.src);
    ip.extend_from_slice(&s.dst);
    let mut f = eth(s.tags, 0x86dd);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&exts);
    f.extend_from_slice(&body);
    f
}

fn v6addr(last: u8) -> [u8; 16] {
    // 2001:2::/48 (RFC 5180 benchmarking).
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x00, 0x02]);
    a[15] = last;
    a
}

/// One test flow: a way to build its frames (forward direction; reverse
/// when `rev`).
#[derive(Clone, Copy)]
enum Spec {
    V4(V4),
    V6(V6),
}

impl Spec {
    fn frame(&self, rev: bool, seq: u32, pad: usize) -> Vec<u8> {
        match *self {
            Spec::V4(mut s) => {
                if rev {
                    std::mem::swap(&mut s.src, &mut s.dst);
                    std::mem::swap(&mut s.sport, &mut s.dport);
                }
                v4_frame(&s, seq, pad)
            }
            Spec::V6(mut s) => {
                if rev {
                    std::mem::swap(&mut s.src, &mut s.dst);
                    std::mem::swap(&mut s.sport, &mut s.dport);
                }
                v6_frame(&s, seq, pad)
            }
        }
    }
}

/// The flows of the test: name, spec, whether its frames must be dropped
/// once every "bypassed" flow is inserted.
fn specs() -> Vec<(&'static str, Spec, bool)> {
    let base4 = V4 {
        tags: &[],
        proto: 17,
        src: [198, 18, 0, 1],
        dst: [198, 19, 0, 2],
        sport: 40000,
        dport: 53,
        frag: 0x4000, // DF
    };
    let base6 = V6 {
        tags: &[],
        proto: 6,
        src: v6addr(1),
        dst: v6addr(2),
        sport: 50123,
        dport: 443,
        ext: &[],
    };
    vec![
        ("ipv4-udp", Spec::V4(base4), true),
        // VID 0x123 with PCP 5 set: the key must hold 0x0123 in network
        // order (swapped bytes or an unmasked PCP would miss).
        (
            "ipv4-tcp-vlan",
            Spec::V4(V4 {
                tags: &[(0x8100, 0xa123)],
                proto: 6,
                sport: 40001,
                dport: 8080,
                ..base4
            }),
            true,
        ),
        // QinQ: the outer (802.1ad) VID 0x2c5 is the key's, not the inner 10.
        (
            "ipv4-udp-qinq",
            Spec::V4(V4 {
                tags: &[(0x88a8, 0x02c5), (0x8100, 0x000a)],
                sport: 40002,
                ..base4
            }),
            true,
        ),
        // Hop-by-hop (8 bytes) then destination options (16 bytes).
        (
            "ipv6-tcp-ext",
            Spec::V6(V6 {
                ext: &[(0, 8), (60, 16)],
                ..base6
            }),
            true,
        ),
        (
            "ipv6-udp-vlan",
            Spec::V6(V6 {
                tags: &[(0x8100, 0x0456)],
                proto: 17,
                sport: 50124,
                dport: 4433,
                ..base6
            }),
            true,
        ),
        // Controls that must keep passing: another port of the same hosts,
        // and a first fragment (MF set) of a bypassed flow.
        (
            "ipv4-udp-other-port",
            Spec::V4(V4 {
                sport: 40009,
                ..base4
            }),
            false,
        ),
        (
            "ipv4-udp-fragment",
            Spec::V4(V4 {
                frag: 0x2000, // MF
                ..base4
            }),
            false,
        ),
    ]
}

/// The Rust side's view of a frame: flowscope's extractor, then the key
/// the XDP program would build.
fn flow_of(frame: &[u8]) -> BypassFlow {
    let ex = FiveTupleExtractor::new(ExtractConfig::default())
        .extract(&PacketView::new(
            frame,
            Timestamp::default(),
            LinkType::ETHERNET,
        ))
        .expect("extractor accepts the test frame");
    BypassFlow::from_extracted(&ex).expect("bypassable flow")
}

// ----------------------------------------------------------------- receiving

/// Reads `vb` until an idle tick after `settle`, returning every frame.
fn drain(src: &mut AfPacketSource) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut got = Vec::new();
    loop {
        let b = src
            .next_batch(&mut |v| got.push(v.data.to_vec()))
            .expect("next_batch");
        let idle = matches!(b, flowscope_rss::Batch::Idle { .. });
        if (idle && start.elapsed() > Duration::from_millis(300))
            || start.elapsed() > Duration::from_secs(5)
        {
            return got;
        }
    }
}

/// Sends, per flow, `n` frames forward and `n` back (each a different
/// size), and returns what each flow sent per direction.
fn send_all(tx: &mut TxSocket, round: u32, n: u32) -> Sent {
    let mut sent = BTreeMap::new();
    for (name, spec, _) in specs() {
        let mut fwd = Vec::new();
        let mut rev = Vec::new();
        for i in 0..n {
            let seq = round * 1000 + i;
            let f = spec.frame(false, seq, 30 + i as usize * 7);
            tx.send(&f).expect("send forward");
            fwd.push(f);
            let r = spec.frame(true, seq, 40 + i as usize * 3);
            tx.send(&r).expect("send reverse");
            rev.push(r);
        }
        sent.insert(name, (fwd, rev));
    }
    sent
}

type Sent = BTreeMap<&'static str, (Vec<Vec<u8>>, Vec<Vec<u8>>)>;

/// How many of `frames` belong to each flow of `sent` ("?" for a frame
/// nobody sent): a readable summary for the assertions.
fn per_flow(sent: &Sent, frames: &[Vec<u8>]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for f in frames {
        let name = sent
            .iter()
            .find(|(_, (fwd, rev))| fwd.contains(f) || rev.contains(f))
            .map(|(n, _)| *n)
            .unwrap_or("?");
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

fn counters_of(frames: &[Vec<u8>]) -> FlowCounters {
    FlowCounters {
        packets: frames.len() as u64,
        bytes: frames.iter().map(|f| f.len() as u64).sum(),
    }
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    if let Err(why) = embedded_object(MapKind::Hash) {
        return Some(format!("no XDP object in this build: {why}"));
    }
    None
}

// --------------------------------------------------------------------- tests

fn bypass_round_trip(kind: MapKind, tag: &str) {
    if let Some(why) = skip_reason() {
        println!("SKIP: {why}");
        return;
    }
    let Some(ns) = NetnsPair::create(tag) else {
        return;
    };
    let mut tx = ns.tx_socket();
    let rx_path = NetnsPair::path(&ns.rx);
    assert!(!ns.link_vb().contains("xdp"), "fresh veth has no XDP");

    std::thread::scope(|s| {
        s.spawn(|| {
            enter_network_namespace(&rx_path).expect("setns into the receiving namespace");
            let mut pf = Prefilter::load(&PrefilterConfig::new().map_kind(kind).max_entries(1024))
                .expect("load the XDP program");
            assert_eq!(pf.map_kind(), kind);
            let mode = pf.attach("vb", AttachMode::Generic).expect("attach");
            assert_eq!(mode, AttachedMode::Generic);
            assert!(ns.link_vb().contains("xdpgeneric"), "{}", ns.link_vb());
            let mut rx = AfPacketSource::open(
                &AfPacketConfig::new("vb")
                    .ring(1 << 16, 8)
                    .block_timeout(Duration::from_millis(5))
                    .poll_timeout(Duration::from_millis(50)),
            )
            .expect("AF_PACKET on vb");

            // (a) No entries: every frame passes.
            let sent = send_all(&mut tx, 1, 3);
            let mut got = drain(&mut rx);
            let mut want: Vec<Vec<u8>> = sent
                .values()
                .flat_map(|(f, r)| f.iter().chain(r.iter()).cloned())
                .collect();
            assert_eq!(
                per_flow(&sent, &got),
                per_flow(&sent, &want),
                "(a) every frame passes"
            );
            got.sort();
            want.sort();
            assert!(got == want, "(a) the frames arrive unchanged");

            // (b) Insert each bypassed flow, keyed by the Rust side from
            // its first frame; then send again.
            let mut flows = BTreeMap::new();
            for (name, _, bypass) in specs() {
                let (fwd, rev) = &sent[name];
                let flow = flow_of(&fwd[0]);
                // The extractor sees the reply as the same flow reversed.
                assert_eq!(flow_of(&rev[0]), flow.reversed(), "{name}");
                if bypass {
                    pf.insert(&flow).expect("insert");
                    flows.insert(name, flow);
                }
            }
            let n_bypassed = flows.len() as u64;
            assert_eq!(pf.stats().inserts_ok, n_bypassed);
            assert_eq!(pf.entries().expect("entries").len() as u64, 2 * n_bypassed);
            // Re-inserting keeps the entries (and their counters).
            let first = *flows.values().next().expect("a flow");
            pf.insert(&first).expect("re-insert");
            assert_eq!(pf.entries().expect("entries").len() as u64, 2 * n_bypassed);

            let sent = send_all(&mut tx, 2, 4);
            let mut got = drain(&mut rx);
            let mut want: Vec<Vec<u8>> = specs()
                .iter()
                .filter(|(_, _, bypass)| !bypass)
                .flat_map(|(name, _, _)| {
                    let (f, r) = &sent[name];
                    f.iter().chain(r.iter()).cloned().collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(
                per_flow(&sent, &got),
                per_flow(&sent, &want),
                "(b) only the control frames pass"
            );
            got.sort();
            want.sort();
            assert!(got == want, "(b) the control frames arrive unchanged");

            for (name, flow) in &flows {
                let (fwd, rev) = &sent[name];
                let c = pf.counters(flow).expect("counters").expect("present");
                assert_eq!(
                    c,
                    BidiCounters {
                        forward: counters_of(fwd),
                        reverse: counters_of(rev),
                    },
                    "(b) {name}: the kernel counted every dropped frame on the Rust-built key"
                );
            }

            // Expiry as Suricata does it: moved -> Active; unchanged ->
            // Expired with the totals, entries gone; then Missing.
            let (name, flow) = flows.iter().next().expect("a flow");
            let (fwd, rev) = &sent[name];
            let total = BidiCounters {
                forward: counters_of(fwd),
                reverse: counters_of(rev),
            };
            assert_eq!(
                pf.expire_idle(flow, &BidiCounters::default())
                    .expect("expire"),
                Expiry::Active(total)
            );
            assert_eq!(
                pf.expire_idle(flow, &total).expect("expire"),
                Expiry::Expired(total)
            );
            assert_eq!(
                pf.expire_idle(flow, &total).expect("expire"),
                Expiry::Missing
            );
            assert_eq!(pf.stats().bypassed_packets, total.total().packets);
            assert_eq!(
                pf.stats().entries_v4 + pf.stats().entries_v6,
                2 * n_bypassed - 2
            );
            // Its frames pass again.
            let again = send_all(&mut tx, 3, 1);
            let got = drain(&mut rx);
            let (f, r) = &again[name];
            assert!(
                got.contains(&f[0]) && got.contains(&r[0]),
                "expired flow passes"
            );

            drop(rx);
            drop(pf);
        });
    });

    // (c) Dropping the manager detached the program.
    let link = ns.link_vb();
    assert!(
        !link.contains("xdp"),
        "XDP still attached after drop: {link}"
    );
}

#[test]
fn hash_maps_bypass_and_count_ipv4_ipv6_vlan_qinq() {
    bypass_round_trip(MapKind::Hash, "h");
}

#[test]
fn lru_maps_bypass_and_count_ipv4_ipv6_vlan_qinq() {
    bypass_round_trip(MapKind::Lru, "l");
}

/// A full hash map refuses the insert: counted as failed, and nothing is
/// left half-inserted (each flow takes two entries, one per direction).
#[test]
fn full_hash_map_counts_the_failed_insert() {
    if let Some(why) = skip_reason() {
        println!("SKIP: {why}");
        return;
    }
    let mut pf = Prefilter::load(&PrefilterConfig::new().max_entries(3)).expect("load");
    let flow = |port| BypassFlow {
        src: "198.18.0.1".parse().expect("addr"),
        dst: "198.18.0.2".parse().expect("addr"),
        src_port: port,
        dst_port: 80,
        proto: 6,
        vlan: 0,
    };
    pf.insert(&flow(1)).expect("first flow fits");
    // One entry left: the forward direction fits, the reverse does not,
    // and the forward one must be taken back out.
    assert!(pf.insert(&flow(2)).is_err(), "second flow must not fit");
    let st = pf.stats();
    assert_eq!((st.inserts_ok, st.inserts_failed), (1, 1));
    assert_eq!(st.entries_v4, 2);
    assert_eq!(pf.entries().expect("entries").len(), 2);
    assert_eq!(pf.counters(&flow(2)).expect("counters"), None);
    assert!(pf.remove(&flow(1)).expect("remove").is_some());
    assert_eq!(pf.entries().expect("entries").len(), 0);
    assert_eq!(pf.stats().removed, 1);
}
