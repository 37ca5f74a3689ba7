//! IPv4 and IPv6 defragmentation: bounded and overlap-safe.
//!
//! The driver hands every fragment to [`Defragmenter::push`], starting at the
//! fragment's (innermost) IP header: the frames whose extraction is
//! `Err(Skip::Fragment(info))`, and those whose `Extracted::first_fragment`
//! is `Some(info)`, sliced at `info.ip_offset`. When the last missing piece
//! arrives, `push` returns the whole datagram as one unfragmented IP packet,
//! to be run through the extractor again as a raw-IP frame
//! ([`LinkType::RAW`](flowscope_core::LinkType::RAW)).
//!
//! Data flow: `ipv4`/`ipv6` read a fragment into a common shape; the
//! `table` finds or starts its datagram within the entry and memory
//! bounds; the datagram's arrival bitmap (`holes`) decides whether the
//! fragment is new, a duplicate or an overlap; once `[0, total)` has
//! arrived the packet is rebuilt in a reused output buffer.
//!
//! Policy, by design choice or RFC:
//! - Key: IP version, source, destination, identification and, for IPv4,
//!   the protocol (RFC 791 §3.2). IPv6 keys leave the Next Header out, as
//!   RFC 8200 §4.5 does: it may differ between fragments of one packet and
//!   only the first fragment's counts.
//! - Duplicates: a fragment all of whose bytes have arrived already, with
//!   identical values, is ignored and counted (`dropped_duplicate`); the
//!   datagram goes on. RFC 8200 §4.5 allows this for exact duplicates; a
//!   contained identical fragment cannot change the result either.
//! - Overlaps (any other fragment that shares bytes with what has arrived):
//!   IPv4 drops that fragment and keeps the datagram (first data wins, so
//!   a teardrop-style rewrite cannot change bytes already received). IPv6
//!   abandons the whole datagram (RFC 5722) and remembers its key until
//!   its timeout, dropping later fragments of it too.
//! - A non-last fragment whose length is not a multiple of 8 (RFC 8200
//!   §4.5; for IPv4 the next offset could not follow it), an empty
//!   fragment, or a last fragment that disagrees with the length already
//!   known is malformed and dropped; the datagram goes on.
//! - A fragment ending past [`DefragConfig::max_datagram_len`], or making a
//!   packet too long for its 16-bit length field, is dropped as too big.
//! - Table full or memory budget spent: the new fragment is dropped and
//!   counted; datagrams in progress are never evicted for newcomers.
//! - Timeout: a datagram expires `timeout` after its first fragment arrived,
//!   at the first `push` or [`Defragmenter::advance_to`] whose time is at or
//!   past that. Deadlines never run backwards: when capture time steps
//!   back, a new datagram's deadline is raised to the newest one's.
//! - IPv6 atomic fragments (offset 0, M clear: RFC 6946) are returned at
//!   once without the Fragment header and never mixed with other fragments.
//! - The rebuilt header is the first fragment's: IPv4 with the total length
//!   set, MF and the offset cleared (DF kept) and a fresh header checksum;
//!   IPv6 without the Fragment header, with the payload length and the
//!   preceding Next Header fixed.
//!
//! Every fragment pushed is accounted for exactly once: see
//! [`DefragStats::accounted`].

mod config;
mod holes;
mod ipv4;
mod ipv6;
mod table;

#[cfg(test)]
mod tests;

pub use config::DefragConfig;

use flowscope_core::Timestamp;

use holes::Fit;
use table::{Key, State, Table};

/// One fragment read from its IP header: the common shape of both versions.
#[derive(Clone, Copy, Debug)]
struct Fragment<'a> {
    key: Key,
    /// Offset of `data` in the reassembled payload, in bytes.
    offset: u32,
    /// More fragments follow.
    more: bool,
    /// The part that is not fragmented: the IPv4 header, or the IPv6 header
    /// and the extension headers before the Fragment header.
    header: &'a [u8],
    /// The fragment's share of the payload.
    data: &'a [u8],
    /// IPv6: where in `header` the Next Header naming the Fragment header
    /// is, and the Fragment header's own Next Header.
    next_header: Option<(usize, u8)>,
}

impl Fragment<'_> {
    /// Bytes the header adds to the packet's 16-bit length field.
    fn overhead(&self) -> usize {
        overhead(self.key.version, self.header.len())
    }
}

/// Bytes a header of `len` adds to the 16-bit length field of `version`.
fn overhead(version: u8, len: usize) -> usize {
    if version == 4 {
        ipv4::header_overhead(len)
    } else {
        ipv6::header_overhead(len)
    }
}

/// The least a header adds to the length field, before the first fragment
/// shows the real header: a bare IPv4 header, or no IPv6 extension header.
fn min_overhead(version: u8) -> usize {
    if version == 4 {
        20
    } else {
        0
    }
}

/// Largest value of the IPv4 total length and IPv6 payload length fields.
const LEN_FIELD_MAX: usize = 65_535;

/// What became of a pushed fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefragOutcome<'a> {
    /// Kept until the rest of its datagram arrives.
    Held,
    /// It completed its datagram: the whole IP packet, unfragmented, valid
    /// until the next call on the defragmenter.
    Complete(&'a [u8]),
    /// Not kept, for this reason (also counted in [`DefragStats`]).
    Dropped(DropReason),
}

/// Why a fragment was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// It overlaps bytes already received with different values or
    /// boundaries, or (IPv6) its datagram was abandoned for an overlap.
    Overlap,
    /// All its bytes had arrived already, identical: ignored.
    Duplicate,
    /// It would end past the datagram size limit or the length field.
    TooBig,
    /// It would start a new datagram while the table is full.
    TableFull,
    /// Holding it would pass the memory budget.
    Memory,
    /// Not a readable fragment: cut short, inconsistent, not wholly captured,
    /// not a fragment at all, an empty or odd-sized non-last fragment, or a
    /// last fragment disagreeing with the known length.
    Malformed,
}

/// Counters of a [`Defragmenter`].
///
/// Fragment counters (all but the `datagrams_*` ones and `memory_reserved`)
/// count fragments, so that every fragment pushed is in exactly one of the
/// terms of [`DefragStats::accounted`], which always equals `fragments`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefragStats {
    /// Fragments pushed.
    pub fragments: u64,
    /// Datagrams rebuilt and returned.
    pub datagrams_completed: u64,
    /// Fragments that went into the completed datagrams.
    pub fragments_completed: u64,
    /// Fragments held now, waiting for the rest of their datagram.
    pub held_now: u64,
    /// Datagrams being reassembled now (not counting abandoned IPv6 ones).
    pub datagrams_held_now: u64,
    /// Fragments thrown away because their datagram timed out.
    pub timed_out: u64,
    /// Datagrams that timed out incomplete.
    pub datagrams_timed_out: u64,
    /// Fragments dropped for an overlap: the overlapping fragment itself,
    /// for IPv6 also the fragments of the datagram it made abandoned and
    /// any later fragment of that datagram.
    pub dropped_overlap: u64,
    /// IPv6 datagrams abandoned for an overlap.
    pub datagrams_overlapped: u64,
    /// Identical re-sent fragments ignored.
    pub dropped_duplicate: u64,
    /// Fragments past the size limit.
    pub dropped_too_big: u64,
    /// Fragments refused because the table was full.
    pub dropped_table_full: u64,
    /// Fragments refused for the memory budget.
    pub dropped_memory: u64,
    /// Fragments that were malformed (see [`DropReason::Malformed`]).
    pub malformed: u64,
    /// Buffer bytes reserved now (see [`DefragConfig::max_memory`]).
    pub memory_reserved: u64,
    /// Fragments thrown away with their datagram to bring a driver's
    /// global memory budget back down ([`Defragmenter::shed_oldest`]).
    pub shed: u64,
    /// Datagrams in progress thrown away that way.
    pub datagrams_shed: u64,
}

impl DefragStats {
    /// Every fragment pushed ends in exactly one of: held now, part of a
    /// completed datagram, timed out, or one drop counter. This sums those
    /// terms; it always equals [`DefragStats::fragments`].
    pub fn accounted(&self) -> u64 {
        self.held_now
            + self.fragments_completed
            + self.timed_out
            + self.dropped_overlap
            + self.dropped_duplicate
            + self.dropped_too_big
            + self.dropped_table_full
            + self.dropped_memory
            + self.malformed
            + self.shed
    }
}

/// Rebuilds fragmented IPv4 and IPv6 datagrams, within fixed bounds.
///
/// Sans-IO and clock-free: time comes only from the timestamps given to
/// [`Defragmenter::push`] and [`Defragmenter::advance_to`].
pub struct Defragmenter {
    config: DefragConfig,
    table: Table,
    /// The last completed datagram (reused).
    out: Vec<u8>,
    stats: DefragStats,
}

impl Default for Defragmenter {
    fn default() -> Self {
        Defragmenter::new(DefragConfig::default())
    }
}

impl core::fmt::Debug for Defragmenter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Defragmenter")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Defragmenter {
    /// A defragmenter with these limits.
    pub fn new(config: DefragConfig) -> Self {
        Defragmenter {
            table: Table::new(config.max_datagrams, config.max_memory),
            config,
            out: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// The limits in use.
    pub fn config(&self) -> &DefragConfig {
        &self.config
    }

    /// Current counters.
    pub fn stats(&self) -> DefragStats {
        let mut s = self.stats;
        s.memory_reserved = self.table.reserved() as u64;
        s
    }

    /// Buffer bytes reserved now, live and spare (O(1); the same as
    /// [`DefragStats::memory_reserved`]).
    pub fn memory_reserved(&self) -> usize {
        self.table.reserved()
    }

    /// Frees the buffers kept for reuse by finished datagrams; returns the
    /// bytes released. Nothing in progress is lost. O(datagram slots).
    pub fn release_spare(&mut self) -> usize {
        self.table.release_spare()
    }

    /// Throws away the datagram that would expire first (the oldest), with
    /// its buffers: its fragments are counted in [`DefragStats::shed`].
    /// False when no datagram is held. For a memory budget under pressure.
    pub fn shed_oldest(&mut self) -> bool {
        let Some(i) = self.table.oldest() else {
            return false;
        };
        if let Some(e) = self.table.get(i) {
            if e.state == State::Live {
                let frags = u64::from(e.frags);
                self.stats.shed += frags;
                self.stats.held_now = self.stats.held_now.saturating_sub(frags);
                self.stats.datagrams_shed += 1;
                self.stats.datagrams_held_now = self.stats.datagrams_held_now.saturating_sub(1);
            }
        }
        self.table.discard(i);
        true
    }

    /// Expires the datagrams whose timeout has passed at `now`.
    pub fn advance_to(&mut self, now: Timestamp) {
        while let Some(i) = self.table.expired(now) {
            if let Some(e) = self.table.get(i) {
                if e.state == State::Live {
                    let frags = u64::from(e.frags);
                    self.stats.timed_out += frags;
                    self.stats.held_now = self.stats.held_now.saturating_sub(frags);
                    self.stats.datagrams_timed_out += 1;
                    self.stats.datagrams_held_now = self.stats.datagrams_held_now.saturating_sub(1);
                }
            }
            self.table.remove(i);
        }
    }

    /// Takes one fragment, `ip` starting at its IP header (bytes past the
    /// IP length, such as link padding, are ignored), captured at `ts`.
    /// Expires timed-out datagrams first.
    pub fn push(&mut self, ts: Timestamp, ip: &[u8]) -> DefragOutcome<'_> {
        self.advance_to(ts);
        self.stats.fragments += 1;
        let frag = match ip.first().map(|b| b >> 4) {
            Some(4) => ipv4::parse(ip),
            Some(6) => ipv6::parse(ip),
            _ => None,
        };
        let Some(frag) = frag else {
            return self.drop(DropReason::Malformed);
        };
        let len = frag.data.len();
        if len == 0 || (frag.more && len % 8 != 0) {
            return self.drop(DropReason::Malformed);
        }
        // Offsets are at most 8191 × 8 and lengths at most 65 535: no overflow.
        let end = frag.offset as usize + len;
        let room = LEN_FIELD_MAX - min_overhead(frag.key.version);
        let own_room = LEN_FIELD_MAX.saturating_sub(frag.overhead());
        if end > self.config.max_datagram_len as usize
            || end > room
            || (frag.offset == 0 && end > own_room)
        {
            return self.drop(DropReason::TooBig);
        }
        if frag.offset == 0 && !frag.more {
            // Only an IPv6 atomic fragment gets here (IPv4 ones are not
            // fragments): a datagram of its own (RFC 6946).
            return self.atomic(&frag);
        }
        let i = match self.table.find(&frag.key) {
            Some(i) => i,
            None => {
                let deadline = ts.saturating_add(self.config.timeout);
                match self.table.insert(frag.key, deadline) {
                    Ok(i) => {
                        self.stats.datagrams_held_now += 1;
                        i
                    }
                    Err(table::NoRoom::TableFull) => {
                        return self.drop(DropReason::TableFull);
                    }
                }
            }
        };
        match self.add(i, &frag, end) {
            Ok(true) => self.complete(i),
            Ok(false) => DefragOutcome::Held,
            Err(reason) => {
                // A datagram that holds nothing would only sit in the table.
                if self
                    .table
                    .get(i)
                    .is_some_and(|e| e.state == State::Live && e.frags == 0)
                {
                    self.table.remove(i);
                    self.stats.datagrams_held_now = self.stats.datagrams_held_now.saturating_sub(1);
                }
                self.drop(reason)
            }
        }
    }

    /// Counts a dropped fragment.
    fn drop(&mut self, reason: DropReason) -> DefragOutcome<'static> {
        let s = &mut self.stats;
        match reason {
            DropReason::Overlap => s.dropped_overlap += 1,
            DropReason::Duplicate => s.dropped_duplicate += 1,
            DropReason::TooBig => s.dropped_too_big += 1,
            DropReason::TableFull => s.dropped_table_full += 1,
            DropReason::Memory => s.dropped_memory += 1,
            DropReason::Malformed => s.malformed += 1,
        }
        DefragOutcome::Dropped(reason)
    }

    /// Adds `frag` (ending at `end`) to datagram `i`: `Ok(true)` when the
    /// datagram is now whole, `Err` when the fragment is not kept (and not
    /// yet counted).
    fn add(&mut self, i: u32, frag: &Fragment<'_>, end: usize) -> Result<bool, DropReason> {
        let e = self.table.get(i).ok_or(DropReason::Malformed)?;
        if e.state == State::Dead {
            return Err(DropReason::Overlap);
        }
        let (start, end32) = (frag.offset, end as u32);
        let held_end = e.received.max_end() as usize;
        // The packet must fit its length field with the real header, known
        // once the first fragment is in.
        let overhead = if frag.offset == 0 {
            frag.overhead()
        } else if e.header.is_empty() {
            min_overhead(frag.key.version)
        } else {
            overhead(frag.key.version, e.header.len())
        };
        if held_end.max(end) + overhead > LEN_FIELD_MAX {
            return Err(DropReason::TooBig);
        }
        let fits_total = match (frag.more, e.total) {
            (false, Some(total)) => total == end32,
            (false, None) => held_end <= end,
            (true, Some(total)) => end32 <= total,
            (true, None) => true,
        };
        if !fits_total {
            return Err(DropReason::Malformed);
        }
        match e.received.fit(start, end32) {
            Fit::Inside => {
                let same = e.data.get(start as usize..end) == Some(frag.data);
                return Err(if same {
                    DropReason::Duplicate
                } else {
                    self.overlap(i, frag)
                });
            }
            Fit::Partial => return Err(self.overlap(i, frag)),
            Fit::New => {}
        }
        let header_len = if frag.offset == 0 {
            frag.header.len()
        } else {
            0
        };
        if !self.table.reserve(i, held_end.max(end), header_len) {
            return Err(DropReason::Memory);
        }
        let e = self.table.get_mut(i).ok_or(DropReason::Malformed)?;
        if e.data.len() < end {
            e.data.resize(end, 0);
        }
        let dst = e
            .data
            .get_mut(start as usize..end)
            .ok_or(DropReason::Malformed)?;
        dst.copy_from_slice(frag.data);
        if !e.received.insert(start, end32) {
            // `reserve` made room for the bitmap; nothing was recorded if not.
            return Err(DropReason::Memory);
        }
        if frag.offset == 0 {
            e.header.clear();
            e.header.extend_from_slice(frag.header);
            e.next_header = frag.next_header;
        }
        if !frag.more {
            e.total = Some(end32);
        }
        e.frags += 1;
        self.stats.held_now += 1;
        Ok(!e.header.is_empty() && e.total.is_some_and(|t| e.received.is_complete(t)))
    }

    /// Handles an overlap in datagram `i`: IPv6 abandons the datagram (its
    /// held fragments move to `dropped_overlap`), IPv4 only the fragment.
    fn overlap(&mut self, i: u32, frag: &Fragment<'_>) -> DropReason {
        if frag.key.version == 6 {
            let frags = self.table.get(i).map_or(0, |e| u64::from(e.frags));
            self.stats.dropped_overlap += frags;
            self.stats.held_now = self.stats.held_now.saturating_sub(frags);
            self.stats.datagrams_held_now = self.stats.datagrams_held_now.saturating_sub(1);
            self.stats.datagrams_overlapped += 1;
            self.table.kill(i);
        }
        DropReason::Overlap
    }

    /// Rebuilds whole datagram `i` into the output buffer and frees it.
    fn complete(&mut self, i: u32) -> DefragOutcome<'_> {
        let Some(e) = self.table.get(i) else {
            return DefragOutcome::Held;
        };
        let total = e.total.unwrap_or(0) as usize;
        let frags = u64::from(e.frags);
        self.out.clear();
        self.out.extend_from_slice(&e.header);
        self.out
            .extend_from_slice(e.data.get(..total).unwrap_or_default());
        let ok = match (e.key.version, e.next_header) {
            (4, _) => ipv4::finish(&mut self.out, e.header.len()),
            (_, Some((pos, next))) => ipv6::finish(&mut self.out, pos, next),
            _ => false,
        };
        self.table.remove(i);
        self.stats.held_now = self.stats.held_now.saturating_sub(frags);
        self.stats.datagrams_held_now = self.stats.datagrams_held_now.saturating_sub(1);
        if ok {
            self.stats.fragments_completed += frags;
            self.stats.datagrams_completed += 1;
            DefragOutcome::Complete(&self.out)
        } else {
            // Unreachable given the size checks; counted, never a panic.
            self.stats.malformed += frags.saturating_sub(1);
            self.drop(DropReason::Malformed)
        }
    }

    /// Returns an IPv6 atomic fragment without its Fragment header.
    fn atomic(&mut self, frag: &Fragment<'_>) -> DefragOutcome<'_> {
        self.out.clear();
        self.out.extend_from_slice(frag.header);
        self.out.extend_from_slice(frag.data);
        let ok = match frag.next_header {
            Some((pos, next)) => ipv6::finish(&mut self.out, pos, next),
            None => false,
        };
        if !ok {
            return self.drop(DropReason::Malformed);
        }
        self.stats.fragments_completed += 1;
        self.stats.datagrams_completed += 1;
        DefragOutcome::Complete(&self.out)
    }
}
