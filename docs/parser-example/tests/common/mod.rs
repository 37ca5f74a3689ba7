//! Helpers shared by the integration tests: encode frames, run a parser
//! over chunks, collect its events.

#![allow(dead_code)] // each test file uses a subset

use flowscope_core::{FlowSide, SessionEvent, SessionParser, Timestamp};
use flowscope_example_lenproto::{LenProtoConfig, LenProtoMessage, LenProtoParser};

pub type Event = SessionEvent<LenProtoMessage>;

/// A version-1 frame: version, kind, big-endian u16 length, body.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    let mut v = vec![1, kind];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Cuts `bytes` at the given offsets (taken modulo the length, sorted,
/// duplicates and empty chunks allowed).
pub fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes.get(start..c).unwrap_or_default().to_vec());
        start = c;
    }
    out
}

/// Feeds each chunk of one side at the same time stamp and returns the events.
pub fn run<C: AsRef<[u8]>>(config: LenProtoConfig, side: FlowSide, chunks: &[C]) -> Vec<Event> {
    let mut p = LenProtoParser::new(config);
    let mut ev = Vec::new();
    for c in chunks {
        p.on_data(side, c.as_ref(), Timestamp::from_nanos(1), &mut |e| {
            ev.push(e)
        });
    }
    p.on_close(Timestamp::from_nanos(2), &mut |e| ev.push(e));
    ev
}

/// The side an event belongs to (messages and anomalies carry one).
pub fn side_of(e: &Event) -> Option<FlowSide> {
    match e {
        SessionEvent::Message(m) => Some(m.side),
        SessionEvent::Anomaly { side, .. } => *side,
        _ => None,
    }
}
