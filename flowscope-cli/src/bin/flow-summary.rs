//! flow-summary (skeleton).
fn main() {}
