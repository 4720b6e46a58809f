//! AI jobs and the inference worker: [`AiJob`] is one request of an AI pipeline as the
//! orchestrator's [`AiPool`] schedules it; an inference worker is a
//! [`LocalWorker<AiJob>`](super::LocalWorker) running [`inference`].
//!
//! - **Owns** (the worker's thread) a [`ModelSet`]: the ONNX Runtime sessions of every model the
//!   worker serves on its device, warm ones loaded at start, cold ones on first use.
//! - **Capacity**: the worker registers with the pool once per model, with that model's
//!   capacity; its one thread runs the jobs in order, each with every core ONNX Runtime is
//!   given, and [`MAX_LOCAL_CAPACITY`] bounds how many it holds at once.
//! - **Streams**: a job may carry a channel for the text of a streaming `llm` generation; the
//!   generation stops when nobody listens any more or the job's caller stopped waiting.
//! - **Restart policy**: a job that panics fails alone and the thread is replaced (see
//!   [`LocalWorker`](super::LocalWorker)); the models the panic may have left half-run are
//!   dropped and the warm ones loaded again on the next job.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lp_pipelines::ai::{AiError, Loading, ModelSet};
use lp_wire::ai::{AiRequest, AiResponse};
use lp_wire::{Capabilities, ErrorCode, TranscodeFailure};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::job::{Job, Offer, WorkFn};
use super::worker_pool::WorkerPool;
use crate::metrics;

/// The most jobs a local inference worker holds at once, over all its models (its mailbox).
pub const MAX_LOCAL_CAPACITY: u32 = 8;

/// The pool of AI workers. It queues nothing: a request no worker has room for now is answered
/// at once (go-livepeer's "insufficient capacity"), so the gateway can try another orchestrator.
pub type AiPool = WorkerPool<AiJob>;

/// One AI request.
#[derive(Debug, Clone)]
pub struct AiJob {
    pub request: Arc<AiRequest>,
    pub deadline: Instant,
    /// Where the text of a streaming `llm` generation goes as it is made.
    pub tokens: Option<UnboundedSender<String>>,
}

impl Job for AiJob {
    type Output = AiResponse;
    const KIND: &'static str = "ai";

    fn needs(&self) -> Offer {
        let mut capabilities = Capabilities::default();
        capabilities.set(self.request.pipeline().capability());
        Offer { capabilities, model: Some(self.request.model_id().to_string()) }
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn describe(&self) -> String {
        format!("{} {}", self.request.pipeline(), self.request.model_id())
    }

    fn done(&self, _: &AiResponse, took: Duration) {
        metrics::ai_job_done(self.request.pipeline().name(), took.as_secs_f64());
    }
}

/// What a worker serving `model_id` of `pipeline` offers the pool.
pub fn offer(pipeline: lp_wire::ai::Pipeline, model_id: &str) -> Offer {
    let mut capabilities = Capabilities::default();
    capabilities.set(pipeline.capability());
    Offer { capabilities, model: Some(model_id.to_string()) }
}

/// The compute of an inference worker: `models` (warm ones already loaded), run on its thread.
pub fn inference(models: ModelSet) -> WorkFn<AiJob> {
    inference_with(models, ModelSet::infer)
}

/// How a worker runs a request on its models: [`ModelSet::infer`].
pub type RunFn = fn(&mut ModelSet, &AiRequest, &mut dyn FnMut(&str) -> bool) -> Result<AiResponse, AiError>;

/// [`inference`] with another `run`: for tests only, to make a job panic while it holds the
/// models, which no real request can.
#[doc(hidden)]
pub fn inference_with(models: ModelSet, run: RunFn) -> WorkFn<AiJob> {
    let models = Mutex::new(models);
    Arc::new(move |job: &AiJob| {
        let mut set = models.lock().unwrap_or_else(|poisoned| {
            // A job panicked mid-run: its sessions are not reused.
            let mut set = poisoned.into_inner();
            set.reset();
            models.clear_poison();
            set
        });
        if let Err(e) = set.load_warm().map(|loaded| loaded.into_iter().for_each(|l| loaded_model(&l))) {
            warn!(target: "lp::ai", error = %e, "a warm model did not load again");
        }
        let mut on_token =
            |text: &str| job.tokens.as_ref().is_none_or(|tx| tx.send(text.to_string()).is_ok()) && !job.abandoned();
        let result = run(&mut set, &job.request, &mut on_token);
        for (pipeline, model) in set.take_evicted() {
            info!(target: "lp::ai", %pipeline, %model, "cold model evicted to make room for another");
            metrics::ai_model_evicted(pipeline.name());
        }
        set.take_loaded().iter().for_each(loaded_model);
        result.map_err(failure)
    })
}

fn loaded_model(l: &Loading) {
    info!(target: "lp::ai", pipeline = %l.pipeline, model = %l.model_id, seconds = l.seconds, "model loaded");
    metrics::ai_model_loaded(l.pipeline.name(), l.seconds);
}

/// How an inference error travels: the client's fault (`InvalidInput`, a 400) or the worker's.
fn failure(e: AiError) -> TranscodeFailure {
    let code = if e.is_client_error() { ErrorCode::InvalidInput } else { ErrorCode::TranscoderFailed };
    TranscodeFailure { code, message: e.to_string() }
}
