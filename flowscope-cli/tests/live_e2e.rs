//! `flow-summary --iface` for real (root only; `SKIP: not root` otherwise).
//!
//! Each test makes its own pair of network namespaces joined by a veth pair
//! (names carry the pid and a tag), with IPv6 off and no addresses, so the
//! only frames on the link are the ones the test sends: counts are exact.
//! `flow-replay --iface` sends in one namespace; `flow-summary --iface
//! --workers 2` captures in the other and is stopped with SIGINT. The
//! namespaces (and the veth pair with them) are deleted when the guard
//! drops, also when an assertion fails.
//!
//! - `live_capture_equals_the_file`: corpus captures (HTTP, TLS, DNS over
//!   Ethernet; IPv4 and IPv6; no tunnels, no fragments) remapped into the
//!   benchmarking ranges; the live flow records and L7 records equal
//!   `flow-summary` (one worker) on the remapped file, field by field except
//!   timestamps and flow ids (the capture's clock is the receiver's, and a
//!   flow id hashes the first timestamp) and `source` (the live worker).
//!   Timeouts are set far beyond both clocks' spans for both runs, so every
//!   flow ends at the end of input / the stop in both: the replay is paced
//!   at 2000 packets/s, not at the captures' own timestamps, and the
//!   corpus's clocks jump by years.
//! - `two_workers_split_flows_and_expire_idle_ones`: many flows over a
//!   2-socket fanout group: every flow lands whole on one worker (no tuple
//!   is reported twice; each record's `source` worker's packet count adds
//!   up to what that worker reports), the workers' counters add up to the
//!   frames sent, and flows end by idle timeout on the clock, before the
//!   stop, while no packet arrives.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod replay_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flowscope_core::LinkType;
use replay_support::netns::{is_root, ok, Netns};
use replay_support::{corpus_pcaps, pcap, tcp, tmpdir, udp};
use serde_json::Value;

/// A running `flow-summary --iface` in the receiving namespace.
struct Capture {
    child: Child,
    /// Output lines with the time they arrived.
    lines: mpsc::Receiver<(Instant, String)>,
    stderr: std::thread::JoinHandle<String>,
}

impl Capture {
    /// Starts the capture and waits until it says it is capturing.
    fn start(n: &Netns, args: &[&str]) -> Capture {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &n.rx, env!("CARGO_BIN_EXE_flow-summary")])
            .args(["--iface", &n.rx_if, "--progress", "never"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), l));
            }
        });
        let (ready_tx, ready) = mpsc::channel();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("capturing on") {
                    let _ = ready_tx.send(());
                }
                all.push_str(&line);
                line.clear();
            }
            let _ = err.read_to_string(&mut all);
            all
        });
        let mut c = Capture {
            child,
            lines,
            stderr,
        };
        if ready.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = c.child.kill();
            let _ = c.child.wait();
            panic!("flow-summary did not start: {}", c.stderr.join().unwrap());
        }
        c
    }

    /// Lines written so far.
    fn take_lines(&self) -> Vec<(Instant, String)> {
        self.lines.try_iter().collect()
    }

    /// SIGINT, then everything it wrote.
    fn interrupt(mut self) -> (ExitStatus, Vec<(Instant, String)>, String) {
        ok(&["kill", "-INT", &self.child.id().to_string()]);
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("flow-summary did not stop within 10 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = self.stderr.join().unwrap();
        let lines = self.lines.iter().collect();
        (status, lines, err)
    }
}

/// Sends `input` from the other namespace at 2000 packets/s; returns the
/// frames sent (from flow-replay's JSON report).
fn replay(n: &Netns, input: &Path, extra: &[&str], dir: &Path) -> u64 {
    let report = dir.join("report.json");
    let o = Command::new("ip")
        .args(["netns", "exec", &n.tx, env!("CARGO_BIN_EXE_flow-replay")])
        .args(["-q", "--iface", &n.tx_if, "--pps", "2000"])
        .args(extra)
        .args(["--report-json", report.to_str().unwrap()])
        .arg(input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(rep["failed"], 0, "{rep}");
    assert_eq!(
        rep["snapped"], 0,
        "snapped frames would differ in bytes: {rep}"
    );
    rep["packets_sent"].as_u64().unwrap()
}

/// The `key=value` counters of the `worker N` / `total` lines on stderr.
fn counters(stderr: &str, who: &str) -> BTreeMap<String, u64> {
    let prefix = format!("flow-summary: {who} ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {who:?} line in {stderr}"));
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

/// Timeouts longer than any clock span here, for the live and file runs.
const NO_TIMEOUTS: [&str; 12] = [
    "--tcp-timeout",
    "1e9",
    "--syn-timeout",
    "1e9",
    "--closed-timeout",
    "1e9",
    "--udp-timeout",
    "1e9",
    "--icmp-timeout",
    "1e9",
    "--other-timeout",
    "1e9",
];

const REMAP: [&str; 4] = [
    "--remap-ipv4",
    "198.18.0.0/15",
    "--remap-ipv6",
    "2001:2::/48",
];

/// A record without what differs between a live capture and its file:
/// timestamps, flow ids (hashes of the first timestamp), the worker.
fn comparable(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in [
        "timestamp",
        "flow_id",
        "start",
        "end",
        "duration",
        "max_idle",
        "source",
    ] {
        o.remove(k);
    }
    if let Some(f) = o.get_mut("flow").and_then(Value::as_object_mut) {
        for k in ["start", "end", "age"] {
            f.remove(k);
        }
    }
    v.to_string()
}

/// Output lines as a sorted list (a multiset: workers interleave).
fn multiset<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = lines.map(comparable).collect();
    v.sort();
    v
}

fn file_summary(input: &Path, format: &str) -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_flow-summary"))
        .args(["-f", format])
        .args(NO_TIMEOUTS)
        .arg(input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    multiset(String::from_utf8(o.stdout).unwrap().lines())
}

fn count_by<'a>(lines: impl Iterator<Item = &'a String>, key: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        *m.entry(v[key].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    m
}

/// The checks on the stop and the counters common to both tests; returns
/// the total counters.
fn check_stop(status: ExitStatus, stderr: &str, sent: u64) -> BTreeMap<String, u64> {
    assert!(status.success(), "exit {status:?}: {stderr}");
    let total = counters(stderr, "total");
    // Nothing lost anywhere: what was sent is what the kernel queued, all
    // of it read and processed.
    assert_eq!(total["kernel_drops"], 0, "{stderr}");
    assert_eq!(total["kernel_freezes"], 0, "{stderr}");
    assert_eq!(total["kernel_packets"], sent, "{stderr}");
    assert_eq!(total["packets"], sent, "{stderr}");
    assert_eq!(total["unread"], 0, "{stderr}");
    assert_eq!(total["events_dropped"], 0, "{stderr}");
    let w0 = counters(stderr, "worker 0");
    let w1 = counters(stderr, "worker 1");
    for k in ["packets", "bytes", "kernel_packets", "flows", "events"] {
        assert_eq!(w0[k] + w1[k], total[k], "{k}: {stderr}");
    }
    total
}

#[test]
fn live_capture_equals_the_file() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let Some(corpus) = corpus_pcaps() else { return };
    // HTTP, DNS and TLS over IPv4 (201 flows), and HTTP/TLS over IPv6.
    let inputs: Vec<PathBuf> = ["ndpi__1kxun.pcap", "ndpi__http_ipv6.pcap"]
        .iter()
        .map(|f| corpus.join(f))
        .filter(|p| p.is_file())
        .collect();
    if inputs.is_empty() {
        eprintln!("SKIP: the corpus captures are missing");
        return;
    }
    let Some(n) = Netns::new("e", 65_000) else {
        return;
    };
    let dir = tmpdir("live-e2e");
    let mut sent_total = 0;
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let remapped = dir.join(format!("{name}.remapped.pcap"));
        let mut args = vec![
            env!("CARGO_BIN_EXE_flow-replay"),
            "-q",
            "--write",
            remapped.to_str().unwrap(),
        ];
        args.extend(REMAP);
        args.push(input.to_str().unwrap());
        ok(&args);
        // NDJSON: every flow field (history, conn_state, bytes per
        // direction); EVE: the flow events again and the http, tls and dns
        // events.
        for format in ["ndjson", "eve"] {
            let want = file_summary(&remapped, format);
            let mut cap_args = vec!["--workers", "2", "-f", format];
            cap_args.extend(NO_TIMEOUTS);
            let cap = Capture::start(&n, &cap_args);
            let sent = replay(&n, input, &REMAP, &dir);
            // Blocks retire within 10 ms; leave the workers time to read them.
            std::thread::sleep(Duration::from_millis(500));
            let (status, lines, stderr) = cap.interrupt();
            let total = check_stop(status, &stderr, sent);
            sent_total += sent;
            let got = multiset(lines.iter().map(|(_, l)| l.as_str()));
            let types = count_by(want.iter(), "event_type");
            eprintln!(
                "{name} {format}: {sent} frames sent, {} received ({} kernel drops), \
{} records live, {} from the file {types:?}",
                total["packets"],
                total["kernel_drops"],
                got.len(),
                want.len()
            );
            if format == "eve" {
                for t in ["flow", "tls"] {
                    assert!(types.get(t).is_some_and(|c| *c > 0), "{name}: no {t}");
                }
            }
            if got != want {
                let g: BTreeSet<_> = got.iter().collect();
                let w: BTreeSet<_> = want.iter().collect();
                let only_live: Vec<_> = g.difference(&w).take(3).collect();
                let only_file: Vec<_> = w.difference(&g).take(3).collect();
                panic!(
                    "{name} {format}: live {} records, file {}\nonly live: {only_live:#?}\nonly file: {only_file:#?}",
                    got.len(),
                    want.len()
                );
            }
        }
    }
    // Nothing else crossed the link.
    assert_eq!(n.rx_packets(), sent_total);
    let _ = std::fs::remove_dir_all(dir);
}

/// `flows` TCP connections (8 frames each: 5 from the client, 3 from the
/// server) and as many UDP exchanges (1 frame each way), each between its
/// own pair of hosts, all within 0.1 s.
fn many_flows(flows: u8) -> Vec<u8> {
    let mut frames = Vec::new();
    for i in 0..flows {
        let (c, s) = ([10, 1, i, 1], [10, 2, i, 2]);
        let sp = 40000 + u16::from(i);
        let t = f64::from(i) * 0.001;
        frames.push((t, tcp(c, sp, s, 80, 100, 0, 0x02, b"")));
        frames.push((t, tcp(s, 80, c, sp, 500, 101, 0x12, b"")));
        frames.push((t, tcp(c, sp, s, 80, 101, 501, 0x10, b"")));
        frames.push((
            t,
            tcp(c, sp, s, 80, 101, 501, 0x18, b"GET / HTTP/1.0\r\n\r\n"),
        ));
        frames.push((
            t,
            tcp(s, 80, c, sp, 501, 119, 0x18, b"HTTP/1.0 200 OK\r\n\r\n"),
        ));
        frames.push((t, tcp(c, sp, s, 80, 119, 520, 0x11, b"")));
        frames.push((t, tcp(s, 80, c, sp, 520, 120, 0x11, b"")));
        frames.push((t, tcp(c, sp, s, 80, 120, 521, 0x10, b"")));
        let (u, d) = ([10, 3, i, 3], [10, 4, i, 4]);
        frames.push((t, udp(u, 5000 + u16::from(i), d, 53, b"query")));
        frames.push((t, udp(d, 53, u, 5000 + u16::from(i), b"answer")));
    }
    pcap(LinkType::ETHERNET, &frames)
}

#[test]
fn two_workers_split_flows_and_expire_idle_ones() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let Some(n) = Netns::new("w", 65_000) else {
        return;
    };
    let dir = tmpdir("live-workers");
    let flows: u8 = 48;
    let input = dir.join("many.pcap");
    std::fs::write(&input, many_flows(flows)).unwrap();
    // Short timeouts: every flow must end on the clock, before the stop.
    let cap = Capture::start(
        &n,
        &[
            "--workers",
            "2",
            "-f",
            "ndjson",
            "--udp-timeout",
            "1",
            "--closed-timeout",
            "1",
        ],
    );
    let sent = replay(&n, &input, &[], &dir);
    assert_eq!(sent, u64::from(flows) * 10);
    let sent_at = Instant::now();
    // Timeout 1 s, idle ticks every 100 ms: all ended well within 3 s.
    std::thread::sleep(Duration::from_secs(3));
    let before_stop = cap.take_lines();
    let stopped_at = Instant::now();
    let (status, after_stop, stderr) = cap.interrupt();
    let total = check_stop(status, &stderr, sent);
    eprintln!("{stderr}");

    // Idle expiry on the clock: every record came before the stop, each
    // ended by its timeout.
    assert!(
        after_stop.is_empty(),
        "records after the stop: {after_stop:?}"
    );
    assert_eq!(before_stop.len(), usize::from(flows) * 2);
    let mut tuples = BTreeSet::new();
    let mut by_worker: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (at, l) in &before_stop {
        assert!(*at > sent_at - Duration::from_secs(1) && *at < stopped_at);
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["end_reason"], "timeout", "{l}");
        let proto = v["proto"].as_str().unwrap().to_owned();
        let (pkts_c, pkts_s) = if proto == "TCP" { (5, 3) } else { (1, 1) };
        assert_eq!(v["pkts_toserver"], pkts_c, "{l}");
        assert_eq!(v["pkts_toclient"], pkts_s, "{l}");
        if proto == "TCP" {
            assert_eq!(v["conn_state"], "SF", "{l}");
        }
        // No flow reported twice (a flow split between the workers would
        // show up as two records of one tuple, each with part of it).
        let mut ends = [
            format!("{}:{}", v["src_ip"], v["src_port"]),
            format!("{}:{}", v["dest_ip"], v["dest_port"]),
        ];
        ends.sort();
        assert!(tuples.insert((proto, ends)), "reported twice: {l}");
        let w = v["source"].as_u64().unwrap();
        let e = by_worker.entry(w).or_default();
        e.0 += 1;
        e.1 += v["pkts_toserver"].as_u64().unwrap() + v["pkts_toclient"].as_u64().unwrap();
    }
    // Each flow whole on one worker: the packets of the flows a worker
    // reported are the packets it counted.
    for w in [0u64, 1] {
        let c = counters(&stderr, &format!("worker {w}"));
        let (recs, pkts) = by_worker.get(&w).copied().unwrap_or_default();
        assert_eq!(pkts, c["packets"], "worker {w}: {stderr}");
        assert_eq!(recs, c["flows"], "worker {w}: {stderr}");
        assert_eq!(c["kernel_packets"], c["packets"], "worker {w}");
        // 96 host pairs: all on one worker would be a 2^-95 chance.
        assert!(recs > 0, "worker {w} got no flow: {stderr}");
    }
    assert_eq!(total["flows"], u64::from(flows) * 2);
    assert_eq!(n.rx_packets(), sent);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn duration_and_sigterm_stop_cleanly() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let Some(n) = Netns::new("d", 65_000) else {
        return;
    };
    // --duration: ends by itself, exit 0, the table and the counters printed.
    let t = Instant::now();
    let o = Command::new("ip")
        .args(["netns", "exec", &n.rx, env!("CARGO_BIN_EXE_flow-summary")])
        .args(["--iface", &n.rx_if, "--workers", "2", "--duration", "0.5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(t.elapsed() >= Duration::from_millis(500));
    assert!(String::from_utf8_lossy(&o.stdout).contains("packets          0"));
    assert_eq!(counters(&stderr, "total")["kernel_packets"], 0);

    // SIGTERM: the same clean stop as SIGINT.
    let mut cap = Capture::start(&n, &["-f", "eve"]);
    ok(&["kill", "-TERM", &cap.child.id().to_string()]);
    let status = cap.child.wait().unwrap();
    let stderr = std::mem::replace(&mut cap.stderr, std::thread::spawn(String::new))
        .join()
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("flow-summary: total packets=0"), "{stderr}");
}
