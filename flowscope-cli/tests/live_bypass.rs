//! `flow-summary --iface … --bypass tls` for real (root only, and only when
//! this build embeds the XDP object; `SKIP: <reason>` otherwise).
//!
//! In two namespaces the test creates (a veth pair, IPv6 off, no
//! addresses: only the test's frames cross the link), corpus TLS captures
//! (HTTPS page loads with large downloads) remapped into 198.18.0.0/15 /
//! 2001:2::/48 are replayed with `flow-replay --iface`, and captured by
//! `flow-summary --iface --workers 2 -f ndjson` twice: once without bypass,
//! once with `--bypass tls --bypass-mode generic`. Checks:
//! - every frame sent is accounted for exactly once: userspace packets +
//!   kernel-bypassed packets = frames sent, and the bypassed share is > 0;
//! - every flow's final packets and bytes (frame and IP, per direction)
//!   are the same in both runs, though the bypass run saw fewer packets;
//! - bypassed flows carry a `bypassed` object whose counts add up to the
//!   kernel total;
//! - after the process exits no XDP program is attached (`ip link`);
//! - in the table format, the `bypassed` totals line matches the stderr
//!   total and `flow packets` (captured + bypassed) equals the frames sent.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod replay_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use replay_support::netns::{ok, sh, Netns};
use replay_support::{corpus_pcaps, tmpdir};
use serde_json::Value;

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

/// What one capture produced.
struct Run {
    records: Vec<Value>,
    stdout: String,
    stderr: String,
    sent: u64,
    elapsed: Duration,
}

/// Captures in the receiving namespace while `inputs` are replayed from
/// the other one at 4000 packets/s, then stops it with SIGINT.
fn capture(n: &Netns, inputs: &[PathBuf], extra: &[&str], dir: &Path) -> Run {
    let mut child: Child = Command::new("ip")
        .args(["netns", "exec", &n.rx, env!("CARGO_BIN_EXE_flow-summary")])
        .args(["--iface", &n.rx_if, "--progress", "never"])
        .args(["--workers", "2"])
        .args(NO_TIMEOUTS)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
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
        all
    });
    if ready.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("flow-summary did not start: {}", stderr.join().unwrap());
    }
    let t = Instant::now();
    let mut sent = 0;
    for input in inputs {
        let report = dir.join("report.json");
        let o = Command::new("ip")
            .args(["netns", "exec", &n.tx, env!("CARGO_BIN_EXE_flow-replay")])
            .args(["-q", "--iface", &n.tx_if, "--pps", "4000"])
            .args(REMAP)
            .args(["--report-json", report.to_str().unwrap()])
            .arg(input)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rep: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
        assert_eq!(rep["failed"], 0, "{rep}");
        assert_eq!(rep["snapped"], 0, "{rep}");
        sent += rep["packets_sent"].as_u64().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    ok(&["kill", "-INT", &child.id().to_string()]);
    let status = child.wait().unwrap();
    let elapsed = t.elapsed();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    let stdout = stdout.join().unwrap();
    let records = if extra.contains(&"table") {
        Vec::new()
    } else {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    Run {
        records,
        stdout,
        stderr,
        sent,
        elapsed,
    }
}

/// The `key=value` counters of the `total` line on stderr.
fn total(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("flow-summary: total "))
        .unwrap_or_else(|| panic!("no total line in {stderr}"));
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

const COUNTS: [&str; 6] = [
    "pkts_toserver",
    "pkts_toclient",
    "bytes_toserver",
    "bytes_toclient",
    "ip_bytes_toserver",
    "ip_bytes_toclient",
];

/// Each flow's counts by its tuple (initiator first).
fn by_flow(records: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut m = BTreeMap::new();
    for v in records {
        let key = format!(
            "{} {}:{} > {}:{}",
            v["proto"], v["src_ip"], v["src_port"], v["dest_ip"], v["dest_port"]
        );
        let counts = COUNTS.iter().map(|k| v[*k].as_u64().unwrap()).collect();
        assert!(m.insert(key.clone(), counts).is_none(), "twice: {key}");
    }
    m
}

#[test]
fn tls_bypass_keeps_every_flow_count() {
    if String::from_utf8_lossy(&sh(&["id", "-u"]).stdout).trim() != "0" {
        eprintln!("SKIP: not root");
        return;
    }
    if let Err(why) = flowscope_prefilter::embedded_object(flowscope_prefilter::MapKind::Hash) {
        eprintln!("SKIP: no XDP object in this build: {why}");
        return;
    }
    let Some(corpus) = corpus_pcaps() else { return };
    let inputs: Vec<PathBuf> = ["ndpi__reddit.pcap", "ndpi__443-curl.pcap"]
        .iter()
        .map(|f| corpus.join(f))
        .filter(|p| p.is_file())
        .collect();
    if inputs.is_empty() {
        eprintln!("SKIP: the corpus captures are missing");
        return;
    }
    let Some(n) = Netns::new("by", 65_000) else {
        return;
    };
    let dir = tmpdir("live-bypass");

    let plain = capture(&n, &inputs, &["-f", "ndjson"], &dir);
    let bypass = capture(
        &n,
        &inputs,
        &[
            "-f",
            "ndjson",
            "--bypass",
            "tls",
            "--bypass-mode",
            "generic",
        ],
        &dir,
    );
    assert!(
        !n.rx_link().contains("xdp"),
        "an XDP program stayed attached: {}",
        n.rx_link()
    );
    let (tp, tb) = (total(&plain.stderr), total(&bypass.stderr));
    eprintln!("{}", bypass.stderr);
    assert_eq!(plain.sent, bypass.sent);
    assert_eq!(tp["packets"], plain.sent, "{}", plain.stderr);
    assert_eq!(tp["kernel_drops"] + tb["kernel_drops"], 0);
    assert!(
        bypass.stderr.contains("XDP bypass attached to") && bypass.stderr.contains("generic"),
        "{}",
        bypass.stderr
    );
    let kernel = tb.get("bypassed_packets").copied().unwrap_or(0);
    assert!(kernel > 0, "nothing bypassed: {}", bypass.stderr);
    // Each frame once: in userspace or dropped (and counted) by XDP.
    assert_eq!(tb["packets"] + kernel, bypass.sent, "{}", bypass.stderr);
    assert_eq!(tb["bypass_lost"], 0);
    assert_eq!(tb["bypass_map_errors"], 0);

    // Per flow, the same counts with and without bypass.
    let (want, got) = (by_flow(&plain.records), by_flow(&bypass.records));
    assert_eq!(want.len(), got.len());
    let mut differ = Vec::new();
    for (k, w) in &want {
        if got.get(k) != Some(w) {
            differ.push(format!("{k}: plain {w:?} bypass {:?}", got.get(k)));
        }
    }
    assert!(
        differ.is_empty(),
        "{} flows differ: {differ:#?}",
        differ.len()
    );

    // The `bypassed` objects add up to the kernel's total.
    let mut in_records = 0;
    let mut flows = 0;
    for v in &bypass.records {
        if let Some(b) = v.get("bypassed") {
            flows += 1;
            in_records +=
                b["pkts_toserver"].as_u64().unwrap() + b["pkts_toclient"].as_u64().unwrap();
        }
    }
    assert_eq!(in_records, kernel);
    assert_eq!(flows, tb["bypassed_flows"]);

    // The table format's totals carry the kernel's share too.
    let table = capture(
        &n,
        &inputs,
        &["-f", "table", "--bypass", "tls", "--bypass-mode", "generic"],
        &dir,
    );
    let tt = total(&table.stderr);
    let bypassed_line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("bypassed "))
        .unwrap_or_else(|| panic!("no bypassed line in the table:\n{}", table.stdout));
    let want_line = format!(
        "{} packets, {} bytes in {} flows",
        tt["bypassed_packets"], tt["bypassed_bytes"], tt["bypassed_flows"]
    );
    assert!(
        bypassed_line.contains(&want_line),
        "{bypassed_line} / {want_line}"
    );
    // Captured + bypassed is every frame sent.
    let flow_packets = table
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("flow packets"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(flow_packets, Some(table.sent), "{}", table.stdout);

    eprintln!(
        "{} frames sent, {} flows; without bypass {} userspace packets ({:?}); with bypass {} \
userspace + {kernel} dropped in XDP ({:.1}%) over {flows} bypassed flows ({:?})",
        plain.sent,
        want.len(),
        tp["packets"],
        plain.elapsed,
        tb["packets"],
        100.0 * kernel as f64 / bypass.sent as f64,
        bypass.elapsed,
    );
    let _ = std::fs::remove_dir_all(dir);
}
