//! Writers for finished flows in formats other tools read as they are:
//! Suricata EVE JSON, Zeek conn.log, CSV and NDJSON.
//!
//! SKELETON: filled in by the emit work.
