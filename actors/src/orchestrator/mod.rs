//! The orchestrator role: sessions per gateway, the worker pools (transcoding, AI) and their
//! workers, local and remote (a [`WorkerLink`] per connected worker process).

pub mod auth;
pub mod auth_session;
pub mod handle;
pub mod inference;
pub mod job;
pub mod links;
pub mod local_worker;
#[allow(clippy::module_inception)]
pub mod orchestrator;
pub mod session_cap;
pub mod ticket_receiver;
pub mod worker_link;
pub mod worker_pool;

pub use auth_session::{AuthSession, EndWhenIdle, SessionEnded, SessionSegment};
pub use handle::{OrchestratorHandle, OrchestratorReport, add_inference_worker, add_local_workers};
pub use inference::{AiJob, AiPool, MAX_LOCAL_CAPACITY, inference};
pub use job::{Job, JobError, Offer, RunJob, TranscodeFn, TranscodeJob, WorkFn, ffmpeg_transcode};
pub use links::{Drained, InFlight, Links};
pub use local_worker::LocalWorker;
pub use orchestrator::{
    EndSession, GetOrchestratorInfo, GetOrchestratorStatus, MAX_SENDERS, Orchestrator, OrchestratorSettings,
    OrchestratorStatus, Rejected, SESSION_MAX_IN_FLIGHT, SubmitAi, SubmitSegment, ai_session,
};
pub use session_cap::SessionCap;
pub use ticket_receiver::{Epoch, PaymentRefused, PaymentSettings, TicketReceiver};
pub use worker_link::{Close, CloseLink, LinkEvent, LinkTransport, WorkerLink};
pub use worker_pool::{GetWorkers, RegisterWorker, Submit, TranscoderPool, UnregisterWorker, WorkerPool, WorkerStatus};
