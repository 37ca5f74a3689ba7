//! Software RSS: which worker a packet belongs to.
//!
//! A [`Dispatcher`] runs the same extractor the workers' drivers run and
//! hashes the **unordered pair of IP addresses** that key the packet's flow:
//!
//! - both directions of a flow hash alike (the pair is put in canonical
//!   order first), so one worker's tracker sees the whole conversation;
//! - every IP fragment of a datagram hashes like its flow: a non-first
//!   fragment has no ports, but it has the addresses of the IP header it
//!   fragments, and those are the flow's addresses (the fragment's IP
//!   header is the innermost one the extractor reached, as is the flow
//!   key's). Hashing ports too would split a fragmented datagram from its
//!   flow, so the spread is per host pair, as with the kernel's
//!   `PACKET_FANOUT_HASH` on a NIC that hashes fragments by addresses only;
//! - after tunnel decapsulation the inner addresses are hashed, because the
//!   tracker keys the inner 5-tuple: two flows in one tunnel may go to two
//!   workers, and one inner flow seen through two tunnel endpoints still goes
//!   to one worker.
//!
//! Packets the extractor cannot key (not IP, unsupported link type,
//! malformed) carry no flow and go to worker 0, so each is still counted
//! exactly once across the workers.
//!
//! Fragmented tunnels: when the **outer** header of a tunnel is fragmented,
//! a non-first fragment shows only the outer addresses, while the flow is
//! keyed (after reassembly) by the inner ones. The first fragment shows the
//! inner key, so the dispatcher routes it by that key and remembers the
//! fragmented datagram's identity (addresses and IP id) in a small
//! fixed-size table; the later fragments follow it. A fragment that arrives
//! before its first fragment (or after its entry was overwritten by
//! [`FRAGMENT_SLOTS`] newer datagrams) falls back to its own addresses.

pub mod file;

use std::net::IpAddr;

use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope_core::{FlowExtractor, FragmentInfo, PacketView, Skip};

/// The worker that gets packets no flow can be found for.
pub const UNKEYED_WORKER: usize = 0;

/// Decides the worker of each packet. Its only state is the table of
/// fragmented datagrams (fixed size, allocated once).
#[derive(Clone, Debug)]
pub struct Dispatcher {
    extractor: FiveTupleExtractor,
    workers: usize,
    defrag: bool,
    seed: u64,
    /// Fragmented datagrams whose first fragment was routed by its inner
    /// key: `(identity hash, worker)`, direct-mapped by the hash.
    fragments: Box<[(u64, u32)]>,
}

/// Fragmented datagrams remembered at once (see the module docs).
pub const FRAGMENT_SLOTS: usize = 4096;

impl Dispatcher {
    /// A dispatcher over `workers` workers (at least 1) whose drivers use
    /// `extract`. `defrag` must match the drivers: with defragmentation
    /// off, a first fragment is tracked under its own key, so it is hashed
    /// by that key rather than by its fragment header.
    pub fn new(extract: ExtractConfig, workers: usize, defrag: bool) -> Self {
        let mut extract = extract;
        // Checksums do not change the key; skipping them keeps the
        // dispatcher cheap.
        extract.verify_checksums = false;
        Dispatcher {
            extractor: FiveTupleExtractor::new(extract),
            workers: workers.max(1),
            defrag,
            seed: DEFAULT_SEED,
            fragments: vec![(0, 0); FRAGMENT_SLOTS].into_boxed_slice(),
        }
    }

    /// The same dispatcher with another hash key (a deployment may want its
    /// split not to be predictable from outside).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many workers packets are spread over.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The worker (`0..workers`) that owns `pkt`'s flow. Packets must come
    /// in capture order (the fragment table learns from first fragments).
    #[inline]
    pub fn worker_for(&mut self, pkt: &PacketView<'_>) -> usize {
        if self.workers == 1 {
            return 0;
        }
        let (a, b, frag) = match self.extractor.extract(pkt) {
            Ok(ex) => {
                let w = reduce(
                    pair_hash(ex.key.lo_addr, ex.key.hi_addr, self.seed),
                    self.workers,
                );
                if let Some(info) = ex.first_fragment.filter(|_| self.defrag) {
                    // The datagram's other fragments follow this one.
                    if let Some((a, b)) = fragment_pair(pkt.data, &info) {
                        let id = fragment_id(a, b, info.id, self.seed);
                        if let Some(slot) = self.fragments.get_mut(slot_of(id)) {
                            *slot = (id, u32::try_from(w).unwrap_or(0));
                        }
                    }
                }
                return w;
            }
            Err(Skip::Fragment(info)) => match fragment_pair(pkt.data, &info) {
                Some((a, b)) => (a, b, info.id),
                None => return UNKEYED_WORKER,
            },
            Err(_) => return UNKEYED_WORKER,
        };
        let id = fragment_id(a, b, frag, self.seed);
        match self.fragments.get(slot_of(id)) {
            Some(&(tag, w)) if tag == id && (w as usize) < self.workers => w as usize,
            _ => reduce(pair_hash(a, b, self.seed), self.workers),
        }
    }
}

/// A fragmented datagram's identity (RFC 791 §3.2: source, destination,
/// identification; the protocol is left out, which only merges identities
/// that already collide on 32 bits of id and both addresses). Never 0, the
/// empty slot's tag.
fn fragment_id(a: IpAddr, b: IpAddr, id: u32, seed: u64) -> u64 {
    // Directed: a datagram's fragments all have the same source.
    let h = mix(pair_hash(a, b, seed) ^ u64::from(id) ^ (u64::from(a < b) << 32));
    h | 1
}

#[inline]
fn slot_of(id: u64) -> usize {
    reduce(id, FRAGMENT_SLOTS)
}

/// The hash key used unless [`Dispatcher::with_seed`] sets another.
pub const DEFAULT_SEED: u64 = 0x5f3c_9a17_d2e4_b861;

/// The source and destination addresses of the fragmented IP header
/// (`None` when the header is not there: the extractor read it, so that
/// only happens on inconsistent input).
fn fragment_pair(data: &[u8], info: &FragmentInfo) -> Option<(IpAddr, IpAddr)> {
    let ip = data.get(usize::try_from(info.ip_offset).ok()?..)?;
    match ip.first()? >> 4 {
        4 => {
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        6 => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        _ => None,
    }
}

/// A keyed hash of an unordered address pair: `pair_hash(a, b) ==
/// pair_hash(b, a)`.
pub fn pair_hash(a: IpAddr, b: IpAddr, seed: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = seed;
    for addr in [lo, hi] {
        let (tag, words) = match addr {
            IpAddr::V4(v4) => (4u64, [u64::from(u32::from(v4)), 0]),
            IpAddr::V6(v6) => {
                let x = u128::from(v6);
                (6u64, [(x >> 64) as u64, x as u64])
            }
        };
        h = mix(h ^ tag);
        for w in words {
            h = mix(h ^ w);
        }
    }
    h
}

/// A full-avalanche 64-bit mixer (the MurmurHash3 `fmix64` finaliser after a
/// golden-ratio add, so zero words still move the state).
#[inline]
fn mix(x: u64) -> u64 {
    let mut x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Maps a 64-bit hash onto `0..n` without a division (Lemire's
/// multiply-shift): uniform when the hash is.
#[inline]
fn reduce(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests;
