//! Seed corpora for the fuzz targets, extracted at run time from the
//! capture corpus and from generated captures (never stored in the repo).
//!
//! The encodings mirror `fuzz/src/lib.rs`; keep the two in step.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flowscope::capture::CaptureReader;
use flowscope::extract::FiveTupleExtractor;
use flowscope_core::{FiveTuple, FlowExtractor, L4Proto, LinkType, Orientation, PacketView, Skip};

/// The fuzz crate's `LINK_TYPES` table, in its order (the selector byte
/// indexes it). The last entry is a link type the extractor does not read.
const LINK_TYPES: [u16; 13] = [1, 101, 12, 14, 228, 229, 0, 108, 113, 276, 9, 104, 147];

/// Largest capture-file seed: bigger files are cut (a truncated capture is
/// a good seed too), so libFuzzer's input size limit stays small.
const MAX_FILE_SEED: usize = 64 << 10;
/// Frames kept per capture for `extract`.
const FRAMES_PER_CAPTURE: usize = 24;
/// Frame sequences per capture for `tracker`/`session_driver`, and their length.
const SEQUENCES_PER_CAPTURE: usize = 4;
const FRAMES_PER_SEQUENCE: usize = 32;
/// Flows per capture and chunks per flow for the stream targets.
const FLOWS_PER_CAPTURE: usize = 8;
const CHUNKS_PER_FLOW: usize = 48;

/// One capture, in memory.
pub struct Capture {
    /// A name for seed files.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// The capture files of `corpus/pcaps`, sorted by name (none when absent).
pub fn corpus_captures(corpus: &Path) -> Result<Vec<Capture>> {
    let dir = corpus.join("pcaps");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
        })
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(Capture { name, bytes });
    }
    Ok(out)
}

/// One frame as the seeds need it.
struct Frame {
    link: LinkType,
    ts_ns: u64,
    data: Vec<u8>,
}

fn frames(cap: &Capture) -> Vec<Frame> {
    let mut out = Vec::new();
    let Ok(mut r) = CaptureReader::new(cap.bytes.as_slice()) else {
        return out;
    };
    while let Ok(Some(p)) = r.next_packet() {
        out.push(Frame {
            link: p.link_type,
            ts_ns: p.ts.as_nanos(),
            data: p.data.to_vec(),
        });
    }
    out
}

fn link_index(link: LinkType) -> u8 {
    LINK_TYPES
        .iter()
        .position(|l| *l == link.0)
        .unwrap_or(LINK_TYPES.len() - 1) as u8
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn frame_sequence(frames: &[Frame]) -> Vec<u8> {
    let mut out = vec![0u8]; // config byte: defaults
    let mut prev = frames.first().map_or(0, |f| f.ts_ns);
    for f in frames {
        let step = (f.ts_ns.saturating_sub(prev) / 10_000_000).min(0x7fff) as u16;
        prev = f.ts_ns;
        let data = f.data.get(..usize::from(u16::MAX)).unwrap_or(&f.data);
        out.push(link_index(f.link));
        put_u16(&mut out, step);
        put_u16(&mut out, data.len() as u16);
        out.extend_from_slice(data);
    }
    out
}

/// A chunk record: tag (side), length, bytes.
fn put_chunk(out: &mut Vec<u8>, responder: bool, data: &[u8]) {
    for piece in data.chunks(usize::from(u16::MAX)) {
        out.push(u8::from(responder));
        put_u16(out, piece.len() as u16);
        out.extend_from_slice(piece);
    }
}

/// Per-flow state while walking a capture.
#[derive(Default)]
struct FlowSeeds {
    first: Option<Orientation>,
    port: u16,
    l4: Option<L4Proto>,
    chunks: Vec<u8>,
    chunk_count: usize,
    segments: Vec<u8>,
    segment_count: usize,
}

/// Every target's seeds, name -> bytes.
#[derive(Default)]
pub struct Seeds {
    pub by_target: HashMap<&'static str, Vec<(String, Vec<u8>)>>,
    seen: HashSet<Vec<u8>>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, name: String, bytes: Vec<u8>) {
        // The same bytes twice add nothing but load time.
        let mut key = target.as_bytes().to_vec();
        key.extend_from_slice(&bytes);
        if self.seen.insert(key) {
            self.by_target
                .entry(target)
                .or_default()
                .push((name, bytes));
        }
    }

    /// Seeds of every target from one capture.
    pub fn add_capture(&mut self, cap: &Capture) {
        let file = cap
            .bytes
            .get(..MAX_FILE_SEED)
            .unwrap_or(&cap.bytes)
            .to_vec();
        self.add("capture_reader", cap.name.clone(), file);
        let frames = frames(cap);
        for (i, f) in frames.iter().take(FRAMES_PER_CAPTURE).enumerate() {
            let mut seed = vec![link_index(f.link)];
            seed.extend_from_slice(&f.data);
            self.add("extract", format!("{}-{i}", cap.name), seed);
        }
        for (i, seq) in frames
            .chunks(FRAMES_PER_SEQUENCE)
            .take(SEQUENCES_PER_CAPTURE)
            .enumerate()
        {
            let seed = frame_sequence(seq);
            self.add("tracker", format!("{}-{i}", cap.name), seed.clone());
            self.add("session_driver", format!("{}-{i}", cap.name), seed);
        }
        self.add_flows(cap, &frames);
    }

    /// Payload chunks (naively by port, in capture order, no reassembly)
    /// for the parsers and TCP segments for the reassembler.
    fn add_flows(&mut self, cap: &Capture, frames: &[Frame]) {
        let ex = FiveTupleExtractor::default();
        let mut flows: HashMap<FiveTuple, FlowSeeds> = HashMap::new();
        let mut order: Vec<FiveTuple> = Vec::new();
        // Defrag records: `[ctl 1 = raw][time step u8][len u16][IP bytes]`.
        let mut fragments = vec![0u8];
        let mut fragment_count = 0;
        for f in frames {
            let view = PacketView::new(&f.data, flowscope_core::Timestamp::ZERO, f.link);
            let extracted = ex.extract(&view);
            let frag = match &extracted {
                Err(Skip::Fragment(info)) => Some(info.ip_offset),
                Ok(e) => e.first_fragment.map(|i| i.ip_offset),
                Err(_) => None,
            };
            if let Some(ip) = frag.and_then(|o| f.data.get(o as usize..)) {
                if fragment_count < CHUNKS_PER_FLOW {
                    let ip = ip.get(..usize::from(u16::MAX)).unwrap_or(ip);
                    fragments.extend_from_slice(&[1, 0]);
                    put_u16(&mut fragments, ip.len() as u16);
                    fragments.extend_from_slice(ip);
                    fragment_count += 1;
                }
            }
            let Ok(e) = extracted else { continue };
            if !matches!(e.l4, L4Proto::Tcp | L4Proto::Udp) {
                continue;
            }
            if !flows.contains_key(&e.key) {
                if flows.len() >= 4 * FLOWS_PER_CAPTURE {
                    continue;
                }
                order.push(e.key);
            }
            let fs = flows.entry(e.key).or_default();
            let first = *fs.first.get_or_insert(e.orientation);
            let responder = e.orientation != first;
            let payload = e.payload.slice(&f.data);
            if fs.l4.is_none() {
                fs.l4 = Some(e.l4);
                // The lower port is the service's, as a rule.
                fs.port = e.key.lo_port.min(e.key.hi_port);
            }
            if !payload.is_empty() && fs.chunk_count < CHUNKS_PER_FLOW {
                put_chunk(&mut fs.chunks, responder, payload);
                fs.chunk_count += 1;
            }
            if let Some(tcp) = e.tcp {
                if fs.segment_count < CHUNKS_PER_FLOW {
                    fs.segments.push(u8::from(responder));
                    fs.segments.push(tcp.flags.0);
                    fs.segments.extend_from_slice(&tcp.seq.to_le_bytes());
                    fs.segments.extend_from_slice(&tcp.ack.to_le_bytes());
                    let p = payload.get(..usize::from(u16::MAX)).unwrap_or(payload);
                    put_u16(&mut fs.segments, p.len() as u16);
                    fs.segments.extend_from_slice(p);
                    fs.segment_count += 1;
                }
            }
        }
        if fragment_count > 0 {
            self.add("defrag", cap.name.clone(), fragments);
        }
        let mut per_target: HashMap<&'static str, usize> = HashMap::new();
        for (i, key) in order.iter().enumerate() {
            let Some(fs) = flows.remove(key) else {
                continue;
            };
            let name = format!("{}-{i}", cap.name);
            let mut add = |seeds: &mut Self, target: &'static str, body: &[u8]| {
                let n = per_target.entry(target).or_default();
                if *n < FLOWS_PER_CAPTURE && !body.is_empty() {
                    *n += 1;
                    let mut seed = vec![0u8];
                    seed.extend_from_slice(body);
                    seeds.add(target, name.clone(), seed);
                }
            };
            let port = fs.port;
            match fs.l4 {
                Some(L4Proto::Tcp) => {
                    add(self, "reassembler", &fs.segments);
                    match port {
                        80 | 8000 | 8080 | 3128 => add(self, "http", &fs.chunks),
                        443 | 8443 | 993 | 995 | 465 => add(self, "tls", &fs.chunks),
                        53 | 5353 => add(self, "dns", &fs.chunks),
                        _ => {}
                    }
                }
                Some(L4Proto::Udp) if port == 53 || port == 5353 => add(self, "dns", &fs.chunks),
                _ => {}
            }
        }
    }

    /// Hand-made defrag seeds in the fuzz target's structured records
    /// (`[ctl][step][id][offset u16 LE][opts][len u16 LE][data]`, ctl low
    /// bits 2 = IPv4, 5 = IPv6, 0x08 = more fragments): a datagram in two
    /// fragments, its reverse order, a duplicate and an overlap.
    pub fn add_defrag_fixtures(&mut self) {
        let frag = |ctl: u8, id: u8, offset_units: u16, len: u16, fill: u8| {
            let mut r = vec![ctl, 1, id];
            r.extend_from_slice(&offset_units.to_le_bytes());
            r.push(0);
            r.extend_from_slice(&len.to_le_bytes());
            r.resize(r.len() + usize::from(len), fill);
            r
        };
        for (name, version) in [("v4", 2u8), ("v6", 5u8)] {
            let first = frag(version | 0x08, 1, 0, 16, b'a');
            let last = frag(version, 1, 2, 8, b'b');
            let overlap = frag(version | 0x08, 1, 1, 16, b'c');
            for (case, records) in [
                ("in-order", vec![&first, &last]),
                ("reversed", vec![&last, &first]),
                ("duplicate", vec![&first, &first, &last]),
                ("overlap", vec![&first, &overlap, &last]),
            ] {
                let mut seed = vec![0u8];
                for r in records {
                    seed.extend_from_slice(r);
                }
                self.add("defrag", format!("fixture-{name}-{case}"), seed);
            }
        }
    }

    /// Writes every target's seeds under `dir/<target>/`, replacing what
    /// was there; returns the count per target.
    pub fn write(&self, dir: &Path, targets: &[&str]) -> Result<Vec<(String, usize)>> {
        let mut counts = Vec::new();
        for t in targets {
            let tdir = dir.join(t);
            if tdir.exists() {
                fs::remove_dir_all(&tdir)
                    .with_context(|| format!("clearing {}", tdir.display()))?;
            }
            fs::create_dir_all(&tdir).with_context(|| format!("creating {}", tdir.display()))?;
            let seeds = self.by_target.get(t).map(Vec::as_slice).unwrap_or(&[]);
            for (i, (name, bytes)) in seeds.iter().enumerate() {
                let file = tdir.join(format!("{i:05}-{}", sanitize(name)));
                fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
            }
            counts.push((t.to_string(), seeds.len()));
        }
        Ok(counts)
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
