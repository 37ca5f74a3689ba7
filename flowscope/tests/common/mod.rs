//! Helpers shared by the tests that read the shared corpus.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// The corpus folder: `$FLOWSCOPE_CORPUS`, else `../shared/corpus` beside the
/// workspace. `None` (with a printed reason) when it is absent.
pub fn corpus_dir() -> Option<PathBuf> {
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

/// Every capture file in the corpus, sorted by name.
pub fn captures(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("pcaps"))
        .expect("corpus pcaps folder readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
        })
        .collect();
    v.sort();
    v
}

/// A TSV file as rows of `column -> value`, keyed by the first column.
pub fn read_tsv(path: &std::path::Path) -> HashMap<String, HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("truth TSV readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let row: HashMap<String, String> = header
                .iter()
                .zip(cells.iter().chain(std::iter::repeat(&"")))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect();
            (cells.first().unwrap_or(&"").to_string(), row)
        })
        .collect()
}

/// A TSV file as a list of rows (`column -> value`), in file order.
pub fn read_tsv_rows(path: &std::path::Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("truth TSV readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

pub mod driver_messages;
pub mod naive_streams;
