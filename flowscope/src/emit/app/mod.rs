//! EVE application objects.

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "tls")]
pub mod tls;
