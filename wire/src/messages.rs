//! The gateway ↔ orchestrator messages.
//!
//! They mirror go-livepeer's `net/lp_rpc.proto` field for field (same names, same meanings), so
//! a protobuf codec for go-livepeer interoperability can be added beside the MessagePack one
//! (`rmp-serde`, named fields) without touching the code that uses them. Where we differ, the
//! field says so: the segment hash is blake3 instead of keccak, and transcoded renditions travel
//! inline in [`TranscodedSegmentData::data`] instead of behind a URL.
//!
//! Big integers (face value, win probability …) are minimal big-endian bytes, as go-livepeer's
//! `big.Int.Bytes()`; they are empty in offchain mode.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::capability::Capabilities;
use crate::profile::{Container, VideoProfile};

/// `OrchestratorRequest`: a gateway asks an orchestrator for its terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestratorRequest {
    /// The gateway's ETH address (empty offchain).
    pub address: ByteBuf,
    /// The gateway's signature over its address (empty offchain).
    pub sig: ByteBuf,
    pub capabilities: Option<Capabilities>,
    pub ignore_capacity_check: bool,
}

/// `AuthToken`: an opaque HMAC the orchestrator checks on each segment, bound to a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthToken {
    pub token: ByteBuf,
    pub session_id: String,
    /// Unix seconds.
    pub expiration: i64,
}

/// `PriceInfo`: wei per `pixels_per_unit` pixels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceInfo {
    pub price_per_unit: i64,
    pub pixels_per_unit: i64,
    pub capability: u32,
    pub constraint: String,
}

/// `TicketExpirationParams`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketExpirationParams {
    pub creation_round: i64,
    pub creation_round_block_hash: ByteBuf,
}

/// `TicketParams`: what the recipient wants tickets to look like (absent offchain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketParams {
    pub recipient: ByteBuf,
    pub face_value: ByteBuf,
    pub win_prob: ByteBuf,
    pub recipient_rand_hash: ByteBuf,
    pub seed: ByteBuf,
    pub expiration_block: ByteBuf,
    pub expiration_params: Option<TicketExpirationParams>,
}

/// `TicketSenderParams`: per-ticket sender nonce and signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSenderParams {
    pub sender_nonce: u32,
    pub sig: ByteBuf,
}

/// `Payment`: the tickets that pay for one segment (empty offchain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub ticket_params: Option<TicketParams>,
    pub sender: ByteBuf,
    pub expiration_params: Option<TicketExpirationParams>,
    pub ticket_sender_params: Vec<TicketSenderParams>,
    pub expected_price: Option<PriceInfo>,
}

/// `OrchestratorInfo`: the orchestrator's terms for one gateway session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestratorInfo {
    /// Where to send segments (the orchestrator's service URI).
    pub transcoder: String,
    pub ticket_params: Option<TicketParams>,
    pub price_info: Option<PriceInfo>,
    /// The orchestrator's ETH address, which signs results (empty offchain).
    pub address: ByteBuf,
    pub capabilities: Option<Capabilities>,
    pub auth_token: Option<AuthToken>,
    pub capabilities_prices: Vec<PriceInfo>,
    pub nodes: Vec<String>,
}

/// `SegParameters`: clip the segment to `[from, to]` milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegParameters {
    pub from: u64,
    pub to: u64,
}

/// `SegData`: a segment's metadata, signed by the gateway (signature empty offchain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegData {
    pub manifest_id: ByteBuf,
    pub seq: i64,
    /// blake3 of the segment bytes (go-livepeer: keccak). Checked before any work.
    pub hash: ByteBuf,
    pub sig: ByteBuf,
    /// Milliseconds.
    pub duration: i32,
    pub capabilities: Option<Capabilities>,
    pub auth_token: Option<AuthToken>,
    /// go-livepeer's `fullProfiles`.
    pub profiles: Vec<VideoProfile>,
    /// Container of the body (go-livepeer infers it from the manifest; we say it).
    pub format: Container,
    pub segment_parameters: Option<SegParameters>,
    pub force_session_reinit: bool,
    /// How long the gateway waits for this attempt, in milliseconds (our extension); the
    /// orchestrator drops the work once it has passed. 0 or absent: [`crate::segment_timeout`].
    #[serde(default)]
    pub timeout_ms: u64,
}

impl SegData {
    /// What the gateway signs: manifest id, seq, segment hash and profile names.
    pub fn flatten(&self) -> Vec<u8> {
        let mut out = self.manifest_id.to_vec();
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.hash);
        for p in &self.profiles {
            out.extend_from_slice(p.name.as_bytes());
        }
        out
    }
}

/// `TranscodedSegmentData`: one rendition of a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodedSegmentData {
    /// Where the rendition can be fetched; empty when `data` carries it inline.
    pub url: String,
    /// Pixels encoded (width × height × frames): what the gateway pays for.
    pub pixels: i64,
    /// The rendition's bytes (MPEG-TS), inline. Our extension.
    pub data: ByteBuf,
    /// Profile name, width and height of the rendition. Our extension.
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// `TranscodeData`: all renditions of a segment plus the orchestrator's signature over them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodeData {
    pub segments: Vec<TranscodedSegmentData>,
    pub sig: ByteBuf,
}

/// The `oneof result` of `TranscodeResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TranscodeOutcome {
    Error(TranscodeFailure),
    Data(TranscodeData),
}

/// A transcode error as it travels: a stable code (also the metrics label) and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodeFailure {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for TranscodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// Error codes, named as go-livepeer names them in `segment_transcode_failed_total{error_code}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The input is not a decodable segment; no retry can help.
    InvalidInput,
    /// The orchestrator's queue for this session is full.
    OrchestratorBusy,
    /// The orchestrator is at `max_sessions`.
    OrchestratorCapped,
    /// No transcoder is connected to the orchestrator.
    NoTranscoders,
    /// A transcoder failed (error, crash or disconnect) on this segment.
    TranscoderFailed,
    /// Transcoders kept going away while running this segment (the poison-job rule): it is
    /// taken for one that crashes them. The gateway may try another orchestrator, never the
    /// same one again.
    TranscoderCrashed,
    /// The auth token is missing, forged or expired.
    AuthFailed,
    /// The segment bytes do not match the signed hash.
    HashMismatch,
    /// The gateway could not reach an orchestrator or its answer was unreadable.
    Transport,
    /// No orchestrator was available for the segment.
    NoOrchestrators,
    /// Every attempt failed.
    MaxAttempts,
    /// The gateway's queue for the stream is full.
    GatewayBusy,
    /// A ticket or the payment was refused (forged, replayed, expired, wrong recipient …; the
    /// message says which). No work was done.
    PaymentRefused,
    /// The session's balance does not cover the segment. No work was done.
    InsufficientBalance,
    /// A code this build does not know (a newer peer's): decoded, not refused, and retried
    /// elsewhere like a transport failure.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code, for declaring the metric series of each at start.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidInput,
        ErrorCode::OrchestratorBusy,
        ErrorCode::OrchestratorCapped,
        ErrorCode::NoTranscoders,
        ErrorCode::TranscoderFailed,
        ErrorCode::TranscoderCrashed,
        ErrorCode::AuthFailed,
        ErrorCode::HashMismatch,
        ErrorCode::Transport,
        ErrorCode::NoOrchestrators,
        ErrorCode::MaxAttempts,
        ErrorCode::GatewayBusy,
        ErrorCode::PaymentRefused,
        ErrorCode::InsufficientBalance,
        ErrorCode::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "InvalidInput",
            ErrorCode::OrchestratorBusy => "OrchestratorBusy",
            ErrorCode::OrchestratorCapped => "OrchestratorCapped",
            ErrorCode::NoTranscoders => "NoTranscoders",
            ErrorCode::TranscoderFailed => "TranscoderFailed",
            ErrorCode::TranscoderCrashed => "TranscoderCrashed",
            ErrorCode::AuthFailed => "AuthFailed",
            ErrorCode::HashMismatch => "HashMismatch",
            ErrorCode::Transport => "Transport",
            ErrorCode::NoOrchestrators => "NoOrchestrators",
            ErrorCode::MaxAttempts => "MaxAttempts",
            ErrorCode::GatewayBusy => "GatewayBusy",
            ErrorCode::PaymentRefused => "PaymentRefused",
            ErrorCode::InsufficientBalance => "InsufficientBalance",
            ErrorCode::Unknown => "Unknown",
        }
    }

    /// Whether another attempt (elsewhere) may succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(self, ErrorCode::InvalidInput)
    }
}

/// `TranscodeResult`: the orchestrator's answer to one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodeResult {
    pub seq: i64,
    pub result: TranscodeOutcome,
    /// Fresh terms (ticket params); the auth token stays the same.
    pub info: Option<OrchestratorInfo>,
}

/// `POST /endSession` (our extension; go-livepeer lets sessions idle out): the gateway's stream
/// ended, so the orchestrator frees the session's slot once its segments in flight are done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndSession {
    pub auth_token: AuthToken,
}
