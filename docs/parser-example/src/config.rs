//! [`LenProtoConfig`]: the limits a deployment may tune.

/// Limits of a LenProto parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LenProtoConfig {
    /// The largest body length accepted (bytes). A header declaring more is
    /// the [`FRAME_TOO_LONG`](crate::anomalies::FRAME_TOO_LONG) anomaly and
    /// poisons the parser; the factory does not match a hello declaring more.
    /// Also the most a parser ever buffers per side for a body.
    pub max_body: u16,
}

impl LenProtoConfig {
    /// The default [`max_body`](LenProtoConfig::max_body): 4 KiB.
    pub const DEFAULT_MAX_BODY: u16 = 4096;

    /// Sets [`max_body`](LenProtoConfig::max_body).
    pub const fn with_max_body(mut self, max_body: u16) -> Self {
        self.max_body = max_body;
        self
    }
}

impl Default for LenProtoConfig {
    fn default() -> Self {
        LenProtoConfig {
            max_body: Self::DEFAULT_MAX_BODY,
        }
    }
}
