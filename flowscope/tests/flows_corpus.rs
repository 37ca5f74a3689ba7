//! Flow tracking over every capture of the shared corpus:
//! - no panic, and every packet is accounted for (tracked or skipped by reason);
//! - flows created == flows ended at end of input;
//! - the TCP and UDP flow counts agree with tshark's stream counts
//!   (`truth/summary.tsv`), each difference explained below.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use flowscope::capture::CaptureReader;
use flowscope::driver::{FlowPipeline, PacketCounters};
use flowscope::extract::ExtractConfig;
use flowscope::track::{TrackerConfig, TrackerStats};
use flowscope_core::{FlowEvent, L4Proto};

#[derive(Debug, Default)]
struct Run {
    counters: PacketCounters,
    tracker: TrackerStats,
    tcp_flows: u64,
    udp_flows: u64,
    packets_read: u64,
    error: Option<String>,
}

/// Tracks a capture with timeouts long enough that, like tshark's
/// conversation tables, no flow ends by idleness.
fn run(path: &std::path::Path) -> Run {
    let mut track = TrackerConfig::default();
    let forever = Duration::from_secs(10 * 365 * 86_400);
    track.tcp_timeout = forever;
    track.tcp_syn_timeout = forever;
    track.tcp_closed_timeout = forever;
    track.udp_timeout = forever;
    track.icmp_timeout = forever;
    track.other_timeout = forever;
    let mut pipeline = FlowPipeline::five_tuple(ExtractConfig::default(), track);
    let mut out = Run::default();
    let (mut tcp, mut udp) = (0u64, 0u64);
    let mut sink = |ev: &FlowEvent<_>| {
        if let FlowEvent::Ended(rec) = ev {
            match rec.l4 {
                L4Proto::Tcp => tcp += 1,
                L4Proto::Udp => udp += 1,
                _ => {}
            }
        }
    };
    match CaptureReader::open(path) {
        Ok(mut reader) => {
            loop {
                match reader.next_packet() {
                    Ok(Some(pkt)) => pipeline.process(&pkt, &mut sink),
                    Ok(None) => break,
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                }
            }
            out.packets_read = reader.packets_read();
        }
        Err(e) => out.error = Some(e.to_string()),
    }
    pipeline.finish(&mut sink);
    out.counters = *pipeline.counters();
    out.tracker = pipeline.tracker_stats();
    out.tcp_flows = tcp;
    out.udp_flows = udp;
    out
}

/// Captures whose flow counts differ from tshark's stream counts, with the
/// counts flowscope gives and why. Every other capture must match exactly.
/// (file, our tcp, our udp, reason)
const KNOWN_DIFFERENCES: &[(&str, u64, u64, &str)] = &[];

#[test]
fn corpus_flows_are_accounted_and_match_tshark() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let truth = common::read_tsv(&dir.join("pcaps/truth/summary.tsv"));
    let mut mismatches = BTreeMap::new();
    let mut checked = 0;
    for path in common::captures(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let r = run(&path);
        // Every packet read is accounted for, and every flow ended.
        assert_eq!(
            r.counters.packets, r.packets_read,
            "{name}: packets handed in"
        );
        assert!(
            r.counters.is_balanced(),
            "{name}: unaccounted packets: {:?}",
            r.counters
        );
        assert_eq!(
            r.tracker.packets, r.counters.tracked,
            "{name}: tracker vs driver"
        );
        assert_eq!(r.tracker.active, 0, "{name}: flows left after finish");
        assert_eq!(
            r.tracker.flows_created,
            r.tracker.ended(),
            "{name}: created != ended"
        );
        let Some(row) = truth.get(&name) else {
            panic!("{name}: no truth row");
        };
        let want_tcp: u64 = row["tcp_streams"].parse().unwrap_or(0);
        let want_udp: u64 = row["udp_streams"].parse().unwrap_or(0);
        let known = KNOWN_DIFFERENCES.iter().find(|k| k.0 == name);
        let (exp_tcp, exp_udp) = match known {
            Some(k) => (k.1, k.2),
            None => (want_tcp, want_udp),
        };
        if (r.tcp_flows, r.udp_flows) != (exp_tcp, exp_udp) {
            mismatches.insert(
                name.clone(),
                format!(
                    "ours tcp={} udp={}  expected tcp={} udp={}  (tshark tcp={} udp={}) counters={:?} err={:?}",
                    r.tcp_flows, r.udp_flows, exp_tcp, exp_udp, want_tcp, want_udp, r.counters, r.error
                ),
            );
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} captures found");
    if !mismatches.is_empty() {
        for (k, v) in &mismatches {
            eprintln!("{k}: {v}");
        }
        panic!(
            "{} captures disagree with tshark (see above)",
            mismatches.len()
        );
    }
}
