//! The compiled XDP program, embedded when the build found clang.

use std::path::PathBuf;

/// Which map type the program's two maps are created with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapKind {
    /// `BPF_MAP_TYPE_PERCPU_HASH`: an insert into a full map fails (and is
    /// counted); nothing is ever evicted behind the manager's back.
    #[default]
    Hash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`: inserts never fail for lack of room;
    /// the kernel evicts the least recently used entry instead, whose
    /// counters are then lost (its flow's packets reach userspace again).
    Lru,
}

/// Where the program's object file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectSource {
    /// The object compiled by this crate's build script and embedded in the
    /// binary (see [`embedded_object`]).
    Embedded,
    /// An object file on disk, e.g. from `cargo xtask build-bpf`.
    Path(PathBuf),
}

#[cfg(flowscope_prefilter_bpf)]
static HASH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/prefilter.o"));
#[cfg(flowscope_prefilter_bpf)]
static LRU_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/prefilter_lru.o"));

/// The embedded object for `kind`, or why the build has none (clang was
/// missing or failed when this crate was compiled).
pub fn embedded_object(kind: MapKind) -> Result<&'static [u8], &'static str> {
    #[cfg(flowscope_prefilter_bpf)]
    {
        Ok(match kind {
            MapKind::Hash => HASH_OBJECT,
            MapKind::Lru => LRU_OBJECT,
        })
    }
    #[cfg(not(flowscope_prefilter_bpf))]
    {
        let _ = kind;
        Err(option_env!("FLOWSCOPE_PREFILTER_BPF_MISSING")
            .unwrap_or("built without the XDP object"))
    }
}
