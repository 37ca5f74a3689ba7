//! HTTP/1.x: requests and responses paired into transactions.
