//! `OrchestratorHandle`: the orchestrator role as the rest of the node sees it (reth's handle
//! pattern): typed async methods over the role's actors, started under the node's watchdog.

use actix::prelude::*;
use bytes::Bytes;
use lp_pipelines::TranscodeOptions;
use lp_wire::{AuthToken, OrchestratorInfo, OrchestratorRequest, Payment, SegData, TranscodeResult};
use serde::Serialize;

use super::inference::{self, AiPool, MAX_LOCAL_CAPACITY};
use super::job::{Offer, ffmpeg_transcode};
use super::local_worker::LocalWorker;
use super::orchestrator::{
    EndSession, GetOrchestratorInfo, GetOrchestratorStatus, GetReceivers, Orchestrator, OrchestratorSettings,
    OrchestratorStatus, SubmitSegment,
};
use super::ticket_receiver::{GetReceiverStatus, ReceiverStatus};
use super::worker_pool::{GetWorkers, RegisterWorker, TranscoderPool, WorkerStatus};
use crate::handle::CallError;
use crate::supervision::{Policy, Watchdog};
use lp_pipelines::ai::ModelSet;

/// Register `capacity` local workers (each owning a thread, running FFmpeg with `opts`) with
/// `pool`: the orchestrator's own transcoding, or a transcoder process's.
pub async fn add_local_workers(
    pool: &Addr<TranscoderPool>,
    capacity: u32,
    opts: TranscodeOptions,
) -> Result<(), CallError> {
    for i in 0..capacity {
        let name = format!("local-{i}");
        let worker = LocalWorker::new(name.clone(), ffmpeg_transcode(opts.clone())).start();
        let register = RegisterWorker {
            remote_sessions: None,
            name,
            offer: Offer { capabilities: lp_wire::Capabilities::transcoding(), model: None },
            capacity: 1,
            recipient: worker.recipient(),
        };
        pool.send(register).await.map_err(|_| CallError::Stopped("transcoder pool"))?;
    }
    Ok(())
}

/// Run AI models in this process: one inference worker owning `models` (warm ones loaded) on
/// its thread, registered with `pool` once per model with that model's capacity (their sum at
/// most [`MAX_LOCAL_CAPACITY`]): the orchestrator's own, or an AI worker process's.
pub async fn add_inference_worker(
    pool: &Addr<AiPool>,
    name: &str,
    models: ModelSet,
    capacities: &[u32],
) -> Result<(), CallError> {
    let offers: Vec<_> = models.specs().iter().map(|s| inference::offer(s.pipeline, &s.model_id)).collect();
    let total: u32 = capacities.iter().sum();
    if total > MAX_LOCAL_CAPACITY || capacities.len() != offers.len() {
        return Err(CallError::Refused(lp_wire::TranscodeFailure {
            code: lp_wire::ErrorCode::InvalidInput,
            message: format!(
                "a local inference worker takes at most {MAX_LOCAL_CAPACITY} jobs at once, over its models"
            ),
        }));
    }
    let worker = LocalWorker::new(name, inference::inference(models)).start();
    for (offer, capacity) in offers.into_iter().zip(capacities) {
        let register = RegisterWorker {
            remote_sessions: None,
            name: name.to_string(),
            capacity: *capacity,
            offer,
            recipient: worker.clone().recipient(),
        };
        pool.send(register).await.map_err(|_| CallError::Stopped("ai pool"))?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct OrchestratorHandle {
    orchestrator: Addr<Orchestrator>,
    pool: Addr<TranscoderPool>,
    ai: Addr<AiPool>,
}

/// A snapshot for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorReport {
    pub status: OrchestratorStatus,
    pub transcoders: Vec<WorkerStatus>,
    /// AI workers, once per model each serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ai_workers: Vec<WorkerStatus>,
    /// On-chain: what each sender paid, per session.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<ReceiverStatus>,
}

impl OrchestratorHandle {
    /// Start the role's actors under `watchdog`. The transcoder pool shares the session cap
    /// ([`TranscoderPool::for_sessions`]).
    pub fn start(settings: OrchestratorSettings, watchdog: &Watchdog) -> Self {
        let pool = TranscoderPool::for_sessions(settings.max_sessions.clone());
        let pool = watchdog.start("transcoder_pool", Policy::Permanent, pool);
        let ai = watchdog.start("ai_pool", Policy::Permanent, AiPool::new(0));
        let orchestrator = Orchestrator::new(settings, pool.clone()).with_ai(ai.clone()).supervised_by(watchdog);
        let orchestrator = watchdog.start("orchestrator", Policy::Permanent, orchestrator);
        OrchestratorHandle { orchestrator, pool, ai }
    }

    /// Run AI models in this process (see [`add_inference_worker`]).
    pub async fn add_inference_worker(
        &self,
        name: &str,
        models: ModelSet,
        capacities: &[u32],
    ) -> Result<(), CallError> {
        add_inference_worker(&self.ai, name, models, capacities).await
    }

    /// Transcode in this process too: `capacity` local workers, each owning a thread.
    pub async fn add_local_workers(&self, capacity: u32, opts: TranscodeOptions) -> Result<(), CallError> {
        add_local_workers(&self.pool, capacity, opts).await
    }

    /// A gateway asks for terms (go-livepeer `GetOrchestrator`).
    pub async fn info(&self, req: OrchestratorRequest) -> Result<OrchestratorInfo, CallError> {
        match self.orchestrator.send(GetOrchestratorInfo(req)).await {
            Ok(answer) => answer.map_err(CallError::Refused),
            Err(_) => Err(CallError::Stopped("orchestrator")),
        }
    }

    /// A gateway sends a segment and the tickets that pay for it. A refusal (token, hash,
    /// profiles) is `Refused`; a transcode failure is an answer, inside the result.
    pub async fn submit(&self, seg: SegData, payment: Payment, data: Bytes) -> Result<TranscodeResult, CallError> {
        match self.orchestrator.send(SubmitSegment { seg, payment, data }).await {
            Ok(answer) => answer.map_err(|rejected| CallError::Refused(rejected.0)),
            Err(_) => Err(CallError::Stopped("orchestrator")),
        }
    }

    /// The gateway's stream ended: free its session once its segments are done.
    pub async fn end_session(&self, token: AuthToken) -> Result<(), CallError> {
        match self.orchestrator.send(EndSession(token)).await {
            Ok(answer) => answer.map_err(|rejected| CallError::Refused(rejected.0)),
            Err(_) => Err(CallError::Stopped("orchestrator")),
        }
    }

    pub async fn report(&self) -> Result<OrchestratorReport, CallError> {
        let status = self.orchestrator.send(GetOrchestratorStatus).await;
        let transcoders = self.pool.send(GetWorkers).await;
        let ai_workers = self.ai.send(GetWorkers).await;
        let payments = self.payments().await?;
        match (status, transcoders, ai_workers) {
            (Ok(status), Ok(transcoders), Ok(ai_workers)) => {
                Ok(OrchestratorReport { status, transcoders, ai_workers, payments })
            }
            _ => Err(CallError::Stopped("orchestrator")),
        }
    }

    /// What each sender paid (on-chain), by sender address.
    pub async fn payments(&self) -> Result<Vec<ReceiverStatus>, CallError> {
        let receivers = self.orchestrator.send(GetReceivers).await.map_err(|_| CallError::Stopped("orchestrator"))?;
        let mut payments = Vec::new();
        for r in receivers {
            if let Ok(status) = r.send(GetReceiverStatus).await {
                payments.push(status);
            }
        }
        payments.sort_by_key(|p| p.sender);
        Ok(payments)
    }

    /// The root actor, for an in-process transport ([`crate::gateway::InProcess`]).
    pub fn orchestrator(&self) -> &Addr<Orchestrator> {
        &self.orchestrator
    }

    /// The transcoder pool, where remote transcoders register.
    pub fn transcoder_pool(&self) -> &Addr<TranscoderPool> {
        &self.pool
    }

    /// The AI pool, where remote AI workers register (once per model).
    pub fn ai_pool(&self) -> &Addr<AiPool> {
        &self.ai
    }
}
