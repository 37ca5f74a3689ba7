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
//! # Fast path
//!
//! Most packets are plain: Ethernet (± VLAN tags), cooked or raw IP, one IP
//! header that is neither a fragment nor a tunnel, a valid transport
//! header. For those the extractor's key is the outer address pair, so the
//! dispatcher reads that pair straight from the frame bytes (`outer`) and
//! runs the extractor only for the rest. The worker chosen is the same
//! either way ([`Dispatcher::with_fast_path`] turns the shortcut off to
//! compare; the tests do, over every corpus capture).
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
mod outer;

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
    fast_path: bool,
    counters: DispatchCounters,
}

/// How the dispatcher decided, packet by packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchCounters {
    /// Packets routed by the outer IP pair read from the frame bytes.
    pub fast: u64,
    /// Packets routed after running the extractor (tunnels, fragments,
    /// other encapsulations, malformed or unkeyable frames).
    pub extracted: u64,
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
            fast_path: true,
            counters: DispatchCounters::default(),
        }
    }

    /// The same dispatcher with the fast path (the outer IP pair read from
    /// the frame bytes, see the module docs) on (default) or off. Off, every
    /// packet runs the extractor: the reference the fast path is tested
    /// and measured against. The workers chosen are the same.
    pub fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// How many packets took the fast path and how many the extractor
    /// (counted only with more than one worker).
    pub fn counters(&self) -> DispatchCounters {
        self.counters
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
        if self.fast_path {
            match outer::classify(pkt, &self.extractor.config) {
                Some(outer::Outer::Plain(pair)) => {
                    self.counters.fast += 1;
                    return reduce(pair.hash(self.seed), self.workers);
                }
                Some(outer::Outer::First(pair, id)) => {
                    self.counters.fast += 1;
                    let w = reduce(pair.hash(self.seed), self.workers);
                    let (a, b) = pair.addrs();
                    self.first_fragment(a, b, id, w);
                    return w;
                }
                Some(outer::Outer::Fragment(pair, id)) => {
                    self.counters.fast += 1;
                    let (a, b) = pair.addrs();
                    return self.later_fragment(a, b, id);
                }
                None => {}
            }
        }
        self.counters.extracted += 1;
        match self.extractor.extract(pkt) {
            Ok(ex) => {
                let w = reduce(
                    pair_hash(ex.key.lo_addr, ex.key.hi_addr, self.seed),
                    self.workers,
                );
                if let Some(info) = ex.first_fragment {
                    if let Some((a, b)) = fragment_pair(pkt.data, &info) {
                        self.first_fragment(a, b, info.id, w);
                    }
                }
                w
            }
            Err(Skip::Fragment(info)) => match fragment_pair(pkt.data, &info) {
                Some((a, b)) => self.later_fragment(a, b, info.id),
                None => UNKEYED_WORKER,
            },
            Err(_) => UNKEYED_WORKER,
        }
    }

    /// Remembers that the fragmented datagram `(a, b, frag)` went to `w`:
    /// its other fragments follow it.
    #[inline]
    fn first_fragment(&mut self, a: IpAddr, b: IpAddr, frag: u32, w: usize) {
        if !self.defrag {
            return;
        }
        let id = fragment_id(a, b, frag, self.seed);
        if let Some(slot) = self.fragments.get_mut(slot_of(id)) {
            *slot = (id, u32::try_from(w).unwrap_or(0));
        }
    }

    /// The worker of a fragment the flow key cannot be read from: its first
    /// fragment's, when the table remembers it, else its own addresses'.
    #[inline]
    fn later_fragment(&self, a: IpAddr, b: IpAddr, frag: u32) -> usize {
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
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => pair_hash_v4(u32::from(a), u32::from(b), seed),
        (IpAddr::V6(a), IpAddr::V6(b)) => pair_hash_v6(u128::from(a), u128::from(b), seed),
        // One header never mixes versions; kept total for any input.
        _ => {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            [lo, hi].into_iter().fold(seed, |h, addr| match addr {
                IpAddr::V4(v4) => absorb(h, 4, u64::from(u32::from(v4)), 0),
                IpAddr::V6(v6) => {
                    let x = u128::from(v6);
                    absorb(h, 6, (x >> 64) as u64, x as u64)
                }
            })
        }
    }
}

/// [`pair_hash`] of two IPv4 addresses as integers (`IpAddr` orders them
/// by that value).
#[inline]
fn pair_hash_v4(a: u32, b: u32, seed: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let h = absorb(seed, 4, u64::from(lo), 0);
    absorb(h, 4, u64::from(hi), 0)
}

/// [`pair_hash`] of two IPv6 addresses as integers.
#[inline]
fn pair_hash_v6(a: u128, b: u128, seed: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let h = absorb(seed, 6, (lo >> 64) as u64, lo as u64);
    absorb(h, 6, (hi >> 64) as u64, hi as u64)
}

/// One address into the hash state: its version tag, then two words.
#[inline(always)]
fn absorb(h: u64, tag: u64, w0: u64, w1: u64) -> u64 {
    mix(mix(mix(h ^ tag) ^ w0) ^ w1)
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
mod fast_path_tests;
#[cfg(test)]
mod tests;
