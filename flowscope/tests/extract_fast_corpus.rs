//! The 5-tuple extractor's fast path (`extract/fast.rs`) against the general
//! layer walk on every packet of every corpus capture: `extract` and
//! `extract_into` (over the previous packet's result, as the pipelines reuse
//! it) must give exactly what `extract_general` gives, under the default
//! configuration and with tunnels left wrapped.
//!
//! The corpus lives outside the repository (see `common::corpus_dir`);
//! without it the test prints `SKIP` and passes.
#![cfg(feature = "pcap")]

mod common;

use flowscope::capture::CaptureReader;
use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope_core::{Extracted, FiveTuple, FlowExtractor};

#[derive(Default)]
struct Tally {
    packets: u64,
    fast: u64,
}

/// Compares both paths on every packet of `path`.
fn check_capture(path: &std::path::Path, x: &FiveTupleExtractor, tally: &mut Tally) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let Ok(mut reader) = CaptureReader::open(path) else {
        // Unreadable captures are capture_corpus.rs's business.
        return;
    };
    let mut reused: Option<Extracted<FiveTuple>> = None;
    let mut index = 0u64;
    // Read errors end the capture (capture_corpus.rs checks where).
    while let Ok(Some(pkt)) = reader.next_packet() {
        index += 1;
        tally.packets += 1;
        tally.fast += u64::from(x.takes_fast_path(&pkt));
        let general = x.extract_general(&pkt);
        let fast = x.extract(&pkt);
        match (&general, &fast) {
            (Ok(g), Ok(f)) => assert_eq!(g, f, "{name} packet {index}"),
            (Err(g), Err(f)) => assert_eq!(g, f, "{name} packet {index}"),
            _ => panic!("{name} packet {index}: general {general:?}, fast {fast:?}"),
        }
        if let Some(out) = reused.as_mut() {
            let into = x.extract_into(&pkt, out);
            match (&general, into) {
                (Ok(g), Ok(())) => assert_eq!(g, out, "{name} packet {index}"),
                (Err(g), Err(i)) => assert_eq!(*g, i, "{name} packet {index}"),
                (g, i) => panic!("{name} packet {index}: general {g:?}, extract_into {i:?}"),
            }
        }
        if let Ok(g) = general {
            reused = Some(g);
        }
    }
}

#[test]
fn fast_path_equals_general_walk_on_the_corpus() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let decap = FiveTupleExtractor::default();
    let mut cfg = ExtractConfig::default();
    cfg.decap_tunnels = false;
    let wrapped = FiveTupleExtractor::new(cfg);
    let (mut t_decap, mut t_wrapped) = (Tally::default(), Tally::default());
    let captures = common::captures(&dir);
    for path in &captures {
        check_capture(path, &decap, &mut t_decap);
        check_capture(path, &wrapped, &mut t_wrapped);
    }
    eprintln!(
        "{} captures, {} packets: fast path took {} (tunnels unwrapped), {} (wrapped)",
        captures.len(),
        t_decap.packets,
        t_decap.fast,
        t_wrapped.fast
    );
    // The comparison only means something if the fast path is exercised:
    // the corpus is mostly plain Ethernet TCP/UDP.
    assert!(
        t_decap.fast * 2 > t_decap.packets,
        "fast path took only {} of {} packets",
        t_decap.fast,
        t_decap.packets
    );
    assert!(t_wrapped.fast >= t_decap.fast);
}
