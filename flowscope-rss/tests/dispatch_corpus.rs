//! The dispatcher on every corpus capture, for 2, 3 and 4 workers: the same
//! deliveries with the fast path on as with every packet run through the
//! extractor, every packet delivered once, both directions of every flow
//! on one worker, every later fragment on its first fragment's worker.

use std::collections::HashMap;
use std::path::PathBuf;

use flowscope::capture::CaptureReader;
use flowscope::extract::ExtractConfig;
use flowscope::extract::FiveTupleExtractor;
use flowscope_core::{FiveTuple, FlowExtractor, FragmentInfo, PacketView, Skip};
use flowscope_rss::dispatch::Dispatcher;

/// The corpus folder: `$FLOWSCOPE_CORPUS`, else `../shared/corpus` beside
/// the workspace; `None` (with `SKIP`) when it is absent.
fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOWSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"))
        });
    if dir.join("pcaps").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: shared corpus not found at {} (set FLOWSCOPE_CORPUS to its folder)",
            dir.display()
        );
        None
    }
}

fn captures(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("pcaps"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.extension()
            .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
    });
    v.sort();
    v
}

/// A fragmented IP header's datagram identity from the frame bytes:
/// addresses (and protocol for IPv4, RFC 791 §3.2) plus the id.
fn datagram(data: &[u8], info: &FragmentInfo) -> Option<(Vec<u8>, u32)> {
    let ip = data.get(usize::try_from(info.ip_offset).ok()?..)?;
    let mut who = match ip.first()? >> 4 {
        4 => ip.get(12..20)?.to_vec(),
        6 => ip.get(8..40)?.to_vec(),
        _ => return None,
    };
    if ip.first()? >> 4 == 4 {
        who.push(*ip.get(9)?);
    }
    Some((who, info.id))
}

#[test]
fn fast_path_routes_every_corpus_packet_like_the_extractor() {
    let Some(dir) = corpus_dir() else { return };
    let files = captures(&dir);
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    let (mut packets, mut fast, mut mismatches) = (0u64, 0u64, Vec::new());
    let (mut held, mut released, mut unmatched) = (0u64, 0u64, 0u64);
    let mut flows_checked = 0usize;
    for path in &files {
        for n in [2usize, 3, 4] {
            // Unreadable files are other tests' business; count what reads.
            let Ok(mut reader) = CaptureReader::open(path) else {
                continue;
            };
            let mut quick = Dispatcher::new(ExtractConfig::default(), n, true);
            let mut full = Dispatcher::new(ExtractConfig::default(), n, true).with_fast_path(false);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut index = 0u64;
            while let Ok(Some(p)) = reader.next_packet() {
                quick.dispatch(&p, &mut |w, p| {
                    a.push((w, p.ts, p.link_type, p.wire_len, p.data.to_vec()))
                });
                full.dispatch(&p, &mut |w, p| {
                    b.push((w, p.ts, p.link_type, p.wire_len, p.data.to_vec()))
                });
                index += 1;
            }
            quick.flush(&mut |w, p| a.push((w, p.ts, p.link_type, p.wire_len, p.data.to_vec())));
            full.flush(&mut |w, p| b.push((w, p.ts, p.link_type, p.wire_len, p.data.to_vec())));
            let name = path.display();
            if a.len() as u64 != index {
                mismatches.push(format!(
                    "{name}, {n} workers: {} of {index} delivered",
                    a.len()
                ));
            }
            if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
                mismatches.push(format!(
                    "{name}, {n} workers: delivery {i} differs: fast {:?}, extractor {:?}",
                    a.get(i).map(|d| d.0),
                    b.get(i).map(|d| d.0)
                ));
            }
            // Independently of the dispatcher: every flow key (both
            // directions) on one worker, every later fragment on its first
            // fragment's worker.
            let ex = FiveTupleExtractor::new(ExtractConfig::default());
            let mut flow_worker: HashMap<FiveTuple, usize> = HashMap::new();
            let mut first_worker: HashMap<(Vec<u8>, u32), usize> = HashMap::new();
            let mut later: Vec<((Vec<u8>, u32), usize)> = Vec::new();
            for (w, ts, link, wire, data) in &a {
                let v = PacketView::new(data, *ts, *link).with_wire_len(*wire);
                match ex.extract(&v) {
                    Ok(e) => {
                        if *flow_worker.entry(e.key).or_insert(*w) != *w {
                            mismatches.push(format!("{name}, {n} workers: flow {:?} split", e.key));
                        }
                        if let Some(id) = e.first_fragment.and_then(|f| datagram(data, &f)) {
                            first_worker.insert(id, *w);
                        }
                    }
                    Err(Skip::Fragment(f)) => {
                        if let Some(id) = datagram(data, &f) {
                            later.push((id, *w));
                        }
                    }
                    Err(_) => {}
                }
            }
            for (id, w) in &later {
                if first_worker.get(id).is_some_and(|f| f != w) {
                    mismatches.push(format!("{name}, {n} workers: fragment {id:?} off its flow"));
                }
            }
            flows_checked += flow_worker.len();
            packets += index;
            let c = quick.counters();
            fast += c.fast;
            held += c.fragments_held;
            released += c.fragments_released;
            unmatched += c.fragments_unmatched;
        }
    }
    mismatches.truncate(20);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    eprintln!(
        "{} captures, {packets} packet choices, {fast} by the fast path, {flows_checked} flows; \
         fragments held {held}, released {released}, unmatched {unmatched}",
        files.len()
    );
    // The comparison means something only if the shortcut was taken.
    assert!(
        fast * 2 > packets,
        "fast path taken for only {fast} of {packets}"
    );
}
