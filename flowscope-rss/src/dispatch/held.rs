//! Later fragments waiting for their first fragment.
//!
//! A non-first fragment carries no ports, so its worker is its first
//! fragment's. When it arrives before that first fragment (Linux has sent
//! datagrams last fragment first), the dispatcher keeps a copy here instead
//! of guessing, and delivers it right before the first fragment, to the same
//! worker, so that worker's defragmenter holds every piece when the first
//! one completes the datagram (as a single driver's would).
//!
//! The store is bounded ([`MAX_HELD_FRAGMENTS`], [`MAX_HELD_BYTES`]) and
//! fragments wait at most [`HOLD_TIMEOUT`] of capture time; a fragment
//! pushed out by those limits, or still here at the end of the input, goes
//! to the worker its IP address pair hashes to (counted as unmatched).

use std::collections::VecDeque;
use std::time::Duration;

use flowscope_core::{LinkType, PacketView, Timestamp};

use super::DispatchCounters;

/// Fragments held at once; the oldest is let go beyond this.
pub const MAX_HELD_FRAGMENTS: usize = 1024;
/// Frame bytes held at once; the oldest fragments are let go beyond this.
pub const MAX_HELD_BYTES: usize = 4 << 20;
/// How long (capture time) a fragment waits for its first fragment: the
/// usual reassembly timeout (Linux `ipfrag_time`, 30 s).
pub const HOLD_TIMEOUT: Duration = Duration::from_secs(30);
/// Emptied copy buffers kept for reuse (no allocation per held fragment
/// once warmed up), and the largest capacity worth keeping.
const SPARE_BUFFERS: usize = 64;
const SPARE_CAPACITY: usize = 64 << 10;

/// A held copy of one fragment's frame.
#[derive(Clone, Debug)]
struct Entry {
    /// The datagram's identity (see `Frag::ident`).
    ident: u64,
    /// Where it goes if its first fragment never comes.
    fallback: usize,
    /// The dispatcher's clock when it was held (monotone along the queue).
    held_at: Timestamp,
    data: Vec<u8>,
    ts: Timestamp,
    wire_len: u32,
    link_type: LinkType,
    source: Option<u32>,
}

impl Entry {
    fn view(&self) -> PacketView<'_> {
        let v = PacketView::new(&self.data, self.ts, self.link_type).with_wire_len(self.wire_len);
        match self.source {
            Some(s) => v.with_source(s),
            None => v,
        }
    }
}

/// The held fragments, in capture order.
#[derive(Clone, Debug, Default)]
pub(super) struct HeldFragments {
    queue: VecDeque<Entry>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
}

impl HeldFragments {
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Keeps a copy of `pkt` (identity `ident`) until its first fragment
    /// comes; lets the oldest go to their fallback worker when over a bound.
    pub(super) fn hold<F: FnMut(usize, &PacketView<'_>)>(
        &mut self,
        pkt: &PacketView<'_>,
        ident: u64,
        fallback: usize,
        now: Timestamp,
        counters: &mut DispatchCounters,
        deliver: &mut F,
    ) {
        let mut data = self.spare.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(pkt.data);
        self.bytes += data.len();
        self.queue.push_back(Entry {
            ident,
            fallback,
            held_at: now,
            data,
            ts: pkt.ts,
            wire_len: pkt.wire_len,
            link_type: pkt.link_type,
            source: pkt.source,
        });
        counters.fragments_held += 1;
        while self.queue.len() > MAX_HELD_FRAGMENTS || self.bytes > MAX_HELD_BYTES {
            if !self.let_go_oldest(counters, deliver) {
                break;
            }
        }
    }

    /// Delivers to `worker`, in capture order, every held fragment of the
    /// datagram `ident` (its first fragment has just been routed there).
    pub(super) fn release<F: FnMut(usize, &PacketView<'_>)>(
        &mut self,
        ident: u64,
        worker: usize,
        counters: &mut DispatchCounters,
        deliver: &mut F,
    ) {
        let (spare, bytes) = (&mut self.spare, &mut self.bytes);
        self.queue.retain_mut(|e| {
            if e.ident != ident {
                return true;
            }
            deliver(worker, &e.view());
            counters.fragments_released += 1;
            *bytes = bytes.saturating_sub(e.data.len());
            recycle(spare, std::mem::take(&mut e.data));
            false
        });
    }

    /// Lets go, to their fallback worker, the fragments held longer than
    /// [`HOLD_TIMEOUT`] before `now`.
    pub(super) fn expire<F: FnMut(usize, &PacketView<'_>)>(
        &mut self,
        now: Timestamp,
        counters: &mut DispatchCounters,
        deliver: &mut F,
    ) {
        while self
            .queue
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.held_at) > HOLD_TIMEOUT)
        {
            self.let_go_oldest(counters, deliver);
        }
    }

    /// Lets every held fragment go to its fallback worker (end of input).
    pub(super) fn flush<F: FnMut(usize, &PacketView<'_>)>(
        &mut self,
        counters: &mut DispatchCounters,
        deliver: &mut F,
    ) {
        while self.let_go_oldest(counters, deliver) {}
    }

    /// The oldest held fragment to its fallback worker; false when none.
    fn let_go_oldest<F: FnMut(usize, &PacketView<'_>)>(
        &mut self,
        counters: &mut DispatchCounters,
        deliver: &mut F,
    ) -> bool {
        let Some(e) = self.queue.pop_front() else {
            return false;
        };
        deliver(e.fallback, &e.view());
        counters.fragments_unmatched += 1;
        self.bytes = self.bytes.saturating_sub(e.data.len());
        recycle(&mut self.spare, e.data);
        true
    }
}

fn recycle(spare: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
    if spare.len() < SPARE_BUFFERS && buf.capacity() <= SPARE_CAPACITY {
        spare.push(buf);
    }
}
