//! `WorkerPool<J>`: the orchestrator's workers for one kind of [`Job`], local and remote, and the
//! jobs waiting for them. [`TranscoderPool`] is the pool of transcoders; the AI pool is another
//! instance, whose workers register once per model they serve.
//!
//! - **Owns** the registry of workers (what each offers, its capacity and current load) and a
//!   bounded queue of jobs waiting for a free slot.
//! - **Picks**, for each job, among the workers whose [`Offer`] covers what the job needs
//!   ([`Job::needs`]: capability bits, and a model for AI work), the one with the lowest
//!   load/capacity that has a free slot; a job none of them could run is answered `NoTranscoders`
//!   at once.
//! - **Drops** a queued job once its deadline (how long its caller waits) has passed; the
//!   worker running one stops by itself at that deadline.
//! - **Re-queues** a job whose worker disconnected before answering (at the front, up to
//!   [`MAX_REQUEUES`] times: a worker killed or cut off mid-job costs the job nothing). The
//!   poison-job rule: a job on which more workers went away than that is taken for one that
//!   crashes them, and failed with `TranscoderCrashed` (which no one retries) instead of being
//!   handed to the next. A job that a worker *failed* is answered with the failure and the caller
//!   decides whether to retry.
//! - **Mailbox**: bounded at [`MAILBOX`]; the queue is bounded by `max_queue` (the
//!   orchestrator's pool: by its session cap, which follows the remote workers under
//!   `max_sessions = "auto"`) and a full queue answers `OrchestratorBusy` at once. With a bound
//!   of 0 nothing is queued: a job no worker has a free slot for now is answered
//!   `OrchestratorBusy` ("insufficient capacity") at once, and so is a job re-queued after a
//!   disconnect that no free worker can take.
//! - **Restart policy**: supervised, permanent (see `crate::supervision`): restarted in place
//!   after a panic with its workers, their loads and its queue; a job handed out before the
//!   panic is awaited outside the pool's context, so its answer still reaches its caller.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use actix::prelude::*;
use futures::channel::oneshot;
use serde::Serialize;
use tracing::{debug, info, warn};

use super::job::{Job, JobError, Offer, RunJob, TranscodeJob};
use super::orchestrator::SESSION_MAX_IN_FLIGHT;
use super::session_cap::SessionCap;
use crate::metrics;
use crate::supervision::InjectPanic;
use lp_wire::{ErrorCode, TranscodeFailure};

const MAILBOX: usize = 256;
/// How often one job may be moved to another worker after disconnects (the poison-job rule: a
/// job that two workers died on does not get a third).
pub const MAX_REQUEUES: u32 = 1;

/// The pool of transcoders.
pub type TranscoderPool = WorkerPool<TranscodeJob>;

type Reply<J> = oneshot::Sender<Result<<J as Job>::Output, TranscodeFailure>>;

struct Worker<J: Job> {
    name: String,
    /// See [`RegisterWorker::remote_sessions`].
    remote_sessions: Option<u32>,
    capacity: u32,
    load: u32,
    offer: Offer,
    recipient: Recipient<RunJob<J>>,
}

struct Pending<J: Job> {
    job: J,
    /// What a worker must offer to run it ([`Job::needs`]).
    needs: Offer,
    reply: Reply<J>,
    requeues: u32,
}

pub struct WorkerPool<J: Job> {
    workers: HashMap<u64, Worker<J>>,
    next_id: u64,
    queue: VecDeque<Pending<J>>,
    bound: QueueBound,
}

/// How many jobs may wait.
enum QueueBound {
    Fixed(usize),
    /// The orchestrator's transcoder pool: what every session its cap allows may have in flight,
    /// [`SESSION_MAX_IN_FLIGHT`] each, so that a full queue means the orchestrator really is
    /// busy; an `auto` cap has the remote workers' sessions written into it.
    Sessions(SessionCap),
}

impl<J: Job> WorkerPool<J> {
    /// A pool whose queue holds `max_queue` jobs (0: none, a job runs now or is refused).
    pub fn new(max_queue: usize) -> Self {
        WorkerPool::bounded(QueueBound::Fixed(max_queue))
    }

    /// The orchestrator's transcoder pool, its queue bounded by the session cap `cap` (see
    /// [`QueueBound::Sessions`]).
    pub fn for_sessions(cap: SessionCap) -> Self {
        WorkerPool::bounded(QueueBound::Sessions(cap))
    }

    fn bounded(bound: QueueBound) -> Self {
        WorkerPool { workers: HashMap::new(), next_id: 1, queue: VecDeque::new(), bound }
    }

    fn max_queue(&self) -> usize {
        match &self.bound {
            QueueBound::Fixed(n) => *n,
            QueueBound::Sessions(cap) => cap.get() as usize * SESSION_MAX_IN_FLIGHT,
        }
    }

    fn publish(&self) {
        let capacity = self.workers.values().fold(0u32, |sum, t| sum.saturating_add(t.capacity));
        let load = self.workers.values().map(|t| t.load).sum();
        metrics::workers(J::KIND, self.workers.len(), capacity, load);
    }

    /// A worker came or went: an `auto` session cap follows the remote workers' sessions.
    fn workers_changed(&self) {
        if let QueueBound::Sessions(cap) = &self.bound
            && cap.is_auto()
        {
            let remote = self.workers.values().filter_map(|w| w.remote_sessions).fold(0u32, u32::saturating_add);
            cap.set_remote(remote);
            metrics::max_sessions(cap.get());
        }
    }

    /// The free worker with the lowest load/capacity among those that offer `needs`.
    fn pick(&self, needs: &Offer) -> Option<u64> {
        self.workers
            .iter()
            .filter(|(_, t)| t.load < t.capacity && t.offer.covers(needs))
            .min_by(|(_, a), (_, b)| {
                let la = a.load as f64 / a.capacity as f64;
                let lb = b.load as f64 / b.capacity as f64;
                la.total_cmp(&lb)
            })
            .map(|(id, _)| *id)
    }

    /// Answer and forget the queued jobs whose gateway stopped waiting.
    fn drop_abandoned(&mut self) {
        let (late, waiting): (VecDeque<_>, VecDeque<_>) = self.queue.drain(..).partition(|p| p.job.abandoned());
        self.queue = waiting;
        for pending in late {
            info!(target: "lp::pool", kind = J::KIND, job = %pending.job.describe(), "dropped from the queue: its caller stopped waiting");
            metrics::job_abandoned(J::KIND, "queued");
            let _ = pending.reply.send(Err(TranscodeFailure {
                code: ErrorCode::TranscoderFailed,
                message: "dropped before a worker was free: the caller stopped waiting".into(),
            }));
        }
    }

    /// Hand queued jobs to free workers; jobs whose caller stopped waiting are dropped.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        self.drop_abandoned();
        // The first queued job some free worker can run, in queue order.
        while let Some((at, id)) =
            self.queue.iter().enumerate().find_map(|(at, p)| self.pick(&p.needs).map(|id| (at, id)))
        {
            let pending = self.queue.remove(at).expect("found in the queue");
            let worker = self.workers.get_mut(&id).expect("picked worker exists");
            worker.load += 1;
            debug!(target: "lp::pool", worker = %worker.name, job = %pending.job.describe(), "dispatching");
            let started = Instant::now();
            let answer = worker.recipient.send(RunJob(pending.job.clone()));
            // Awaited outside the pool's context, so that a restart of the pool neither drops
            // the answer nor forgets that the worker is busy.
            let pool = ctx.address();
            actix::spawn(async move {
                let answer = answer.await.unwrap_or(Err(JobError::Disconnected));
                pool.do_send(JobFinished { worker: id, pending, started, answer });
            });
        }
        self.fail_queue_if_no_workers();
        if self.max_queue() == 0 {
            // Nothing waits in a pool without a queue: a job re-queued after its worker went
            // away, which no free worker can take now, is answered at once.
            for pending in std::mem::take(&mut self.queue) {
                let _ = pending.reply.send(Err(busy("insufficient capacity: every worker that runs this is busy")));
            }
        }
        self.publish();
    }

    /// Whether some registered worker (busy or not) can run a job that needs `needs`.
    fn offered(&self, needs: &Offer) -> bool {
        self.workers.values().any(|t| t.offer.covers(needs))
    }

    /// Fail the queued jobs no registered worker can run (the last that could left).
    fn fail_queue_if_no_workers(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        let (stuck, runnable): (VecDeque<_>, VecDeque<_>) = queue.into_iter().partition(|p| !self.offered(&p.needs));
        self.queue = runnable;
        for pending in stuck {
            let _ = pending.reply.send(Err(self.no_workers()));
        }
    }

    fn no_workers(&self) -> TranscodeFailure {
        let message = match self.workers.is_empty() {
            true => format!("no {} worker is connected to this orchestrator", J::KIND),
            false => format!("no {} worker connected to this orchestrator offers what this job needs", J::KIND),
        };
        TranscodeFailure { code: ErrorCode::NoTranscoders, message }
    }
}

fn busy(message: &str) -> TranscodeFailure {
    TranscodeFailure { code: ErrorCode::OrchestratorBusy, message: message.into() }
}

impl<J: Job> Actor for WorkerPool<J> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        // After a restart: each queued job is answered by its deadline again.
        for pending in &self.queue {
            ctx.run_later(pending.job.time_left(), |act, ctx| act.dispatch(ctx));
        }
        self.dispatch(ctx);
    }
}

impl<J: Job> Supervised for WorkerPool<J> {}

impl<J: Job> Handler<InjectPanic> for WorkerPool<J> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        panic!("injected panic in WorkerPool<{}>", J::KIND);
    }
}

// Messages

/// Add a worker with `capacity` concurrent jobs, which runs the jobs its `offer` covers.
/// Answers its id. A worker serving several models registers once per model.
pub struct RegisterWorker<J: Job> {
    pub name: String,
    /// For a worker process connected over a link, not a thread of this one: the sessions it
    /// counts for under `max_sessions = "auto"` (a transcoder's `livepeer bench` figure, else
    /// its capacity; the AI pool, which has no session cap, only reads that it is remote).
    pub remote_sessions: Option<u32>,
    pub capacity: u32,
    pub offer: Offer,
    pub recipient: Recipient<RunJob<J>>,
}

impl<J: Job> Message for RegisterWorker<J> {
    type Result = u64;
}

/// Remove a worker (it disconnected). Its in-flight jobs come back as `Disconnected` answers and
/// are re-queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterWorker(pub u64);

/// Run a job on some worker.
pub struct Submit<J: Job>(pub J);

impl<J: Job> Message for Submit<J> {
    type Result = Result<J::Output, TranscodeFailure>;
}

/// A snapshot for `/status`.
#[derive(Message)]
#[rtype(result = "Vec<WorkerStatus>")]
pub struct GetWorkers;

#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub name: String,
    /// The model it serves, for AI workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub capacity: u32,
    pub load: u32,
}

impl<J: Job> Handler<RegisterWorker<J>> for WorkerPool<J> {
    type Result = u64;

    fn handle(&mut self, msg: RegisterWorker<J>, ctx: &mut Self::Context) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        info!(target: "lp::pool", kind = J::KIND, worker = %msg.name, model = ?msg.offer.model, capacity = msg.capacity, "worker registered");
        self.workers.insert(
            id,
            Worker {
                name: msg.name,
                remote_sessions: msg.remote_sessions,
                capacity: msg.capacity.max(1),
                load: 0,
                offer: msg.offer,
                recipient: msg.recipient,
            },
        );
        self.workers_changed();
        self.dispatch(ctx);
        id
    }
}

impl<J: Job> Handler<UnregisterWorker> for WorkerPool<J> {
    type Result = ();

    fn handle(&mut self, UnregisterWorker(id): UnregisterWorker, ctx: &mut Self::Context) {
        if let Some(t) = self.workers.remove(&id) {
            info!(target: "lp::pool", kind = J::KIND, worker = %t.name, in_flight = t.load, "worker unregistered");
        }
        self.workers_changed();
        self.dispatch(ctx);
    }
}

impl<J: Job> Handler<Submit<J>> for WorkerPool<J> {
    type Result = ResponseFuture<Result<J::Output, TranscodeFailure>>;

    fn handle(&mut self, Submit(job): Submit<J>, ctx: &mut Self::Context) -> Self::Result {
        self.drop_abandoned();
        let needs = job.needs();
        let refused = match self.max_queue() {
            // No queue: a job runs now or not at all.
            0 if self.pick(&needs).is_none() => Some(match self.offered(&needs) {
                true => busy("insufficient capacity: every worker that runs this is busy"),
                false => self.no_workers(),
            }),
            0 => None,
            max => (self.queue.len() >= max).then(|| busy("every worker is busy and the queue is full")),
        };
        if let Some(failure) = refused {
            return Box::pin(async { Err(failure) });
        }
        let (reply, answer) = oneshot::channel();
        // Answered by its deadline even when no worker frees up before then.
        ctx.run_later(job.time_left(), |act, ctx| act.dispatch(ctx));
        self.queue.push_back(Pending { needs, job, reply, requeues: 0 });
        self.dispatch(ctx);
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(TranscodeFailure { code: ErrorCode::TranscoderFailed, message: "the worker pool stopped".into() })
            })
        })
    }
}

/// A worker answered a job (or went away); sent by the task awaiting it.
struct JobFinished<J: Job> {
    worker: u64,
    pending: Pending<J>,
    started: Instant,
    answer: Result<J::Output, JobError>,
}

impl<J: Job> Message for JobFinished<J> {
    type Result = ();
}

impl<J: Job> Handler<JobFinished<J>> for WorkerPool<J> {
    type Result = ();

    fn handle(&mut self, done: JobFinished<J>, ctx: &mut Self::Context) {
        let JobFinished { worker, pending, started, answer } = done;
        if let Some(t) = self.workers.get_mut(&worker) {
            t.load = t.load.saturating_sub(1);
        }
        match answer {
            Ok(output) => {
                pending.job.done(&output, started.elapsed());
                let _ = pending.reply.send(Ok(output));
            }
            Err(JobError::Failed(failure)) => {
                if pending.job.abandoned() {
                    info!(target: "lp::pool", job = %pending.job.describe(), "stopped: its caller stopped waiting");
                    metrics::job_abandoned(J::KIND, "running");
                }
                let _ = pending.reply.send(Err(failure));
            }
            Err(JobError::Disconnected) if pending.requeues < MAX_REQUEUES => {
                warn!(target: "lp::pool", job = %pending.job.describe(), "worker went away mid-job; re-queueing it");
                self.queue.push_front(Pending { requeues: pending.requeues + 1, ..pending });
            }
            Err(JobError::Disconnected) => {
                let deaths = pending.requeues + 1;
                warn!(target: "lp::pool", job = %pending.job.describe(), deaths, "workers keep going away on this job; failing it as a poison job");
                let _ = pending.reply.send(Err(TranscodeFailure {
                    code: ErrorCode::TranscoderCrashed,
                    message: format!(
                        "{deaths} workers went away while running this job; \
                         it is not handed to another (poison-job rule)"
                    ),
                }));
            }
        }
        self.dispatch(ctx);
        self.publish();
    }
}

impl<J: Job> Handler<GetWorkers> for WorkerPool<J> {
    type Result = MessageResult<GetWorkers>;

    fn handle(&mut self, _: GetWorkers, _: &mut Self::Context) -> Self::Result {
        let mut list: Vec<_> = self
            .workers
            .values()
            .map(|t| WorkerStatus {
                name: t.name.clone(),
                model: t.offer.model.clone(),
                capacity: t.capacity,
                load: t.load,
            })
            .collect();
        list.sort_by(|a, b| (&a.name, &a.model).cmp(&(&b.name, &b.model)));
        MessageResult(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn the_mailbox_holds_its_bound() {
        let pool = TranscoderPool::new(8).start();
        pool.send(GetWorkers).await.unwrap();
        crate::testing::assert_mailbox_bound(&pool, MAILBOX, || GetWorkers);
    }
}
