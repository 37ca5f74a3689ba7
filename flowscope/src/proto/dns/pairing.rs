//! Pairing responses with the queries they answer, per flow, bounded.

use flowscope_core::Timestamp;

use super::message::DnsMessage;

/// A query waiting for its response. Names are kept as a hash of their
/// lowercased presentation form: no allocation per query, and a collision
/// only matters when ID and type already agree.
#[derive(Clone, Copy, Debug)]
struct Pending {
    id: u16,
    key: Option<(u16, u64)>,
    ts: Timestamp,
}

/// What happened when a query was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Stored (or already pending: a retransmission keeps the first time).
    Stored,
    /// The table was full: the oldest query was dropped to make room.
    EvictedOldest,
}

/// Queries seen on one flow and not yet answered, at most `cap` of them.
#[derive(Debug)]
pub(crate) struct PendingQueries {
    cap: usize,
    // Oldest first; linear scans over at most `cap` entries.
    queue: Vec<Pending>,
}

impl PendingQueries {
    pub fn new(cap: usize) -> Self {
        PendingQueries {
            cap,
            queue: Vec::new(),
        }
    }

    /// Heap bytes of the queue (its capacity).
    pub fn heap_bytes(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Pending>()
    }

    /// Records a query.
    pub fn query(&mut self, m: &DnsMessage) -> Recorded {
        let p = Pending {
            id: m.id,
            key: key_of(m),
            ts: m.ts,
        };
        if self.queue.iter().any(|q| q.id == p.id && q.key == p.key) {
            return Recorded::Stored;
        }
        if self.cap == 0 {
            return Recorded::EvictedOldest;
        }
        let mut out = Recorded::Stored;
        if self.queue.len() >= self.cap {
            self.queue.remove(0);
            out = Recorded::EvictedOldest;
        }
        self.queue.push(p);
        out
    }

    /// The time of the query `m` (a response) answers, removing it: same ID,
    /// and same first question (name case-insensitively, and type) when the
    /// response carries one.
    pub fn answer(&mut self, m: &DnsMessage) -> Option<Timestamp> {
        let key = key_of(m);
        let i = self
            .queue
            .iter()
            .position(|q| q.id == m.id && (key.is_none() || q.key == key))?;
        Some(self.queue.remove(i).ts)
    }

    /// Queries still waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Forgets them all.
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

/// (QTYPE, hash of the lowercased QNAME) of the first question.
fn key_of(m: &DnsMessage) -> Option<(u16, u64)> {
    let q = m.questions.first()?;
    // FNV-1a, 64-bit. Names compare case-insensitively (RFC 4343), and
    // resolvers randomise the case of queries (DNS 0x20).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in q.name.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Some((q.qtype, h))
}
