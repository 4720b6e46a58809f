//! Every protocol limit and timeout, defined once; both sides of a link read them from here.

use std::time::Duration;

/// The longest a gateway may ask an orchestrator to keep working on one segment.
pub const MAX_PATIENCE: Duration = Duration::from_secs(120);

/// go-livepeer's per-segment timeout: max(8 s, 4 × the segment's duration).
pub fn segment_timeout(duration_ms: u64) -> Duration {
    Duration::from_millis(duration_ms.saturating_mul(4).max(8_000))
}

/// go-livepeer's `MaxSegSize`: the largest segment body.
pub const MAX_SEGMENT_BYTES: usize = 300_000_000;

/// The largest small control message (`/getOrchestrator`, `/endSession`), read before anyone
/// is authenticated.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest answer to one segment, and the largest worker frame: a segment or all its
/// renditions.
pub const MAX_FRAME_BYTES: usize = 512 * 1024 * 1024;

/// How deep a wire message may nest. Ours nest a handful of levels; rmp-serde's default of 1024
/// lets 1 KiB of nested arrays in an unknown field recurse deep enough to overflow a 2 MiB
/// worker stack in an unoptimized build (found by fuzzing), which aborts the process.
pub const MAX_DEPTH: usize = 32;

/// go-livepeer's `GRPCConnectTimeout`/`GRPCTimeout` for `GetOrchestrator`.
pub const INFO_TIMEOUT: Duration = Duration::from_secs(8);

/// A worker job not answered in this time fails (go-livepeer removes such a worker too).
pub const WORKER_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// How often each end of a worker link pings the other.
pub const WORKER_PING_EVERY: Duration = Duration::from_secs(5);

/// A worker link that has heard nothing (not even a ping) for this long is dead.
pub const WORKER_SILENCE: Duration = Duration::from_secs(20);

/// A worker connection that has not registered by then is closed.
pub const WORKER_REGISTER_WITHIN: Duration = Duration::from_secs(10);

/// What a worker connection may send before its registration is accepted.
pub const WORKER_UNREGISTERED_BYTES: usize = 64 * 1024;

/// The most live streams `livepeer bench` tries (its `--max-streams`): a transcoder that
/// registers with a measured figure above it is refused, since no bench measured that.
pub const MAX_MEASURED_SESSIONS: u32 = 1024;

/// How long a worker waits for its answer to the orchestrator's close frame to go out.
pub const WORKER_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The first and the longest wait between a worker's reconnection attempts (doubling).
pub const WORKER_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// The largest body of an AI request (`POST /<pipeline>`), 50 MiB: ai-runner refuses files above
/// this (413), so a bigger upload could never be served. A bigger body is a 413.
pub const MAX_AI_BODY_BYTES: usize = 50 * 1024 * 1024;

/// The most pixels an AI request's input image may have, 4096 × 4096 (16.7 M). An image header
/// is a few bytes that can claim up to 65535 × 65535 pixels (a decompression bomb of a few KB);
/// this bounds what a worker decodes (64 MiB as RGBA, 200 MB as the f32 tensor a model takes)
/// and what an upscale produces (×4 each way: 268 M pixels), and is above any camera's output
/// that the pipelines' models (trained at 512–1024 px) are useful on. A bigger image is a 413.
pub const MAX_AI_IMAGE_PIXELS: u64 = 4096 * 4096;

/// The most tokens an LLM request may ask for (`max_tokens`), 4096: the request is paid for its
/// `max_tokens` up front, and a worker's time on one request (and its KV cache) grows with it;
/// small served models' contexts are a few thousand tokens. More is a 422 (`less_than_equal`).
pub const MAX_LLM_TOKENS: u32 = 4096;

/// The most messages an `llm` request may carry: a prompt has at most 4096 tokens, and each
/// message takes a few for its role and markers.
pub const MAX_LLM_MESSAGES: usize = 1024;

/// The most bytes of message text an `llm` request may carry, checked before any tokenizing
/// (which costs far more memory than the text): 4096 tokens of 64 bytes each.
pub const MAX_LLM_PROMPT_BYTES: usize = 4096 * 64;

/// The most field errors a 422 answer lists (FastAPI lists them all; a body of a million bad
/// items would make an answer far larger than itself).
pub const MAX_VALIDATION_ERRORS: usize = 32;

/// The longest a body sent to an orchestrator (a segment, an AI request) may send nothing: a
/// gateway sends what it already holds.
pub const BODY_IDLE: Duration = Duration::from_secs(10);
