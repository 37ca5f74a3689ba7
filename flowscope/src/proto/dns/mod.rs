//! DNS over UDP and TCP: messages, queries paired with responses.
