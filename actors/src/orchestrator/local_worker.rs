//! `LocalWorker<J>`: one local slot of a [`WorkerPool`](super::WorkerPool), transcoding or AI.
//!
//! - **Owns** a dedicated OS thread (its device context: FFmpeg codec state, ONNX Runtime
//!   sessions live and die there). The compute never runs on the actor's thread or the async
//!   executor.
//! - **Mailbox**: bounded at [`MAILBOX`]; the pool gives it one job at a time.
//! - **Restart policy**: a job that panics, or runs past [`WORKER_JOB_TIMEOUT`] (a wedged codec
//!   or model must not hold a slot forever), fails only that job (answered `TranscoderFailed`);
//!   the thread is discarded with whatever state it was left in and a fresh one is started for
//!   the next job. The actor itself never stops while its node
//!   runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;

use actix::prelude::*;
use futures::channel::oneshot;
use tracing::{error, info};

use super::job::{Job, JobError, RunJob, WorkFn};
use crate::metrics;
use lp_wire::limits::WORKER_JOB_TIMEOUT;
use lp_wire::{ErrorCode, TranscodeFailure};

/// The pool never sends more than a few jobs to one worker.
pub const MAILBOX: usize = 8;
/// What the thread answers: the job's result, or the panic message when the job panicked.
type Reply<J> = oneshot::Sender<Result<Result<<J as Job>::Output, TranscodeFailure>, String>>;

pub struct LocalWorker<J: Job> {
    name: String,
    func: WorkFn<J>,
    thread: Option<crossbeam_channel::Sender<(J, Reply<J>)>>,
    restarts: u64,
}

impl<J: Job> LocalWorker<J> {
    pub fn new(name: impl Into<String>, func: WorkFn<J>) -> Self {
        LocalWorker { name: name.into(), func, thread: None, restarts: 0 }
    }

    /// The job channel of the worker thread, starting a thread if there is none.
    fn thread(&mut self) -> crossbeam_channel::Sender<(J, Reply<J>)> {
        if let Some(tx) = &self.thread {
            return tx.clone();
        }
        let (tx, rx) = crossbeam_channel::bounded::<(J, Reply<J>)>(MAILBOX);
        let func = self.func.clone();
        let name = self.name.clone();
        let spawned = thread::Builder::new().name(format!("{}-{name}", J::KIND)).spawn(move || {
            for (job, reply) in rx {
                match catch_unwind(AssertUnwindSafe(|| func(&job))) {
                    Ok(result) => {
                        let _ = reply.send(Ok(result));
                    }
                    Err(panic) => {
                        let what = crate::supervision::panic_message(panic.as_ref());
                        error!(target: "lp::worker", kind = J::KIND, worker = %name, job = %job.describe(), panic = %what, "worker panicked; restarting it");
                        let _ = reply.send(Err(what));
                        // Leave the thread: the state the panic left behind is not reused.
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            error!(target: "lp::worker", kind = J::KIND, worker = %self.name, "cannot start a worker thread: {e}");
        }
        self.thread = Some(tx.clone());
        tx
    }
}

impl<J: Job> Actor for LocalWorker<J> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.thread();
    }
}

impl<J: Job> Handler<RunJob<J>> for LocalWorker<J> {
    type Result = ResponseActFuture<Self, Result<J::Output, JobError>>;

    fn handle(&mut self, RunJob(job): RunJob<J>, _ctx: &mut Self::Context) -> Self::Result {
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = self.thread().try_send((job, reply_tx));
        Box::pin(
            async move {
                if sent.is_err() {
                    return None;
                }
                match tokio::time::timeout(WORKER_JOB_TIMEOUT, reply_rx).await {
                    Ok(answer) => answer.ok(),
                    Err(_) => Some(Err(format!("no result in {WORKER_JOB_TIMEOUT:?}"))),
                }
            }
            .into_actor(self)
            .map(|answer, act, _| {
                let crash = match answer {
                    Some(Ok(result)) => return result.map_err(JobError::Failed),
                    Some(Err(panic)) => format!("worker crashed: {panic}"),
                    None => "worker thread stopped".to_string(),
                };
                act.restart();
                Err(JobError::Failed(TranscodeFailure { code: ErrorCode::TranscoderFailed, message: crash }))
            }),
        )
    }
}

impl<J: Job> LocalWorker<J> {
    fn restart(&mut self) {
        self.thread = None;
        self.restarts += 1;
        metrics::worker_restarted(J::KIND);
        info!(target: "lp::worker", kind = J::KIND, worker = %self.name, restarts = self.restarts, "worker restarted");
        self.thread();
    }
}
