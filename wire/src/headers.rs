//! HTTP header names and content types of the gateway ↔ orchestrator protocol.

/// `base64(SegData)` on `POST /segment` (go-livepeer's `Livepeer-Segment`).
pub const SEGMENT: &str = "Livepeer-Segment";
/// `base64(Payment)` on `POST /segment` (go-livepeer's `Livepeer-Payment`).
pub const PAYMENT: &str = "Livepeer-Payment";
/// Milliseconds of media in an uploaded segment (go-livepeer's ingest header).
pub const CONTENT_DURATION: &str = "Content-Duration";
/// The content type of every MessagePack body.
pub const MSGPACK: &str = "application/vnd.msgpack";
