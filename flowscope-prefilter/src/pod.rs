//! The crate's only `unsafe`: marking the map key and value structs as
//! plain old data so aya may copy them to and from the kernel as bytes.

use crate::key::{FlowCounters, FlowKeyV4, FlowKeyV6};

// SAFETY: `aya::Pod` requires a `Copy + 'static` type that any bit pattern
// inhabits and that has no padding (its bytes are passed to the kernel,
// which hashes every one). `FlowKeyV4` and `FlowKeyV6` are `#[repr(C)]`
// sequences of `u8` and `[u8; N]` fields (alignment 1, so no padding can be
// inserted; the sizes 16 and 40 are asserted in `key.rs`), and every bit
// pattern is a valid value of each field.
unsafe impl aya::Pod for FlowKeyV4 {}
// SAFETY: as for `FlowKeyV4` above.
unsafe impl aya::Pod for FlowKeyV6 {}
// SAFETY: `FlowCounters` is `#[repr(C)]` with two `u64` fields: 16 bytes,
// no padding (asserted in `key.rs`), every bit pattern valid.
unsafe impl aya::Pod for FlowCounters {}
