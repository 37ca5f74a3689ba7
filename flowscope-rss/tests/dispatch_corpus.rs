//! The dispatcher's fast path against the extractor on every corpus
//! capture: for 2, 3 and 4 workers, every packet must go to the same worker
//! with the shortcut on as with every packet run through the extractor.

use std::path::PathBuf;

use flowscope::capture::CaptureReader;
use flowscope::extract::ExtractConfig;
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

#[test]
fn fast_path_routes_every_corpus_packet_like_the_extractor() {
    let Some(dir) = corpus_dir() else { return };
    let files = captures(&dir);
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    let (mut packets, mut fast, mut mismatches) = (0u64, 0u64, Vec::new());
    for path in &files {
        for n in [2usize, 3, 4] {
            // Unreadable files are other tests' business; count what reads.
            let Ok(mut reader) = CaptureReader::open(path) else {
                continue;
            };
            let mut quick = Dispatcher::new(ExtractConfig::default(), n, true);
            let mut full = Dispatcher::new(ExtractConfig::default(), n, true).with_fast_path(false);
            let mut index = 0u64;
            while let Ok(Some(p)) = reader.next_packet() {
                let (a, b) = (quick.worker_for(&p), full.worker_for(&p));
                if a != b && mismatches.len() < 20 {
                    mismatches.push(format!(
                        "{} packet {index}, {n} workers: fast {a}, extractor {b}",
                        path.display()
                    ));
                }
                index += 1;
            }
            packets += index;
            fast += quick.counters().fast;
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    eprintln!(
        "{} captures, {packets} packet choices, {fast} by the fast path",
        files.len()
    );
    // The comparison means something only if the shortcut was taken.
    assert!(
        fast * 2 > packets,
        "fast path taken for only {fast} of {packets}"
    );
}
