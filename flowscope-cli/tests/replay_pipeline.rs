//! `flow-replay` pipeline mode: pacing against a fake clock (idle flows end
//! on their timeout, not at the next packet; `--speed` scales the waits),
//! and end to end: the flow records equal `flow-summary`'s on the same
//! capture, with and without address remapping.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod replay_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use flowscope::capture::CaptureReader;
use flowscope::driver::{DriverEvent, SessionConfig, SessionDriver};
use flowscope::proto::AppMessage;
use flowscope_cli::replay::clock::ManualClock;
use flowscope_cli::replay::pace::Speed;
use flowscope_cli::replay::pipeline::PipelineReplay;
use flowscope_core::{EndReason, FlowEvent, Timestamp};
use replay_support::*;

const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Seen {
    /// (wall time, flow's first packet time, end reason) of every ended flow.
    ended: Vec<(Duration, Timestamp, EndReason)>,
    /// (wall time, first packet time) of every started flow.
    started: Vec<(Duration, Timestamp)>,
    /// Every event's wall time, in emission order.
    order: Vec<(Duration, &'static str)>,
}

fn replay(bytes: &[u8], speed: Speed) -> (Seen, ManualClock) {
    let mut reader = CaptureReader::new(bytes).unwrap();
    let mut driver = SessionDriver::with_default_parsers(SessionConfig::default());
    let mut r = PipelineReplay::new(ManualClock::new(), speed, TICK);
    let mut seen = Seen::default();
    let damage = r
        .run(&mut reader, &mut driver, &mut |wall,
                                             ev: DriverEvent<
            '_,
            AppMessage,
        >| {
            if let DriverEvent::Flow { event, .. } = ev {
                match event {
                    FlowEvent::Ended(rec) => {
                        seen.ended.push((wall, rec.stats.first, rec.end_reason));
                        seen.order.push((wall, "end"));
                    }
                    FlowEvent::Started { ts, .. } => {
                        seen.started.push((wall, *ts));
                        seen.order.push((wall, "start"));
                    }
                    _ => {}
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(damage.is_none());
    (seen, r.clock().clone())
}

/// The tracker's documented UDP idle timeout (TrackerConfig: 60 s), and the
/// fixture's last packet of the first flow at 0.5 s: its deadline.
const DEADLINE: f64 = 0.5 + 60.0;

#[test]
fn real_time_idle_flow_ends_on_its_timeout() {
    let (seen, clock) = replay(&idle_then_later(), Speed::Factor(1.0));
    let first = seen
        .ended
        .iter()
        .find(|e| e.1 == ts(0.0))
        .expect("flow 1 ended");
    assert_eq!(first.2, EndReason::Timeout);
    // Reported after its deadline (the tracker ends a flow when its clock
    // is strictly past last + timeout), within one tick of wall time.
    let wall = first.0.as_secs_f64();
    assert!(
        wall > DEADLINE && wall <= DEADLINE + TICK.as_secs_f64() + 1e-9,
        "flow 1 ended at wall {wall} s, deadline {DEADLINE} s"
    );
    // ... and not when the next packet (at 100 s) arrived.
    let second = seen.started.iter().find(|s| s.1 == ts(100.0)).unwrap();
    assert_eq!(second.0, Duration::from_secs(100));
    assert!(first.0 < second.0);
    // Real time: the waits add up to the capture's span, none longer than a tick.
    let total: Duration = clock.sleeps().iter().sum();
    assert_eq!(total, Duration::from_secs(100));
    assert!(clock.sleeps().iter().all(|s| *s <= TICK));
}

#[test]
fn ten_times_faster_scales_the_waits() {
    let (seen, clock) = replay(&idle_then_later(), Speed::Factor(10.0));
    let total: Duration = clock.sleeps().iter().sum();
    // 100 s of capture at 10x is 10 s of wall time.
    assert_eq!(total, Duration::from_secs(10));
    let first = seen.ended.iter().find(|e| e.1 == ts(0.0)).unwrap();
    let wall = first.0.as_secs_f64();
    assert!(
        wall > DEADLINE / 10.0 && wall <= DEADLINE / 10.0 + TICK.as_secs_f64() + 1e-9,
        "flow 1 ended at wall {wall} s, expected just after {} s",
        DEADLINE / 10.0
    );
    let second = seen.started.iter().find(|s| s.1 == ts(100.0)).unwrap();
    assert_eq!(second.0, Duration::from_secs(10));
}

#[test]
fn max_speed_never_sleeps_and_ends_idle_flows_at_the_next_packet() {
    let (seen, clock) = replay(&idle_then_later(), Speed::Max);
    assert!(clock.sleeps().is_empty());
    // Without a replay clock, the idle flow ends when the 100 s packet
    // moves the tracker's clock: just before that packet's flow starts.
    let kinds: Vec<&str> = seen.order.iter().map(|o| o.1).collect();
    assert_eq!(kinds, ["start", "end", "start", "end"]);
    assert_eq!(seen.ended[0].2, EndReason::Timeout);
    assert_eq!(seen.ended[1].2, EndReason::Finished);
}

#[test]
fn pace_does_not_change_the_records() {
    let key = |s: Seen| -> Vec<(Timestamp, EndReason)> {
        let mut v: Vec<_> = s.ended.iter().map(|e| (e.1, e.2)).collect();
        v.sort_by_key(|e| e.0);
        v
    };
    for bytes in [idle_then_later(), small_mix()] {
        let max = key(replay(&bytes, Speed::Max).0);
        assert_eq!(key(replay(&bytes, Speed::Factor(1.0)).0), max);
        assert_eq!(key(replay(&bytes, Speed::Factor(7.5)).0), max);
    }
}

fn flow_replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flow-replay"))
        .args(args)
        .output()
        .expect("flow-replay runs")
}

fn flow_summary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flow-summary"))
        .args(args)
        .output()
        .expect("flow-summary runs")
}

fn lines(o: &Output) -> BTreeSet<String> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn cli_paces_in_real_time_and_agrees_with_max() {
    let dir = tmpdir("pace");
    let f = dir.join("mix.pcap");
    std::fs::write(&f, small_mix()).unwrap();
    let f = f.to_str().unwrap();
    let t = Instant::now();
    let paced = flow_replay(&["--speed", "10", "-q", f]);
    // The capture spans 3 s: at 10x, at least 0.3 s of wall time.
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let max = flow_replay(&["--speed", "max", "-q", f]);
    let summary = flow_summary(&["-f", "eve", f]);
    for o in [&paced, &max, &summary] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(lines(&paced), lines(&max));
    assert_eq!(lines(&max), lines(&summary));
    // One TCP flow with its http event, one UDP flow.
    assert!(lines(&max)
        .iter()
        .any(|l| l.contains("\"event_type\":\"http\"")));
    assert_eq!(
        lines(&max)
            .iter()
            .filter(|l| l.contains("\"event_type\":\"flow\""))
            .count(),
        2
    );
    // Standard input works too.
    let o = Command::new(env!("CARGO_BIN_EXE_flow-replay"))
        .args(["--speed", "max", "-f", "ndjson", "-"])
        .stdin(std::fs::File::open(f).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(lines(&o).len(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_usage_and_exit_codes() {
    let o = flow_replay(&["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    for w in [
        "--speed",
        "--iface",
        "--loop",
        "--pps",
        "--mbps",
        "--remap-ipv4",
        "--remap-ipv6",
        "--write",
        "Exit status",
        "<INPUT>",
    ] {
        assert!(help.contains(w), "help lacks {w}");
    }
    for bad in [
        &["--speed", "0", "x"][..],
        &["--speed", "fast", "x"],
        &["--loop", "2", "x"],
        &["--pps", "10", "x"],
        &["--iface", "lo", "--pps", "-1", "x"],
        &["--remap-ipv4", "198.18.0.0/40", "x"],
        &["--iface", "lo", "--write", "y", "x"],
        &["--format", "csv", "x"],
    ] {
        assert_eq!(flow_replay(bad).status.code(), Some(2), "{bad:?}");
    }
    assert_eq!(flow_replay(&["/nonexistent.pcap"]).status.code(), Some(1));
    // A capture whose link type cannot go on Ethernet (Linux SLL) is a usage
    // error for --iface, found before the interface is opened.
    let dir = tmpdir("usage");
    let sll = dir.join("sll.pcap");
    std::fs::write(
        &sll,
        pcap(flowscope_core::LinkType::LINUX_SLL, &[(0.0, vec![0; 40])]),
    )
    .unwrap();
    let o = flow_replay(&["--iface", "flowreplay-none0", sll.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Damaged part-way: exit 3, as flow-summary.
    let mut damaged = small_mix();
    let n = damaged.len();
    damaged.truncate(n - 10);
    let dmg = dir.join("damaged.pcap");
    std::fs::write(&dmg, &damaged).unwrap();
    let d = dmg.to_str().unwrap();
    assert_eq!(flow_summary(&[d]).status.code(), Some(3));
    assert_eq!(
        flow_replay(&["--speed", "max", "-q", d]).status.code(),
        Some(3)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every corpus capture at `--speed max`: the same records (and EVE app
/// events) as flow-summary, and the same exit status.
#[test]
fn corpus_records_equal_flow_summary() {
    let Some(pcaps) = corpus_pcaps() else { return };
    let mut n = 0;
    for f in capture_files(&pcaps) {
        let p = f.to_str().unwrap();
        for fmt in ["ndjson", "eve"] {
            let r = flow_replay(&["--speed", "max", "-q", "-f", fmt, p]);
            let s = flow_summary(&["-f", fmt, p]);
            assert_eq!(r.status.code(), s.status.code(), "{p}");
            assert_eq!(lines(&r), lines(&s), "{p} ({fmt})");
        }
        n += 1;
    }
    assert!(n > 0);
    eprintln!("{n} corpus captures agree");
}

fn capture_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
        })
        .collect();
    v.sort();
    v
}

fn in_ranges(addr: &str) -> bool {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => (a.octets()[0], a.octets()[1] & 0xfe) == (198, 18),
        Ok(std::net::IpAddr::V6(a)) => a.segments()[..3] == [0x2001, 2, 0],
        Err(_) => false,
    }
}

/// Remapping in the pipeline equals reading the rewritten file: the same
/// frames reach the same pipeline. Every flow address lies in the ranges,
/// and --verify-checksums finds no bad checksum the original did not have.
#[test]
fn remapped_replay_equals_rewritten_file() {
    let dir = tmpdir("remap");
    let mut inputs = vec![];
    let fixture = dir.join("mix.pcap");
    std::fs::write(&fixture, small_mix()).unwrap();
    inputs.push(fixture);
    if let Some(pcaps) = corpus_pcaps() {
        inputs.extend(capture_files(&pcaps));
    }
    let ranges = [
        "--remap-ipv4",
        "198.18.0.0/15",
        "--remap-ipv6",
        "2001:2::/48",
    ];
    for input in &inputs {
        let i = input.to_str().unwrap();
        let out = dir.join("rewritten.pcap");
        let o = out.to_str().unwrap();
        let mut args = vec!["--write", o];
        args.extend(ranges);
        args.push(i);
        let w = flow_replay(&args);
        if w.status.code() == Some(3) {
            continue; // damaged capture: the file holds what came before
        }
        assert!(
            w.status.success(),
            "{i}: {}",
            String::from_utf8_lossy(&w.stderr)
        );
        let report = String::from_utf8_lossy(&w.stderr).into_owned();
        if !report.contains(" 0 of another link type") {
            // A pcapng mixing link types cannot become one pcap file.
            eprintln!("not compared (mixed link types): {i}");
            continue;
        }
        let mut args = vec!["-q", "--speed", "max", "-f", "ndjson", "--verify-checksums"];
        args.extend(ranges);
        args.push(i);
        let live = flow_replay(&args);
        let file = flow_summary(&["-f", "ndjson", "--verify-checksums", o]);
        assert!(live.status.success() && file.status.success(), "{i}");
        // A pcap file has no interface ids (pcapng's `source`): compare without.
        let no_source = |set: BTreeSet<String>| -> BTreeSet<String> {
            set.iter()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("source");
                    v.to_string()
                })
                .collect()
        };
        let (live, file) = (lines(&live), lines(&file));
        assert_eq!(no_source(live.clone()), no_source(file), "{i}");
        for l in &live {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["src_ip", "dest_ip"] {
                let a = v[k].as_str().unwrap();
                assert!(in_ranges(a), "{i}: {k} {a} outside the ranges");
            }
        }
        // Checksums: as many flows with a bad-checksum letter as before.
        let bad = |set: &BTreeSet<String>| {
            set.iter()
                .filter(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["history"].as_str().unwrap_or("").contains(['c', 'C'])
                })
                .count()
        };
        let orig = lines(&flow_summary(&["-f", "ndjson", "--verify-checksums", i]));
        if orig.len() == live.len() {
            assert!(bad(&live) <= bad(&orig), "{i}: remapping broke checksums");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
