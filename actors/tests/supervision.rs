//! Supervision: a worker that panics fails only the segment in flight and is restarted; a
//! transcoder that disconnects has its job re-queued; the gateway retries a failed segment.
//!
//! A panic cannot be caused through real FFmpeg on purpose, so these tests inject it: the
//! transcode function panics on its first call and runs the real FFmpeg transcode afterwards.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use common::*;
use futures::future::LocalBoxFuture;
use lp_actors::gateway::{Gateway, OrchestratorPool, OrchestratorTransport, Push, StreamSettings, TransportError};
use lp_actors::orchestrator::{
    EndSession, GetOrchestratorInfo, GetTranscoders, JobError, Orchestrator, RegisterTranscoder, RunJob, SubmitSegment,
    Transcode, TranscodeFn, TranscodeJob, TranscodeWorker, TranscoderPool, UnregisterTranscoder, ffmpeg_transcode,
};
use lp_pipelines::TranscodeOptions;
use lp_wire::{AuthToken, ErrorCode, OrchestratorInfo, OrchestratorRequest, SegData, TranscodeData, TranscodeResult};

/// Real FFmpeg, except that the first call panics (an injected crash).
fn panics_once() -> (TranscodeFn, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let real = real();
    let counter = calls.clone();
    let f: TranscodeFn = Arc::new(move |job: &TranscodeJob| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("injected crash in the device context");
        }
        real(job)
    });
    (f, calls)
}

#[actix::test]
async fn a_panicking_worker_fails_only_its_segment_and_is_restarted() {
    let data = segment();
    let (func, calls) = panics_once();
    let pool = TranscoderPool::new(8).start();
    let worker = TranscodeWorker::new("w", func).start();
    pool.send(RegisterTranscoder { name: "w".into(), capacity: 1, recipient: worker.recipient() }).await.unwrap();

    let first = pool.send(Transcode(job(data.clone()))).await.unwrap();
    let failure = first.expect_err("the crashed segment fails");
    assert_eq!(failure.code, ErrorCode::TranscoderFailed);
    assert!(failure.message.contains("injected crash"), "{}", failure.message);

    // The same worker, restarted, transcodes the next segment.
    let second = pool.send(Transcode(job(data))).await.unwrap().expect("the restarted worker works");
    assert_eq!(second.segments.len(), 1);
    assert_eq!((second.segments[0].width, second.segments[0].height), (256, 144));
    assert_eq!(second.segments[0].pixels, 256 * 144 * 30);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A transcoder that leaves (unregisters and answers `Disconnected`) on its first job, as a
/// remote transcoder whose connection drops mid-segment does.
struct Vanishing {
    pool: Addr<TranscoderPool>,
    id: Option<u64>,
}

impl Actor for Vanishing {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct SetId(u64);

impl Handler<SetId> for Vanishing {
    type Result = ();
    fn handle(&mut self, SetId(id): SetId, _: &mut Self::Context) {
        self.id = Some(id);
    }
}

impl Handler<RunJob> for Vanishing {
    type Result = Result<TranscodeData, JobError>;
    fn handle(&mut self, _: RunJob, ctx: &mut Self::Context) -> Self::Result {
        if let Some(id) = self.id {
            self.pool.do_send(UnregisterTranscoder(id));
        }
        ctx.stop();
        Err(JobError::Disconnected)
    }
}

#[actix::test]
async fn a_job_whose_transcoder_disconnects_is_requeued_on_another() {
    let data = segment();
    let pool = TranscoderPool::new(8).start();
    let vanishing = Vanishing { pool: pool.clone(), id: None }.start();
    let id = pool
        .send(RegisterTranscoder { name: "vanishing".into(), capacity: 1, recipient: vanishing.clone().recipient() })
        .await
        .unwrap();
    vanishing.send(SetId(id)).await.unwrap();

    let answer = pool.send(Transcode(job(data)));
    let good = TranscodeWorker::new("good", ffmpeg_transcode(TranscodeOptions::default())).start();
    pool.send(RegisterTranscoder { name: "good".into(), capacity: 1, recipient: good.recipient() }).await.unwrap();
    let data = answer.await.unwrap().expect("re-queued on the good transcoder");
    assert_eq!(data.segments.len(), 1);
}

/// The poison-job rule: a segment that makes every transcoder it reaches go away (as a remote
/// transcoder killed by a crash in FFmpeg would) is moved once, then failed with a reason that
/// no one retries; the transcoders after the second never see it.
#[actix::test]
async fn a_job_that_kills_its_transcoders_is_failed_not_requeued_forever() {
    let data = segment();
    let pool = TranscoderPool::new(8).start();
    let mut victims = Vec::new();
    for i in 0..3 {
        let t = Vanishing { pool: pool.clone(), id: None }.start();
        let id = pool
            .send(RegisterTranscoder { name: format!("t{i}"), capacity: 1, recipient: t.clone().recipient() })
            .await
            .unwrap();
        t.send(SetId(id)).await.unwrap();
        victims.push(t);
    }
    let failure = pool.send(Transcode(job(data))).await.unwrap().expect_err("a poison job fails");
    assert_eq!(failure.code, ErrorCode::TranscoderCrashed);
    assert!(failure.message.contains("2 transcoders went away"), "{}", failure.message);
    let left = pool.send(GetTranscoders).await.unwrap();
    assert_eq!(left.len(), 1, "only two transcoders were given the poison job: {left:?}");
    assert_eq!(victims.iter().filter(|v| v.connected()).count(), 1);
}

/// The wire protocol without HTTP: the same messages, handed straight to the orchestrator.
struct Loopback(Addr<Orchestrator>);

impl OrchestratorTransport for Loopback {
    fn get_orchestrator(
        &self,
        _: &str,
        req: OrchestratorRequest,
    ) -> LocalBoxFuture<'static, Result<OrchestratorInfo, TransportError>> {
        let o = self.0.clone();
        Box::pin(async move { o.send(GetOrchestratorInfo(req)).await.unwrap().map_err(TransportError::Refused) })
    }

    fn submit_segment(
        &self,
        _: &str,
        seg: SegData,
        data: Bytes,
        _: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>> {
        let o = self.0.clone();
        Box::pin(
            async move { o.send(SubmitSegment { seg, data }).await.unwrap().map_err(|r| TransportError::Refused(r.0)) },
        )
    }

    fn end_session(&self, _: &str, token: AuthToken) -> LocalBoxFuture<'static, Result<(), TransportError>> {
        let o = self.0.clone();
        Box::pin(async move { o.send(EndSession(token)).await.unwrap().map_err(|r| TransportError::Refused(r.0)) })
    }
}

/// A gateway whose one orchestrator ("loopback", up to 3 attempts a segment) uses `tpool`.
fn gateway_on(tpool: Addr<TranscoderPool>) -> Addr<Gateway> {
    let orch = Orchestrator::new(settings("loopback", 4), tpool).start();
    let transport: Rc<dyn OrchestratorTransport> = Rc::new(Loopback(orch));
    let opool = OrchestratorPool::new(vec!["loopback".into()], transport.clone()).start();
    let stream =
        StreamSettings { max_attempts: 3, segment_queue: 4, idle_timeout: Duration::from_secs(60), hls_window: 6 };
    Gateway::new(vec![lp_pipelines::preset("P144p30fps16x9").unwrap()], stream, 10, opool, transport).start()
}

#[actix::test]
async fn the_gateway_retries_a_segment_whose_transcoder_crashed() {
    let data = segment();
    let (func, _) = panics_once();
    let tpool = TranscoderPool::new(8).start();
    let worker = TranscodeWorker::new("w", func).start();
    tpool.send(RegisterTranscoder { name: "w".into(), capacity: 1, recipient: worker.recipient() }).await.unwrap();
    let gateway = gateway_on(tpool);
    let segment = incoming(0, data);
    let done = gateway.send(Push { stream: "s".into(), segment }).await.unwrap().expect("retried and transcoded");
    assert_eq!(done.attempts, 2, "the first attempt crashed, the second worked");
    assert_eq!(done.renditions.len(), 1);
    assert_eq!(done.renditions[0].pixels, 256 * 144 * 30);
}

/// The gateway side of the poison-job rule: a segment whose transcoders went away is not sent
/// again to the orchestrator that answered `TranscoderCrashed`, though attempts are left.
#[actix::test]
async fn the_gateway_never_resends_a_crashing_segment_to_the_same_orchestrator() {
    let data = segment();
    let tpool = TranscoderPool::new(8).start();
    for i in 0..3 {
        let t = Vanishing { pool: tpool.clone(), id: None }.start();
        let id = tpool
            .send(RegisterTranscoder { name: format!("t{i}"), capacity: 1, recipient: t.clone().recipient() })
            .await
            .unwrap();
        t.send(SetId(id)).await.unwrap();
    }
    let gateway = gateway_on(tpool.clone());
    let segment = incoming(0, data);
    let failure = gateway.send(Push { stream: "s".into(), segment }).await.unwrap().expect_err("a poison segment");
    assert_eq!(failure.code, ErrorCode::TranscoderCrashed, "{failure}");
    assert_eq!(tpool.send(GetTranscoders).await.unwrap().len(), 1, "one attempt: two transcoders died, not three");
}
