//! The gateway ↔ orchestrator and orchestrator ↔ transcoder wire messages.
//!
//! They mirror go-livepeer's `net/lp_rpc.proto` field for field (same names, same meanings), so
//! a protobuf codec for go-livepeer interoperability can be added beside the MessagePack one
//! (`rmp-serde`, named fields) without touching the code that uses them. Where we differ, the
//! field says so: the segment hash is blake3 instead of keccak, and transcoded renditions travel
//! inline in [`TranscodedSegmentData::data`] instead of behind a URL.
//!
//! Big integers (face value, win probability …) are minimal big-endian bytes, as go-livepeer's
//! `big.Int.Bytes()`; they are empty in offchain mode.

use std::collections::BTreeMap;

use lp_pipelines::{InputFormat, Profile};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Capability bits of go-livepeer (`core/capabilities.go`): bit `c` is in word `c / 64`.
pub mod capability {
    pub const H264: u32 = 0;
    pub const MPEGTS: u32 = 1;
    pub const MP4: u32 = 2;
    pub const FRACTIONAL_FRAMERATES: u32 = 3;
    pub const STORAGE_DIRECT: u32 = 4;
    pub const PROFILE_H264_BASELINE: u32 = 7;
    pub const PROFILE_H264_MAIN: u32 = 8;
    pub const PROFILE_H264_HIGH: u32 = 9;
    pub const PROFILE_H264_CONSTRAINED_HIGH: u32 = 10;
    pub const GOP: u32 = 11;
    pub const AUTH_TOKEN: u32 = 12;
}

/// `Capabilities`: what a node can do (bitstring) and what it insists on (mandatories).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bitstring: Vec<u64>,
    pub mandatories: Vec<u64>,
    pub capacities: BTreeMap<u32, u32>,
    pub version: String,
}

impl Capabilities {
    /// The transcoding capabilities this build offers.
    pub fn transcoding() -> Self {
        use capability::*;
        let mut caps = Capabilities { version: env!("CARGO_PKG_VERSION").to_string(), ..Default::default() };
        for c in [
            H264,
            MPEGTS,
            MP4,
            FRACTIONAL_FRAMERATES,
            STORAGE_DIRECT,
            PROFILE_H264_BASELINE,
            PROFILE_H264_MAIN,
            PROFILE_H264_HIGH,
            PROFILE_H264_CONSTRAINED_HIGH,
            GOP,
            AUTH_TOKEN,
        ] {
            caps.set(c);
        }
        caps.mandatories = vec![1 << AUTH_TOKEN];
        caps
    }

    pub fn set(&mut self, cap: u32) {
        let word = (cap / 64) as usize;
        if self.bitstring.len() <= word {
            self.bitstring.resize(word + 1, 0);
        }
        self.bitstring[word] |= 1 << (cap % 64);
    }

    /// go-livepeer's rule: every bit the requester needs is offered, and every bit the offerer
    /// makes mandatory is in the request.
    pub fn compatible_with(&self, offered: &Capabilities) -> bool {
        let covers = |want: &[u64], have: &[u64]| {
            want.iter().enumerate().all(|(i, w)| w & have.get(i).copied().unwrap_or(0) == *w)
        };
        covers(&self.bitstring, &offered.bitstring) && covers(&offered.mandatories, &self.bitstring)
    }
}

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
    pub profiles: Vec<Profile>,
    /// Container of the body (go-livepeer infers it from the manifest; we say it).
    pub format: InputFormat,
    pub segment_parameters: Option<SegParameters>,
    pub force_session_reinit: bool,
    /// How long the gateway waits for this attempt, in milliseconds (our extension); the
    /// orchestrator drops the work once it has passed. 0 or absent: [`segment_timeout`].
    #[serde(default)]
    pub timeout_ms: u64,
}

/// The longest a gateway may ask an orchestrator to keep working on one segment.
pub const MAX_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// go-livepeer's per-segment timeout: max(8 s, 4 × the segment's duration).
pub fn segment_timeout(duration_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(duration_ms.saturating_mul(4).max(8_000))
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
}

impl ErrorCode {
    /// Every code, for declaring the metric series of each at start.
    pub const ALL: [ErrorCode; 12] = [
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

/// Frames a remote transcoder sends to its orchestrator over the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TranscoderMessage {
    /// First frame: authenticate and announce capacity (go-livepeer `RegisterRequest`).
    Register { secret: String, capacity: u32, capabilities: Capabilities },
    /// The outcome of a job.
    Result { task_id: u64, outcome: TranscodeOutcome },
}

/// Frames an orchestrator sends to a remote transcoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrchestratorMessage {
    /// Registration accepted.
    Registered,
    /// Registration refused (wrong secret, zero capacity); the connection closes.
    Refused { reason: String },
    /// A segment to transcode (go-livepeer `NotifySegment`).
    Job {
        task_id: u64,
        seq: i64,
        format: InputFormat,
        profiles: Vec<Profile>,
        data: ByteBuf,
        /// Milliseconds left before the gateway stops waiting; the transcoder drops the job then.
        #[serde(default)]
        timeout_ms: u64,
    },
}

/// Errors decoding a wire message.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct DecodeError(String);

/// Encode a wire message as MessagePack with named fields.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain structs into a Vec cannot fail.
    rmp_serde::to_vec_named(msg).expect("wire messages serialize")
}

/// How deep a wire message may nest. Ours nest a handful of levels; rmp-serde's default of 1024
/// lets 1 KiB of nested arrays in an unknown field recurse deep enough to overflow a 2 MiB
/// worker stack in an unoptimized build (found by fuzzing), which aborts the process.
pub const MAX_DEPTH: usize = 32;

/// Decode a wire message; garbage is an error, never a panic.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de).map_err(|e| DecodeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_match_like_go_livepeer() {
        let offered = Capabilities::transcoding();
        let mut wanted = Capabilities::default();
        wanted.set(capability::H264);
        wanted.set(capability::AUTH_TOKEN);
        assert!(wanted.compatible_with(&offered));
        // Missing the mandatory auth-token bit.
        let mut legacy = Capabilities::default();
        legacy.set(capability::H264);
        assert!(!legacy.compatible_with(&offered));
        // Asking for something not offered.
        let mut hevc = wanted.clone();
        hevc.set(16);
        assert!(!hevc.compatible_with(&offered));
    }

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let msg = TranscodeResult {
            seq: 7,
            result: TranscodeOutcome::Error(TranscodeFailure {
                code: ErrorCode::OrchestratorBusy,
                message: "queue full".into(),
            }),
            info: Some(OrchestratorInfo { transcoder: "https://127.0.0.1:8935".into(), ..Default::default() }),
        };
        let bytes = encode(&msg);
        assert_eq!(decode::<TranscodeResult>(&bytes).unwrap(), msg);
        assert!(decode::<TranscodeResult>(b"\xc1garbage").is_err());
        assert!(decode::<TranscodeResult>(&bytes[..bytes.len() / 2]).is_err());
    }
}
