//! The admin listener: `/metrics` (Prometheus text), `/healthz`, `/status` (JSON).
//!
//! `/healthz` answers 200 `ok`, or 503 with one line per failing part, each naming it: an actor
//! restarting after a panic or failed for good (from the node's [`Watchdog`]), or a transcoder
//! not registered with its orchestrator. `/status` shows each role's state and, under
//! `actors`, every kind of supervised actor with its restart and failure counts.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use lp_actors::chain::{ChainActors, GetPool, GetRound};
use lp_actors::gateway::GatewayHandle;
use lp_actors::orchestrator::OrchestratorHandle;
use lp_actors::supervision::Watchdog;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

#[derive(Clone)]
pub struct AdminState {
    pub metrics: PrometheusHandle,
    pub roles: Vec<&'static str>,
    pub watchdog: Watchdog,
    pub gateway: Option<GatewayHandle>,
    pub orchestrator: Option<OrchestratorHandle>,
    pub chain: Option<Arc<ChainActors>>,
    pub transcoder: Option<lp_actors::worker::Health>,
    /// An AI worker's link to its orchestrator.
    pub ai_worker: Option<lp_actors::worker::Health>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/status", web::get().to(status));
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    state.metrics.run_upkeep();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}

async fn healthz(state: web::Data<AdminState>) -> HttpResponse {
    let mut down = state.watchdog.health().err().unwrap_or_default();
    if let Some(Err(why)) = state.transcoder.as_ref().map(|t| t.check()) {
        down.push(format!("transcoder: {why}"));
    }
    if let Some(Err(why)) = state.ai_worker.as_ref().map(|t| t.check()) {
        down.push(format!("ai-worker: {why}"));
    }
    if down.is_empty() {
        return HttpResponse::Ok().content_type("text/plain").body("ok\n");
    }
    HttpResponse::ServiceUnavailable().content_type("text/plain").body(down.join("\n") + "\n")
}

async fn status(state: web::Data<AdminState>) -> HttpResponse {
    let mut out =
        json!({ "version": env!("CARGO_PKG_VERSION"), "roles": state.roles, "actors": state.watchdog.report() });
    if let Some(gateway) = &state.gateway {
        out["gateway"] = json!(gateway.report().await.ok());
    }
    if let Some(orchestrator) = &state.orchestrator {
        out["orchestrator"] = json!(orchestrator.report().await.ok());
    }
    if let Some(transcoder) = &state.transcoder {
        out["transcoder"] = json!(transcoder.status());
    }
    if let Some(worker) = &state.ai_worker {
        out["ai_worker"] = json!(worker.status());
    }
    if let Some(chain) = &state.chain {
        let round = chain.rounds.send(GetRound).await.ok().flatten();
        let pool = match &chain.registry {
            Some(r) => r.send(GetPool).await.ok(),
            None => None,
        };
        out["chain"] = json!({ "address": chain.address, "round": round, "orchestrator_pool": pool });
    }
    HttpResponse::Ok().json(out)
}
