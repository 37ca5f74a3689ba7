//! Software RSS: which worker a packet belongs to.
