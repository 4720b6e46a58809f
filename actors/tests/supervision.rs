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
use lp_actors::gateway::{
    End, Gateway, HlsRegistry, InProcess, OrchestratorPool, OrchestratorTransport, Push, SegmentDone,
};
use lp_actors::orchestrator::{
    AuthSession, GetWorkers, JobError, Offer, Orchestrator, OrchestratorSettings, RegisterWorker, RunJob, SessionEnded,
    SessionSegment, Submit, TranscodeFn, TranscodeJob, TranscoderPool, UnregisterWorker,
};
use lp_actors::supervision::{InjectPanic, MAX_RESTARTS, PartReport, Policy, Watchdog};
use lp_wire::{ErrorCode, TranscodeData, TranscodeFailure};
use parking_lot::Mutex;

/// Real FFmpeg, except that the first call panics (an injected crash).
fn panics_once() -> (TranscodeFn, Arc<AtomicUsize>, Arc<Mutex<Vec<std::thread::ThreadId>>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(Vec::new()));
    let real = real();
    let (counter, on) = (calls.clone(), threads.clone());
    let f: TranscodeFn = Arc::new(move |job: &TranscodeJob| {
        on.lock().push(std::thread::current().id());
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("injected crash in the device context");
        }
        real(job)
    });
    (f, calls, threads)
}

#[actix::test]
async fn a_panicking_worker_fails_only_its_segment_and_is_restarted() {
    let data = segment();
    let (func, calls, threads) = panics_once();
    let pool = pool_with(func, 1, 8).await;

    let first = pool.send(Submit(job(data.clone()))).await.unwrap();
    let failure = first.expect_err("the crashed segment fails");
    assert_eq!(failure.code, ErrorCode::TranscoderFailed);
    assert!(failure.message.contains("injected crash"), "{}", failure.message);

    // The same worker, restarted, transcodes the next segment.
    let second = pool.send(Submit(job(data))).await.unwrap().expect("the restarted worker works");
    assert_eq!(second.segments.len(), 1);
    assert_eq!((second.segments[0].width, second.segments[0].height), (256, 144));
    assert_eq!(second.segments[0].pixels, 256 * 144 * 30);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let threads = threads.lock();
    assert_ne!(threads[0], threads[1], "the next job runs on a fresh thread, not the one that panicked");
}

/// A job that wedges its thread (a codec that never returns) fails at `WORKER_JOB_TIMEOUT` as
/// `TranscoderFailed`; the thread is abandoned and the next job runs on a fresh one. (Time is
/// paused, so the two minutes pass at once.)
#[actix::test]
async fn a_wedged_job_fails_at_the_job_timeout_and_the_next_runs_on_a_fresh_thread() {
    let (unstick, stuck) = crossbeam_channel::bounded::<()>(0);
    let threads = Arc::new(Mutex::new(Vec::new()));
    let (real, on) = (real(), threads.clone());
    let f: TranscodeFn = Arc::new(move |job: &TranscodeJob| {
        let first = {
            let mut threads = on.lock();
            threads.push(std::thread::current().id());
            threads.len() == 1
        };
        if first {
            let _ = stuck.recv();
        }
        real(job)
    });
    let worker = lp_actors::orchestrator::LocalWorker::new("w", f).start();
    let wedged = actix::spawn(worker.send(RunJob(job(segment()))));
    // In real time until the job is on its thread; then the wait for it passes at once.
    wait_until("the job on its thread", || threads.lock().len() == 1).await;
    tokio::time::pause();
    let wedged = wedged.await.unwrap().unwrap();
    let Err(JobError::Failed(failure)) = wedged else { panic!("the wedged job must fail") };
    assert_eq!(failure.code, ErrorCode::TranscoderFailed);
    let limit = format!("no result in {:?}", lp_wire::limits::WORKER_JOB_TIMEOUT);
    assert!(failure.message.contains(&limit), "{}", failure.message);
    tokio::time::resume();
    let next = worker.send(RunJob(job(segment()))).await.unwrap();
    assert!(next.is_ok(), "the next job is transcoded");
    let threads = threads.lock().clone();
    assert!(threads.len() == 2 && threads[0] != threads[1], "on a fresh thread: {threads:?}");
    drop(unstick);
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

impl Handler<RunJob<TranscodeJob>> for Vanishing {
    type Result = Result<TranscodeData, JobError>;
    fn handle(&mut self, _: RunJob<TranscodeJob>, ctx: &mut Self::Context) -> Self::Result {
        if let Some(id) = self.id {
            self.pool.do_send(UnregisterWorker(id));
        }
        ctx.stop();
        Err(JobError::Disconnected)
    }
}

/// A [`Vanishing`] transcoder named `name`, registered with `pool`.
async fn vanishing(pool: &Addr<TranscoderPool>, name: &str) -> Addr<Vanishing> {
    let t = Vanishing { pool: pool.clone(), id: None }.start();
    let capabilities = lp_wire::Capabilities::transcoding();
    let register = RegisterWorker {
        remote_sessions: None,
        name: name.into(),
        capacity: 1,
        offer: Offer { capabilities, model: None },
        recipient: t.clone().recipient(),
    };
    let id = pool.send(register).await.unwrap();
    t.send(SetId(id)).await.unwrap();
    t
}

#[actix::test]
async fn a_job_whose_transcoder_disconnects_is_requeued_on_another() {
    let data = segment();
    let pool = TranscoderPool::new(8).start();
    vanishing(&pool, "vanishing").await;
    let answer = pool.send(Submit(job(data)));
    add_worker(&pool, real(), 1).await;
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
        victims.push(vanishing(&pool, &format!("t{i}")).await);
    }
    let failure = pool.send(Submit(job(data))).await.unwrap().expect_err("a poison job fails");
    assert_eq!(failure.code, ErrorCode::TranscoderCrashed);
    assert!(failure.message.contains("2 workers went away"), "{}", failure.message);
    let left = pool.send(GetWorkers).await.unwrap();
    assert_eq!(left.len(), 1, "only two transcoders were given the poison job: {left:?}");
    assert_eq!(victims.iter().filter(|v| v.connected()).count(), 1);
}

/// The in-process transport to one orchestrator, at "loopback".
fn loopback(orchestrator: Addr<Orchestrator>) -> InProcess {
    let transport = InProcess::default();
    transport.add("loopback", orchestrator);
    transport
}

/// A gateway whose one orchestrator ("loopback", up to 3 attempts a segment) uses `tpool`.
fn gateway_on(tpool: Addr<TranscoderPool>) -> Addr<Gateway> {
    let orch = Orchestrator::new(OrchestratorSettings::offchain("loopback", 4), tpool).start();
    let transport: Rc<dyn OrchestratorTransport> = Rc::new(loopback(orch));
    let opool = OrchestratorPool::new(vec!["loopback".into()], transport.clone()).start();
    let stream = common::stream_settings();
    Gateway::new(vec![lp_pipelines::preset("P144p30fps16x9").unwrap()], stream, 10, opool, transport).start()
}

#[actix::test]
async fn the_gateway_retries_a_segment_whose_transcoder_crashed() {
    let data = segment();
    let (func, _, _) = panics_once();
    let tpool = pool_with(func, 1, 8).await;
    let gateway = gateway_on(tpool);
    let segment = incoming(0, data);
    let done = gateway
        .send(Push { stream: "s".into(), profiles: None, segment })
        .await
        .unwrap()
        .expect("retried and transcoded");
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
        vanishing(&tpool, &format!("t{i}")).await;
    }
    let gateway = gateway_on(tpool.clone());
    let segment = incoming(0, data);
    let failure = gateway
        .send(Push { stream: "s".into(), profiles: None, segment })
        .await
        .unwrap()
        .expect_err("a poison segment");
    assert_eq!(failure.code, ErrorCode::TranscoderCrashed, "{failure}");
    assert_eq!(tpool.send(GetWorkers).await.unwrap().len(), 1, "one attempt: two transcoders died, not three");
}

// ---------------------------------------------------------------------------------------------
// Actors restarted in place by the watchdog. The panics are injected (`InjectPanic`, or a
// transport that panics): no real input can make these actors panic.
// ---------------------------------------------------------------------------------------------

/// The roles as the node wires them: every long-lived actor under `watchdog`, one real worker.
struct Stack {
    gateway: Addr<Gateway>,
    orchestrator_pool: Addr<OrchestratorPool>,
    transcoder_pool: Addr<TranscoderPool>,
    hls: HlsRegistry,
}

async fn stack(watchdog: &Watchdog, panic_on_first_submit: bool) -> Stack {
    let transcoder_pool = watchdog.start("transcoder_pool", Policy::Permanent, TranscoderPool::new(8));
    add_worker(&transcoder_pool, real(), 1).await;
    let orchestrator = Orchestrator::new(OrchestratorSettings::offchain("loopback", 4), transcoder_pool.clone())
        .supervised_by(watchdog);
    let orchestrator = watchdog.start("orchestrator", Policy::Permanent, orchestrator);
    let transport: Rc<dyn OrchestratorTransport> = match panic_on_first_submit {
        // The first segment panics inside the stream session's future.
        true => {
            Rc::new(common::Loopback { inner: loopback(orchestrator), panics: Rc::new(1.into()), ..Default::default() })
        }
        false => Rc::new(loopback(orchestrator)),
    };
    let opool = OrchestratorPool::new(vec!["loopback".into()], transport.clone());
    let orchestrator_pool = watchdog.start("orchestrator_pool", Policy::Permanent, opool);
    let stream = common::stream_settings();
    let profiles = vec![lp_pipelines::preset("P144p30fps16x9").unwrap()];
    let hls = HlsRegistry::default();
    let gateway =
        Gateway::new(profiles, stream, 10, orchestrator_pool.clone(), transport).supervised_by(watchdog).hls(&hls);
    let gateway = watchdog.start("gateway", Policy::Permanent, gateway);
    Stack { gateway, orchestrator_pool, transcoder_pool, hls }
}

async fn push(gateway: &Addr<Gateway>, seq: i64, data: &Bytes) -> Result<SegmentDone, TranscodeFailure> {
    gateway
        .send(Push { stream: "s".into(), profiles: None, segment: incoming(seq, data.clone()) })
        .await
        .expect("the gateway answers")
}

fn part(watchdog: &Watchdog, actor: &str) -> PartReport {
    watchdog.report().into_iter().find(|p| p.actor == actor).unwrap_or_else(|| panic!("{actor} is not supervised"))
}

/// Polls until `done` holds (at most 5 s); returns how long it took.
async fn until(what: &str, done: impl Fn() -> bool) -> Duration {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

/// Panics `addr` and checks that, until it is back, the watchdog's health names it.
async fn panic_and_watch<A>(watchdog: &Watchdog, addr: &Addr<A>, actor: &str)
where
    A: Actor<Context = Context<A>> + Handler<InjectPanic>,
{
    assert_eq!(watchdog.health(), Ok(()));
    addr.do_send(InjectPanic);
    until("the watchdog to report the panic", || watchdog.health().is_err()).await;
    let down = watchdog.health().unwrap_err();
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(down[0].starts_with(&format!("{actor}: restarting after a panic (injected panic in ")), "{down:?}");
    let took = until("the restart", || watchdog.health().is_ok()).await;
    println!("{actor} was down for {took:?}");
    assert!(addr.connected(), "restarted in place: the same address works");
    let report = part(watchdog, actor);
    assert_eq!((report.restarts, report.failures, report.instances), (1, 0, 1), "{report:?}");
}

#[actix::test]
async fn a_gateway_that_panics_is_restarted_in_place_and_the_next_segment_is_transcoded() {
    let data = segment();
    let watchdog = Watchdog::new();
    let s = stack(&watchdog, false).await;
    push(&s.gateway, 0, &data).await.expect("transcoded before the panic");
    assert_eq!(part(&watchdog, "stream_session").instances, 1, "the stream session runs under the node's watchdog");
    assert_eq!(part(&watchdog, "auth_session").instances, 1, "so does the orchestrator's session");

    panic_and_watch(&watchdog, &s.gateway, "gateway").await;
    let done = push(&s.gateway, 1, &data).await.expect("transcoded after the restart");
    assert_eq!(done.renditions[0].pixels, 256 * 144 * 30);
    // Its state survived: the stream's session (and so its run of the playlists) is the same one,
    // not a restart of the stream after a discontinuity.
    let media = s.hls.media("s", "P144p30fps16x9").unwrap();
    assert!(media.contains("P144p30fps16x9/0.ts\n#EXT-X-PROGRAM-DATE-TIME:"), "{media}");
    assert!(media.contains("P144p30fps16x9/1.ts") && !media.contains("DISCONTINUITY"), "{media}");
    assert_eq!(part(&watchdog, "stream_session").instances, 1, "{media}");
}

#[actix::test]
async fn an_orchestrator_pool_that_panics_is_restarted_in_place() {
    let data = segment();
    let watchdog = Watchdog::new();
    let s = stack(&watchdog, false).await;
    panic_and_watch(&watchdog, &s.orchestrator_pool, "orchestrator_pool").await;
    push(&s.gateway, 0, &data).await.expect("transcoded after the restart");
}

#[actix::test]
async fn a_transcoder_pool_that_panics_keeps_its_transcoders_and_the_job_in_flight() {
    let data = segment();
    let watchdog = Watchdog::new();
    let s = stack(&watchdog, false).await;
    // A job on the one worker when the pool panics: its answer still reaches its caller, and
    // the worker counts as busy meanwhile, so nothing else is handed to it.
    let in_flight = s.transcoder_pool.send(Submit(job(data.clone())));
    until_async("the job to be handed out", || async {
        s.transcoder_pool.send(GetWorkers).await.unwrap()[0].load == 1
    })
    .await;
    panic_and_watch(&watchdog, &s.transcoder_pool, "transcoder_pool").await;
    let transcoders = s.transcoder_pool.send(GetWorkers).await.unwrap();
    assert_eq!(transcoders.len(), 1, "the registered worker is still there");
    let done = in_flight.await.expect("the pool answers").expect("transcoded across the restart");
    assert_eq!(done.segments.len(), 1);
    assert_eq!(s.transcoder_pool.send(GetWorkers).await.unwrap()[0].load, 0);
    push(&s.gateway, 0, &data).await.expect("transcoded after the restart");
}

/// Polls the async `done` until it holds (at most 5 s).
async fn until_async<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let start = std::time::Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[actix::test]
async fn a_stream_session_that_panics_fails_its_segment_and_the_next_is_transcoded() {
    let data = segment();
    let watchdog = Watchdog::new();
    let s = stack(&watchdog, true).await;
    // The session panics while sending segment 0: that segment fails (it is not sent again to
    // the session it may have crashed), and the restarted session transcodes the next.
    let failure = push(&s.gateway, 0, &data).await.expect_err("the segment that crashed the session");
    assert_eq!(failure.code, ErrorCode::TranscoderFailed);
    assert!(failure.message.contains("restarted"), "{failure}");
    let done = push(&s.gateway, 1, &data).await.expect("the next segment");
    assert_eq!(done.renditions.len(), 1);
    let report = part(&watchdog, "stream_session");
    assert_eq!((report.restarts, report.failures, report.instances), (1, 0, 1), "{report:?}");
    assert!(report.last_panic.as_deref().unwrap().contains("injected panic in the stream session"));
    assert_eq!(watchdog.health(), Ok(()), "one stream's trouble is not the node's");
    // The crashed segment no longer counts as in flight: told to end, the stream ends at once
    // (its playlists end).
    assert!(s.gateway.send(End { stream: "s".into(), why: "deleted" }).await.unwrap());
    let ended = || s.hls.media("s", "P144p30fps16x9").is_some_and(|m| m.contains("#EXT-X-ENDLIST"));
    until("the stream to end", ended).await;
}

#[actix::test]
async fn an_orchestrator_session_that_panics_is_restarted_in_place() {
    let data = segment();
    let watchdog = Watchdog::new();
    let tpool = pool_with(real(), 1, 8).await;
    let (ended, _) = futures::channel::mpsc::unbounded::<()>();
    let sink = Sink(ended).start();
    let session = AuthSession::new("g1".into(), tpool, sink.recipient(), 4, Duration::from_secs(60));
    let session = watchdog.start("auth_session", Policy::Transient, session);
    session.do_send(InjectPanic);
    let answer = session.send(SessionSegment(job(data))).await.expect("the same address, restarted");
    assert_eq!(answer.expect("transcoded after the restart").segments.len(), 1);
    let report = part(&watchdog, "auth_session");
    assert_eq!((report.restarts, report.failures, report.instances), (1, 0, 1), "{report:?}");
    assert_eq!(watchdog.health(), Ok(()), "a session is transient");
}

/// Where an [`AuthSession`] reports its end.
struct Sink(futures::channel::mpsc::UnboundedSender<()>);

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<SessionEnded> for Sink {
    type Result = ();
    fn handle(&mut self, _: SessionEnded, _: &mut Self::Context) {
        let _ = self.0.unbounded_send(());
    }
}

#[actix::test]
async fn a_permanent_actor_that_keeps_panicking_fails_the_node() {
    let watchdog = Watchdog::with_first_backoff(Duration::from_millis(1));
    let s = stack(&watchdog, false).await;
    for _ in 0..=MAX_RESTARTS {
        s.orchestrator_pool.do_send(InjectPanic);
    }
    let why = tokio::time::timeout(Duration::from_secs(10), watchdog.fatal()).await.expect("the node is told to stop");
    assert!(why.starts_with(&format!("orchestrator_pool: panicked {} times in", MAX_RESTARTS + 1)), "{why}");
    let down = watchdog.health().unwrap_err();
    assert!(down.iter().any(|d| d.starts_with("orchestrator_pool: panicked")), "{down:?}");
    let report = part(&watchdog, "orchestrator_pool");
    assert_eq!((report.restarts, report.failures, report.instances), (MAX_RESTARTS as u64, 1, 0), "{report:?}");
    assert!(!s.orchestrator_pool.connected(), "not restarted again");
}

/// An actor whose repair (`Supervised::restarting`) panics too: that panic is caught and
/// counted like the first, and the actor is restarted again rather than lost.
#[actix::test]
async fn a_panic_in_restarting_is_caught_like_any_other() {
    struct Fragile {
        repairs_left_to_fail: u32,
    }
    impl Actor for Fragile {
        type Context = Context<Self>;
    }
    impl Supervised for Fragile {
        fn restarting(&mut self, _: &mut Context<Self>) {
            if self.repairs_left_to_fail > 0 {
                self.repairs_left_to_fail -= 1;
                panic!("the repair failed");
            }
        }
    }
    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Ask(bool);
    impl Handler<Ask> for Fragile {
        type Result = u32;
        fn handle(&mut self, Ask(panic): Ask, _: &mut Context<Self>) -> u32 {
            assert!(!panic, "injected panic");
            7
        }
    }

    let watchdog = Watchdog::with_first_backoff(Duration::from_millis(1));
    let fragile = watchdog.start("fragile", Policy::Permanent, Fragile { repairs_left_to_fail: 1 });
    fragile.do_send(Ask(true));
    assert_eq!(fragile.send(Ask(false)).await.expect("restarted after both panics"), 7);
    let report = part(&watchdog, "fragile");
    assert_eq!((report.restarts, report.failures, report.instances), (2, 0, 1), "{report:?}");
    assert!(report.last_panic.as_deref() == Some("the repair failed"), "{report:?}");
    assert_eq!(watchdog.health(), Ok(()));
}
