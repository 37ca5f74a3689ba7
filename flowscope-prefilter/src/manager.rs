//! Loading the XDP program, attaching it, and managing its bypass maps.

use std::io;

use aya::maps::{Map, MapData, MapError, PerCpuHashMap, PerCpuValues};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfError, EbpfLoader};

use crate::key::{BypassFlow, FlowCounters, FlowKeyV4, FlowKeyV6, KeyError, MapKey};
use crate::object::{embedded_object, MapKind, ObjectSource};

/// The program's name in the object (its C function).
pub const PROGRAM_NAME: &str = "fs_prefilter";
/// The IPv4 map's name in the object.
pub const MAP_V4: &str = "fs_bypass_v4";
/// The IPv6 map's name in the object.
pub const MAP_V6: &str = "fs_bypass_v6";

/// `BPF_NOEXIST`: an insert never overwrites (and so never zeroes) the
/// counters of an entry that is already there.
const BPF_NOEXIST: u64 = 1;

/// How to load the prefilter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrefilterConfig {
    /// Where the object comes from.
    pub object: ObjectSource,
    /// Map type, for the embedded object (a file's maps are what it was
    /// compiled with; [`Prefilter::map_kind`] says which).
    pub map_kind: MapKind,
    /// Entries per map (each flow takes two: one per direction); `None`
    /// keeps the object's 65 536.
    pub max_entries: Option<u32>,
}

impl Default for PrefilterConfig {
    fn default() -> Self {
        PrefilterConfig {
            object: ObjectSource::Embedded,
            map_kind: MapKind::Hash,
            max_entries: None,
        }
    }
}

impl PrefilterConfig {
    /// The embedded object with hash maps of the object's default size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets where the object comes from.
    pub fn object(mut self, object: ObjectSource) -> Self {
        self.object = object;
        self
    }

    /// Sets the map type of the embedded object.
    pub fn map_kind(mut self, kind: MapKind) -> Self {
        self.map_kind = kind;
        self
    }

    /// Sets the number of entries per map.
    pub fn max_entries(mut self, n: u32) -> Self {
        self.max_entries = Some(n);
        self
    }
}

/// How to attach to an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachMode {
    /// Native (driver) XDP, else generic: [`Prefilter::attach`] reports
    /// which one took.
    #[default]
    Auto,
    /// Native XDP in the driver, before any socket buffer exists: the
    /// cheap mode; fails where the driver has no XDP support.
    Native,
    /// Generic (SKB) XDP, after the socket buffer is built: works on any
    /// device, saves less.
    Generic,
}

/// The mode a program was attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachedMode {
    /// Native (driver) XDP.
    Native,
    /// Generic (SKB) XDP.
    Generic,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum PrefilterError {
    /// This build has no embedded object; the reason from the build.
    NoObject(&'static str),
    /// The object could not be read or loaded into the kernel.
    Load(Box<EbpfError>),
    /// The object lacks the program or a map, or they have other types or
    /// key/value sizes than this crate's.
    BadObject(String),
    /// Loading, attaching or detaching the program failed.
    Program(Box<ProgramError>),
    /// A map operation failed.
    Map(Box<MapError>),
    /// The flow cannot be keyed.
    Key(KeyError),
    /// `attach` while attached.
    AlreadyAttached,
    /// An OS error (e.g. counting CPUs).
    Io(io::Error),
}

impl std::fmt::Display for PrefilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrefilterError::NoObject(why) => write!(f, "no embedded XDP object: {why}"),
            PrefilterError::Load(e) => write!(f, "loading the XDP object: {e}"),
            PrefilterError::BadObject(why) => write!(f, "unexpected XDP object: {why}"),
            PrefilterError::Program(e) => write!(f, "XDP program: {e}"),
            PrefilterError::Map(e) => write!(f, "bypass map: {e}"),
            PrefilterError::Key(e) => write!(f, "flow key: {e}"),
            PrefilterError::AlreadyAttached => f.write_str("the program is already attached"),
            PrefilterError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PrefilterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PrefilterError::Load(e) => Some(e.as_ref()),
            PrefilterError::Program(e) => Some(e.as_ref()),
            PrefilterError::Map(e) => Some(e.as_ref()),
            PrefilterError::Key(e) => Some(e),
            PrefilterError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProgramError> for PrefilterError {
    fn from(e: ProgramError) -> Self {
        PrefilterError::Program(Box::new(e))
    }
}

impl From<MapError> for PrefilterError {
    fn from(e: MapError) -> Self {
        PrefilterError::Map(Box::new(e))
    }
}

impl From<KeyError> for PrefilterError {
    fn from(e: KeyError) -> Self {
        PrefilterError::Key(e)
    }
}

/// A flow's bypass counters, per direction, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BidiCounters {
    /// Frames of the flow's direction as given ([`BypassFlow`] src -> dst).
    pub forward: FlowCounters,
    /// Frames of the reply direction.
    pub reverse: FlowCounters,
}

impl BidiCounters {
    /// Both directions added up.
    pub fn total(&self) -> FlowCounters {
        FlowCounters {
            packets: self.forward.packets.saturating_add(self.reverse.packets),
            bytes: self.forward.bytes.saturating_add(self.reverse.bytes),
        }
    }
}

/// What [`Prefilter::expire_idle`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The counters moved since the last look: the flow is alive in the
    /// kernel. Keep these as the next `last_seen` and look again at the
    /// next idle deadline.
    Active(BidiCounters),
    /// The counters had not moved: both entries are deleted and these are
    /// the flow's final bypassed packets and bytes.
    Expired(BidiCounters),
    /// Neither direction is in the maps (never inserted, removed, or
    /// evicted from an LRU map).
    Missing,
}

/// The manager's running counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PrefilterStats {
    /// Flows inserted (both directions).
    pub inserts_ok: u64,
    /// Flows whose insert failed (map full, or a kernel error): they stay
    /// in userspace.
    pub inserts_failed: u64,
    /// Flows removed by [`Prefilter::remove`] or [`Prefilter::expire_idle`].
    pub removed: u64,
    /// Entries currently in the IPv4 map, as this manager inserted and
    /// removed them (an LRU map may hold fewer).
    pub entries_v4: u64,
    /// Entries currently in the IPv6 map, likewise.
    pub entries_v6: u64,
    /// Packets dropped in the kernel for the flows removed so far.
    pub bypassed_packets: u64,
    /// Their bytes.
    pub bypassed_bytes: u64,
}

struct Attachment {
    iface: String,
    mode: AttachedMode,
    link: aya::programs::xdp::XdpLinkId,
}

/// The loaded XDP bypass program and its two maps. Dropping it detaches the
/// program and frees the maps (unless something else holds them).
pub struct Prefilter {
    // Declared before `ebpf` so the maps are closed first; the program is
    // detached explicitly in `Drop`.
    v4: PerCpuHashMap<MapData, FlowKeyV4, FlowCounters>,
    v6: PerCpuHashMap<MapData, FlowKeyV6, FlowCounters>,
    ebpf: Ebpf,
    kind: MapKind,
    nr_cpus: usize,
    attached: Option<Attachment>,
    stats: PrefilterStats,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilter")
            .field("kind", &self.kind)
            .field("nr_cpus", &self.nr_cpus)
            .field(
                "attached",
                &self.attached.as_ref().map(|a| (&a.iface, a.mode)),
            )
            .field("stats", &self.stats)
            .finish()
    }
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<(Map, MapKind), PrefilterError> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| PrefilterError::BadObject(format!("no map {name}")))?;
    let kind = match &map {
        Map::PerCpuHashMap(_) => MapKind::Hash,
        Map::PerCpuLruHashMap(_) => MapKind::Lru,
        _ => {
            return Err(PrefilterError::BadObject(format!(
                "{name} is not a per-CPU hash map"
            )))
        }
    };
    Ok((map, kind))
}

impl Prefilter {
    /// Loads the object and its program into the kernel (needs root or
    /// CAP_BPF + CAP_NET_ADMIN); nothing is attached yet.
    pub fn load(config: &PrefilterConfig) -> Result<Prefilter, PrefilterError> {
        let mut loader = EbpfLoader::new();
        if let Some(n) = config.max_entries {
            loader.map_max_entries(MAP_V4, n).map_max_entries(MAP_V6, n);
        }
        let mut ebpf = match &config.object {
            ObjectSource::Embedded => {
                let bytes = embedded_object(config.map_kind).map_err(PrefilterError::NoObject)?;
                loader.load(bytes)
            }
            ObjectSource::Path(p) => loader.load_file(p),
        }
        .map_err(|e| PrefilterError::Load(Box::new(e)))?;

        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| PrefilterError::BadObject(format!("no program {PROGRAM_NAME}")))?
            .try_into()?;
        program.load()?;

        let (v4, kind4) = take_map(&mut ebpf, MAP_V4)?;
        let (v6, kind6) = take_map(&mut ebpf, MAP_V6)?;
        if kind4 != kind6 {
            return Err(PrefilterError::BadObject(
                "the two maps are of different types".into(),
            ));
        }
        // try_from checks the key and value sizes against the map's.
        let v4 = PerCpuHashMap::try_from(v4)?;
        let v6 = PerCpuHashMap::try_from(v6)?;
        let nr_cpus = aya::util::nr_cpus().map_err(|(_, e)| PrefilterError::Io(e))?;
        Ok(Prefilter {
            v4,
            v6,
            ebpf,
            kind: kind4,
            nr_cpus,
            attached: None,
            stats: PrefilterStats::default(),
        })
    }

    /// The maps' type, as loaded.
    pub fn map_kind(&self) -> MapKind {
        self.kind
    }

    /// The running counts.
    pub fn stats(&self) -> PrefilterStats {
        self.stats
    }

    /// The interface and mode the program is attached to, if any.
    pub fn attached(&self) -> Option<(&str, AttachedMode)> {
        self.attached.as_ref().map(|a| (a.iface.as_str(), a.mode))
    }

    fn program(&mut self) -> Result<&mut Xdp, PrefilterError> {
        Ok(self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| PrefilterError::BadObject(format!("no program {PROGRAM_NAME}")))?
            .try_into()?)
    }

    /// Attaches the program to `iface` (one interface per manager). With
    /// [`AttachMode::Auto`], native mode is tried first, then generic.
    pub fn attach(
        &mut self,
        iface: &str,
        mode: AttachMode,
    ) -> Result<AttachedMode, PrefilterError> {
        if self.attached.is_some() {
            return Err(PrefilterError::AlreadyAttached);
        }
        let program = self.program()?;
        let (link, used) = match mode {
            AttachMode::Native => (
                program.attach(iface, XdpMode::Driver)?,
                AttachedMode::Native,
            ),
            AttachMode::Generic => (program.attach(iface, XdpMode::Skb)?, AttachedMode::Generic),
            AttachMode::Auto => match program.attach(iface, XdpMode::Driver) {
                Ok(link) => (link, AttachedMode::Native),
                Err(ProgramError::UnknownInterface { name }) => {
                    return Err(ProgramError::UnknownInterface { name }.into())
                }
                Err(_) => (program.attach(iface, XdpMode::Skb)?, AttachedMode::Generic),
            },
        };
        self.attached = Some(Attachment {
            iface: iface.to_string(),
            mode: used,
            link,
        });
        Ok(used)
    }

    /// Detaches the program (a no-op when not attached). The maps and
    /// their entries stay.
    pub fn detach(&mut self) -> Result<(), PrefilterError> {
        if let Some(a) = self.attached.take() {
            self.program()?.detach(a.link)?;
        }
        Ok(())
    }

    fn zeroes(&self) -> Result<PerCpuValues<FlowCounters>, PrefilterError> {
        PerCpuValues::try_from(vec![FlowCounters::default(); self.nr_cpus])
            .map_err(PrefilterError::Io)
    }

    fn insert_key(&mut self, key: &MapKey) -> Result<bool, PrefilterError> {
        let zero = self.zeroes()?;
        let res = match key {
            MapKey::V4(k) => self.v4.insert(k, zero, BPF_NOEXIST),
            MapKey::V6(k) => self.v6.insert(k, zero, BPF_NOEXIST),
        };
        match res {
            Ok(()) => {
                match key {
                    MapKey::V4(_) => self.stats.entries_v4 += 1,
                    MapKey::V6(_) => self.stats.entries_v6 += 1,
                }
                Ok(true)
            }
            Err(e) if is_io_kind(&e, io::ErrorKind::AlreadyExists) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn remove_key(&mut self, key: &MapKey) -> Result<bool, PrefilterError> {
        let res = match key {
            MapKey::V4(k) => self.v4.remove(k),
            MapKey::V6(k) => self.v6.remove(k),
        };
        match res {
            Ok(()) => {
                match key {
                    MapKey::V4(_) => {
                        self.stats.entries_v4 = self.stats.entries_v4.saturating_sub(1)
                    }
                    MapKey::V6(_) => {
                        self.stats.entries_v6 = self.stats.entries_v6.saturating_sub(1)
                    }
                }
                Ok(true)
            }
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts dropping `flow` in the kernel: inserts both directions with
    /// zeroed counters. Inserting a flow that is already there keeps its
    /// counters. On failure nothing is left half-inserted and the failure
    /// is counted; the flow simply stays in userspace.
    pub fn insert(&mut self, flow: &BypassFlow) -> Result<(), PrefilterError> {
        let res = self.insert_both(flow);
        match res {
            Ok(()) => self.stats.inserts_ok += 1,
            Err(_) => self.stats.inserts_failed += 1,
        }
        res
    }

    fn insert_both(&mut self, flow: &BypassFlow) -> Result<(), PrefilterError> {
        let fwd = flow.key()?;
        let rev = flow.reversed().key()?;
        let fwd_new = self.insert_key(&fwd)?;
        if let Err(e) = self.insert_key(&rev) {
            if fwd_new {
                let _ = self.remove_key(&fwd);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The counters of one map entry summed over CPUs; `None` when absent.
    pub fn key_counters(&self, key: &MapKey) -> Result<Option<FlowCounters>, PrefilterError> {
        let res = match key {
            MapKey::V4(k) => self.v4.get(k, 0),
            MapKey::V6(k) => self.v6.get(k, 0),
        };
        match res {
            Ok(per_cpu) => Ok(Some(sum(per_cpu.iter()))),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Both directions' counters of `flow`, summed over CPUs; `None` when
    /// neither direction is in the maps.
    pub fn counters(&self, flow: &BypassFlow) -> Result<Option<BidiCounters>, PrefilterError> {
        let fwd = self.key_counters(&flow.key()?)?;
        let rev = self.key_counters(&flow.reversed().key()?)?;
        if fwd.is_none() && rev.is_none() {
            return Ok(None);
        }
        Ok(Some(BidiCounters {
            forward: fwd.unwrap_or_default(),
            reverse: rev.unwrap_or_default(),
        }))
    }

    /// Stops dropping `flow`: deletes both directions and returns their
    /// last counters (`None` when neither was there). Packets the kernel
    /// counts between the read and the delete are lost to the totals.
    pub fn remove(&mut self, flow: &BypassFlow) -> Result<Option<BidiCounters>, PrefilterError> {
        let last = self.counters(flow)?;
        let a = self.remove_key(&flow.key()?)?;
        let b = self.remove_key(&flow.reversed().key()?)?;
        if a || b {
            self.stats.removed += 1;
        }
        if let Some(c) = last {
            let t = c.total();
            self.stats.bypassed_packets = self.stats.bypassed_packets.saturating_add(t.packets);
            self.stats.bypassed_bytes = self.stats.bypassed_bytes.saturating_add(t.bytes);
        }
        Ok(last)
    }

    /// Suricata's expiry check for a bypassed flow, called at its idle
    /// deadline with the counters seen at the previous look (zeroes the
    /// first time): if they moved, the flow is still alive in the kernel
    /// ([`Expiry::Active`], keep the new ones); if not, its entries are
    /// deleted and the final counters returned ([`Expiry::Expired`]), to be
    /// added to the flow's statistics as it ends.
    pub fn expire_idle(
        &mut self,
        flow: &BypassFlow,
        last_seen: &BidiCounters,
    ) -> Result<Expiry, PrefilterError> {
        let Some(now) = self.counters(flow)? else {
            return Ok(Expiry::Missing);
        };
        if now != *last_seen {
            return Ok(Expiry::Active(now));
        }
        Ok(match self.remove(flow)? {
            Some(last) => Expiry::Expired(last),
            None => Expiry::Missing,
        })
    }

    /// Every entry of both maps with its counters summed over CPUs (for
    /// inspection; allocates).
    pub fn entries(&self) -> Result<Vec<(MapKey, FlowCounters)>, PrefilterError> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item?;
            out.push((MapKey::V4(k), sum(v.iter())));
        }
        for item in self.v6.iter() {
            let (k, v) = item?;
            out.push((MapKey::V6(k), sum(v.iter())));
        }
        Ok(out)
    }
}

impl Drop for Prefilter {
    fn drop(&mut self) {
        // aya would detach on drop too; doing it here makes the order
        // explicit (program off the interface before the maps go).
        let _ = self.detach();
    }
}

fn sum<'a>(values: impl Iterator<Item = &'a FlowCounters>) -> FlowCounters {
    values.fold(FlowCounters::default(), |acc, v| FlowCounters {
        packets: acc.packets.wrapping_add(v.packets),
        bytes: acc.bytes.wrapping_add(v.bytes),
    })
}

fn is_io_kind(e: &MapError, kind: io::ErrorKind) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.kind() == kind)
}

fn is_not_found(e: &MapError) -> bool {
    matches!(e, MapError::KeyNotFound | MapError::ElementNotFound)
        || is_io_kind(e, io::ErrorKind::NotFound)
}
