//! The guards the actor headers promise, each crossed once: the auth session's in-flight cap,
//! the transcoder pool's queue bound, the gateway's stream cap, no retry of undecodable input,
//! the suspension of an orchestrator that failed, and an ending stream's HLS outliving the
//! retention sweep until its last segment is in.
//!
//! A transcode that stays in flight until the test lets it go cannot be made with real FFmpeg
//! without racing the clock, so the in-flight tests use a held transcode function (it waits on
//! a channel, then runs the real FFmpeg transcode); the rest run real FFmpeg throughout.

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use common::*;
use lp_actors::gateway::{
    End, Gateway, GetGatewayStatus, HasAlternatives, HlsRegistry, OrchestratorPool, OrchestratorTransport, Push,
    SelectOrchestrator, StreamSettings, Suspend,
};
use lp_actors::orchestrator::{
    AuthSession, GetWorkers, LocalWorker, Offer, Orchestrator, OrchestratorSettings, RegisterWorker, SessionSegment,
    Submit, TranscodeFn, TranscodeJob, TranscoderPool,
};
use lp_wire::{ErrorCode, OrchestratorRequest, Payment, TranscodeFailure};

/// A transcode function that holds every job until the test releases one (then transcodes it
/// with real FFmpeg), and counts how many it was given.
fn held() -> (TranscodeFn, crossbeam_channel::Sender<()>, Arc<AtomicUsize>) {
    let (release, gate) = crossbeam_channel::unbounded::<()>();
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let real = real();
    let gate = Arc::new(Mutex::new(gate));
    let f: TranscodeFn = Arc::new(move |job: &TranscodeJob| {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = gate.lock().unwrap().recv();
        real(job)
    });
    (f, release, started)
}

/// `AuthSession`: one more segment than `max_in_flight` is answered `OrchestratorBusy` at once,
/// and the held one still completes.
#[actix::test]
async fn an_auth_session_refuses_segments_beyond_its_in_flight_cap() {
    let data = segment();
    let (func, release, started) = held();
    let pool = pool_with(func, 4, 8).await;
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 4), pool.clone()).start();
    let session = AuthSession::new("s".into(), pool, orch.recipient(), 1, Duration::from_secs(70)).start();
    let first = session.send(SessionSegment(job(data.clone())));
    let first = actix::spawn(first);
    common::wait_until("the first segment to reach the transcoder", || started.load(Ordering::SeqCst) == 1).await;
    let second = session.send(SessionSegment(job(data))).await.unwrap().expect_err("over the cap");
    assert_eq!(second.code, ErrorCode::OrchestratorBusy);
    assert!(second.message.contains("1 segments in flight"), "{}", second.message);
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap().unwrap().segments.len(), 1);
    assert_eq!(started.load(Ordering::SeqCst), 1, "the refused segment never reached a transcoder");
}

/// Collects the ids of the sessions that told it they ended.
#[derive(Default)]
struct Ended(Arc<Mutex<Vec<String>>>);

impl Actor for Ended {
    type Context = Context<Self>;
}

impl Handler<lp_actors::orchestrator::SessionEnded> for Ended {
    type Result = ();
    fn handle(&mut self, e: lp_actors::orchestrator::SessionEnded, _: &mut Self::Context) {
        self.0.lock().unwrap().push(e.id);
    }
}

/// `AuthSession`: it ends after `idle_timeout` without segments, never while one is in flight
/// however long it takes, and tells the orchestrator; ended by the gateway with nothing in
/// flight, it stops at once.
#[actix::test]
async fn an_auth_session_ends_when_idle_never_with_a_segment_in_flight() {
    let data = segment();
    let (func, release, started) = held();
    let pool = pool_with(func, 4, 8).await;
    let ended = Ended::default();
    let seen = ended.0.clone();
    let ended = ended.start().recipient();
    let idle = Duration::from_millis(800);
    let session = AuthSession::new("slow".into(), pool.clone(), ended.clone(), 4, idle).start();
    let running = actix::spawn(session.send(SessionSegment(job(data))));
    common::wait_until("the segment at the transcoder", || started.load(Ordering::SeqCst) == 1).await;
    // Two idle timeouts pass with the segment in flight.
    tokio::time::sleep(idle * 2).await;
    assert!(session.connected() && seen.lock().unwrap().is_empty(), "ended with a segment in flight");
    release.send(()).unwrap();
    assert!(running.await.unwrap().unwrap().is_ok());
    // Half the idle timeout after its last segment (two of its checks later) it is still up.
    tokio::time::sleep(idle / 2).await;
    assert!(session.connected(), "ended before its idle timeout");
    common::wait_until("the idle session to end", || *seen.lock().unwrap() == ["slow"]).await;
    assert!(!session.connected());

    let quiet = AuthSession::new("quiet".into(), pool.clone(), ended.clone(), 4, Duration::from_secs(70)).start();
    quiet.send(lp_actors::orchestrator::EndWhenIdle).await.unwrap();
    common::wait_until("the ended session to stop", || seen.lock().unwrap().len() == 2).await;
    assert_eq!(seen.lock().unwrap()[1], "quiet");

    // Ended by the gateway with a segment in flight: it stops once that segment is done.
    let busy = AuthSession::new("busy".into(), pool, ended, 4, Duration::from_secs(70)).start();
    let running = actix::spawn(busy.send(SessionSegment(job(segment()))));
    common::wait_until("its segment at the transcoder", || started.load(Ordering::SeqCst) == 2).await;
    busy.send(lp_actors::orchestrator::EndWhenIdle).await.unwrap();
    assert!(busy.connected() && seen.lock().unwrap().len() == 2, "stopped with a segment in flight");
    release.send(()).unwrap();
    assert!(running.await.unwrap().unwrap().is_ok(), "the segment in flight is answered");
    common::wait_until("the ended session to stop", || seen.lock().unwrap().len() == 3).await;
}

/// What an orchestrator tells a gateway of itself: its price, its capabilities and its
/// per-capability prices (for AI models), as configured.
#[actix::test]
async fn an_orchestrator_states_its_price_capabilities_and_model_prices() {
    let mut s = OrchestratorSettings::offchain("o", 4);
    (s.price_per_unit, s.pixels_per_unit) = (1200, 3);
    let model_price =
        lp_wire::PriceInfo { price_per_unit: 7, pixels_per_unit: 1, capability: 32, constraint: "x2".into() };
    let other_model = lp_wire::PriceInfo { price_per_unit: 9, constraint: "x4".into(), ..model_price.clone() };
    s.capability_prices.extend([model_price.clone(), other_model.clone()]);
    let orch = Orchestrator::new(s, pool_with(real(), 1, 8).await).start();
    let req = OrchestratorRequest::default();
    let info = orch.send(lp_actors::orchestrator::GetOrchestratorInfo(req)).await.unwrap().unwrap();
    let price = info.price_info.expect("a price");
    assert_eq!((price.price_per_unit, price.pixels_per_unit), (1200, 3));
    assert_eq!(info.capabilities, Some(lp_wire::Capabilities::transcoding()));
    assert_eq!(info.capabilities_prices, [model_price, other_model]);
    assert_eq!(info.transcoder, "o");

    // A gateway asking for a model gets that model's price, not another's of its capability.
    for (model, price) in [("x2", 7), ("x4", 9)] {
        let mut wanted = lp_wire::Capabilities::transcoding();
        wanted.constraints.entry(32).or_default().insert(model.into(), Default::default());
        let req = OrchestratorRequest { capabilities: Some(wanted), ..Default::default() };
        let info = orch.send(lp_actors::orchestrator::GetOrchestratorInfo(req)).await.unwrap().unwrap();
        let got = info.price_info.expect("a price");
        assert_eq!((got.price_per_unit, got.pixels_per_unit), (price, 1), "{model}");
    }
}

/// `Orchestrator`: at `max_sessions` it refuses terms with `OrchestratorCapped` (unless the
/// gateway asks it to ignore the cap), a session the gateway ends frees its slot, and the
/// session gauges follow. Capabilities it does not offer are refused at once.
#[actix::test]
async fn an_orchestrator_caps_its_sessions_and_an_ended_one_frees_its_slot() {
    use lp_actors::orchestrator::{EndSession, GetOrchestratorInfo, SubmitSegment};
    let metrics = Metrics::local();
    let data = segment();
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 1), pool_with(real(), 1, 8).await).start();
    let terms = |ignore_capacity_check| {
        orch.send(GetOrchestratorInfo(OrchestratorRequest { ignore_capacity_check, ..Default::default() }))
    };
    let sessions = || (metrics.value("livepeer_current_sessions_total"), metrics.value("livepeer_max_sessions_total"));
    let token = terms(false).await.unwrap().expect("terms").auth_token;
    assert_eq!(sessions(), (Some(0.0), Some(1.0)));
    let seg = common::seg_data(token.clone(), &data);
    let done = orch.send(SubmitSegment { seg, payment: Payment::default(), data: data.clone() }).await.unwrap();
    assert!(matches!(done.expect("admitted").result, lp_wire::TranscodeOutcome::Data(_)));
    assert_eq!(sessions(), (Some(1.0), Some(1.0)));
    // The session's next segment goes to the same session: it is not a second one over the cap.
    let seg = common::seg_data(token.clone(), &data);
    let again = orch.send(SubmitSegment { seg, payment: Payment::default(), data: data.clone() }).await.unwrap();
    assert!(matches!(again.expect("admitted").result, lp_wire::TranscodeOutcome::Data(_)), "its own session");
    assert_eq!(sessions(), (Some(1.0), Some(1.0)));
    let capped = terms(false).await.unwrap().expect_err("at max_sessions");
    assert_eq!(capped.code, ErrorCode::OrchestratorCapped);
    assert!(capped.message.contains("max_sessions (1)"), "{}", capped.message);
    let status = orch.send(lp_actors::orchestrator::GetOrchestratorStatus).await.unwrap();
    assert_eq!((status.max_sessions, status.max_sessions_auto), (1, false), "/status");
    assert!(terms(true).await.unwrap().is_ok(), "the cap ignored when asked");

    orch.send(EndSession(token.unwrap())).await.unwrap().expect("the session's own token ends it");
    common::wait_until("the ended session's slot", || sessions().0 == Some(0.0)).await;
    assert!(terms(false).await.unwrap().is_ok(), "a slot is free again");

    // A session started by bytes that are no segment ends with its answer: garbage sent with
    // valid tokens took every slot until the idle timeout (70 s), and real streams were capped.
    for _ in 0..3 {
        let token = terms(false).await.unwrap().expect("a slot is free").auth_token;
        let garbage = bytes::Bytes::from_static(b"not a segment at all");
        let seg = common::seg_data(token, &garbage);
        let done = orch.send(SubmitSegment { seg, payment: Payment::default(), data: garbage }).await.unwrap();
        let lp_wire::TranscodeOutcome::Error(f) = done.expect("admitted").result else { panic!("garbage transcoded") };
        assert_eq!(f.code, ErrorCode::InvalidInput, "{}", f.message);
        common::wait_until("the garbage session's slot", || sessions().0 == Some(0.0)).await;
    }

    let mut wanted = lp_wire::Capabilities::transcoding();
    wanted.set(lp_wire::capability::FIRST_AI);
    let req = OrchestratorRequest { capabilities: Some(wanted), ..Default::default() };
    let refused = orch.send(GetOrchestratorInfo(req)).await.unwrap().expect_err("not offered");
    assert_eq!(refused.code, ErrorCode::InvalidInput);
    let req = OrchestratorRequest { capabilities: Some(lp_wire::Capabilities::transcoding()), ..Default::default() };
    assert!(orch.send(GetOrchestratorInfo(req)).await.unwrap().is_ok());
}

/// `max_sessions = "auto"`: the cap is the local part (what `livepeer bench` measured) plus the
/// sessions of the remote transcoders registered now (a measured figure when one reported it,
/// else the capacity), and follows them as they come and go, and so does the gauge. (The
/// "remote" workers are local ones registered as remote: the pool counts only what the
/// registration says.)
#[actix::test]
async fn an_auto_cap_follows_the_remote_transcoders_capacity() {
    use lp_actors::orchestrator::{
        GetOrchestratorInfo, GetOrchestratorStatus, SessionCap, SubmitSegment, UnregisterWorker,
    };
    let metrics = Metrics::local();
    let data = segment();
    let cap = SessionCap::auto(1);
    let pool = TranscoderPool::for_sessions(cap.clone()).start();
    add_worker(&pool, real(), 1).await;
    let settings = OrchestratorSettings { max_sessions: cap, ..OrchestratorSettings::offchain("o", 1) };
    let orch = Orchestrator::new(settings, pool.clone()).start();
    let terms = || orch.send(GetOrchestratorInfo(OrchestratorRequest::default()));
    let token = terms().await.unwrap().expect("a slot").auth_token;
    let seg = common::seg_data(token, &data);
    let done = orch.send(SubmitSegment { seg, payment: Payment::default(), data: data.clone() }).await.unwrap();
    assert!(matches!(done.expect("admitted").result, lp_wire::TranscodeOutcome::Data(_)));
    let capped = terms().await.unwrap().expect_err("the one local session is taken");
    assert_eq!(capped.code, ErrorCode::OrchestratorCapped);
    assert!(capped.message.contains("max_sessions (auto: 1 = 1 local + 0 remote)"), "{}", capped.message);
    assert_eq!(metrics.value("livepeer_max_sessions_total"), Some(1.0));

    let remote = LocalWorker::new("r", real()).start();
    let register = RegisterWorker {
        remote_sessions: Some(2),
        name: "r".into(),
        capacity: 2,
        offer: Offer { capabilities: lp_wire::Capabilities::transcoding(), model: None },
        recipient: remote.recipient(),
    };
    let id = pool.send(register).await.unwrap();
    assert_eq!(metrics.value("livepeer_max_sessions_total"), Some(3.0), "1 local + 2 remote");
    let status = orch.send(GetOrchestratorStatus).await.unwrap();
    assert_eq!((status.max_sessions, status.max_sessions_auto), (3, true), "/status");
    assert!(terms().await.unwrap().is_ok(), "the remote transcoder's capacity makes room");
    // One that measured what it carries (`livepeer bench`) counts that, not its capacity.
    let measured = RegisterWorker {
        remote_sessions: Some(5),
        name: "m".into(),
        capacity: 1,
        offer: Offer { capabilities: lp_wire::Capabilities::transcoding(), model: None },
        recipient: LocalWorker::new("m", real()).start().recipient(),
    };
    let measured = pool.send(measured).await.unwrap();
    assert_eq!(metrics.value("livepeer_max_sessions_total"), Some(8.0), "1 local + 2 + 5 measured");

    pool.send(UnregisterWorker(measured)).await.unwrap();
    pool.send(UnregisterWorker(id)).await.unwrap();
    assert_eq!(metrics.value("livepeer_max_sessions_total"), Some(1.0));
    let capped = terms().await.unwrap().expect_err("its capacity left with it");
    assert_eq!(capped.code, ErrorCode::OrchestratorCapped);
}

/// The orchestrator's transcoder queue follows its session cap: under "auto" with nothing
/// measured locally, a remote transcoder's capacity makes room for what its sessions have in
/// flight (jobs behind a busy worker wait instead of being refused, up to the bound), and none
/// is left once it goes.
#[actix::test]
async fn the_transcoder_queue_follows_an_auto_cap() {
    use lp_actors::orchestrator::{SessionCap, UnregisterWorker};
    let data = segment();
    let pool = TranscoderPool::for_sessions(SessionCap::auto(0)).start();
    let (func, release, started) = held();
    let register = RegisterWorker {
        remote_sessions: Some(1),
        name: "r".into(),
        capacity: 1,
        offer: Offer { capabilities: lp_wire::Capabilities::transcoding(), model: None },
        recipient: LocalWorker::new("r", func).start().recipient(),
    };
    let id = pool.send(register).await.unwrap();
    let first = actix::spawn(pool.send(Submit(job(data.clone()))));
    common::wait_until("the first job to reach the worker", || started.load(Ordering::SeqCst) == 1).await;
    // The cap is 1 session, so the queue holds its SESSION_MAX_IN_FLIGHT (4) segments.
    let queued: Vec<_> = (0..4).map(|_| actix::spawn(pool.send(Submit(job(data.clone()))))).collect();
    let over = pool.send(Submit(job(data.clone()))).await.unwrap().expect_err("one more than the queue holds");
    assert_eq!(over.code, ErrorCode::OrchestratorBusy, "{}", over.message);
    for _ in 0..5 {
        release.send(()).unwrap();
    }
    assert!(first.await.unwrap().unwrap().is_ok());
    for job in queued {
        assert!(job.await.unwrap().unwrap().is_ok(), "queued behind the first, not refused");
    }

    pool.send(UnregisterWorker(id)).await.unwrap();
    let refused = pool.send(Submit(job(data))).await.unwrap().expect_err("no capacity, no queue");
    assert_eq!(refused.code, ErrorCode::NoTranscoders, "{}", refused.message);
}

/// `LocalWorker`: its mailbox takes its bound of jobs and refuses the next.
#[actix::test]
async fn a_local_workers_mailbox_holds_its_bound() {
    let worker = LocalWorker::new("w", real()).start();
    // It has no message but jobs: let it start (its `started` sets the bound) by yielding.
    tokio::task::yield_now().await;
    let data = segment();
    let bound = lp_actors::orchestrator::local_worker::MAILBOX;
    lp_actors::testing::assert_mailbox_bound(&worker, bound, || lp_actors::orchestrator::RunJob(job(data.clone())));
}

/// `TranscoderPool`: with its one transcoder busy and `max_queue` jobs waiting, one more is
/// answered `OrchestratorBusy` at once; the queued ones are transcoded in turn.
#[actix::test]
async fn the_transcoder_pool_refuses_jobs_beyond_its_queue() {
    let data = segment();
    let (func, release, started) = held();
    let pool = pool_with(func, 1, 1).await;
    let running = actix::spawn(pool.send(Submit(job(data.clone()))));
    common::wait_until("the first job to start", || started.load(Ordering::SeqCst) == 1).await;
    let queued = actix::spawn(pool.send(Submit(job(data.clone()))));
    // Messages reach the pool in the order they are sent: the second is queued, the third is one
    // too many.
    let refused = pool.send(Submit(job(data.clone()))).await.unwrap().expect_err("the queue is full");
    assert_eq!(refused.code, ErrorCode::OrchestratorBusy);
    assert!(refused.message.contains("queue is full"), "{}", refused.message);
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert!(running.await.unwrap().unwrap().is_ok());
    assert!(queued.await.unwrap().unwrap().is_ok());
    assert_eq!(started.load(Ordering::SeqCst), 2);
}

/// A job goes to the free worker with the lowest load for its capacity: three jobs at once on
/// a worker for three and a worker for one are two and one (handing them to the first free
/// worker, or the one with the most free slots, would give all three to the first).
#[actix::test]
async fn jobs_go_to_the_worker_with_the_lowest_load_for_its_capacity() {
    let metrics = Metrics::local();
    let gauges =
        || ["number", "capacity", "load"].map(|g| metrics.value(&format!("livepeer_transcoders_{g}")).unwrap_or(-1.0));
    let data = segment();
    // Eight pools: which of two workers is compared first follows each pool's hash order, and a
    // broken ratio on one side only shows in one of the two orders.
    for _ in 0..8 {
        let (func, release, started) = held();
        let pool = TranscoderPool::new(8).start();
        for (name, capacity) in [("big", 6), ("small", 2)] {
            let worker = LocalWorker::new(name, func.clone()).start();
            let offer = Offer { capabilities: lp_wire::Capabilities::transcoding(), model: None };
            let register = RegisterWorker {
                remote_sessions: None,
                name: name.into(),
                capacity,
                offer,
                recipient: worker.recipient(),
            };
            pool.send(register).await.unwrap();
        }
        // By load/capacity, not by load: after one job each, big (1/6) takes the next two (2/6
        // is still below small's 1/2); comparing loads (or load × capacity) would give each two.
        let jobs: Vec<_> = (0..4).map(|_| actix::spawn(pool.send(Submit(job(data.clone()))))).collect();
        // Two jobs start at once (one on each worker's thread); the others wait on big's.
        common::wait_until("two jobs running", || started.load(Ordering::SeqCst) == 2).await;
        let loads = loop {
            let mut loads: Vec<(String, u32)> =
                pool.send(GetWorkers).await.unwrap().into_iter().map(|w| (w.name, w.load)).collect();
            loads.sort();
            if loads.iter().map(|(_, l)| l).sum::<u32>() == 4 {
                break loads;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(loads, [("big".to_string(), 3), ("small".to_string(), 1)]);
        // The gauges follow: 2 workers, capacity 8, load 4; load 0 once the jobs are done.
        assert_eq!(gauges(), [2.0, 8.0, 4.0]);
        for _ in &jobs {
            release.send(()).unwrap();
        }
        for job in jobs {
            assert!(job.await.unwrap().unwrap().is_ok());
        }
        common::wait_until("the load gauge back at 0", || gauges() == [2.0, 8.0, 0.0]).await;
    }
}

/// An orchestrator that says `uri` is where its segments go.
/// A queued job whose gateway stops waiting is answered at its deadline, while the transcoder is
/// still busy, and frees its place in the queue for a live one; it never reaches FFmpeg.
#[actix::test]
async fn a_queued_job_is_dropped_at_its_deadline_and_frees_its_place() {
    let data = segment();
    let (func, release, started) = held();
    let pool = pool_with(func, 1, 1).await;
    let running = actix::spawn(pool.send(Submit(job(data.clone()))));
    common::wait_until("the first job to start", || started.load(Ordering::SeqCst) == 1).await;
    let late = TranscodeJob { deadline: std::time::Instant::now() + Duration::from_millis(200), ..job(data.clone()) };
    let dropped = pool.send(Submit(late)).await.unwrap().expect_err("dropped at its deadline");
    assert!(dropped.message.contains("the caller stopped waiting"), "{}", dropped.message);
    assert!(!running.is_finished(), "answered while the transcoder was still busy");
    // Its place in the queue (max_queue = 1) is free again.
    let live = actix::spawn(pool.send(Submit(job(data))));
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert!(running.await.unwrap().unwrap().is_ok());
    assert!(live.await.unwrap().unwrap().is_ok(), "the live job was queued, not refused");
    assert_eq!(started.load(Ordering::SeqCst), 2, "the late job never reached FFmpeg");
}

/// The orchestrators of a tier are asked for their terms all at once, and the first to accept
/// is taken: dead ones listed first cost one wait (the transport's timeout), not one each, and
/// here none, since the live one answers. Asked one after another, selection would never end.
#[actix::test]
async fn a_whole_tier_is_asked_at_once_so_dead_orchestrators_do_not_delay_selection() {
    let transport = Loopback { silent: Some("dead"), ..Loopback::default() };
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 100), pool_with(real(), 1, 8).await).start();
    transport.inner.add("o", orch);
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport);
    let pool = OrchestratorPool::new(vec!["dead1".into(), "dead2".into(), "o".into()], t).start();
    let select = pool.send(SelectOrchestrator { avoid: vec![], held: vec![] });
    let selected = tokio::time::timeout(Duration::from_secs(10), select).await.expect("selection waited on the dead");
    assert_eq!(selected.unwrap().unwrap().uri, "o");
}

/// Terms that name no transcoder (an orchestrator whose `service_uri` was left empty) cannot take
/// a stream: the next orchestrator is selected, and with no other the failure says why.
#[actix::test]
async fn an_orchestrator_naming_no_transcoder_is_not_selected() {
    let transport = Loopback::default();
    for (uri, service_uri) in [("empty", ""), ("o", "o")] {
        let settings = OrchestratorSettings::offchain(service_uri, 100);
        transport.inner.add(uri, Orchestrator::new(settings, pool_with(real(), 1, 8).await).start());
    }
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport);
    let pool = OrchestratorPool::new(vec!["empty".into(), "o".into()], t.clone()).start();
    // Selection starts one further each time: both orders.
    for _ in 0..2 {
        let selected = pool.send(SelectOrchestrator { avoid: vec![], held: vec![] }).await.unwrap();
        assert_eq!(selected.unwrap().uri, "o");
    }
    let alone = OrchestratorPool::new(vec!["empty".into()], t).start();
    let failure = alone.send(SelectOrchestrator { avoid: vec![], held: vec![] }).await.unwrap().expect_err("selected");
    assert_eq!(failure.code, ErrorCode::NoOrchestrators);
    assert!(failure.message.contains("empty: incomplete orchestrator info"), "{failure}");
}

async fn gateway_with(transport: &Loopback, uris: &[&str], max_streams: usize) -> Addr<Gateway> {
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport.clone());
    let uris = uris.iter().map(|u| u.to_string()).collect();
    let pool = OrchestratorPool::new(uris, t.clone()).start();
    let profiles = vec![lp_pipelines::preset("P144p30fps16x9").unwrap()];
    Gateway::new(profiles, common::stream_settings(), max_streams, pool, t).start()
}

/// `Gateway`: a new stream beyond `max_streams` is answered `GatewayBusy`; the live one goes on.
#[actix::test]
async fn the_gateway_refuses_streams_beyond_max_streams() {
    let data = segment();
    let transport = Loopback::default();
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 10), pool_with(real(), 1, 8).await).start();
    transport.inner.add("o", orch);
    let gateway = gateway_with(&transport, &["o"], 1).await;
    let a =
        gateway.send(Push { stream: "a".into(), profiles: None, segment: incoming(0, data.clone()) }).await.unwrap();
    assert_eq!(a.expect("the first stream is served").renditions.len(), 1);
    let b =
        gateway.send(Push { stream: "b".into(), profiles: None, segment: incoming(0, data.clone()) }).await.unwrap();
    let refused = b.expect_err("a second stream is over max_streams");
    assert_eq!(refused.code, ErrorCode::GatewayBusy);
    assert!(refused.message.contains("max_streams (1)"), "{}", refused.message);
    let a = gateway.send(Push { stream: "a".into(), profiles: None, segment: incoming(1, data) }).await.unwrap();
    assert!(a.is_ok(), "the live stream goes on");
    assert_eq!(transport.submitted.borrow().len(), 2, "the refused stream reached no orchestrator");
}

/// `StreamSession`: a session whose auth token expires within the refresh margin (3 minutes) is
/// not used for another segment: the stream takes fresh terms and ends the old session. A fresh
/// token is kept from segment to segment.
#[actix::test]
async fn a_session_whose_token_nears_expiry_is_replaced_and_ended() {
    let data = segment();
    // 200 s is above the margin for the test's few seconds; 150 s is within it.
    let cases = [(Duration::from_secs(30 * 60), 1), (Duration::from_secs(200), 1), (Duration::from_secs(150), 3)];
    for (validity, sessions) in cases {
        let transport = Loopback::default();
        let pool = pool_with(real(), 1, 8).await;
        let orch = Orchestrator::new(
            OrchestratorSettings { auth_token_validity: validity, ..OrchestratorSettings::offchain("o", 10) },
            pool,
        );
        let orch = orch.start();
        transport.inner.add("o", orch);
        let gateway = gateway_with(&transport, &["o"], 1).await;
        for seq in 0..3 {
            let pushed = Push { stream: "a".into(), profiles: None, segment: incoming(seq, data.clone()) };
            assert!(gateway.send(pushed).await.unwrap().is_ok(), "segment {seq} with tokens valid {validity:?}");
        }
        let used = transport.sessions.borrow().clone();
        let mut distinct = used.clone();
        distinct.dedup();
        assert_eq!((used.len(), distinct.len()), (3, sessions), "tokens valid {validity:?}: {used:?}");
        // Each replaced session is ended (in the background), and only those.
        common::wait_until("the replaced sessions to be ended", || transport.ended.borrow().len() == sessions - 1)
            .await;
        assert_eq!(*transport.ended.borrow(), distinct[..sessions - 1]);
    }
}

/// The real transcode, failing its `n`-th job as a transcoder that failed would (retryably).
/// A mock for a failure real FFmpeg cannot be made to give on a good segment.
fn failing_job(n: usize) -> TranscodeFn {
    let (jobs, real) = (AtomicUsize::new(0), real());
    Arc::new(move |job: &TranscodeJob| match jobs.fetch_add(1, Ordering::SeqCst) + 1 == n {
        true => Err(TranscodeFailure { code: ErrorCode::TranscoderFailed, message: "injected".into() }),
        false => real(job),
    })
}

/// `StreamSession`: a stream that leaves an orchestrator after a failed segment keeps its
/// session there, and takes it again when selection comes back to that orchestrator: the same
/// token, nothing ended. Each retry is counted by its try. (Each orchestrator's transcoder
/// fails its second segment.)
#[actix::test]
async fn a_stream_that_comes_back_to_an_orchestrator_takes_its_session_again() {
    let metrics = Metrics::local();
    let transport = Loopback::default();
    for uri in ["o1", "o2"] {
        let pool = pool_with(failing_job(2), 1, 8).await;
        transport.inner.add(uri, Orchestrator::new(OrchestratorSettings::offchain(uri, 10), pool).start());
    }
    let gateway = gateway_with(&transport, &["o1", "o2"], 10).await;
    for seq in 0..3 {
        let pushed = Push { stream: "a".into(), profiles: None, segment: incoming(seq, segment()) };
        assert!(gateway.send(pushed).await.unwrap().is_ok(), "segment {seq}");
    }
    // Segment 0 at one (x); 1 fails there and goes to the other (y); 2 fails at y, back to x.
    let (uris, sessions) = (transport.submitted.borrow().clone(), transport.sessions.borrow().clone());
    assert_eq!(uris.len(), 5, "{uris:?}");
    let (x, y) = (uris[0].as_str(), uris[2].as_str());
    assert_eq!(uris, [x, x, y, y, x], "{uris:?}");
    assert_eq!([&sessions[1], &sessions[3], &sessions[4]], [&sessions[0], &sessions[2], &sessions[0]], "{sessions:?}");
    assert!(transport.ended.borrow().is_empty(), "{:?}", transport.ended.borrow());
    let tries = |n: u32| metrics.value(&format!("livepeer_transcode_retried{{try=\"{n}\"}}"));
    assert_eq!((tries(1), tries(2)), (None, Some(2.0)));
}

/// `StreamSession`: a late failure of a session the stream has replaced leaves the newer
/// session of that orchestrator alone, even a failure that lets its own session go (its token
/// refused): the failed segment's retry takes the newer session. (The refusals are injected:
/// the transcoder answers the first segment late, and the second at once, as refused tokens;
/// nothing real refuses a token after its segment was taken.)
#[actix::test]
async fn a_late_failure_of_a_replaced_session_leaves_the_newer_one() {
    let (release, gate) = crossbeam_channel::unbounded::<()>();
    let (jobs, real, gate) = (Arc::new(AtomicUsize::new(0)), real(), Mutex::new(gate));
    let counted = jobs.clone();
    let func: TranscodeFn = Arc::new(move |job: &TranscodeJob| {
        let refused = Err(TranscodeFailure { code: ErrorCode::AuthFailed, message: "injected".into() });
        match counted.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let _ = gate.lock().unwrap().recv();
                refused
            }
            1 => refused,
            _ => real(job),
        }
    });
    let transport = Loopback::default();
    // Two transcoders, so that segment 1 is not queued behind the one segment 0 holds.
    let pool = pool_with(func.clone(), 1, 8).await;
    add_worker(&pool, func, 1).await;
    transport.inner.add("o", Orchestrator::new(OrchestratorSettings::offchain("o", 10), pool).start());
    let gateway = gateway_with(&transport, &["o"], 10).await;
    let push = |seq| gateway.send(Push { stream: "r".into(), profiles: None, segment: incoming(seq, segment()) });
    let late = actix::spawn(push(0));
    common::wait_until("segment 0 at the transcoder", || jobs.load(Ordering::SeqCst) == 1).await;
    assert!(push(1).await.unwrap().is_ok(), "segment 1, on a new session");
    release.send(()).unwrap();
    assert!(late.await.unwrap().unwrap().is_ok(), "segment 0, retried");
    // 0 and 1 on the first session, 1 again on a second, then 0 on that one too.
    let sessions = transport.sessions.borrow().clone();
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    assert_eq!([&sessions[1], &sessions[3]], [&sessions[0], &sessions[2]], "{sessions:?}");
    assert_ne!(sessions[2], sessions[0]);
}

/// `StreamSession`: the terms an orchestrator answers a segment with are the session's for the
/// next one: answers that name another transcoder send the next segment there, in the same
/// session.
#[actix::test]
async fn the_next_segment_goes_where_the_last_answer_says() {
    let transport = Loopback { moved_to: Some("o-moved".into()), ..Loopback::default() };
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 10), pool_with(real(), 1, 8).await).start();
    transport.inner.add("o", orch.clone());
    transport.inner.add("o-moved", orch);
    let gateway = gateway_with(&transport, &["o"], 10).await;
    for seq in 0..2 {
        let pushed = Push { stream: "m".into(), profiles: None, segment: incoming(seq, segment()) };
        assert!(gateway.send(pushed).await.unwrap().is_ok(), "segment {seq}");
    }
    assert_eq!(*transport.submitted.borrow(), ["o", "o-moved"]);
    let sessions = transport.sessions.borrow();
    assert_eq!(sessions[0], sessions[1]);
}

/// `StreamSession`: a stream ends `idle_timeout` after its last segment, never while one is in
/// flight however long it takes; then the gateway lists it no more.
#[actix::test]
async fn a_stream_ends_when_idle_never_with_a_segment_in_flight() {
    let (func, release, started) = held();
    let transport = Loopback::default();
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 10), pool_with(func, 1, 8).await).start();
    transport.inner.add("o", orch);
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport);
    let pool = OrchestratorPool::new(vec!["o".into()], t.clone()).start();
    let idle = Duration::from_millis(800);
    let settings = StreamSettings { idle_timeout: idle, ..common::stream_settings() };
    let profiles = vec![lp_pipelines::preset("P144p30fps16x9").unwrap()];
    let gateway = Gateway::new(profiles, settings, 10, pool, t).start();
    let streams = || {
        let status = gateway.send(GetGatewayStatus);
        async move { status.await.unwrap().streams }
    };
    let pushed =
        actix::spawn(gateway.send(Push { stream: "a".into(), profiles: None, segment: incoming(0, segment()) }));
    common::wait_until("the segment at the transcoder", || started.load(Ordering::SeqCst) == 1).await;
    // Two idle timeouts pass with the segment in flight.
    tokio::time::sleep(idle * 2).await;
    assert_eq!(streams().await, ["a"], "ended with a segment in flight");
    release.send(()).unwrap();
    assert!(pushed.await.unwrap().unwrap().is_ok());
    // Half the idle timeout after its last segment it is still up.
    tokio::time::sleep(idle / 2).await;
    assert_eq!(streams().await, ["a"], "ended before its idle timeout");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !streams().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the idle stream never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Undecodable input fails once, as `InvalidInput`: no other orchestrator is asked, though one
/// is there.
#[actix::test]
async fn undecodable_input_is_not_retried() {
    let transport = Loopback::default();
    for uri in ["o1", "o2"] {
        let orch = Orchestrator::new(OrchestratorSettings::offchain(uri, 10), pool_with(real(), 1, 8).await).start();
        transport.inner.add(uri, orch);
    }
    let gateway = gateway_with(&transport, &["o1", "o2"], 10).await;
    // MPEG-TS packets of nothing: the gateway's HTTP probe would catch it; here it reaches an
    // orchestrator, whose transcoder finds it undecodable.
    let mut garbage = vec![0u8; 188 * 50];
    for p in garbage.chunks_mut(188) {
        p[0] = 0x47;
    }
    let failure = gateway
        .send(Push { stream: "g".into(), profiles: None, segment: incoming(0, Bytes::from(garbage)) })
        .await
        .unwrap()
        .expect_err("garbage fails");
    assert_eq!(failure.code, ErrorCode::InvalidInput, "{failure}");
    assert_eq!(transport.submitted.borrow().len(), 1, "tried once: {:?}", transport.submitted.borrow());
}

/// An orchestrator that failed is tried only after the others for a while, by every stream.
#[actix::test]
async fn a_suspended_orchestrator_is_tried_last() {
    let transport = Loopback::default();
    for uri in ["o1", "o2"] {
        let orch = Orchestrator::new(OrchestratorSettings::offchain(uri, 100), pool_with(real(), 1, 8).await).start();
        transport.inner.add(uri, orch);
    }
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport.clone());
    let pool = OrchestratorPool::new(vec!["o1".into(), "o2".into()], t).start();
    let mut picked = Vec::new();
    for _ in 0..4 {
        picked.push(pool.send(SelectOrchestrator { avoid: vec![], held: vec![] }).await.unwrap().unwrap().uri);
    }
    assert!(picked.contains(&"o1".to_string()) && picked.contains(&"o2".to_string()), "{picked:?}");
    assert!(pool.send(HasAlternatives("o2".into())).await.unwrap());
    pool.send(Suspend("o1".into())).await.unwrap();
    for _ in 0..6 {
        let s = pool.send(SelectOrchestrator { avoid: vec![], held: vec![] }).await.unwrap().unwrap();
        assert_eq!(s.uri, "o2", "a suspended orchestrator is not preferred");
        assert!(!pool.send(HasAlternatives("o2".into())).await.unwrap(), "o1 is suspended: o2 has no alternative");
    }
    // With o2 gone too, the suspended one is still used rather than nothing.
    transport.inner.remove("o2");
    let s = pool.send(SelectOrchestrator { avoid: vec![], held: vec![] }).await.unwrap().unwrap();
    assert_eq!(s.uri, "o1");
}

/// The tiers: orchestrators a stream would rather avoid come after the others, and before the
/// suspended ones.
#[actix::test]
async fn orchestrators_to_avoid_come_before_suspended_ones() {
    let transport = Loopback::default();
    let uris = ["o1", "o2", "o3"];
    for uri in uris {
        let orch = Orchestrator::new(OrchestratorSettings::offchain(uri, 100), pool_with(real(), 1, 8).await).start();
        transport.inner.add(uri, orch);
    }
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport.clone());
    let pool = OrchestratorPool::new(uris.iter().map(|u| u.to_string()).collect(), t).start();
    pool.send(Suspend("o3".into())).await.unwrap();
    let pick = |avoid: &[&str]| {
        let msg = SelectOrchestrator { avoid: avoid.iter().map(|u| u.to_string()).collect(), held: vec![] };
        let sent = pool.send(msg);
        async move { sent.await.unwrap().unwrap().uri }
    };
    for _ in 0..4 {
        assert_eq!(pick(&["o1"]).await, "o2", "the one not avoided nor suspended");
        let avoided = pick(&["o1", "o2"]).await;
        assert!(avoided == "o1" || avoided == "o2", "an avoided one before the suspended o3: {avoided}");
    }
    transport.inner.remove("o1");
    transport.inner.remove("o2");
    assert_eq!(pick(&["o1", "o2"]).await, "o3", "the suspended one when nothing else answers");
}

/// The pool hands a job only to a transcoder that offers what it needs (go-livepeer's
/// capability match): an MP4 segment never reaches one that announced MPEG-TS only, and is
/// refused at once while no registered transcoder could run it.
#[actix::test]
async fn jobs_go_only_to_transcoders_that_offer_what_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = Bytes::from(
        std::fs::read(lp_testkit::media::make_segment(dir.path(), "s.mp4", 320, 180, 30, 1, false)).unwrap(),
    );
    let mp4_job = || TranscodeJob { format: lp_pipelines::InputFormat::Mp4, ..job(mp4.clone()) };
    let ran: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let worker = |name: &'static str| {
        let (ran, real) = (ran.clone(), real());
        let f: TranscodeFn = Arc::new(move |job: &TranscodeJob| {
            ran.lock().unwrap().push(name);
            real(job)
        });
        LocalWorker::new(name, f).start().recipient()
    };
    let mut ts_only = lp_wire::Capabilities::default();
    ts_only.set(lp_wire::capability::H264);
    ts_only.set(lp_wire::capability::MPEGTS);

    let pool = TranscoderPool::new(8).start();
    let register = |name: &'static str, capabilities| RegisterWorker {
        remote_sessions: None,
        name: name.into(),
        capacity: 1,
        offer: Offer { capabilities, model: None },
        recipient: worker(name),
    };
    pool.send(register("ts-only", ts_only)).await.unwrap();
    let refused = pool.send(Submit(mp4_job())).await.unwrap().expect_err("nobody here decodes MP4");
    assert_eq!(refused.code, ErrorCode::NoTranscoders);
    assert!(refused.message.contains("offers what this job needs"), "{}", refused.message);

    pool.send(register("full", lp_wire::Capabilities::transcoding())).await.unwrap();
    let (a, b) = futures::join!(pool.send(Submit(mp4_job())), pool.send(Submit(mp4_job())));
    assert_eq!(a.unwrap().expect("transcoded").segments.len(), 1);
    assert_eq!(b.unwrap().expect("transcoded").segments.len(), 1);
    assert_eq!(*ran.lock().unwrap(), ["full", "full"], "both waited for the one that decodes MP4");
    // An MPEG-TS segment may go to either.
    pool.send(Submit(job(segment()))).await.unwrap().expect("transcoded");
}

/// A session the gateway already ended (waiting for its last segment) that panics stops at its
/// restart, instead of holding a `max_sessions` slot until its idle timeout. (The panic is
/// injected: nothing real makes a session panic.)
#[actix::test]
async fn an_ended_session_that_panics_stops_at_its_restart() {
    use lp_actors::orchestrator::EndWhenIdle;
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let (func, release, started) = held();
    let pool = pool_with(func, 1, 8).await;
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 4), pool.clone()).start();
    let watchdog = Watchdog::new();
    let session = AuthSession::new("s".into(), pool, orch.recipient(), 4, Duration::from_secs(70));
    let session = watchdog.start("auth_session", Policy::Transient, session);
    let in_flight = actix::spawn(session.send(SessionSegment(job(segment()))));
    common::wait_until("the segment to reach the transcoder", || started.load(Ordering::SeqCst) == 1).await;
    session.send(EndWhenIdle).await.unwrap();
    assert!(session.connected(), "ended, but a segment is in flight");

    session.do_send(InjectPanic);
    common::wait_until("the ended session to stop at its restart", || !session.connected()).await;
    let report = watchdog.report();
    assert_eq!((report[0].restarts, report[0].instances), (1, 0), "{report:?}");
    release.send(()).unwrap();
    let _ = in_flight.await;
}

/// `Gateway` + `HlsRegistry`: a stream told to end finishes its segment in flight before its
/// playlists end, and the retention sweep does not take the stream's HLS away meanwhile; once
/// ended, the HLS is kept for the retention time, then forgotten.
#[actix::test]
async fn an_ending_stream_keeps_its_hls_until_its_last_segment_is_in() {
    let (func, release, started) = held();
    let transport = Loopback::default();
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 10), pool_with(func, 1, 8).await).start();
    transport.inner.add("o", orch);
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport.clone());
    let pool = OrchestratorPool::new(vec!["o".into()], t.clone()).start();
    let profiles = vec![lp_pipelines::preset("P144p30fps16x9").unwrap()];
    // Swept every 50 ms, ended streams kept 300 ms.
    let stream = StreamSettings { hls_retention: Duration::from_millis(300), ..common::stream_settings() };
    let hls = HlsRegistry::default();
    let gateway = Gateway::new(profiles, stream, 10, pool, t).hls(&hls).start();

    let push = gateway.send(Push { stream: "e".into(), profiles: None, segment: incoming(0, segment()) });
    let push = actix::spawn(push);
    common::wait_until("the transcode starts", || started.load(Ordering::SeqCst) == 1).await;
    assert!(gateway.send(End { stream: "e".into(), why: "deleted" }).await.unwrap());
    // Several sweeps and more than the retention time pass while the segment is in flight.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(hls.is_live("e"), "an ending stream is live until its segments are in");
    release.send(()).unwrap();
    push.await.unwrap().unwrap().expect("the segment in flight is transcoded");
    common::wait_until("the playlist ends", || {
        hls.media("e", "P144p30fps16x9").is_some_and(|m| m.ends_with("#EXT-X-ENDLIST\n"))
    })
    .await;
    assert!(hls.media("e", "P144p30fps16x9").unwrap().contains("P144p30fps16x9/0.ts"));
    common::wait_until("the ended stream is forgotten", || hls.master("e").is_none()).await;
}

/// `StreamSession`: renditions an orchestrator sends that were not asked for (a name that is a
/// path, an absurd size) reach neither the playlists nor the recording.
#[actix::test]
async fn renditions_no_one_asked_for_are_not_published_or_recorded() {
    let transport = Loopback { forge: Some("../../escaped".into()), ..Loopback::default() };
    let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 10), pool_with(real(), 1, 8).await).start();
    transport.inner.add("o", orch);
    let t: Rc<dyn OrchestratorTransport> = Rc::new(transport.clone());
    let pool = OrchestratorPool::new(vec!["o".into()], t.clone()).start();
    let root = tempfile::tempdir().unwrap();
    let records = root.path().join("rec");
    let recorder = lp_actors::gateway::Recorder::start(records.clone()).unwrap();
    let stream = StreamSettings { recorder: Some(recorder), ..common::stream_settings() };
    let hls = HlsRegistry::default();
    // At 15 fps, so that its entry in the master playlist differs from the source's (30).
    let profiles = vec![lp_pipelines::Profile { fps: 15, ..lp_pipelines::preset("P144p30fps16x9").unwrap() }];
    let gateway = Gateway::new(profiles, stream, 10, pool, t).hls(&hls).start();
    let push = Push { stream: "f".into(), profiles: None, segment: incoming(0, segment()) };
    let done = gateway.send(push).await.unwrap().expect("transcoded");
    assert_eq!(done.renditions.len(), 2, "the forged rendition did come back");
    let master = hls.master("f").unwrap();
    assert!(master.contains("f/P144p30fps16x9.m3u8") && !master.contains("escaped"), "{master}");
    // What players choose a rendition by, read from the segment before it is listed: each
    // rendition's own codecs and frame rate.
    let rendition = &done.renditions.iter().find(|r| r.name == "P144p30fps16x9").unwrap().data;
    for (name, data, fps) in [("source", &segment()[..], "30.000"), ("P144p30fps16x9", &rendition[..], "15.000")] {
        let info = lp_pipelines::probe(data, lp_pipelines::InputFormat::MpegTs).unwrap();
        let line = master.lines().take_while(|l| *l != format!("f/{name}.m3u8")).last().unwrap();
        assert!(line.contains(&format!("CODECS=\"{}\"", info.codecs.unwrap())), "{name}: {master}");
        assert!(line.contains(&format!("FRAME-RATE={fps}")), "{name}: {master}");
    }
    assert!(hls.media("f", "../../escaped").is_none());
    // The forged rendition, ahead of the real one in the answer, took neither its place nor its
    // codecs.
    assert_eq!(hls.segment("f", "P144p30fps16x9", 0).as_deref(), Some(&rendition[..]));
    assert!(gateway.send(End { stream: "f".into(), why: "deleted" }).await.unwrap());
    common::wait_until("the recording ends", || {
        walk(&records).iter().any(|p| p.ends_with("P144p30fps16x9.m3u8"))
            && walk(&records).iter().any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("ENDLIST")))
    })
    .await;
    let files = walk(root.path());
    assert!(files.iter().all(|p| p.starts_with(&records)), "{files:?}");
    assert!(!files.iter().any(|p| p.to_string_lossy().contains("escaped")), "{files:?}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}
