//! The orchestrator ↔ worker frames (go-livepeer's `RegisterTranscoder` / `NotifySegment` /
//! `TranscodeResults`, and their AI counterparts), carried over a WebSocket by lp-node.
//!
//! A worker registers with the shared secret, its capacity and its capabilities; the
//! orchestrator then sends it [`Work`] and the worker answers each job with a [`WorkOutcome`]
//! under the job's `task_id`. Limits and timeouts of the link are in [`crate::limits`].

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ai::{AiRequest, AiResponse};
use crate::capability::Capabilities;
use crate::messages::{TranscodeData, TranscodeFailure};
use crate::profile::{Container, VideoProfile};

/// Frames a worker sends to its orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TranscoderMessage {
    /// First frame: authenticate and announce capacity (go-livepeer `RegisterRequest`).
    ///
    /// A transcoder offers [`Capabilities::transcoding`] and `capacity` segments at once. An AI
    /// worker offers its pipelines' bits and, in `capabilities.constraints`, each model it serves
    /// with that model's capacity ([`crate::ModelConstraint`]); `capacity` is then their total.
    /// A transcoder with a `livepeer bench` figure for its config sends it as `sessions`: the
    /// live streams it carries in real time, which `max_sessions = "auto"` counts instead of
    /// `capacity` (absent from workers that have none, and from older ones).
    Register {
        secret: String,
        capacity: u32,
        capabilities: Capabilities,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sessions: Option<u32>,
    },
    /// The outcome of a job.
    Result { task_id: u64, outcome: WorkOutcome },
    /// Text of a streaming `llm` job as it is generated, before its `Result`.
    Partial { task_id: u64, text: String },
}

/// Frames an orchestrator sends to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrchestratorMessage {
    /// Registration accepted.
    Registered,
    /// Registration refused (wrong secret, zero capacity); the connection closes.
    Refused { reason: String },
    /// A job.
    Job {
        task_id: u64,
        work: Work,
        /// Milliseconds left before the gateway stops waiting; the worker drops the job then.
        #[serde(default)]
        timeout_ms: u64,
    },
    /// Nobody listens to the job any more (the client of a streamed `llm` answer left): stop
    /// it. Its `Result` still comes, and is dropped. (A worker that does not know this frame
    /// logs it as unreadable and runs on; nothing else changes.)
    Cancel { task_id: u64 },
}

/// What a job asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Work {
    /// Transcode a segment (go-livepeer `NotifySegment`).
    Transcode { seq: i64, format: Container, profiles: Vec<VideoProfile>, data: ByteBuf },
    /// Run one AI request (already checked by the orchestrator). A streaming `llm` request
    /// (`stream: true`) is answered with [`TranscoderMessage::Partial`] frames as the text is
    /// made, then its `Result`.
    Infer { request: AiRequest },
}

/// A worker's answer to one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkOutcome {
    Error(TranscodeFailure),
    /// The renditions of a [`Work::Transcode`].
    Transcoded(TranscodeData),
    /// The answer of a [`Work::Infer`].
    Inferred(AiResponse),
}
