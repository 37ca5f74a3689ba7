//! One direction of a TCP connection: maps sequence numbers to stream
//! offsets, delivers in-order bytes straight from the segment, holds
//! out-of-order pieces (bounded) until the hole before them fills, is
//! acknowledged by the peer, or the stream is flushed.
//!
//! Invariants kept between calls:
//! - every held piece starts strictly after `next` (contiguous pieces are
//!   delivered at once) and pieces never overlap each other;
//! - `held_bytes` is the sum of the held pieces' captured bytes, and the
//!   same amount is reserved in the factory's global budget;
//! - events carry consecutive offsets: each `Data`/`Gap` starts where the
//!   previous one of this side ended.

use core::cmp::{max, min};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowscope_core::{StreamEvent, TcpSegment};

use super::config::{OverlapPolicy, TcpReassemblyConfig};
use super::stats::{
    ReassemblyStats, ACK_OUT_OF_WINDOW, OVERLAP_CONFLICT, REASSEMBLY_OVERFLOW, SEQ_OUT_OF_WINDOW,
};

/// What a side needs from its reassembler while handling one call.
pub(super) struct Env<'a> {
    pub(super) cfg: &'a TcpReassemblyConfig,
    pub(super) budget: &'a AtomicUsize,
    pub(super) stats: &'a mut ReassemblyStats,
}

/// Where a side's events go (already tagged with the side by the caller).
pub(super) type Sink<'s> = dyn FnMut(StreamEvent<'_>) + 's;

/// A held out-of-order piece: its captured bytes, then `lost` bytes the
/// capture's snap length cut (a known hole that will become a gap).
struct Held {
    data: Box<[u8]>,
    lost: u64,
}

impl Held {
    fn len(&self) -> u64 {
        len64(&self.data).saturating_add(self.lost)
    }
}

impl fmt::Debug for Held {
    // The bytes themselves are traffic content: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("captured", &self.data.len())
            .field("lost", &self.lost)
            .finish()
    }
}

/// A stream range `[start, end)` whose first `bytes.len()` bytes were
/// captured and the rest lost. Views either a fed segment (borrowed, no
/// copy) or a held piece.
#[derive(Clone, Copy)]
struct Piece<'p> {
    start: u64,
    end: u64,
    bytes: &'p [u8],
}

impl<'p> Piece<'p> {
    fn held(start: u64, h: &'p Held) -> Self {
        Piece {
            start,
            end: start.saturating_add(h.len()),
            bytes: &h.data,
        }
    }

    /// End of the captured prefix.
    fn cap_end(&self) -> u64 {
        min(self.start.saturating_add(len64(self.bytes)), self.end)
    }

    /// The captured bytes of `[a, b)` (clipped to the captured prefix).
    fn captured(&self, a: u64, b: u64) -> &'p [u8] {
        let b = min(b, self.cap_end());
        if a >= b || a < self.start {
            return &[];
        }
        let from = usize::try_from(a - self.start).unwrap_or(usize::MAX);
        let to = usize::try_from(b - self.start).unwrap_or(usize::MAX);
        self.bytes.get(from..to).unwrap_or(&[])
    }
}

fn len64(b: &[u8]) -> u64 {
    u64::try_from(b.len()).unwrap_or(u64::MAX)
}

/// The reassembly state of one side.
#[derive(Debug, Default)]
pub(super) struct SideAssembler {
    /// Sequence number of stream offset 0, once known.
    anchor: Option<u32>,
    /// Next stream offset to hand on: everything before it was delivered
    /// or reported as a gap.
    next: u64,
    /// Stream offset of the FIN's sequence number (= end of the data).
    fin: Option<u64>,
    /// Out-of-order pieces by start offset.
    held: BTreeMap<u64, Held>,
    /// Captured bytes in `held`.
    held_bytes: usize,
    /// A cap was reached: this side is ignored from now on.
    stopped: bool,
}

impl SideAssembler {
    pub(super) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    pub(super) fn held_pieces(&self) -> usize {
        self.held.len()
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The sequence number of stream offset `next`. Truncating the offset
    /// to 32 bits is the point: sequence numbers wrap every 2^32 bytes.
    fn next_seq(&self, anchor: u32) -> u32 {
        anchor.wrapping_add(self.next as u32)
    }

    /// Handles a segment this side sent.
    pub(super) fn segment(&mut self, seg: &TcpSegment<'_>, env: &mut Env<'_>, out: &mut Sink<'_>) {
        if self.stopped {
            return;
        }
        let syn = seg.flags.syn();
        let fin = seg.flags.fin();
        // SYN takes one sequence number; its data starts after it.
        let data_seq = if syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let plen = len64(seg.payload);
        let len = max(u64::from(seg.wire_len), plen);
        if len == 0 && !fin && !(syn && self.anchor.is_none()) {
            // A pure ACK says nothing about this stream. It does not anchor
            // a midstream pickup either: a keep-alive sits one byte before
            // the real next byte.
            return;
        }
        let anchor = *self.anchor.get_or_insert(data_seq);
        // Relative 32-bit arithmetic: the difference is right whichever
        // side of a wrap either number lies, as long as it is < 2^31.
        let rel = i64::from(data_seq.wrapping_sub(self.next_seq(anchor)) as i32);
        let window = i64::from(env.cfg.effective_window());
        let rel_end = rel.saturating_add(i64::try_from(len).unwrap_or(i64::MAX));
        if rel > window || rel_end < -window {
            env.stats.out_of_window += 1;
            out(StreamEvent::Anomaly(SEQ_OUT_OF_WINDOW));
            return;
        }
        // i128: no overflow whatever `next` is.
        let start = i128::from(self.next) + i128::from(rel);
        let end = start + i128::from(len);
        // A FIN before bytes already handed on is inconsistent: ignore it
        // rather than let it cap later ACK-driven gaps.
        if fin && self.fin.is_none() && end >= i128::from(self.next) {
            self.fin = u64::try_from(end).ok();
        }
        if len == 0 {
            return;
        }
        if end <= i128::from(self.next) {
            env.stats.retransmitted_bytes = env.stats.retransmitted_bytes.saturating_add(len);
            return;
        }
        // Bytes before offset 0 precede a midstream pickup: nothing to
        // compare them with.
        let (start, bytes) = match u64::try_from(start) {
            Ok(s) => (s, seg.payload),
            Err(_) => {
                let skip = u64::try_from(-start).unwrap_or(u64::MAX);
                env.stats.retransmitted_bytes = env.stats.retransmitted_bytes.saturating_add(skip);
                let from = usize::try_from(skip).unwrap_or(usize::MAX);
                (0, seg.payload.get(from..).unwrap_or(&[]))
            }
        };
        let piece = Piece {
            start,
            end: u64::try_from(end).unwrap_or(u64::MAX),
            bytes,
        };
        if piece.start <= self.next {
            env.stats.in_order_segments += 1;
            self.deliver_in_order(piece, env, out);
        } else {
            env.stats.out_of_order_segments += 1;
            self.hold(piece, env, out);
        }
    }

    /// The peer acknowledged everything before `ack`: bytes up to there
    /// that were never captured are lost (Zeek's `TCP_Reassembler::
    /// AckReceived` / `Undelivered`).
    pub(super) fn ack(&mut self, ack: u32, env: &mut Env<'_>, out: &mut Sink<'_>) {
        let Some(anchor) = self.anchor else { return };
        if self.stopped {
            return;
        }
        let rel = ack.wrapping_sub(self.next_seq(anchor)) as i32;
        if rel <= 0 {
            return;
        }
        if rel.unsigned_abs() > env.cfg.effective_window() {
            env.stats.out_of_window += 1;
            out(StreamEvent::Anomaly(ACK_OUT_OF_WINDOW));
            return;
        }
        let mut target = self.next.saturating_add(u64::from(rel.unsigned_abs()));
        if let Some(fin) = self.fin {
            // The FIN takes a sequence number too: an ACK of it is no hole.
            target = min(target, max(fin, self.next));
        }
        loop {
            self.drain(env, out);
            if self.next >= target {
                break;
            }
            let stop = match self.held.keys().next() {
                Some(&k) => min(k, target),
                None => target,
            };
            self.skip_to(stop, env, out);
        }
    }

    /// Ends the stream: held pieces are delivered with gaps for the holes
    /// before them, and bytes up to a seen FIN that never came are a gap.
    pub(super) fn flush(&mut self, env: &mut Env<'_>, out: &mut Sink<'_>) {
        if self.stopped {
            return;
        }
        self.skip_holes(env, out);
        if let Some(fin) = self.fin {
            self.skip_to(fin, env, out);
        }
    }

    /// Gives up on the holes before the held pieces: each hole becomes a
    /// gap and the held bytes are delivered, so nothing stays held. The
    /// stream goes on after them (bytes for the holes that still come are
    /// retransmissions). What a flush does, without ending the stream.
    pub(super) fn skip_holes(&mut self, env: &mut Env<'_>, out: &mut Sink<'_>) {
        if self.stopped {
            return;
        }
        loop {
            self.drain(env, out);
            let Some(&k) = self.held.keys().next() else {
                break;
            };
            self.skip_to(k, env, out);
        }
    }

    /// Gives the held bytes back to the global budget (the reassembler is
    /// going away).
    pub(super) fn release_all(&mut self, budget: &AtomicUsize) {
        release(budget, self.held_bytes);
        self.held_bytes = 0;
        self.held.clear();
    }

    /// Reports `[next, to)` as a gap and moves past it.
    fn skip_to(&mut self, to: u64, env: &mut Env<'_>, out: &mut Sink<'_>) {
        if to > self.next {
            gap(self.next, to - self.next, env, out);
            self.next = to;
        }
    }

    /// A segment that starts at or before `next` and ends after it: its new
    /// bytes go out borrowed from the segment, interleaved with any held
    /// pieces it reaches (those overlaps follow the policy).
    fn deliver_in_order(&mut self, seg: Piece<'_>, env: &mut Env<'_>, out: &mut Sink<'_>) {
        let trimmed = self.next.saturating_sub(seg.start);
        env.stats.retransmitted_bytes = env.stats.retransmitted_bytes.saturating_add(trimmed);
        let mut cursor = self.next;
        let mut conflict = false;
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() >= seg.end {
                break;
            }
            let (k, h) = entry.remove_entry();
            self.held_bytes = self.held_bytes.saturating_sub(h.data.len());
            release(env.budget, h.data.len());
            let hp = Piece::held(k, &h);
            if hp.start > cursor {
                emit_range(seg, cursor, hp.start, env, out);
                cursor = hp.start;
            }
            let ov_end = min(hp.end, seg.end);
            if cursor < ov_end {
                conflict |= count_overlap(seg, hp, cursor, ov_end, env.stats);
                emit_overlap(seg, hp, cursor, ov_end, env.cfg.overlap, env, out);
                cursor = ov_end;
            }
            if hp.end > cursor {
                emit_range(hp, cursor, hp.end, env, out);
                cursor = hp.end;
            }
        }
        if seg.end > cursor {
            emit_range(seg, cursor, seg.end, env, out);
            cursor = seg.end;
        }
        self.next = cursor;
        if conflict {
            env.stats.overlap_conflicts += 1;
            out(StreamEvent::Anomaly(OVERLAP_CONFLICT));
        }
        self.drain(env, out);
    }

    /// Delivers held pieces that start at or before `next`.
    fn drain(&mut self, env: &mut Env<'_>, out: &mut Sink<'_>) {
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let (k, h) = entry.remove_entry();
            self.held_bytes = self.held_bytes.saturating_sub(h.data.len());
            release(env.budget, h.data.len());
            let hp = Piece::held(k, &h);
            if hp.end > self.next {
                emit_range(hp, self.next, hp.end, env, out);
                self.next = hp.end;
            }
        }
    }

    /// A segment that starts past `next`: copy the bytes no held piece
    /// covers yet, within the caps.
    fn hold(&mut self, seg: Piece<'_>, env: &mut Env<'_>, out: &mut Sink<'_>) {
        // The held piece that starts before `seg` may still reach into it.
        let first = self
            .held
            .range(..seg.start)
            .next_back()
            .filter(|(&k, h)| k.saturating_add(h.len()) > seg.start)
            .map_or(seg.start, |(&k, _)| k);
        // Uncovered ranges of `seg`: counted here, then walked again to
        // insert them (no list of them is built).
        let mut uncovered = 0usize;
        let mut new_bytes = 0usize;
        let mut cursor = seg.start;
        let mut conflict = false;
        for (&k, h) in self.held.range(first..seg.end) {
            let hp = Piece::held(k, h);
            if hp.start > cursor {
                uncovered += 1;
                new_bytes = new_bytes.saturating_add(seg.captured(cursor, hp.start).len());
            }
            let ov_start = max(hp.start, seg.start);
            let ov_end = min(hp.end, seg.end);
            if ov_start < ov_end {
                conflict |= count_overlap(seg, hp, ov_start, ov_end, env.stats);
            }
            cursor = max(cursor, hp.end);
        }
        if seg.end > cursor {
            uncovered += 1;
            new_bytes = new_bytes.saturating_add(seg.captured(cursor, seg.end).len());
        }
        if conflict {
            env.stats.overlap_conflicts += 1;
            out(StreamEvent::Anomaly(OVERLAP_CONFLICT));
        }

        if uncovered > 0 {
            let fits = self.held_bytes.saturating_add(new_bytes) <= env.cfg.max_held_per_side
                && self.held.len().saturating_add(uncovered) <= env.cfg.max_held_segments_per_side
                && reserve(env.budget, new_bytes, env.cfg.max_held_total);
            if !fits {
                self.overflow(seg.end, env, out);
                return;
            }
        }

        if conflict && env.cfg.overlap == OverlapPolicy::LastWins {
            for (&k, h) in self.held.range_mut(first..seg.end) {
                overwrite(seg, k, &mut h.data);
            }
        }
        // The same walk as above; each insert lands before the piece that
        // bounds it, so the walk resumes just past that piece.
        let mut cursor = seg.start;
        let mut from = first;
        while let Some((k, end)) = self
            .held
            .range(from..seg.end)
            .next()
            .map(|(&k, h)| (k, k.saturating_add(h.len())))
        {
            if k > cursor {
                self.insert_piece(seg, cursor, k);
            }
            cursor = max(cursor, end);
            match k.checked_add(1) {
                Some(f) => from = f,
                None => return,
            }
        }
        if seg.end > cursor {
            self.insert_piece(seg, cursor, seg.end);
        }
    }

    /// Holds `seg`'s stream range `[a, b)` (a copy of its captured part:
    /// the segment's bytes are only borrowed for this call).
    fn insert_piece(&mut self, seg: Piece<'_>, a: u64, b: u64) {
        let data: Box<[u8]> = seg.captured(a, b).into();
        let lost = b.saturating_sub(a).saturating_sub(len64(&data));
        self.held_bytes = self.held_bytes.saturating_add(data.len());
        self.held.insert(a, Held { data, lost });
    }

    /// A cap was reached: everything from `next` to the end of what was
    /// held (or of the segment that did not fit) is lost; stop this side.
    fn overflow(&mut self, seg_end: u64, env: &mut Env<'_>, out: &mut Sink<'_>) {
        let held_end = self
            .held
            .iter()
            .next_back()
            .map_or(0, |(&k, h)| k.saturating_add(h.len()));
        self.release_all(env.budget);
        self.skip_to(max(seg_end, held_end), env, out);
        env.stats.overflows += 1;
        out(StreamEvent::Anomaly(REASSEMBLY_OVERFLOW));
        self.stopped = true;
    }
}

/// Takes `n` bytes from the global budget if they fit under `cap`.
fn reserve(budget: &AtomicUsize, n: usize, cap: usize) -> bool {
    if n == 0 {
        return true;
    }
    // Relaxed: the counter guards no other memory; fetch_update keeps the
    // check and the add one atomic step.
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
            cur.checked_add(n).filter(|&t| t <= cap)
        })
        .is_ok()
}

/// Returns `n` bytes to the global budget.
fn release(budget: &AtomicUsize, n: usize) {
    if n > 0 {
        let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
            Some(cur.saturating_sub(n))
        });
    }
}

fn gap(offset: u64, len: u64, env: &mut Env<'_>, out: &mut Sink<'_>) {
    if len == 0 {
        return;
    }
    env.stats.gaps += 1;
    env.stats.gap_bytes = env.stats.gap_bytes.saturating_add(len);
    out(StreamEvent::Gap { offset, len });
}

/// Emits `[a, b)` of `p`: its captured bytes as data, the rest as a gap.
fn emit_range(p: Piece<'_>, a: u64, b: u64, env: &mut Env<'_>, out: &mut Sink<'_>) {
    if a >= b {
        return;
    }
    let bytes = p.captured(a, b);
    if !bytes.is_empty() {
        env.stats.bytes_delivered = env.stats.bytes_delivered.saturating_add(len64(bytes));
        out(StreamEvent::Data { offset: a, bytes });
    }
    let got = len64(bytes);
    gap(a.saturating_add(got), (b - a).saturating_sub(got), env, out);
}

/// Emits `[a, b)`, covered by both the new segment and a held piece. Where
/// both captured the bytes the policy chooses; captured bytes always beat
/// bytes the capture cut.
fn emit_overlap(
    seg: Piece<'_>,
    held: Piece<'_>,
    a: u64,
    b: u64,
    policy: OverlapPolicy,
    env: &mut Env<'_>,
    out: &mut Sink<'_>,
) {
    let mut cuts = [a, seg.cap_end().clamp(a, b), held.cap_end().clamp(a, b), b];
    cuts.sort_unstable();
    for w in cuts.windows(2) {
        let (x, y) = match *w {
            [x, y] if x < y => (x, y),
            _ => continue,
        };
        let seg_has = y <= seg.cap_end();
        let held_has = y <= held.cap_end();
        let src = match (seg_has, held_has) {
            (true, true) => match policy {
                OverlapPolicy::LastWins => seg,
                _ => held,
            },
            (true, false) => seg,
            _ => held,
        };
        emit_range(src, x, y, env, out);
    }
}

/// Counts the overlap `[a, b)` of a new segment with held bytes: returns
/// true when captured bytes differ, else counts the overlap as
/// retransmitted.
fn count_overlap(
    seg: Piece<'_>,
    held: Piece<'_>,
    a: u64,
    b: u64,
    stats: &mut ReassemblyStats,
) -> bool {
    let both_end = min(b, min(seg.cap_end(), held.cap_end()));
    let differs = a < both_end && seg.captured(a, both_end) != held.captured(a, both_end);
    if !differs {
        stats.retransmitted_bytes = stats
            .retransmitted_bytes
            .saturating_add(b.saturating_sub(a));
    }
    differs
}

/// Last-wins: copies the segment's captured bytes over a held piece's
/// captured bytes where both have them.
fn overwrite(seg: Piece<'_>, held_start: u64, data: &mut [u8]) {
    let held_cap_end = held_start.saturating_add(len64(data));
    let a = max(seg.start, held_start);
    let b = min(seg.cap_end(), held_cap_end);
    if a >= b {
        return;
    }
    let src = seg.captured(a, b);
    let from = usize::try_from(a - held_start).unwrap_or(usize::MAX);
    let to = usize::try_from(b - held_start).unwrap_or(usize::MAX);
    if let Some(dst) = data.get_mut(from..to) {
        if dst.len() == src.len() {
            dst.copy_from_slice(src);
        }
    }
}
