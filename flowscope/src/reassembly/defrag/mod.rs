//! IPv4 and IPv6 defragmentation: bounded and overlap-safe.
