//! The orchestrator role: sessions per gateway, the transcoder pool and its workers, local and
//! remote (a [`WorkerLink`] per connected worker process).

pub mod auth;
pub mod auth_session;
pub mod handle;
pub mod job;
pub mod links;
#[allow(clippy::module_inception)]
pub mod orchestrator;
pub mod ticket_receiver;
pub mod transcode_worker;
pub mod transcoder_pool;
pub mod worker_link;

pub use auth_session::{AuthSession, EndWhenIdle, SessionEnded, SessionSegment};
pub use handle::{OrchestratorHandle, OrchestratorReport, add_local_workers};
pub use job::{JobError, RunJob, TranscodeFn, TranscodeJob, ffmpeg_transcode};
pub use links::{Drained, InFlight, Links};
pub use orchestrator::{
    EndSession, GetOrchestratorInfo, GetOrchestratorStatus, MAX_SENDERS, Orchestrator, OrchestratorSettings,
    OrchestratorStatus, Rejected, SESSION_MAX_IN_FLIGHT, SubmitSegment,
};
pub use ticket_receiver::{Epoch, PaymentRefused, PaymentSettings, TicketReceiver};
pub use transcode_worker::TranscodeWorker;
pub use transcoder_pool::{
    GetTranscoders, RegisterTranscoder, Transcode, TranscoderPool, TranscoderStatus, UnregisterTranscoder,
};
pub use worker_link::{Close, CloseLink, LinkEvent, LinkTransport, WorkerLink};
