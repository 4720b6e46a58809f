//! The AI pool and its inference worker: requests for a model run on a worker that serves it,
//! with real models on ONNX Runtime (build/models, from `make setup`); the pool queues nothing,
//! so a request beyond a model's capacity is answered "insufficient capacity" at once, and the
//! gateway can go to another orchestrator.

mod common;

use common::Loopback;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use lp_actors::ai::{AiAnswer, AiBody};
use lp_actors::gateway::{HasAlternatives, InProcess, InferAi, MAX_AI_TRIES, OrchestratorPool};
use lp_actors::orchestrator::{
    AiJob, AiPool, LocalWorker, Orchestrator, RegisterWorker, Submit, TranscoderPool, WorkFn, inference,
};
use lp_chain::pm::Price;
use lp_pipelines::ai::{ModelSet, ModelSpec, Runtime, RuntimeOptions};
use lp_wire::ai::{AiRequest, AiResponse, Pipeline, UpscaleRequest};
use lp_wire::{ErrorCode, TranscodeFailure};

fn models() -> ModelSet {
    let rt = Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)");
    let dir = PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)"));
    let spec = |id: &str, file: &str, warm| ModelSpec {
        pipeline: Pipeline::Upscale,
        model_id: id.into(),
        path: dir.join(file),
        warm,
    };
    let specs = vec![spec("x2", "upscale_x2_nearest.onnx", true), spec("cold", "upscale_x2_blur.onnx", false)];
    let mut set = ModelSet::new(rt, specs, 1 << 30);
    set.load_warm().unwrap();
    set
}

/// A 4 × 3 PNG.
fn png() -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(4, 3, image::Rgb([9, 8, 7])).write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

fn job(model: &str) -> AiJob {
    let request = AiRequest::Upscale(UpscaleRequest::new(model, "", png()));
    AiJob { request: Arc::new(request), deadline: Instant::now() + Duration::from_secs(30), tokens: None }
}

/// An inference worker on `models()`, each job held at a gate until the test releases it (when
/// `held`), counting the jobs it took (as they reach it, before the gate); registered on a new AI
/// pool for model x2, capacity 1.
async fn ai_pool(held: bool) -> (Addr<AiPool>, crossbeam_channel::Sender<()>, Arc<AtomicUsize>) {
    let (release, gate) = crossbeam_channel::unbounded::<()>();
    let gate = Mutex::new(gate);
    let ran = Arc::new(AtomicUsize::new(0));
    let real = inference(models());
    let ran_here = ran.clone();
    let f: WorkFn<AiJob> = Arc::new(move |job: &AiJob| {
        ran_here.fetch_add(1, Ordering::SeqCst);
        if held {
            let _ = gate.lock().unwrap().recv();
        }
        real(job)
    });
    let pool = AiPool::new(0).start();
    let worker = LocalWorker::new("w", f).start();
    let offer = lp_actors::orchestrator::inference::offer(Pipeline::Upscale, "x2");
    pool.send(RegisterWorker {
        remote_sessions: None,
        name: "w".into(),
        capacity: 1,
        offer,
        recipient: worker.recipient(),
    })
    .await
    .unwrap();
    (pool, release, ran)
}

/// An orchestrator advertising model x2 of upscale (`warm` as given), on `ai`.
fn orchestrator(uri: &str, warm: bool, ai: Addr<AiPool>) -> Addr<Orchestrator> {
    Orchestrator::new(offering_x2(uri, warm), TranscoderPool::new(1).start()).with_ai(ai).start()
}

fn offering_x2(uri: &str, warm: bool) -> lp_actors::orchestrator::OrchestratorSettings {
    let mut settings = lp_actors::orchestrator::OrchestratorSettings::offchain(uri, 4);
    let cap = Pipeline::Upscale.capability();
    settings.capabilities.set(cap);
    let constraint = lp_wire::ModelConstraint { warm, capacity: 1, capacity_in_use: 0 };
    settings.capabilities.constraints.entry(cap).or_default().insert("x2".into(), constraint);
    settings
}

/// A warm orchestrator pricing x2 at `per_unit` wei per `pixels` pixels, and listing first a
/// free price for another model, on `ai`.
fn priced(uri: &str, per_unit: i64, pixels: i64, ai: Addr<AiPool>) -> Addr<Orchestrator> {
    let mut settings = offering_x2(uri, true);
    let price = |model: &str, price_per_unit, pixels_per_unit| lp_wire::PriceInfo {
        price_per_unit,
        pixels_per_unit,
        capability: Pipeline::Upscale.capability(),
        constraint: model.into(),
    };
    settings.capability_prices = vec![price("other", 0, 1), price("x2", per_unit, pixels)];
    Orchestrator::new(settings, TranscoderPool::new(1).start()).with_ai(ai).start()
}

/// A whole answer's body, as text.
fn text(answer: &AiAnswer) -> String {
    let AiBody::Full(body) = &answer.body else { panic!("an event stream") };
    String::from_utf8_lossy(body).into_owned()
}

/// A gateway's pool over `orchestrators` (URI and orchestrator), through `transport`.
fn gateway_over(transport: &Loopback, orchestrators: Vec<(&str, Addr<Orchestrator>)>) -> OrchestratorPool {
    let uris = orchestrators.iter().map(|(uri, _)| uri.to_string()).collect();
    for (uri, orchestrator) in orchestrators {
        transport.inner.add(uri, orchestrator);
    }
    OrchestratorPool::new(uris, Rc::new(transport.clone()))
}

/// A client's upscale request for `model`, as multipart/form-data.
fn upscale_form(model: &str) -> InferAi {
    let (content_type, body) =
        lp_testkit::multipart::form(&[("model_id", model), ("prompt", "p")], &[("image", &png())]);
    InferAi { pipeline: Pipeline::Upscale, model_id: model.into(), units: 12, content_type, body: body.into() }
}

/// The gateway's side: the warm orchestrator first; when its model's slot is taken (503
/// insufficient capacity), the next one, in the same request.
#[actix::test]
async fn the_gateway_prefers_warm_and_moves_on_from_insufficient_capacity() {
    let (warm_pool, release_warm, ran_warm) = ai_pool(true).await;
    let (cold_pool, _, ran_cold) = ai_pool(false).await;
    let transport = InProcess::default();
    transport.add("cold", orchestrator("cold", false, cold_pool));
    transport.add("warm", orchestrator("warm", true, warm_pool.clone()));
    let gateway = OrchestratorPool::new(vec!["cold".into(), "warm".into()], Rc::new(transport)).start();

    // Both free: the warm one is used although it is listed second.
    let first = actix::spawn(gateway.send(upscale_form("x2")));
    common::wait_until("the first request at the warm worker", || ran_warm.load(Ordering::SeqCst) == 1).await;
    release_warm.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap().status, 200);
    assert_eq!((ran_warm.load(Ordering::SeqCst), ran_cold.load(Ordering::SeqCst)), (1, 0));

    // The warm one's slot is taken: this request goes to the cold one, not to a queue.
    let blocker = actix::spawn(warm_pool.send(Submit(job("x2"))));
    common::wait_until("the blocker at the warm worker", || ran_warm.load(Ordering::SeqCst) == 2).await;
    let second = gateway.send(upscale_form("x2")).await.unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(ran_cold.load(Ordering::SeqCst), 1, "served by the cold orchestrator");
    release_warm.send(()).unwrap();
    blocker.await.unwrap().unwrap().expect("the held job completes");
    // Busy is not failed: the warm one is not suspended for it.
    assert!(gateway.send(HasAlternatives("cold".into())).await.unwrap(), "the busy orchestrator was suspended");

    // A model neither offers: 400, without trying anyone.
    let unknown = gateway.send(upscale_form("nobody")).await.unwrap();
    assert_eq!(unknown.status, 400);
}

#[actix::test]
async fn a_request_beyond_a_models_capacity_is_refused_at_once_not_queued() {
    let (pool, release, took) = ai_pool(true).await;
    let running = actix::spawn(pool.send(Submit(job("x2"))));
    common::wait_until("the job at the worker", || took.load(Ordering::SeqCst) == 1).await;
    let busy = pool.send(Submit(job("x2"))).await.unwrap().expect_err("the model's one slot is taken");
    assert_eq!(busy.code, ErrorCode::OrchestratorBusy);
    assert!(busy.message.contains("insufficient capacity"), "{}", busy.message);
    let other = pool.send(Submit(job("not-here"))).await.unwrap().expect_err("no worker serves it");
    assert_eq!(other.code, ErrorCode::NoTranscoders);

    release.send(()).unwrap();
    let AiResponse::Image(done) = running.await.unwrap().unwrap().expect("the held job completes") else {
        panic!("not an image answer")
    };
    assert!(done.images[0].url.starts_with("data:image/png;base64,"));
    // Its slot is free again.
    release.send(()).unwrap();
    pool.send(Submit(job("x2"))).await.unwrap().expect("served once the slot is free");
}

/// What the models looked like when each job started (for the panic test).
static SEEN: Mutex<Vec<Vec<String>>> = Mutex::new(Vec::new());

/// `ModelSet::infer`, except that the request for model "cold" panics once it is loaded: a
/// panic while the worker holds its models, which no real request can cause (the test says so).
fn panics_on_cold(
    set: &mut ModelSet,
    request: &AiRequest,
    on_token: &mut dyn FnMut(&str) -> bool,
) -> Result<AiResponse, lp_pipelines::ai::AiError> {
    SEEN.lock().unwrap().push(set.loaded().into_iter().map(|(_, id, _)| id).collect());
    let answer = set.infer(request, on_token);
    if request.model_id() == "cold" {
        panic!("injected panic with the models held");
    }
    answer
}

/// A job that panics while the worker holds its models fails alone; the next job runs on a
/// fresh thread with the models reloaded (the warm one again, the cold one the panic may have
/// left half-run dropped).
#[actix::test]
async fn a_panic_with_the_models_held_fails_only_its_job_and_the_models_are_reloaded() {
    let worker =
        LocalWorker::new("w", lp_actors::orchestrator::inference::inference_with(models(), panics_on_cold)).start();
    let pool = AiPool::new(0).start();
    for model in ["x2", "cold"] {
        let offer = lp_actors::orchestrator::inference::offer(Pipeline::Upscale, model);
        let register = RegisterWorker {
            remote_sessions: None,
            name: "w".into(),
            capacity: 1,
            offer,
            recipient: worker.clone().recipient(),
        };
        pool.send(register).await.unwrap();
    }
    let crashed = pool.send(Submit(job("cold"))).await.unwrap().expect_err("the job that panicked fails");
    assert_eq!(crashed.code, ErrorCode::TranscoderFailed);
    assert!(crashed.message.contains("injected panic with the models held"), "{}", crashed.message);
    pool.send(Submit(job("x2"))).await.unwrap().expect("the next job is served");
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen, [vec!["x2".to_string()], vec!["x2".to_string()]], "cold dropped after the panic, x2 reloaded");
}

/// A local inference worker holds at most `MAX_LOCAL_CAPACITY` jobs over its models: more is
/// refused when it is added, not found out by a full mailbox later.
#[actix::test]
async fn a_local_worker_over_its_capacity_is_refused() {
    let pool = AiPool::new(0).start();
    let over = lp_actors::orchestrator::MAX_LOCAL_CAPACITY; // plus the second model's 1
    let err = lp_actors::orchestrator::add_inference_worker(&pool, "w", models(), &[over, 1]).await.unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    lp_actors::orchestrator::add_inference_worker(&pool, "w", models(), &[1, 1]).await.expect("within the cap");
}

/// An orchestrator whose price for the model does not read is not used (it would otherwise
/// count as free).
#[actix::test]
async fn an_orchestrator_whose_price_does_not_read_is_not_used() {
    let (pool, _, ran) = ai_pool(false).await;
    let mut settings = lp_actors::orchestrator::OrchestratorSettings::offchain("odd", 4);
    let cap = Pipeline::Upscale.capability();
    settings.capabilities.set(cap);
    let constraint = lp_wire::ModelConstraint { warm: true, capacity: 1, capacity_in_use: 0 };
    settings.capabilities.constraints.entry(cap).or_default().insert("x2".into(), constraint);
    let bad = lp_wire::PriceInfo { price_per_unit: 5, pixels_per_unit: 0, capability: cap, constraint: "x2".into() };
    settings.capability_prices.push(bad);
    let transport = InProcess::default();
    transport.add("odd", Orchestrator::new(settings, TranscoderPool::new(1).start()).with_ai(pool).start());
    let gateway = OrchestratorPool::new(vec!["odd".into()], Rc::new(transport)).start();
    let answer = gateway.send(upscale_form("x2")).await.unwrap();
    let lp_actors::ai::AiBody::Full(body) = answer.body else { panic!("a JSON answer") };
    assert_eq!(answer.status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("unreadable price"));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// Among equally warm and fast orchestrators the cheapest per pixel is used (10 wei per 5
/// pixels before 3 wei per pixel, though listed second); a model's own listed price is what the
/// cap is held against, not the first price of its pipeline.
#[actix::test]
async fn the_cheapest_per_pixel_is_used_and_each_models_own_price_is_capped() {
    let transport = Loopback::default();
    let dear = priced("dear", 3, 1, ai_pool(false).await.0);
    let cheap = priced("cheap", 10, 5, ai_pool(false).await.0);
    let gateway = gateway_over(&transport, vec![("dear", dear), ("cheap", cheap.clone())]).start();
    assert_eq!(gateway.send(upscale_form("x2")).await.unwrap().status, 200);
    assert_eq!(*transport.inferred.borrow(), ["cheap"]);

    // x2 costs 2 wei a pixel there; the cap is 1 (the free price listed first is another model's).
    let capped = Loopback::default();
    let at_one = Price { per_unit: 1, pixels_per_unit: 1 };
    let gateway = gateway_over(&capped, vec![("cheap", cheap)]).max_price(at_one).start();
    let refused = gateway.send(upscale_form("x2")).await.unwrap();
    assert_eq!(refused.status, 503);
    assert!(text(&refused).contains("above the cap"), "{}", text(&refused));
    assert!(capped.inferred.borrow().is_empty(), "sent to an orchestrator above the cap");
}

/// Orchestrators' terms are asked for once and used until they are older than the TTL.
#[actix::test]
async fn terms_are_used_until_the_ttl_then_asked_again() {
    let transport = Loopback::default();
    let o = orchestrator("o", true, ai_pool(false).await.0);
    let ttl = Duration::from_millis(500);
    let gateway = gateway_over(&transport, vec![("o", o)]).ai_info_ttl(ttl).start();
    for _ in 0..2 {
        assert_eq!(gateway.send(upscale_form("x2")).await.unwrap().status, 200);
    }
    assert_eq!(*transport.asked.borrow(), ["o"], "asked again within the TTL");
    // Time passing, not synchronisation: the terms must be older than the TTL.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(gateway.send(upscale_form("x2")).await.unwrap().status, 200);
    assert_eq!(*transport.asked.borrow(), ["o", "o"], "stale terms used");
}

/// No orchestrator listed (an on-chain pool not read yet): 503, not the 400 of a model that
/// every orchestrator answered it does not offer.
#[actix::test]
async fn with_no_orchestrator_listed_the_answer_is_503() {
    let gateway = gateway_over(&Loopback::default(), vec![]).start();
    let answer = gateway.send(upscale_form("x2")).await.unwrap();
    assert_eq!(answer.status, 503, "{}", text(&answer));
    assert!(text(&answer).contains("no orchestrators available"), "{}", text(&answer));
}

/// A request is tried on at most MAX_AI_TRIES orchestrators: here four offer the model but
/// none has a worker for it (each answers 503).
#[actix::test]
async fn a_request_is_tried_on_at_most_max_ai_tries_orchestrators() {
    let transport = Loopback::default();
    let uris = ["o1", "o2", "o3", "o4"];
    let orchestrators = uris.iter().map(|&uri| (uri, orchestrator(uri, true, AiPool::new(0).start()))).collect();
    let gateway = gateway_over(&transport, orchestrators).start();
    let answer = gateway.send(upscale_form("x2")).await.unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(transport.inferred.borrow().len(), MAX_AI_TRIES, "{:?}", transport.inferred.borrow());
}

/// An orchestrator whose worker fails a request (500) is suspended: the request goes on to the
/// next one, and later requests go to the others first while it is suspended.
#[actix::test]
async fn an_orchestrator_that_fails_a_request_is_suspended() {
    let failing: WorkFn<AiJob> = Arc::new(|_: &AiJob| {
        Err(TranscodeFailure { code: ErrorCode::TranscoderFailed, message: "device lost".into() })
    });
    let broken = AiPool::new(0).start();
    let worker = LocalWorker::new("broken", failing).start();
    let offer = lp_actors::orchestrator::inference::offer(Pipeline::Upscale, "x2");
    broken
        .send(RegisterWorker {
            remote_sessions: None,
            name: "broken".into(),
            capacity: 1,
            offer,
            recipient: worker.recipient(),
        })
        .await
        .unwrap();
    let transport = Loopback::default();
    let bad = orchestrator("bad", true, broken);
    let good = orchestrator("good", false, ai_pool(false).await.0);
    // The broken one is warm: ranked first until it fails.
    let gateway = gateway_over(&transport, vec![("good", good), ("bad", bad)]).start();
    assert_eq!(gateway.send(upscale_form("x2")).await.unwrap().status, 200);
    assert_eq!(*transport.inferred.borrow(), ["bad", "good"]);
    assert_eq!(gateway.send(upscale_form("x2")).await.unwrap().status, 200);
    assert_eq!(*transport.inferred.borrow(), ["bad", "good", "good"], "the failed one was not suspended");
    assert!(!gateway.send(HasAlternatives("good".into())).await.unwrap());
}

/// A gateway over two warm, free orchestrators, a and b, listed in that order.
async fn warm_a_and_b(transport: &Loopback) -> Addr<OrchestratorPool> {
    let a = orchestrator("a", true, ai_pool(false).await.0);
    let b = orchestrator("b", true, ai_pool(false).await.0);
    gateway_over(transport, vec![("a", a), ("b", b)]).start()
}

/// Among equally warm, free orchestrators one not tried yet comes before one whose latency is
/// known (so each is measured): the second request goes to the other one.
#[actix::test]
async fn an_orchestrator_not_tried_yet_comes_before_one_with_a_known_latency() {
    let transport = Loopback::default();
    let gateway = warm_a_and_b(&transport).await;
    for _ in 0..2 {
        assert_eq!(gateway.send(upscale_form("x2")).await.unwrap().status, 200);
    }
    assert_eq!(*transport.inferred.borrow(), ["a", "b"]);
}

/// A request the orchestrator answers 400 (an image that does not decode) is the client's
/// fault: that answer is the gateway's, at once; no other orchestrator is tried and none is
/// suspended.
#[actix::test]
async fn a_bad_request_is_answered_as_the_orchestrator_answered_it_without_trying_another() {
    let transport = Loopback::default();
    let gateway = warm_a_and_b(&transport).await;
    let (content_type, body) =
        lp_testkit::multipart::form(&[("model_id", "x2"), ("prompt", "p")], &[("image", b"not an image")]);
    let request =
        InferAi { pipeline: Pipeline::Upscale, model_id: "x2".into(), units: 12, content_type, body: body.into() };
    let answer = gateway.send(request).await.unwrap();
    assert_eq!(answer.status, 400, "{}", text(&answer));
    assert_eq!(transport.inferred.borrow().len(), 1, "{:?}", transport.inferred.borrow());
    assert!(gateway.send(HasAlternatives("b".into())).await.unwrap(), "a was suspended for the client's request");
}

/// The worker counts each cold model it evicts in `livepeer_ai_model_evictions_total`, by the
/// evicted model's pipeline, also when the load that needed the room then failed; a model
/// whose load failed is not tried again at once, so it evicts nothing more. A load is timed in
/// `livepeer_ai_model_load_seconds` also when the request it was for then fails.
#[test]
fn evictions_and_loads_are_counted_also_for_a_request_that_failed() {
    let metrics = common::Metrics::local();
    let rt = Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)");
    let dir = PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)"));
    let spec = |id: &str, file: &str| ModelSpec {
        pipeline: Pipeline::Upscale,
        model_id: id.into(),
        path: dir.join(file),
        warm: false,
    };
    // Room for either, not both.
    let budget = std::fs::metadata(dir.join("upscale_x2_nearest.onnx")).unwrap().len();
    let specs = vec![
        spec("good", "upscale_x2_nearest.onnx"),
        spec("bad", "mismatch_int_input.onnx"),
        spec("twin", "upscale_x2_nearest.onnx"),
    ];
    let run = inference(ModelSet::new(rt, specs, budget));
    let evictions = || metrics.value("livepeer_ai_model_evictions_total{pipeline=\"upscale\"}");
    let loads = || metrics.value("livepeer_ai_model_load_seconds_count{pipeline=\"upscale\"}");

    run(&job("good")).expect("the good model serves");
    assert_eq!((evictions(), loads()), (None, Some(1.0)));
    let failed = run(&job("bad")).expect_err("the bad model does not load");
    assert!(failed.message.contains("does not fit the upscale pipeline"), "{}", failed.message);
    assert_eq!(evictions(), Some(1.0), "good made room for bad before bad failed");
    run(&job("good")).expect("loaded again");
    assert_eq!(run(&job("bad")).expect_err("the same error").message, failed.message);
    assert_eq!((evictions(), loads()), (Some(1.0), Some(2.0)));
    let undecodable = AiRequest::Upscale(UpscaleRequest::new("twin", "", b"not a png".to_vec()));
    let failed = run(&AiJob { request: Arc::new(undecodable), ..job("twin") }).expect_err("not an image");
    assert_eq!(failed.code, ErrorCode::InvalidInput, "{}", failed.message);
    assert_eq!((evictions(), loads()), (Some(2.0), Some(3.0)), "twin was loaded, in good's room");
}
