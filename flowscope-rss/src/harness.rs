//! Pinned run-to-completion workers and the event fan-in.
