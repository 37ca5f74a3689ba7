//! Software RSS: which worker a packet belongs to.
//!
//! A [`Dispatcher`] hashes each packet's **5-tuple** as the workers'
//! trackers key it (the same extractor runs here):
//!
//! - the hash takes the canonical, unordered pair of `(address, port)`
//!   endpoints plus the protocol, so both directions of a flow hash alike
//!   and one worker's tracker sees the whole conversation. "Ports" are the
//!   flow key's: TCP, UDP and SCTP ports, ICMP type and counterpart type
//!   (or code); 0 for protocols without ports, which thus hash by their
//!   address pair and protocol;
//! - why not the IP pair: a few busy host pairs (a proxy, a database, the
//!   loopback captures of the corpus mix: 20 pairs carry 55 % of its
//!   packets) then load one worker; by 5-tuple the largest corpus-mix flow
//!   is 1.3 % of the packets (`docs/performance.md`, "Workers");
//! - after tunnel decapsulation the inner 5-tuple is hashed, because the
//!   tracker keys the inner flow: two flows in one tunnel may go to two
//!   workers, and one inner flow seen through two tunnel endpoints still goes
//!   to one worker.
//!
//! # Fragments
//!
//! A later IP fragment has no ports, yet its flow's worker must reassemble
//! it. The **first** fragment carries the transport header (or at least its
//! ports, RFC 791 §3.1 / RFC 8200 §4.5; a first fragment too short for its
//! TCP or SCTP header is routed by its first four transport bytes), so it is
//! routed by its 5-tuple and its datagram identity (addresses, protocol and
//! IP id for IPv4, RFC 791 §3.2; addresses and fragment id for IPv6) is
//! recorded with its worker in a fixed-size table ([`FRAGMENT_SLOTS`],
//! direct-mapped). Later fragments found in the table follow it. For a
//! fragmented tunnel the first fragment shows the inner key and the later
//! ones only the outer addresses: the table ties them together too.
//!
//! A later fragment that arrives **before** its first fragment (Linux has
//! sent datagrams last fragment first) is not guessed:
//! [`Dispatcher::dispatch`] keeps a copy and delivers it right before the
//! first fragment, to the same worker, in capture order, so that worker's
//! defragmenter has every piece when the first one completes the datagram,
//! as a single driver's would. The store is bounded ([`MAX_HELD_FRAGMENTS`],
//! [`MAX_HELD_BYTES`]) and a fragment waits at most [`HOLD_TIMEOUT`] of
//! capture time; one pushed out, timed out or still held at the end of the
//! input ([`Dispatcher::flush`]) goes to its IP address pair's worker
//! ([`pair_hash`]). Every packet is delivered exactly once;
//! [`DispatchCounters`] counts held, released and unmatched fragments.
//! [`Dispatcher::worker_for`] routes without holding, for callers that
//! cannot (an early fragment then goes to its IP pair's worker at once).
//!
//! With defragmentation off (`defrag == false`) the workers do not
//! reassemble: later fragments go to their IP pair's worker, never held.
//!
//! # Fast path
//!
//! Most packets are plain: Ethernet (± VLAN tags), cooked or raw IP, one IP
//! header that is not a tunnel, a valid transport header. For those the
//! extractor's key is the outer 5-tuple, so the dispatcher reads it straight
//! from the frame bytes (`outer`, also first and later fragments of such a
//! header) and runs the extractor only for the rest. The deliveries are the
//! same either way ([`Dispatcher::with_fast_path`] turns the shortcut off to
//! compare; the tests do, over mutated frames and every corpus capture).
//!
//! Packets the extractor cannot key (not IP, unsupported link type,
//! malformed) carry no flow and go to worker 0, so each is still counted
//! exactly once across the workers.

pub mod file;
mod held;
mod outer;

use std::net::IpAddr;

use flowscope::extract::{ExtractConfig, FiveTupleExtractor};
use flowscope_core::{FiveTuple, FlowExtractor, FragmentInfo, PacketView, Skip, Timestamp};

use held::HeldFragments;
pub use held::{HOLD_TIMEOUT, MAX_HELD_BYTES, MAX_HELD_FRAGMENTS};
use outer::{Frag, Pair};

/// The worker that gets packets no flow can be found for.
pub const UNKEYED_WORKER: usize = 0;

/// Decides the worker of each packet. Its state is the table of fragmented
/// datagrams (fixed size, allocated once) and the later fragments held
/// until their first fragment arrives (bounded, see [`MAX_HELD_FRAGMENTS`]).
#[derive(Clone, Debug)]
pub struct Dispatcher {
    extractor: FiveTupleExtractor,
    workers: usize,
    defrag: bool,
    seed: u64,
    /// Fragmented datagrams whose first fragment was routed:
    /// `(identity, worker)`, direct-mapped by the identity.
    fragments: Box<[(u64, u32)]>,
    held: HeldFragments,
    /// The latest timestamp seen (the hold timeout runs on it).
    clock: Timestamp,
    fast_path: bool,
    counters: DispatchCounters,
}

/// How the dispatcher decided, packet by packet (counted only with more
/// than one worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchCounters {
    /// Packets routed from the frame bytes alone (the fast path).
    pub fast: u64,
    /// Packets routed after running the extractor (tunnels, ICMP,
    /// other encapsulations, malformed or unkeyable frames).
    pub extracted: u64,
    /// Later fragments held because their first fragment had not come yet.
    pub fragments_held: u64,
    /// Held fragments delivered, right before their first fragment, to its
    /// worker.
    pub fragments_released: u64,
    /// Held fragments whose first fragment never came (hold bound, hold
    /// timeout or end of input): delivered to their IP pair's worker.
    pub fragments_unmatched: u64,
}

/// Fragmented datagrams remembered at once (see the module docs).
pub const FRAGMENT_SLOTS: usize = 4096;

/// Where a packet goes.
enum Route {
    /// To this worker; the identity is set when the packet is the first
    /// fragment of a datagram (its held fragments go first).
    To(usize, Option<u64>),
    /// A later fragment whose first fragment has not been seen: its
    /// datagram's identity and the worker its IP pair hashes to.
    Orphan(u64, usize),
}

impl Dispatcher {
    /// A dispatcher over `workers` workers (at least 1) whose drivers use
    /// `extract`. `defrag` must match the drivers: with defragmentation
    /// off, fragments are not reassembled, so later fragments are neither
    /// followed nor held (they go to their IP pair's worker).
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
            held: HeldFragments::default(),
            clock: Timestamp::ZERO,
            fast_path: true,
            counters: DispatchCounters::default(),
        }
    }

    /// The same dispatcher with the fast path (the 5-tuple read from the
    /// frame bytes, see the module docs) on (default) or off. Off, every
    /// packet runs the extractor: the reference the fast path is tested
    /// and measured against. The workers chosen are the same.
    pub fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// How packets were routed so far.
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

    /// Routes `pkt` (packets must come in capture order): calls
    /// `deliver(worker, packet)` zero or more times. A later fragment whose
    /// first fragment has not come yet is held (zero deliveries); a first
    /// fragment is preceded by its held fragments (several). Every packet is
    /// delivered exactly once over the dispatcher's life, the last ones by
    /// [`Dispatcher::flush`] at the end of the input.
    #[inline]
    pub fn dispatch<F: FnMut(usize, &PacketView<'_>)>(
        &mut self,
        pkt: &PacketView<'_>,
        deliver: &mut F,
    ) {
        if self.workers == 1 {
            deliver(0, pkt);
            return;
        }
        self.clock = self.clock.max(pkt.ts);
        if !self.held.is_empty() {
            self.held.expire(self.clock, &mut self.counters, deliver);
        }
        match self.route(pkt) {
            Route::To(w, first) => {
                if let Some(ident) = first {
                    if !self.held.is_empty() {
                        self.held.release(ident, w, &mut self.counters, deliver);
                    }
                }
                deliver(w, pkt);
            }
            Route::Orphan(ident, fallback) => {
                self.held.hold(
                    pkt,
                    ident,
                    fallback,
                    self.clock,
                    &mut self.counters,
                    deliver,
                );
            }
        }
    }

    /// Delivers the fragments still held (their first fragment never came)
    /// to their IP pair's worker. Call it once the input has ended.
    pub fn flush<F: FnMut(usize, &PacketView<'_>)>(&mut self, deliver: &mut F) {
        self.held.flush(&mut self.counters, deliver);
    }

    /// The worker (`0..workers`) of `pkt` without holding anything: as
    /// [`Dispatcher::dispatch`] would route it, except that a later fragment
    /// whose first fragment has not been seen goes to its IP pair's worker
    /// at once. For callers that cannot hold packets; packets must come in
    /// capture order (the fragment table learns from first fragments).
    #[inline]
    pub fn worker_for(&mut self, pkt: &PacketView<'_>) -> usize {
        match self.route(pkt) {
            Route::To(w, _) | Route::Orphan(_, w) => w,
        }
    }

    #[inline]
    fn route(&mut self, pkt: &PacketView<'_>) -> Route {
        if self.workers == 1 {
            return Route::To(0, None);
        }
        if self.fast_path {
            match outer::classify(pkt, &self.extractor.config) {
                Some(outer::Outer::Plain(flow)) => {
                    self.counters.fast += 1;
                    return Route::To(reduce(flow.hash(self.seed), self.workers), None);
                }
                Some(outer::Outer::First(flow, frag)) => {
                    self.counters.fast += 1;
                    let w = reduce(flow.hash(self.seed), self.workers);
                    return Route::To(w, self.first_fragment(frag, w));
                }
                Some(outer::Outer::Fragment(frag)) => {
                    self.counters.fast += 1;
                    return self.later_fragment(frag);
                }
                None => {}
            }
        }
        self.counters.extracted += 1;
        match self.extractor.extract(pkt) {
            Ok(ex) => {
                let w = reduce(key_hash(&ex.key, self.seed), self.workers);
                let first = ex
                    .first_fragment
                    .and_then(|info| fragment_of(pkt.data, &info))
                    .and_then(|frag| self.first_fragment(frag, w));
                Route::To(w, first)
            }
            Err(Skip::Fragment(info)) => match fragment_of(pkt.data, &info) {
                Some(frag) => match short_first_fragment(pkt.data, &info) {
                    Some(flow) => {
                        let w = reduce(flow.hash(self.seed), self.workers);
                        Route::To(w, self.first_fragment(frag, w))
                    }
                    None => self.later_fragment(frag),
                },
                None => Route::To(UNKEYED_WORKER, None),
            },
            Err(_) => Route::To(UNKEYED_WORKER, None),
        }
    }

    /// Remembers that the fragmented datagram `frag` went to `w`: its other
    /// fragments follow it. Returns its identity (`None` without defrag).
    #[inline]
    fn first_fragment(&mut self, frag: Frag, w: usize) -> Option<u64> {
        if !self.defrag {
            return None;
        }
        let id = frag.ident(self.seed);
        if let Some(slot) = self.fragments.get_mut(slot_of(id)) {
            *slot = (id, u32::try_from(w).unwrap_or(0));
        }
        Some(id)
    }

    /// A fragment the flow key cannot be read from: its first fragment's
    /// worker when the table remembers it, else an orphan to hold.
    #[inline]
    fn later_fragment(&self, frag: Frag) -> Route {
        let fallback = reduce(frag.pair.hash(self.seed), self.workers);
        if !self.defrag {
            return Route::To(fallback, None);
        }
        let id = frag.ident(self.seed);
        match self.fragments.get(slot_of(id)) {
            Some(&(tag, w)) if tag == id && (w as usize) < self.workers => {
                Route::To(w as usize, None)
            }
            _ => Route::Orphan(id, fallback),
        }
    }
}

#[inline]
fn slot_of(id: u64) -> usize {
    reduce(id, FRAGMENT_SLOTS)
}

/// The hash key used unless [`Dispatcher::with_seed`] sets another.
pub const DEFAULT_SEED: u64 = 0x5f3c_9a17_d2e4_b861;

/// The fragmented IP header's datagram identity (`None` when the header is
/// not there: the extractor read it, so that only happens on inconsistent
/// input).
fn fragment_of(data: &[u8], info: &FragmentInfo) -> Option<Frag> {
    let ip = data.get(usize::try_from(info.ip_offset).ok()?..)?;
    match ip.first()? >> 4 {
        4 => {
            let h: &[u8; 20] = ip.first_chunk()?;
            let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
            Some(Frag::v4(src, dst, h[9], info.id))
        }
        6 => {
            let h: &[u8; 40] = ip.first_chunk()?;
            Some(Frag::v6(outer::v6_pair(h), info.id))
        }
        _ => None,
    }
}

/// The flow of a first fragment too short for its TCP or SCTP header (the
/// extractor stops at it), read from its first four transport bytes: the
/// ports (RFC 9293 §3.1, RFC 9260 §3.1), which are what the reassembled
/// datagram will be keyed by. A first fragment holds at least 8 bytes of
/// IPv4 payload (offsets count 8-byte units, RFC 791 §3.1) and, for IPv6,
/// the whole header chain and the upper-layer header's start (RFC 8200
/// §4.5, RFC 7112); `None` when even the ports are not there.
fn short_first_fragment(data: &[u8], info: &FragmentInfo) -> Option<outer::Flow> {
    if info.offset != 0 || !info.more {
        return None;
    }
    let at = usize::try_from(info.ip_offset).ok()?;
    let ip = data.get(at..)?;
    let (pair, proto, l4) = match ip.first()? >> 4 {
        4 => {
            let h: &[u8; 20] = ip.first_chunk()?;
            let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
            (Pair::V4(src, dst), h[9], usize::from(h[0] & 0x0f) * 4)
        }
        6 => {
            let h: &[u8; 40] = ip.first_chunk()?;
            let (proto, l4) = outer::v6_upper_layer(ip, h[6])?;
            (outer::v6_pair(h), proto, l4)
        }
        _ => return None,
    };
    if proto != 6 && proto != 132 {
        return None;
    }
    let ports: &[u8; 4] = ip.get(l4..)?.first_chunk()?;
    Some(outer::Flow::new(
        pair,
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
        proto,
    ))
}

/// A keyed hash of a flow: the unordered pair of its `(address, port)`
/// endpoints and its protocol, so both directions hash alike.
/// `flow_hash(a, b, p) == flow_hash(b, a, p)`.
pub fn flow_hash(a: (IpAddr, u16), b: (IpAddr, u16), proto: u8, seed: u64) -> u64 {
    match (a, b) {
        ((IpAddr::V4(x), pa), (IpAddr::V4(y), pb)) => {
            flow_hash_v4(u32::from(x), pa, u32::from(y), pb, proto, seed)
        }
        ((IpAddr::V6(x), pa), (IpAddr::V6(y), pb)) => {
            flow_hash_v6(u128::from(x), pa, u128::from(y), pb, proto, seed)
        }
        // One header never mixes versions; kept total for any input.
        _ => {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            [lo, hi]
                .into_iter()
                .fold(seed ^ u64::from(proto), |h, (addr, port)| match addr {
                    IpAddr::V4(v4) => absorb(h, 4, u64::from(u32::from(v4)), u64::from(port)),
                    IpAddr::V6(v6) => {
                        let x = u128::from(v6);
                        absorb(h, 6 | u64::from(port) << 8, (x >> 64) as u64, x as u64)
                    }
                })
        }
    }
}

/// [`flow_hash`] of the endpoints of a canonical flow key.
#[inline]
fn key_hash(k: &FiveTuple, seed: u64) -> u64 {
    flow_hash(
        (k.lo_addr, k.lo_port),
        (k.hi_addr, k.hi_port),
        k.proto,
        seed,
    )
}

/// A keyed hash of an unordered address pair (no ports, no protocol):
/// where a fragment whose first fragment never came is sent.
pub fn pair_hash(a: IpAddr, b: IpAddr, seed: u64) -> u64 {
    flow_hash((a, 0), (b, 0), 0, seed)
}

/// [`flow_hash`] of IPv4 endpoints as integers (`IpAddr` orders by that
/// value, so the canonical order is the flow key's).
#[inline]
fn flow_hash_v4(a: u32, pa: u16, b: u32, pb: u16, proto: u8, seed: u64) -> u64 {
    let ((lo, plo), (hi, phi)) = if (a, pa) <= (b, pb) {
        ((a, pa), (b, pb))
    } else {
        ((b, pb), (a, pa))
    };
    let ports = u64::from(plo) << 32 | u64::from(phi) << 16 | u64::from(proto);
    absorb(seed, 4, u64::from(lo) << 32 | u64::from(hi), ports)
}

/// [`flow_hash`] of IPv6 endpoints as integers.
#[inline]
fn flow_hash_v6(a: u128, pa: u16, b: u128, pb: u16, proto: u8, seed: u64) -> u64 {
    let ((lo, plo), (hi, phi)) = if (a, pa) <= (b, pb) {
        ((a, pa), (b, pb))
    } else {
        ((b, pb), (a, pa))
    };
    let ports = u64::from(plo) << 32 | u64::from(phi) << 16 | u64::from(proto);
    let h = absorb(seed, 6 | ports << 8, (lo >> 64) as u64, lo as u64);
    absorb(h, 6, (hi >> 64) as u64, hi as u64)
}

/// One address into the hash state: its tag, then two words.
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
