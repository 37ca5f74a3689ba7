//! `flow-replay --iface` for real (root only): two network namespaces made
//! for this test, joined by a veth pair, nothing else in them (IPv6
//! autoconfiguration off, no addresses). flow-replay sends with remapped
//! addresses in one; tcpdump (when installed) and the interface counters
//! receive in the other. Everything is removed afterwards, also on failure.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod replay_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flowscope_core::LinkType;
use replay_support::netns::{is_root, ok, Netns};
use replay_support::*;

/// tcpdump in the receiving namespace, once it is listening.
fn tcpdump(n: &Netns, out: &Path, count: u64) -> Option<Child> {
    // Not installed: no receiver, the counters still check delivery.
    Command::new("tcpdump").arg("--version").output().ok()?;
    let mut child = Command::new("ip")
        .args([
            "netns", "exec", &n.rx, "tcpdump", "-i", &n.rx_if, "-Q", "in", "-n", "-U", "-s", "0",
        ])
        .args(["-c", &count.to_string(), "-w", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut err = BufReader::new(child.stderr.take()?);
    let mut line = String::new();
    while err.read_line(&mut line).ok()? > 0 {
        if line.contains("listening on") {
            // Keep draining stderr so tcpdump never blocks on it.
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            return Some(child);
        }
        line.clear();
    }
    None
}

fn wait(mut c: Child, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(Some(_)) = c.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
    false
}

const REMAP: [&str; 4] = [
    "--remap-ipv4",
    "198.18.0.0/15",
    "--remap-ipv6",
    "2001:2::/48",
];

/// What must survive the wire: endpoints, protocol, packet and byte
/// counts, application protocol (timestamps and flow ids are the
/// receiver's own).
fn projection(ndjson: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(ndjson)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let keys = [
                "src_ip",
                "src_port",
                "dest_ip",
                "dest_port",
                "proto",
                "pkts_toserver",
                "pkts_toclient",
                "bytes_toserver",
                "bytes_toclient",
                "app_proto",
            ];
            keys.iter()
                .map(|k| v[*k].to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn flow_summary(p: &Path) -> BTreeSet<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_flow-summary"))
        .args(["-f", "ndjson", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    projection(&o.stdout)
}

fn replay_in(
    n: &Netns,
    extra: &[&str],
    input: &Path,
    report: &Path,
) -> (Output, serde_json::Value) {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &n.tx,
            env!("CARGO_BIN_EXE_flow-replay"),
            "--iface",
            &n.tx_if,
        ])
        .args(extra)
        .args([
            "--report-json",
            report.to_str().unwrap(),
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let rep = std::fs::read(report)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_default();
    (o, rep)
}

#[test]
fn replay_onto_a_veth_pair() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let Some(n) = Netns::new("rv", 9_000) else {
        return;
    };
    let dir = tmpdir("iface");
    let mut inputs = vec![];
    let fixture = dir.join("mix.pcap");
    std::fs::write(&fixture, small_mix()).unwrap();
    inputs.push(fixture);
    if let Some(c) = corpus_pcaps() {
        for f in ["ndpi__443-curl.pcap", "ndpi__http_ipv6.pcap"] {
            if c.join(f).is_file() {
                inputs.push(c.join(f));
            }
        }
    }
    let mut sent_total = 0;
    for (i, input) in inputs.iter().enumerate() {
        let written = dir.join(format!("written{i}.pcap"));
        let mut args = vec![
            env!("CARGO_BIN_EXE_flow-replay"),
            "-q",
            "--write",
            written.to_str().unwrap(),
        ];
        args.extend(REMAP);
        args.push(input.to_str().unwrap());
        ok(&args);
        let expect = flow_summary(&written);
        let frames = CountFrames::of(&written);
        let received = dir.join(format!("received{i}.pcap"));
        let dump = tcpdump(&n, &received, frames * 2);
        let mut extra = vec!["--pps", "1000", "--loop", "2"];
        extra.extend(REMAP);
        let (o, rep) = replay_in(&n, &extra, input, &dir.join("report.json"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("packets sent"));
        assert_eq!(rep["packets_sent"], frames * 2, "{input:?}: {rep}");
        assert_eq!(rep["failed"], 0);
        assert_eq!(rep["passes"], 2);
        sent_total += frames * 2;
        match dump {
            Some(d) => {
                assert!(wait(d, Duration::from_secs(20)), "tcpdump got every frame");
                // Two passes of the same frames: the first pass's flows
                // are what the written file holds, counted twice.
                let got = flow_summary(&received);
                let once: BTreeSet<String> = expect.iter().cloned().collect();
                let addrs = |s: &BTreeSet<String>| -> BTreeSet<String> {
                    s.iter()
                        .map(|l| l.split(' ').take(5).collect::<Vec<_>>().join(" "))
                        .collect()
                };
                assert_eq!(
                    addrs(&got),
                    addrs(&once),
                    "{input:?}: same flows on the wire"
                );
                for l in &got {
                    assert!(l.contains("\"198.1") || l.contains("\"2001:2:"), "{l}");
                }
            }
            None => eprintln!("tcpdump not available: checked the interface counters only"),
        }
    }
    // Nothing else crossed the link.
    assert_eq!(n.rx_packets(), sent_total);

    // A frame above the MTU fails with EMSGSIZE and is counted.
    let big = pcap(
        LinkType::ETHERNET,
        &[
            (0.0, udp(A, 1, B, 2, &vec![0u8; 9100])),
            (0.0, udp(A, 1, B, 2, b"ok")),
        ],
    );
    let bigf = dir.join("big.pcap");
    std::fs::write(&bigf, big).unwrap();
    let (o, rep) = replay_in(&n, &["--speed", "max"], &bigf, &dir.join("report2.json"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rep["failed_by_errno"]["EMSGSIZE"], 1, "{rep}");
    assert_eq!(rep["packets_sent"], 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// Frames in a capture file.
struct CountFrames;
impl CountFrames {
    fn of(p: &Path) -> u64 {
        let mut r = flowscope::capture::CaptureReader::open(p).unwrap();
        let mut n = 0;
        while r.next_packet().unwrap().is_some() {
            n += 1;
        }
        n
    }
}

/// At `--speed max` frames go out in `sendmmsg(2)` batches: 50 000 numbered
/// frames all arrive, each once, in the order of the capture, at an
/// AF_PACKET ring in the other namespace (large enough to hold them all,
/// so the receiver cannot drop), and the report shows batches, not one
/// call per frame.
#[test]
fn batched_send_delivers_every_frame_in_order() {
    use flowscope_rss::afpacket::{enter_network_namespace, AfPacketConfig, AfPacketSource};
    use flowscope_rss::{Batch, PacketSource};
    use std::sync::mpsc;

    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let Some(n) = Netns::new("bt", 1_500) else {
        return;
    };
    const N: u32 = 50_000;
    let dir = tmpdir("batch");
    let frames: Vec<(f64, Vec<u8>)> = (0..N)
        .map(|i| (0.0, udp(A, 1, B, 2, &i.to_be_bytes())))
        .collect();
    let input = dir.join("numbered.pcap");
    std::fs::write(&input, pcap(LinkType::ETHERNET, &frames)).unwrap();

    let (ready_tx, ready) = mpsc::channel();
    let (rx_ns, rx_if) = (n.rx.clone(), n.rx_if.clone());
    let receiver = std::thread::spawn(move || {
        enter_network_namespace(Path::new(&format!("/run/netns/{rx_ns}"))).unwrap();
        // 64 blocks of 1 MiB: 50 000 small frames fit whatever the pace.
        let cfg = AfPacketConfig::new(rx_if).ring(1 << 20, 64);
        let mut src = AfPacketSource::open(&cfg).unwrap();
        ready_tx.send(()).unwrap();
        let mut got: Vec<u32> = Vec::with_capacity(N as usize);
        let t = Instant::now();
        while got.len() < N as usize && t.elapsed() < Duration::from_secs(30) {
            let b = src
                .next_batch(&mut |p| {
                    // Only the test's frames cross the link; anything else
                    // would show as a wrong index below.
                    let idx = p
                        .data
                        .get(42..46)
                        .map_or(u32::MAX, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    got.push(idx);
                })
                .unwrap();
            if matches!(b, Batch::End) {
                break;
            }
        }
        (got, src.stats())
    });
    ready.recv_timeout(Duration::from_secs(10)).unwrap();
    let (o, rep) = replay_in(&n, &["--speed", "max"], &input, &dir.join("r.json"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (got, stats) = receiver.join().unwrap();
    assert_eq!(rep["packets_sent"], u64::from(N), "{rep}");
    assert_eq!(rep["failed"], 0, "{rep}");
    assert_eq!(stats.drops, 0, "the ring dropped frames");
    assert_eq!(got.len(), N as usize, "frames received");
    let first_wrong = got.iter().zip(0..N).position(|(g, want)| *g != want);
    assert_eq!(first_wrong, None, "every frame once, in order");
    let batches = rep["batches"].as_u64().unwrap();
    assert!(
        batches > 0 && u64::from(N) / batches >= 8,
        "at most an eighth as many send calls as frames: {rep}"
    );
    eprintln!(
        "{N} frames in {:.3} s ({:.0} frames/s), {batches} send calls",
        rep["elapsed_s"], rep["pps"]
    );
    let _ = std::fs::remove_dir_all(dir);
}
