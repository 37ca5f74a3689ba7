//! Per-endpoint state and Zeek's TCP analyzer: endpoint state machine,
//! sequence tracking, history letters and Zeek's `orig_bytes`/`resp_bytes`.
//!
//! This follows Zeek's packet analyzer step by step
//! (`src/packet_analysis/protocol/tcp/TCP.cc` `TCPAnalyzer::DeliverPacket`,
//! `TCPSessionAdapter.cc` `Process`, `UpdateStateMachine` and the
//! `Update*State` functions, `src/analyzer/protocol/tcp/TCP_Endpoint.{h,cc}`),
//! keeping only what decides states, history and sizes; Zeek's events,
//! weirds, window-recision checks and reassembly hooks are left out.

use flowscope_core::{TcpEndpointState, TcpFlags};

use super::history::{scaled_hit, PackedHistory, Seen};

/// Zeek's `TOO_LARGE_SEQ_DELTA`: SYN/RST sequence jumps beyond this are not trusted.
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

const STATE_MASK: u8 = 0x07;
const PREV_SHIFT: u8 = 3;
const DID_CLOSE: u8 = 0x40;
const FIN_SEEN: u8 = 0x80;

/// What one side of a flow did, for every protocol: the TCP endpoint of
/// Zeek's analyzer (states, sequence numbers, last SYN/FIN/RST positions,
/// scaled-letter counters) plus the once-per-direction history bits and the
/// OR of the TCP flags it sent. 40 bytes; non-TCP flows use only `seen` and
/// `chk`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Zeek `start_seq` (Zeek keeps it in an `int64_t`, but it is always set
    /// from a 32-bit sequence number).
    start: u32,
    /// Zeek `last_seq`: one past the highest sequence number sent.
    last: u32,
    /// Zeek `ack_seq`: the highest sequence number the peer acknowledged.
    ack: u32,
    /// Relative sequence of the last SYN, FIN (its end) and RST (Zeek
    /// `hist_last_SYN`… are 64-bit; equality modulo 2^32 is what counts).
    hist_syn: u32,
    hist_fin: u32,
    hist_rst: u32,
    /// Retransmissions seen (Zeek `rxmt_cnt`), saturating.
    rxmit: u32,
    /// Sequence-space wrap-arounds of `last` and `ack` (Zeek `seq_wraps`,
    /// `ack_wraps`); saturating, so sizes stay exact up to 2^48 bytes.
    last_wraps: u16,
    ack_wraps: u16,
    /// Bad checksums (Zeek `chk_cnt`), saturating: the `c` letters after the
    /// 10 000th are not recorded.
    pub(crate) chk: u16,
    /// Zero-window advertisements (Zeek `win0_cnt`), saturating like `chk`.
    win0: u16,
    /// State, previous state, `did_close`, "a FIN was sent" (Zeek `FIN_cnt > 0`).
    bits: u8,
    /// Once-per-direction history bits ([`Seen`]).
    pub(crate) seen: u8,
    /// Every TCP flag sent, OR-ed.
    pub(crate) flags: u8,
}

fn encode(s: TcpEndpointState) -> u8 {
    match s {
        TcpEndpointState::Inactive => 0,
        TcpEndpointState::SynSent => 1,
        TcpEndpointState::SynAckSent => 2,
        TcpEndpointState::Partial => 3,
        TcpEndpointState::Established => 4,
        TcpEndpointState::Closed => 5,
        TcpEndpointState::Reset => 6,
    }
}

fn decode(b: u8) -> TcpEndpointState {
    match b & STATE_MASK {
        1 => TcpEndpointState::SynSent,
        2 => TcpEndpointState::SynAckSent,
        3 => TcpEndpointState::Partial,
        4 => TcpEndpointState::Established,
        5 => TcpEndpointState::Closed,
        6 => TcpEndpointState::Reset,
        _ => TcpEndpointState::Inactive,
    }
}

impl Endpoint {
    pub(crate) fn state(&self) -> TcpEndpointState {
        decode(self.bits)
    }
    fn prev_state(&self) -> TcpEndpointState {
        decode(self.bits >> PREV_SHIFT)
    }
    /// Zeek `TCP_Endpoint::SetState`: remembers the previous state on change.
    fn set_state(&mut self, s: TcpEndpointState) {
        let cur = self.bits & STATE_MASK;
        let new = encode(s);
        if new != cur {
            self.bits = (self.bits & (DID_CLOSE | FIN_SEEN)) | (cur << PREV_SHIFT) | new;
        }
    }
    pub(crate) fn did_close(&self) -> bool {
        self.bits & DID_CLOSE != 0
    }
    /// Zeek `StartSeq()`: the sequence number the endpoint started from.
    pub(crate) fn start_seq(&self) -> u32 {
        self.start
    }
    fn fin_seen(&self) -> bool {
        self.bits & FIN_SEEN != 0
    }
    /// Once-per-direction letter (Zeek `CheckHistory`): records `code` the
    /// first time `mask` is seen and returns whether it had been seen before.
    pub(crate) fn check_history(
        &mut self,
        mask: u8,
        code: u8,
        is_orig: bool,
        h: &mut PackedHistory,
    ) -> bool {
        if self.seen & mask == 0 {
            self.seen |= mask;
            h.push(letter(code, is_orig));
            false
        } else {
            true
        }
    }
    /// A bad transport checksum (Zeek `ChecksumError`, UDP
    /// `HandleBadChecksum`): the scaled `c` letter.
    pub(crate) fn bad_checksum(&mut self, is_orig: bool, h: &mut PackedHistory) {
        self.chk = self.chk.saturating_add(1);
        if scaled_hit(u32::from(self.chk)) {
            h.push(letter(b'C', is_orig));
        }
    }
    fn init_seqs(&mut self, start: u32, last: u32) {
        self.start = start;
        self.ack = start;
        self.last = last;
    }
    /// Zeek `UpdateLastSeq`: a numerically smaller value means a wrap.
    fn update_last(&mut self, seq: u32) {
        if seq < self.last {
            self.last_wraps = self.last_wraps.saturating_add(1);
        }
        self.last = seq;
    }
    /// Zeek `UpdateAckSeq`.
    fn update_ack(&mut self, seq: u32) {
        if seq < self.ack {
            self.ack_wraps = self.ack_wraps.saturating_add(1);
        }
        self.ack = seq;
    }
}

/// Upper case for the originator, lower case for the responder.
#[inline]
pub(crate) fn letter(code: u8, is_orig: bool) -> u8 {
    if is_orig {
        code
    } else {
        code.to_ascii_lowercase()
    }
}

/// Zeek `seq_delta`: signed distance in sequence space.
#[inline]
fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The TCP header facts of one segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) window: u16,
    pub(crate) flags: TcpFlags,
    /// Payload length on the wire.
    pub(crate) len: u32,
}

/// Runs one segment sent by `ends[me]` (0 = initiator) through Zeek's TCP
/// analyzer. Returns true when Zeek would flip the roles (a SYN answering an
/// earlier SYN-ACK); the caller swaps the sides.
pub(crate) fn process(
    ends: &mut [Endpoint; 2],
    me: usize,
    seg: &Segment,
    h: &mut PackedHistory,
) -> bool {
    let is_orig = me == 0;
    let [ref mut ini, ref mut resp] = *ends;
    let (e, p) = if is_orig { (ini, resp) } else { (resp, ini) };
    let f = seg.flags;
    let len = seg.len;
    e.flags |= f.0;

    // get_segment_len: SYN and FIN take one sequence number each; a RST's
    // payload is not part of the stream.
    let mut seg_len = len;
    if f.syn() {
        seg_len = seg_len.wrapping_add(1);
    }
    if f.fin() {
        seg_len = seg_len.wrapping_add(1);
    }
    if f.rst() {
        seg_len = seg_len.wrapping_sub(len);
    }
    let seq_one_past = seg.seq.wrapping_add(seg_len);

    init_endpoint(e, f, seg.seq, seq_one_past);
    let (rel_seq, _) = relative_seq(e, seg.seq, e.last, e.last_wraps);
    update_history(f, e, is_orig, rel_seq, len, h);

    // update_window: only the zero-window letter matters here. A window is
    // zero whatever its scale, so the scale is not tracked.
    if seg.window == 0
        && !f.rst()
        && p.state() != TcpEndpointState::Closed
        && e.state() != TcpEndpointState::Reset
    {
        e.win0 = e.win0.saturating_add(1);
        if scaled_hit(u32::from(e.win0)) {
            h.push(letter(b'W', is_orig));
        }
    }

    if f.fin() {
        e.bits |= FIN_SEEN;
    }

    if f.ack() {
        if p.state() == TcpEndpointState::Inactive {
            // init_peer: number the peer as though its SYN had been seen.
            let s = seg.ack.wrapping_sub(1);
            p.init_seqs(s, s);
        } else {
            let (_, underflow) = relative_seq(p, seg.ack, p.ack, p.ack_wraps);
            // Don't trust acks in RST packets.
            if !underflow && !f.rst() {
                update_ack_seq(p, seg.ack);
            }
        }
    }

    update_last_seq(e, seq_one_past, f, len, is_orig, h);

    let mut flip = false;
    let do_close = match e.state() {
        TcpEndpointState::Inactive => update_inactive(e, p, seg, is_orig, &mut flip),
        TcpEndpointState::SynSent | TcpEndpointState::SynAckSent => update_syn_sent(e, f),
        TcpEndpointState::Established | TcpEndpointState::Partial => update_established(e, p, f),
        TcpEndpointState::Closed => update_closed(e, p, f),
        TcpEndpointState::Reset => false,
    };
    // ConnectionClosed: with no reassembler holding data, the endpoint is
    // marked closed right away.
    if do_close {
        e.bits |= DID_CLOSE;
    }
    flip
}

/// Zeek `init_endpoint`: (re)initialises the sequence numbering.
fn init_endpoint(e: &mut Endpoint, f: TcpFlags, first_seg_seq: u32, last_seq: u32) {
    match e.state() {
        TcpEndpointState::Inactive => {
            if f.syn() {
                e.init_seqs(first_seg_seq, last_seq);
            } else {
                // A partial connection: number as though a SYN had been seen,
                // but don't let the first packet look like a duplicate.
                e.init_seqs(first_seg_seq.wrapping_sub(1), first_seg_seq);
            }
        }
        TcpEndpointState::SynSent | TcpEndpointState::SynAckSent => {
            if f.syn() && first_seg_seq != e.start {
                e.init_seqs(first_seg_seq, last_seq);
            }
        }
        TcpEndpointState::Established | TcpEndpointState::Partial => {
            if f.syn() {
                e.init_seqs(first_seg_seq, last_seq);
            }
        }
        TcpEndpointState::Reset => {
            if f.syn() && e.prev_state() == TcpEndpointState::Inactive {
                e.init_seqs(first_seg_seq, last_seq);
            }
        }
        TcpEndpointState::Closed => {}
    }
}

/// Zeek `get_relative_seq`: the 64-bit offset of `cur` from the endpoint's
/// start, and whether it lies before the start (underflow).
fn relative_seq(e: &Endpoint, cur: u32, last: u32, wraps: u16) -> (u64, bool) {
    let delta = seq_delta(cur, last);
    let mut wraps = u64::from(wraps);
    if delta < 0 {
        if wraps > 0 && cur > last {
            wraps -= 1;
        }
    } else if delta > 0 && cur < last {
        wraps += 1;
    }
    if wraps == 0 {
        let d = seq_delta(cur, e.start);
        // Zeek returns the int32 delta as uint64 (sign-extended).
        return (i64::from(d) as u64, d < 0);
    }
    (
        (wraps << 32)
            .wrapping_add(u64::from(cur))
            .wrapping_sub(u64::from(e.start)),
        false,
    )
}

/// Zeek `update_history`: one packet's letters (except the scaled ones).
fn update_history(
    f: TcpFlags,
    e: &mut Endpoint,
    is_orig: bool,
    rel_seq: u64,
    len: u32,
    h: &mut PackedHistory,
) {
    let bits_set = u8::from(f.syn()) + u8::from(f.fin()) + u8::from(f.rst());
    if bits_set > 1 {
        if f.fin() && f.rst() {
            e.check_history(Seen::FIN_RST, b'I', is_orig, h);
        } else {
            e.check_history(Seen::MULTI_FLAG, b'Q', is_orig, h);
        }
    } else if bits_set == 1 {
        let rel = rel_seq as u32;
        if f.syn() {
            let code = if f.ack() { b'H' } else { b'S' };
            if e.check_history(Seen::SYN, code, is_orig, h) && rel != e.hist_syn {
                h.push(letter(code, is_orig));
            }
            e.hist_syn = rel;
        }
        if f.fin() {
            // A FIN's sequence number is at the end of its data.
            let end = rel_seq.wrapping_add(u64::from(len)) as u32;
            if e.check_history(Seen::FIN, b'F', is_orig, h) && end != e.hist_fin {
                h.push(letter(b'F', is_orig));
            }
            e.hist_fin = end;
        }
        if f.rst() {
            if e.check_history(Seen::RST, b'R', is_orig, h) && rel != e.hist_rst {
                h.push(letter(b'R', is_orig));
            }
            e.hist_rst = rel;
        }
    } else if len > 0 {
        e.check_history(Seen::DATA, b'D', is_orig, h);
    } else if f.ack() {
        e.check_history(Seen::ACK, b'A', is_orig, h);
    }
}

/// Zeek `update_ack_seq`.
fn update_ack_seq(e: &mut Endpoint, ack: u32) {
    let delta = seq_delta(ack, e.ack);
    // An ack of 0 far ahead is more likely broken than a wrap landing on 0.
    if ack == 0 && delta > TOO_LARGE_SEQ_DELTA {
    } else if delta > 0 {
        e.update_ack(ack);
    }
}

/// Zeek `update_last_seq`: advances `last`, or counts a retransmission
/// (payload at or below the highest sequence already seen: letter `t`).
fn update_last_seq(
    e: &mut Endpoint,
    last_seq: u32,
    f: TcpFlags,
    len: u32,
    is_orig: bool,
    h: &mut PackedHistory,
) {
    let delta = seq_delta(last_seq, e.last);
    if (f.syn() || f.rst()) && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta) {
        // Untrusted SYN/RST sequence jump.
    } else if f.fin() && e.last == e.start.wrapping_add(1) {
        // Only a SYN seen so far: trust the FIN even backwards (> 2 GB flows).
        e.update_last(last_seq);
    } else if e.state() == TcpEndpointState::Reset {
        // Don't trust sequence numbers after a RST.
    } else if delta > 0 {
        e.update_last(last_seq);
    } else if len > 0 {
        e.rxmit = e.rxmit.saturating_add(1);
        if scaled_hit(e.rxmit) {
            h.push(letter(b'T', is_orig));
        }
    }
}

/// Zeek `UpdateInactiveState`. Returns `do_close`.
fn update_inactive(
    e: &mut Endpoint,
    p: &mut Endpoint,
    seg: &Segment,
    is_orig: bool,
    flip: &mut bool,
) -> bool {
    let f = seg.flags;
    let mut do_close = false;
    if f.syn() {
        if is_orig {
            e.set_state(if f.ack() {
                TcpEndpointState::SynAckSent
            } else {
                TcpEndpointState::SynSent
            });
        } else {
            if !f.ack() && p.state() == TcpEndpointState::SynAckSent && seg.seq == e.start {
                // SYN/SYN-ACK reversal: flip the roles, establish.
                *flip = true;
                p.set_state(TcpEndpointState::Established);
            }
            if p.state() == TcpEndpointState::SynSent {
                p.set_state(TcpEndpointState::Established);
            }
            e.set_state(TcpEndpointState::Established);
        }
    }
    if f.fin() {
        e.set_state(TcpEndpointState::Closed);
        do_close = true;
    }
    if f.rst() {
        e.set_state(TcpEndpointState::Reset);
        do_close = true;
    }
    if e.state() == TcpEndpointState::Inactive {
        // No control flags changed the state.
        if !is_orig && seg.len == 0 && p.state() == TcpEndpointState::SynSent {
            // An ACK of the SYN before the SYN-ACK: not a partial connection.
        } else if f.ack() && p.state() == TcpEndpointState::Established {
            // Missed the SYN but saw the SYN-ACK: establish.
            e.set_state(TcpEndpointState::Established);
        } else {
            e.set_state(TcpEndpointState::Partial);
        }
    }
    do_close
}

/// Zeek `UpdateSYN_SentState`.
fn update_syn_sent(e: &mut Endpoint, f: TcpFlags) -> bool {
    let mut do_close = false;
    if f.fin() {
        e.set_state(TcpEndpointState::Closed);
        do_close = true;
    }
    if f.rst() {
        e.set_state(TcpEndpointState::Reset);
        do_close = true;
    }
    do_close
}

/// Zeek `UpdateEstablishedState`.
fn update_established(e: &mut Endpoint, p: &mut Endpoint, f: TcpFlags) -> bool {
    let mut do_close = false;
    if f.syn()
        && e.state() == TcpEndpointState::Partial
        && p.state() == TcpEndpointState::Inactive
        && !f.ack()
    {
        e.set_state(TcpEndpointState::SynSent);
    }
    if f.fin() && !f.rst() {
        e.set_state(TcpEndpointState::Closed);
        if p.state() == TcpEndpointState::Reset && p.prev_state() == TcpEndpointState::Closed {
            // The peer sent FIN then RST: that was a normal termination.
            p.set_state(TcpEndpointState::Closed);
        }
        do_close = true;
    }
    if f.rst() {
        e.set_state(TcpEndpointState::Reset);
        do_close = true;
    }
    do_close
}

/// Zeek `UpdateClosedState`: a RST after our FIN counts unless the peer
/// closed too.
fn update_closed(e: &mut Endpoint, p: &Endpoint, f: TcpFlags) -> bool {
    if f.rst() && p.state() != TcpEndpointState::Closed {
        e.set_state(TcpEndpointState::Reset);
        return !e.did_close();
    }
    false
}

/// Zeek `TCP_Endpoint::Size`: payload bytes covered by the sequence space
/// (`orig_bytes` / `resp_bytes`), SYN and FIN octets excluded.
pub(crate) fn stream_size(e: &Endpoint, peer: &Endpoint) -> u64 {
    let full = |seq: u32, wraps: u16| (u64::from(wraps) << 32) | u64::from(seq);
    let ack64 = full(e.ack, e.ack_wraps);
    let start = u64::from(e.start);
    let no_data_acked = ack64 == start || ack64 == start + 1;
    if e.prev_state() == TcpEndpointState::SynSent
        && e.state() == TcpEndpointState::Reset
        && peer.state() == TcpEndpointState::Inactive
        && !no_data_acked
    {
        // A half-open connection discovered and aborted: sequence numbers
        // would be misleading.
        return 0;
    }
    let last64 = full(e.last, e.last_wraps);
    // Zeek subtracts unsigned here and can wrap to a huge size when the
    // numbering went backwards; saturate instead.
    let mut size = last64.max(ack64).saturating_sub(start);
    // Neither the SYN octet (assumed for partial flows too) nor the FIN
    // octet is payload.
    size = size.saturating_sub(1);
    if e.fin_seen() {
        size = size.saturating_sub(1);
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bits_round_trip() {
        let all = [
            TcpEndpointState::Inactive,
            TcpEndpointState::SynSent,
            TcpEndpointState::SynAckSent,
            TcpEndpointState::Partial,
            TcpEndpointState::Established,
            TcpEndpointState::Closed,
            TcpEndpointState::Reset,
        ];
        for a in all {
            for b in all {
                let mut e = Endpoint {
                    bits: DID_CLOSE | FIN_SEEN,
                    ..Endpoint::default()
                };
                e.set_state(a);
                e.set_state(b);
                assert_eq!(e.state(), b);
                if a != b {
                    assert_eq!(e.prev_state(), a);
                }
                assert!(e.did_close() && e.fin_seen());
            }
        }
    }

    #[test]
    fn endpoint_is_compact() {
        assert_eq!(core::mem::size_of::<Endpoint>(), 40);
    }

    #[test]
    fn relative_seq_handles_wraps() {
        let e = Endpoint {
            start: 0xffff_fff0,
            ..Endpoint::default()
        };
        // 0x20 past the start, across the 2^32 boundary: one wrap.
        assert_eq!(relative_seq(&e, 0x10, 0xffff_fff8, 0), (0x20, false));
        // Before the start, no wraps: underflow.
        assert!(relative_seq(&e, 0xffff_ff00, 0xffff_fff8, 0).1);
    }

    #[test]
    fn size_excludes_syn_and_fin() {
        // SYN at 100, 10 data bytes, FIN: last = 112 (see Zeek Size()).
        let mut e = Endpoint {
            start: 100,
            last: 112,
            ack: 100,
            ..Endpoint::default()
        };
        e.bits |= FIN_SEEN;
        assert_eq!(stream_size(&e, &Endpoint::default()), 10);
        // Backwards numbering saturates instead of wrapping.
        let e = Endpoint {
            start: 100,
            last: 50,
            ack: 50,
            ..Endpoint::default()
        };
        assert_eq!(stream_size(&e, &Endpoint::default()), 0);
        // 4 GiB wraps are counted.
        let e = Endpoint {
            start: 0,
            last: 1,
            last_wraps: 1,
            ..Endpoint::default()
        };
        assert_eq!(stream_size(&e, &Endpoint::default()), (1 << 32) + 1 - 1);
    }
}
