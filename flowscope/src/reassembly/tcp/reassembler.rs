//! The per-flow reassembler (two sides) and the factory that shares the
//! global memory budget among them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use flowscope_core::{FlowSide, Reassembler, ReassemblerFactory, StreamEvent, TcpSegment};

use super::config::TcpReassemblyConfig;
use super::side::{Env, SideAssembler};
use super::stats::ReassemblyStats;

/// Makes [`TcpReassembler`]s that share one budget of held bytes
/// ([`TcpReassemblyConfig::max_held_total`]).
///
/// Clones share the budget too.
#[derive(Clone, Debug)]
pub struct TcpReassemblerFactory {
    config: TcpReassemblyConfig,
    // Atomic so the factory and its reassemblers stay `Send`; one worker
    // owns them all, so contention is not a concern.
    budget: Arc<AtomicUsize>,
}

impl TcpReassemblerFactory {
    /// A factory with these limits and an empty budget.
    pub fn new(config: TcpReassemblyConfig) -> Self {
        TcpReassemblerFactory {
            config,
            budget: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The configuration every reassembler gets.
    pub fn config(&self) -> &TcpReassemblyConfig {
        &self.config
    }

    /// Bytes held out of order right now by all live reassemblers of this
    /// factory.
    pub fn held_total(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }
}

impl Default for TcpReassemblerFactory {
    fn default() -> Self {
        TcpReassemblerFactory::new(TcpReassemblyConfig::default())
    }
}

impl ReassemblerFactory for TcpReassemblerFactory {
    type Reassembler = TcpReassembler;

    fn new_reassembler(&self) -> TcpReassembler {
        TcpReassembler {
            config: self.config,
            budget: Arc::clone(&self.budget),
            initiator: SideAssembler::default(),
            responder: SideAssembler::default(),
            stats: ReassemblyStats::default(),
        }
    }
}

/// Reassembles both byte streams of one TCP flow.
///
/// In-order bytes are handed on borrowed from the segment (no copy, no
/// allocation); only out-of-order bytes are copied, within the caps of
/// [`TcpReassemblyConfig`]. Gives its held bytes back to the factory's
/// budget when dropped.
#[derive(Debug)]
pub struct TcpReassembler {
    config: TcpReassemblyConfig,
    budget: Arc<AtomicUsize>,
    initiator: SideAssembler,
    responder: SideAssembler,
    stats: ReassemblyStats,
}

impl TcpReassembler {
    /// Counters so far, both sides together.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// True once a cap stopped `side`'s reassembly: its later segments are
    /// counted and ignored.
    pub fn is_stopped(&self, side: FlowSide) -> bool {
        self.side(side).is_stopped()
    }

    /// Out-of-order pieces `side` holds right now.
    pub fn held_segments(&self, side: FlowSide) -> usize {
        self.side(side).held_pieces()
    }

    /// Delivers everything held on both sides now, each hole before held
    /// bytes reported as a [`StreamEvent::Gap`]; the streams go on (unlike
    /// [`Reassembler::flush`], a FIN seen is not treated as the end).
    /// Frees all held bytes: what a memory budget under pressure asks for,
    /// losing only the bytes that had not arrived. Returns the bytes freed.
    pub fn skip_holes(&mut self, out: &mut dyn FnMut(FlowSide, StreamEvent<'_>)) -> usize {
        let before = self.buffered_bytes();
        for side in [FlowSide::Initiator, FlowSide::Responder] {
            let (s, mut env) = self.parts(side);
            s.skip_holes(&mut env, &mut |ev: StreamEvent<'_>| out(side, ev));
        }
        before.saturating_sub(self.buffered_bytes())
    }

    fn side(&self, side: FlowSide) -> &SideAssembler {
        match side {
            FlowSide::Initiator => &self.initiator,
            FlowSide::Responder => &self.responder,
        }
    }

    /// One side mutably, with the environment its calls need.
    fn parts(&mut self, side: FlowSide) -> (&mut SideAssembler, Env<'_>) {
        let env = Env {
            cfg: &self.config,
            budget: &self.budget,
            stats: &mut self.stats,
        };
        let s = match side {
            FlowSide::Initiator => &mut self.initiator,
            FlowSide::Responder => &mut self.responder,
        };
        (s, env)
    }
}

impl Reassembler for TcpReassembler {
    fn segment(
        &mut self,
        side: FlowSide,
        seg: &TcpSegment<'_>,
        out: &mut dyn FnMut(FlowSide, StreamEvent<'_>),
    ) {
        self.stats.segments += 1;
        {
            let (s, mut env) = self.parts(side);
            s.segment(seg, &mut env, &mut |ev: StreamEvent<'_>| out(side, ev));
        }
        if let Some(ack) = seg.ack {
            let peer = side.other();
            let (s, mut env) = self.parts(peer);
            s.ack(ack, &mut env, &mut |ev: StreamEvent<'_>| out(peer, ev));
        }
    }

    fn flush(&mut self, side: FlowSide, out: &mut dyn FnMut(FlowSide, StreamEvent<'_>)) {
        let (s, mut env) = self.parts(side);
        s.flush(&mut env, &mut |ev: StreamEvent<'_>| out(side, ev));
    }

    fn buffered_bytes(&self) -> usize {
        self.initiator
            .held_bytes()
            .saturating_add(self.responder.held_bytes())
    }
}

impl Drop for TcpReassembler {
    fn drop(&mut self) {
        self.initiator.release_all(&self.budget);
        self.responder.release_all(&self.budget);
    }
}
