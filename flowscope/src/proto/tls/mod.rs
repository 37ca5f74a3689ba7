//! TLS handshakes: SNI, ALPN, versions, JA3/JA3S, JA4, certificates.
