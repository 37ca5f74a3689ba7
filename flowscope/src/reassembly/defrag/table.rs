//! The bounded table of datagrams being reassembled: their key, their
//! buffers, the expiry order and the memory budget.
//!
//! Entries live in a slab (`Vec<Entry>`) found through a hash map and are
//! linked in deadline order, so expiring the oldest is O(1). A freed entry
//! keeps its buffers for the next datagram (no allocation per datagram once
//! warmed up); that spare capacity still counts against the memory budget
//! and is released first when a live datagram needs room.

use std::collections::HashMap;

use flowscope_core::Timestamp;

use super::holes::Received;

/// What identifies one datagram (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for
/// IPv6, where `proto` is always 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// 4 or 6.
    pub version: u8,
    /// IPv4 protocol; 0 for IPv6.
    pub proto: u8,
    /// IPv4 (16-bit) or IPv6 (32-bit) identification.
    pub id: u32,
    /// Source address (IPv4 in the low 32 bits).
    pub src: u128,
    /// Destination address (IPv4 in the low 32 bits).
    pub dst: u128,
}

/// Where an entry is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Unused, on the free list.
    Free,
    /// Collecting fragments.
    Live,
    /// An IPv6 datagram abandoned after an overlap (RFC 5722): it holds no
    /// data but stays until its deadline so late fragments are dropped too.
    Dead,
}

/// End-of-list marker for the expiry links.
const NIL: u32 = u32::MAX;

/// One datagram being reassembled.
#[derive(Debug)]
pub(super) struct Entry {
    pub key: Key,
    pub state: State,
    /// When it expires (its first fragment's time plus the timeout).
    pub deadline: Timestamp,
    prev: u32,
    next: u32,
    /// Fragments held (each byte range counted once: duplicates are not).
    pub frags: u32,
    /// Length of the reassembled payload, once the last fragment arrived.
    pub total: Option<u32>,
    /// The first fragment's header (IPv4 with options; IPv6 header and the
    /// extension headers before the Fragment header); empty until it arrives.
    pub header: Vec<u8>,
    /// IPv6: where the Next Header naming the Fragment header sits in
    /// `header`, and the first fragment's Fragment-header Next Header.
    pub next_header: Option<(usize, u8)>,
    /// The payload bytes, at their offsets; gaps are zero until filled.
    pub data: Vec<u8>,
    /// Which payload ranges have arrived.
    pub received: Received,
}

impl Entry {
    fn new() -> Self {
        Entry {
            key: Key::default(),
            state: State::Free,
            deadline: Timestamp::ZERO,
            prev: NIL,
            next: NIL,
            frags: 0,
            total: None,
            header: Vec::new(),
            next_header: None,
            data: Vec::new(),
            received: Received::default(),
        }
    }

    fn capacity(&self) -> usize {
        self.data.capacity() + self.header.capacity() + self.received.capacity_bytes()
    }

    /// Forgets the datagram's contents, keeping buffer capacity.
    fn reset(&mut self) {
        self.frags = 0;
        self.total = None;
        self.header.clear();
        self.next_header = None;
        self.data.clear();
        self.received.clear();
    }
}

/// Why room for a fragment could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NoRoom {
    /// `max_datagrams` entries are in use.
    TableFull,
}

/// The datagrams in flight.
pub(super) struct Table {
    map: HashMap<Key, u32, ahash::RandomState>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Oldest (first to expire) and newest entries.
    head: u32,
    tail: u32,
    max_entries: usize,
    max_memory: usize,
    /// Buffer capacity held by all entries.
    reserved: usize,
    /// The part of `reserved` held by entries that are not live.
    spare: usize,
}

impl Table {
    pub(super) fn new(max_entries: usize, max_memory: usize) -> Self {
        Table {
            map: HashMap::with_hasher(ahash::RandomState::new()),
            entries: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            // Indices are u32 with one value reserved for NIL.
            max_entries: max_entries.min(NIL as usize),
            max_memory,
            reserved: 0,
            spare: 0,
        }
    }

    /// Buffer bytes currently reserved (live and spare).
    pub(super) fn reserved(&self) -> usize {
        self.reserved
    }

    /// Entries in use (live or dead).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn find(&self, key: &Key) -> Option<u32> {
        self.map.get(key).copied()
    }

    pub(super) fn get(&self, i: u32) -> Option<&Entry> {
        self.entries.get(i as usize)
    }

    pub(super) fn get_mut(&mut self, i: u32) -> Option<&mut Entry> {
        self.entries.get_mut(i as usize)
    }

    /// Starts a live entry for `key`, expiring at `deadline` (raised to the
    /// newest entry's deadline, so the expiry list stays sorted even when
    /// capture timestamps step backwards).
    pub(super) fn insert(&mut self, key: Key, deadline: Timestamp) -> Result<u32, NoRoom> {
        if self.map.len() >= self.max_entries {
            return Err(NoRoom::TableFull);
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.entries.len()).map_err(|_| NoRoom::TableFull)?;
                self.entries.push(Entry::new());
                i
            }
        };
        let deadline = match self.get(self.tail) {
            Some(t) => deadline.max(t.deadline),
            None => deadline,
        };
        let tail = self.tail;
        let Some(e) = self.entries.get_mut(i as usize) else {
            return Err(NoRoom::TableFull);
        };
        self.spare = self.spare.saturating_sub(e.capacity());
        e.reset();
        e.key = key;
        e.state = State::Live;
        e.deadline = deadline;
        e.prev = tail;
        e.next = NIL;
        match self.entries.get_mut(tail as usize) {
            Some(t) => t.next = i,
            None => self.head = i,
        }
        self.tail = i;
        self.map.insert(key, i);
        Ok(i)
    }

    /// The oldest entry if its deadline is at or before `now`.
    pub(super) fn expired(&self, now: Timestamp) -> Option<u32> {
        let e = self.get(self.head)?;
        (e.deadline <= now).then_some(self.head)
    }

    /// Frees entry `i` (completed or expired); its buffers stay as spare.
    pub(super) fn remove(&mut self, i: u32) {
        let Some(e) = self.entries.get_mut(i as usize) else {
            return;
        };
        if e.state == State::Free {
            return;
        }
        let (prev, next, key, was_live) = (e.prev, e.next, e.key, e.state == State::Live);
        e.reset();
        e.state = State::Free;
        e.prev = NIL;
        e.next = NIL;
        if was_live {
            self.spare += e.capacity();
        }
        match self.entries.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.entries.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        self.map.remove(&key);
        self.free.push(i);
    }

    /// Abandons live entry `i`'s data but keeps its key until its deadline.
    pub(super) fn kill(&mut self, i: u32) {
        let Some(e) = self.entries.get_mut(i as usize) else {
            return;
        };
        if e.state != State::Live {
            return;
        }
        e.reset();
        e.state = State::Dead;
        self.spare += e.capacity();
    }

    /// Makes room in live entry `i` for `data_len` payload bytes (and their
    /// arrival bitmap) and a `header_len`-byte header within the memory
    /// budget, releasing spare buffers of unused entries first if needed.
    /// False when it cannot.
    pub(super) fn reserve(&mut self, i: u32, data_len: usize, header_len: usize) -> bool {
        let Some(e) = self.entries.get_mut(i as usize) else {
            return false;
        };
        let data_cap = e.data.capacity();
        let need_header = header_len.saturating_sub(e.header.capacity());
        let bits = e.received.bits_mut();
        let words = Received::words_for(u32::try_from(data_len).unwrap_or(u32::MAX));
        let need_bits = words.saturating_sub(bits.capacity()) * 8;
        if data_len <= data_cap && need_header == 0 && need_bits == 0 {
            return true;
        }
        // Grow the payload buffer geometrically to avoid a reallocation per
        // in-order fragment, but never past what a datagram can need.
        let mut data_target = if data_len > data_cap {
            data_len.max(data_cap.saturating_mul(2).min(MAX_PAYLOAD))
        } else {
            data_cap
        };
        if !self.fits(data_target - data_cap + need_header + need_bits) {
            // Fall back to exactly what this fragment needs.
            data_target = data_len.max(data_cap);
            if !self.fits(data_target - data_cap + need_header + need_bits) {
                return false;
            }
        }
        let Some(e) = self.entries.get_mut(i as usize) else {
            return false;
        };
        let before = e.capacity();
        e.data
            .reserve_exact(data_target.saturating_sub(e.data.len()));
        e.header
            .reserve_exact(header_len.saturating_sub(e.header.len()));
        let bits = e.received.bits_mut();
        bits.reserve_exact(words.saturating_sub(bits.len()));
        let after = e.capacity();
        self.reserved = self.reserved.saturating_add(after.saturating_sub(before));
        true
    }

    /// Whether `grow` more bytes fit the budget, releasing spare if needed.
    fn fits(&mut self, grow: usize) -> bool {
        if self.reserved.saturating_add(grow) <= self.max_memory {
            return true;
        }
        if self.spare > 0 {
            self.release_spare();
        }
        self.reserved.saturating_add(grow) <= self.max_memory
    }

    /// Drops the buffers of entries that are not live; returns the bytes
    /// released. O(entries), but only runs when there is spare capacity to
    /// win back.
    pub(super) fn release_spare(&mut self) -> usize {
        if self.spare == 0 {
            return 0;
        }
        let before = self.reserved;
        for e in &mut self.entries {
            if e.state != State::Live {
                let cap = e.capacity();
                e.data = Vec::new();
                e.header = Vec::new();
                e.received.release();
                self.reserved = self.reserved.saturating_sub(cap);
            }
        }
        self.spare = 0;
        before.saturating_sub(self.reserved)
    }

    /// The entry that expires first (live or dead), if any.
    pub(super) fn oldest(&self) -> Option<u32> {
        self.get(self.head).map(|_| self.head)
    }

    /// Frees entry `i` and its buffers at once (nothing kept as spare).
    pub(super) fn discard(&mut self, i: u32) {
        self.remove(i);
        let Some(e) = self.entries.get_mut(i as usize) else {
            return;
        };
        // `remove` (or an earlier `kill`) counted its capacity as spare.
        let cap = e.capacity();
        e.data = Vec::new();
        e.header = Vec::new();
        e.received.release();
        self.reserved = self.reserved.saturating_sub(cap);
        self.spare = self.spare.saturating_sub(cap);
    }
}

/// The largest fragmentable payload a datagram can need: the highest offset
/// (8191 × 8) plus the largest fragment. Only used to cap geometric growth.
const MAX_PAYLOAD: usize = 65_528 + 65_535;
