//! `TranscoderPool`: the orchestrator's transcoders, local and remote, and the jobs waiting for them.
//!
//! - **Owns** the registry of transcoders (capacity and current load of each) and a bounded queue
//!   of jobs waiting for a free slot.
//! - **Picks**, for each job, among the transcoders whose capabilities cover what the job needs
//!   ([`TranscodeJob::required`]), the one with the lowest load/capacity that has a free slot; a
//!   job none of them could run is answered `NoTranscoders` at once.
//! - **Drops** a queued job once its deadline (how long its gateway waits) has passed; the
//!   transcoder working on one stops by itself at that deadline.
//! - **Re-queues** a job whose transcoder disconnected before answering (at the front, up to
//!   [`MAX_REQUEUES`] times: a transcoder killed or cut off mid-segment costs the segment
//!   nothing). The poison-job rule: a job on which more transcoders went away than that is taken
//!   for one that crashes them, and failed with `TranscoderCrashed` (which no one retries)
//!   instead of being handed to the next. A job that a transcoder *failed* is answered with the
//!   failure and the gateway decides whether to retry.
//! - **Mailbox**: bounded at [`MAILBOX`]; the queue is bounded by `max_queue` and a full queue
//!   answers `OrchestratorBusy` at once.
//! - **Restart policy**: supervised, permanent (see `crate::supervision`): restarted in place
//!   after a panic with its transcoders, their loads and its queue; a job handed out before the
//!   panic is awaited outside the pool's context, so its answer still reaches its caller.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use actix::prelude::*;
use futures::channel::oneshot;
use serde::Serialize;
use tracing::{debug, info, warn};

use super::job::{JobError, RunJob, TranscodeJob};
use crate::metrics;
use crate::supervision::inject_panic;
use lp_wire::{Capabilities, ErrorCode, TranscodeData, TranscodeFailure};

const MAILBOX: usize = 256;
/// How often one job may be moved to another transcoder after disconnects (the poison-job rule:
/// a job that two transcoders died on does not get a third).
pub const MAX_REQUEUES: u32 = 1;

type Reply = oneshot::Sender<Result<TranscodeData, TranscodeFailure>>;

struct Transcoder {
    name: String,
    capacity: u32,
    load: u32,
    capabilities: Capabilities,
    recipient: Recipient<RunJob>,
}

struct Pending {
    job: TranscodeJob,
    /// What a transcoder must offer to run it ([`TranscodeJob::required`]).
    needs: Capabilities,
    reply: Reply,
    requeues: u32,
}

pub struct TranscoderPool {
    transcoders: HashMap<u64, Transcoder>,
    next_id: u64,
    queue: VecDeque<Pending>,
    max_queue: usize,
}

impl TranscoderPool {
    pub fn new(max_queue: usize) -> Self {
        TranscoderPool { transcoders: HashMap::new(), next_id: 1, queue: VecDeque::new(), max_queue }
    }

    fn publish(&self) {
        let capacity = self.transcoders.values().map(|t| t.capacity).sum();
        let load = self.transcoders.values().map(|t| t.load).sum();
        metrics::transcoders(self.transcoders.len(), capacity, load);
    }

    /// The free transcoder with the lowest load/capacity among those that offer `needs`.
    fn pick(&self, needs: &Capabilities) -> Option<u64> {
        self.transcoders
            .iter()
            .filter(|(_, t)| t.load < t.capacity && t.capabilities.offers(needs))
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
            info!(target: "lp::pool", seq = pending.job.seq, "segment dropped from the queue: its gateway stopped waiting");
            metrics::transcode_abandoned("queued");
            let _ = pending.reply.send(Err(TranscodeFailure {
                code: ErrorCode::TranscoderFailed,
                message: "dropped before a transcoder was free: the gateway stopped waiting".into(),
            }));
        }
    }

    /// Hand queued jobs to free transcoders; jobs whose gateway stopped waiting are dropped.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        self.drop_abandoned();
        // The first queued job some free transcoder can run, in queue order.
        while let Some((at, id)) =
            self.queue.iter().enumerate().find_map(|(at, p)| self.pick(&p.needs).map(|id| (at, id)))
        {
            let pending = self.queue.remove(at).expect("found in the queue");
            let transcoder = self.transcoders.get_mut(&id).expect("picked transcoder exists");
            transcoder.load += 1;
            debug!(target: "lp::pool", transcoder = %transcoder.name, seq = pending.job.seq, "dispatching segment");
            let started = Instant::now();
            let answer = transcoder.recipient.send(RunJob(pending.job.clone()));
            // Awaited outside the pool's context, so that a restart of the pool neither drops
            // the answer nor forgets that the transcoder is busy.
            let pool = ctx.address();
            actix::spawn(async move {
                let answer = answer.await.unwrap_or(Err(JobError::Disconnected));
                pool.do_send(JobFinished { transcoder: id, pending, started, answer });
            });
        }
        self.fail_queue_if_no_transcoders();
        self.publish();
    }

    /// Whether some registered transcoder (busy or not) can run a job that needs `needs`.
    fn offered(&self, needs: &Capabilities) -> bool {
        self.transcoders.values().any(|t| t.capabilities.offers(needs))
    }

    /// Fail the queued jobs no registered transcoder can run (the last that could left).
    fn fail_queue_if_no_transcoders(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        let (stuck, runnable): (VecDeque<_>, VecDeque<_>) = queue.into_iter().partition(|p| !self.offered(&p.needs));
        self.queue = runnable;
        for pending in stuck {
            let _ = pending.reply.send(Err(self.no_transcoders()));
        }
    }

    fn no_transcoders(&self) -> TranscodeFailure {
        let message = match self.transcoders.is_empty() {
            true => "no transcoder is connected to this orchestrator",
            false => "no transcoder connected to this orchestrator offers what this segment needs",
        };
        TranscodeFailure { code: ErrorCode::NoTranscoders, message: message.into() }
    }
}

impl Actor for TranscoderPool {
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

impl Supervised for TranscoderPool {}

inject_panic!(TranscoderPool);

// Messages

/// Add a transcoder with `capacity` concurrent segments, which runs the jobs its `capabilities`
/// cover. Answers its id.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct RegisterTranscoder {
    pub name: String,
    pub capacity: u32,
    pub capabilities: Capabilities,
    pub recipient: Recipient<RunJob>,
}

/// Remove a transcoder (it disconnected). Its in-flight jobs come back as `Disconnected` answers
/// and are re-queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterTranscoder(pub u64);

/// Transcode a segment on some transcoder.
#[derive(Message)]
#[rtype(result = "Result<TranscodeData, TranscodeFailure>")]
pub struct Transcode(pub TranscodeJob);

/// A snapshot for `/status`.
#[derive(Message)]
#[rtype(result = "Vec<TranscoderStatus>")]
pub struct GetTranscoders;

#[derive(Debug, Clone, Serialize)]
pub struct TranscoderStatus {
    pub name: String,
    pub capacity: u32,
    pub load: u32,
}

impl Handler<RegisterTranscoder> for TranscoderPool {
    type Result = u64;

    fn handle(&mut self, msg: RegisterTranscoder, ctx: &mut Self::Context) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        info!(target: "lp::pool", transcoder = %msg.name, capacity = msg.capacity, "transcoder registered");
        self.transcoders.insert(
            id,
            Transcoder {
                name: msg.name,
                capacity: msg.capacity.max(1),
                load: 0,
                capabilities: msg.capabilities,
                recipient: msg.recipient,
            },
        );
        self.dispatch(ctx);
        id
    }
}

impl Handler<UnregisterTranscoder> for TranscoderPool {
    type Result = ();

    fn handle(&mut self, UnregisterTranscoder(id): UnregisterTranscoder, ctx: &mut Self::Context) {
        if let Some(t) = self.transcoders.remove(&id) {
            info!(target: "lp::pool", transcoder = %t.name, in_flight = t.load, "transcoder unregistered");
        }
        self.dispatch(ctx);
    }
}

impl Handler<Transcode> for TranscoderPool {
    type Result = ResponseFuture<Result<TranscodeData, TranscodeFailure>>;

    fn handle(&mut self, Transcode(job): Transcode, ctx: &mut Self::Context) -> Self::Result {
        self.drop_abandoned();
        if self.queue.len() >= self.max_queue {
            return Box::pin(async {
                Err(TranscodeFailure {
                    code: ErrorCode::OrchestratorBusy,
                    message: "every transcoder is busy and the queue is full".into(),
                })
            });
        }
        let (reply, answer) = oneshot::channel();
        // Answered by its deadline even when no transcoder frees up before then.
        ctx.run_later(job.time_left(), |act, ctx| act.dispatch(ctx));
        self.queue.push_back(Pending { needs: job.required(), job, reply, requeues: 0 });
        self.dispatch(ctx);
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(TranscodeFailure {
                    code: ErrorCode::TranscoderFailed,
                    message: "the transcoder pool stopped".into(),
                })
            })
        })
    }
}

/// A transcoder answered a job (or went away); sent by the task awaiting it.
#[derive(Message)]
#[rtype(result = "()")]
struct JobFinished {
    transcoder: u64,
    pending: Pending,
    started: Instant,
    answer: Result<TranscodeData, JobError>,
}

impl Handler<JobFinished> for TranscoderPool {
    type Result = ();

    fn handle(&mut self, done: JobFinished, ctx: &mut Self::Context) {
        let JobFinished { transcoder, pending, started, answer } = done;
        if let Some(t) = self.transcoders.get_mut(&transcoder) {
            t.load = t.load.saturating_sub(1);
        }
        match answer {
            Ok(data) => {
                let pixels = data.segments.iter().map(|s| s.pixels.max(0) as u64).sum();
                metrics::transcode_time(started.elapsed().as_secs_f64(), pixels);
                let _ = pending.reply.send(Ok(data));
            }
            Err(JobError::Failed(failure)) => {
                if pending.job.abandoned() {
                    info!(target: "lp::pool", seq = pending.job.seq, "segment stopped: its gateway stopped waiting");
                    metrics::transcode_abandoned("running");
                }
                let _ = pending.reply.send(Err(failure));
            }
            Err(JobError::Disconnected) if pending.requeues < MAX_REQUEUES => {
                warn!(target: "lp::pool", seq = pending.job.seq, "transcoder went away mid-segment; re-queueing it");
                self.queue.push_front(Pending { requeues: pending.requeues + 1, ..pending });
            }
            Err(JobError::Disconnected) => {
                let deaths = pending.requeues + 1;
                warn!(target: "lp::pool", seq = pending.job.seq, deaths, "transcoders keep going away on this segment; failing it as a poison job");
                let _ = pending.reply.send(Err(TranscodeFailure {
                    code: ErrorCode::TranscoderCrashed,
                    message: format!(
                        "{deaths} transcoders went away while running this segment; \
                         it is not handed to another (poison-job rule)"
                    ),
                }));
            }
        }
        self.dispatch(ctx);
        self.publish();
    }
}

impl Handler<GetTranscoders> for TranscoderPool {
    type Result = MessageResult<GetTranscoders>;

    fn handle(&mut self, _: GetTranscoders, _: &mut Self::Context) -> Self::Result {
        let mut list: Vec<_> = self
            .transcoders
            .values()
            .map(|t| TranscoderStatus { name: t.name.clone(), capacity: t.capacity, load: t.load })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        MessageResult(list)
    }
}
