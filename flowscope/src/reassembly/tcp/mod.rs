//! TCP stream reassembly: a bounded, zero-copy [`Reassembler`](flowscope_core::Reassembler).
