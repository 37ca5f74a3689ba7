//! Where a worker's bypass decisions go: the prefilter's maps, shared by
//! every worker of the process, or a stand-in for tests.

use std::sync::{Arc, Mutex, MutexGuard};

use flowscope_prefilter::{BidiCounters, BypassFlow, Expiry, Prefilter, PrefilterError};

/// The map operations a [`Bypasser`](super::Bypasser) needs; implemented by
/// [`SharedPrefilter`] (the XDP maps) and by test doubles.
pub trait BypassMaps: Send {
    /// Starts dropping `flow` (both directions) in the kernel.
    fn insert(&mut self, flow: &BypassFlow) -> Result<(), PrefilterError>;
    /// Suricata's check at an idle deadline (see [`Prefilter::expire_idle`]).
    fn expire_idle(
        &mut self,
        flow: &BypassFlow,
        last_seen: &BidiCounters,
    ) -> Result<Expiry, PrefilterError>;
    /// Stops dropping `flow` and returns its last counters.
    fn remove(&mut self, flow: &BypassFlow) -> Result<Option<BidiCounters>, PrefilterError>;
}

/// One loaded [`Prefilter`] shared by all workers (one XDP program and one
/// pair of maps per interface, whatever the number of workers).
///
/// A mutex serialises the map calls: each is a syscall, and a worker makes
/// them only when it bypasses a flow and at that flow's idle deadlines,
/// never per packet, so contention is negligible.
#[derive(Clone, Debug)]
pub struct SharedPrefilter(Arc<Mutex<Prefilter>>);

impl SharedPrefilter {
    /// Shares `prefilter` (loaded and attached by the caller).
    pub fn new(prefilter: Prefilter) -> Self {
        SharedPrefilter(Arc::new(Mutex::new(prefilter)))
    }

    /// The prefilter itself (for its statistics, or to detach it). A
    /// worker that panicked while holding it does not make it unusable:
    /// every map call leaves the manager consistent.
    pub fn lock(&self) -> MutexGuard<'_, Prefilter> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives the prefilter back once no worker holds a clone any more
    /// (`Err(self)` otherwise), so the caller decides when it detaches.
    pub fn into_inner(self) -> Result<Prefilter, SharedPrefilter> {
        match Arc::try_unwrap(self.0) {
            Ok(m) => Ok(m.into_inner().unwrap_or_else(|p| p.into_inner())),
            Err(arc) => Err(SharedPrefilter(arc)),
        }
    }
}

impl BypassMaps for SharedPrefilter {
    fn insert(&mut self, flow: &BypassFlow) -> Result<(), PrefilterError> {
        self.lock().insert(flow)
    }

    fn expire_idle(
        &mut self,
        flow: &BypassFlow,
        last_seen: &BidiCounters,
    ) -> Result<Expiry, PrefilterError> {
        self.lock().expire_idle(flow, last_seen)
    }

    fn remove(&mut self, flow: &BypassFlow) -> Result<Option<BidiCounters>, PrefilterError> {
        self.lock().remove(flow)
    }
}
