//! The AI worker role (`livepeer ai-worker`): ONNX Runtime and the models of `[ai_worker]`
//! (warm ones loaded before anything connects: a model that does not load stops the start), one
//! local inference worker on its own AI pool, and the link to the orchestrator, whose protocol
//! is lp-actors' [`lp_actors::worker::run`].
//!
//! It dials the orchestrator's `GET /transcoder` WebSocket as a transcoder does (see
//! [`crate::transcoder`]) and registers its models: each pipeline's capability bit and, in the
//! capabilities' constraints, each model with its capacity; `capacity` is their total.

use anyhow::Result;
use lp_actors::orchestrator::{AiPool, add_inference_worker};
use lp_actors::supervision::{Policy, Watchdog};
use lp_actors::worker::{Health, LinkSettings, LocalPool};
use lp_config::AiWorkerConfig;
use lp_pipelines::ai::ModelSet;
use lp_wire::Capabilities;

use crate::transcoder::{connect, ws_url};

/// Start the local pool under `watchdog` with the loaded `models` (and each one's capacity;
/// [`crate::ai::load_worker`]) and serve the orchestrator, registering `capabilities`
/// ([`crate::ai::worker_capabilities`]), until refused.
pub async fn run(
    cfg: AiWorkerConfig,
    secret: String,
    capabilities: Capabilities,
    (models, capacities): (ModelSet, Vec<u32>),
    health: Health,
    watchdog: &Watchdog,
) -> Result<()> {
    let capacity = capacities.iter().sum();
    // The orchestrator sends at most each model's capacity at once: nothing needs to queue.
    let pool = watchdog.start("ai_pool", Policy::Permanent, AiPool::new(0));
    add_inference_worker(&pool, "ai-worker", models, &capacities).await?;
    let url = ws_url(&cfg.orchestrator)?;
    let base = cfg.orchestrator.trim_end_matches('/').to_string();
    let settings = LinkSettings { orchestrator: cfg.orchestrator.clone(), secret, capacity, sessions: None };
    let local = LocalPool::Ai { pool, capabilities };
    let refused = lp_actors::worker::run(settings, local, health, || connect(&base, &url)).await;
    Err(refused.into())
}
