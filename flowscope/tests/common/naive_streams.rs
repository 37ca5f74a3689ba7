//! A deliberately simple stand-in for the driver, for parser tests on the
//! corpus: TCP payloads are put in order per side with a sorted map (no
//! caps, no wrap-around, retransmitted bytes trimmed), UDP payloads are
//! handed on as they are. Events come in capture order with the 1-based
//! frame number, so results line up with tshark's `frame` column.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use flowscope::capture::CaptureReader;
use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope::track::{FlowTracker, TrackerConfig};
use flowscope_core::{FiveTuple, FlowExtractor, FlowId, FlowSide, L4Proto, Timestamp};

/// One piece of application data.
#[derive(Debug)]
pub struct Piece {
    /// 1-based frame number of the packet that completed this piece.
    pub frame: u64,
    pub ts: Timestamp,
    pub flow: FlowId,
    pub key: FiveTuple,
    pub l4: L4Proto,
    /// (initiator port, responder port).
    pub ports: (u16, u16),
    pub side: FlowSide,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct SideState {
    next: Option<u32>,
    held: BTreeMap<u32, Vec<u8>>,
}

/// Every TCP stream piece (in order per side) and UDP datagram of a capture.
pub fn pieces(path: &Path) -> Vec<Piece> {
    let mut reader = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    let ex = FiveTupleExtractor::new(ExtractConfig::default());
    let mut tracker: FlowTracker<FiveTuple> = FlowTracker::new(TrackerConfig::default());
    let mut sides: HashMap<(FlowId, FlowSide), SideState> = HashMap::new();
    let mut out = Vec::new();
    let mut frame = 0u64;
    while let Ok(Some(pkt)) = reader.next_packet() {
        frame += 1;
        let Ok(x) = ex.extract(&pkt) else { continue };
        let o = tracker.track(&pkt, &x, &mut |_| {});
        let id = o.id(&x.key);
        let (_, sport, _, dport) = x.key.directed(x.orientation);
        let ports = if o.side == FlowSide::Initiator {
            (sport, dport)
        } else {
            (dport, sport)
        };
        let payload = x.payload.slice(pkt.data);
        let mk = |bytes: Vec<u8>| Piece {
            frame,
            ts: pkt.ts,
            flow: id,
            key: x.key,
            l4: x.l4,
            ports,
            side: o.side,
            bytes,
        };
        match (x.l4, x.tcp) {
            (L4Proto::Tcp, Some(tcp)) => {
                let st = sides.entry((id, o.side)).or_default();
                if tcp.flags.syn() {
                    st.next = Some(tcp.seq.wrapping_add(1));
                }
                if payload.is_empty() {
                    continue;
                }
                let next = *st.next.get_or_insert(tcp.seq);
                st.held.entry(tcp.seq).or_insert_with(|| payload.to_vec());
                let mut next = next;
                let mut ready = Vec::new();
                while let Some((&seq, _)) = st.held.iter().next() {
                    let data = st.held.remove(&seq).unwrap_or_default();
                    let end = seq.wrapping_add(data.len() as u32);
                    let behind = next.wrapping_sub(seq) as i32;
                    if behind < 0 {
                        st.held.insert(seq, data);
                        break;
                    }
                    if (end.wrapping_sub(next) as i32) > 0 {
                        ready.extend_from_slice(&data[behind as usize..]);
                        next = end;
                    }
                }
                st.next = Some(next);
                if !ready.is_empty() {
                    out.push(mk(ready));
                }
            }
            (L4Proto::Udp, _) if !payload.is_empty() => out.push(mk(payload.to_vec())),
            _ => {}
        }
    }
    out
}
