//! `/healthz`, `/status` and `/metrics` tell the truth about a supervised actor that panicked:
//! 503 naming it while it waits for its restart, its restart counted, 200 once it is back.
//!
//! The panic is injected (`InjectPanic`): no real input makes the transcoder pool panic.

use std::time::{Duration, Instant};

use actix_web::{App, test, web};
use lp_actors::orchestrator::TranscoderPool;
use lp_actors::supervision::{InjectPanic, Policy, Watchdog};
use lp_node::http::admin::{self, AdminState};

#[actix::test]
async fn healthz_names_a_restarting_actor_and_the_metrics_count_its_restart() {
    // As the node does: the recorder first, then the actors.
    let metrics = lp_node::telemetry::metrics_handle();
    let watchdog = Watchdog::new();
    let pool = watchdog.start("transcoder_pool", Policy::Permanent, TranscoderPool::new(4));
    let state = AdminState {
        metrics,
        roles: vec!["orchestrator"],
        watchdog: watchdog.clone(),
        gateway: None,
        orchestrator: None,
        chain: None,
        transcoder: None,
        ai_worker: None,
    };
    let app = test::init_service(App::new().app_data(web::Data::new(state)).configure(admin::configure)).await;
    let get = |path: &'static str| test::TestRequest::get().uri(path).to_request();

    let ok = test::call_service(&app, get("/healthz")).await;
    assert_eq!(ok.status(), 200);
    let metrics = String::from_utf8(test::call_and_read_body(&app, get("/metrics")).await.to_vec()).unwrap();
    assert!(metrics.contains("livepeer_actor_restarts_total{actor=\"transcoder_pool\"} 0"), "{metrics}");

    pool.do_send(InjectPanic);
    let started = Instant::now();
    let body = loop {
        let resp = test::call_service(&app, get("/healthz")).await;
        if resp.status() == 503 {
            break String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "/healthz never reported the panic");
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    };
    assert_eq!(body, "transcoder_pool: restarting after a panic (injected panic in WorkerPool<transcode>)\n");

    while test::call_service(&app, get("/healthz")).await.status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "/healthz never recovered");
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
    let metrics = String::from_utf8(test::call_and_read_body(&app, get("/metrics")).await.to_vec()).unwrap();
    assert!(metrics.contains("livepeer_actor_restarts_total{actor=\"transcoder_pool\"} 1"), "{metrics}");
    assert!(metrics.contains("livepeer_actor_failures_total{actor=\"transcoder_pool\"} 0"), "{metrics}");
    let status: serde_json::Value = test::call_and_read_body_json(&app, get("/status")).await;
    let actors = status["actors"].as_array().unwrap();
    assert_eq!(actors.len(), 1, "{status}");
    assert_eq!(actors[0]["actor"], "transcoder_pool");
    assert_eq!(actors[0]["restarts"], 1);
    assert_eq!(actors[0]["instances"], 1);
    assert!(pool.connected());
}
