//! The orchestrator's AI models, from `[orchestrator]`'s keys and `[[orchestrator.models]]`:
//! what it advertises to gateways (capability bits, models, prices) and the models its local
//! inference worker loads at start.

use anyhow::{Context as _, Result, bail};
use lp_actors::gateway::AiPriceCaps;
use lp_chain::pm::Price;
use lp_config::{GatewayConfig, OrchestratorConfig};
use lp_pipelines::ai::{Device, ModelSet, ModelSpec, Runtime, RuntimeOptions};
use lp_wire::ai::Pipeline;
use lp_wire::{Capabilities, ModelConstraint, PriceInfo};
use tracing::info;

/// A model entry's pipeline (lp-config accepts only served ones).
fn pipeline(name: &str) -> Result<Pipeline> {
    Pipeline::from_name(name).filter(|p| p.served()).with_context(|| format!("AI pipeline {name:?} is not served"))
}

/// What the orchestrator offers gateways: `base` plus each model's capability bit and
/// constraint (warm, capacity), and each model's price (`capabilities_prices`).
pub fn offered(o: &OrchestratorConfig, mut base: Capabilities) -> Result<(Capabilities, Vec<PriceInfo>)> {
    let mut prices = Vec::new();
    for (i, m) in o.models.iter().enumerate() {
        let key = |k: &str| format!("orchestrator.models[{i}].{k}");
        let cap = pipeline(&m.pipeline)?.capability();
        base.set(cap);
        base.constraints
            .entry(cap)
            .or_default()
            .insert(m.model_id.clone(), ModelConstraint { warm: m.warm, capacity: m.capacity, capacity_in_use: 0 });
        prices.push(PriceInfo {
            price_per_unit: i64::try_from(m.price_per_unit.as_u256()).with_context(|| key("price_per_unit"))?,
            pixels_per_unit: i64::try_from(m.pixels_per_unit).with_context(|| key("pixels_per_unit"))?,
            capability: cap,
            constraint: m.model_id.clone(),
        });
    }
    Ok((base, prices))
}

/// Start ONNX Runtime and load the warm models (on a blocking thread: a large model takes
/// seconds). Answers the models and each one's capacity, in config order; `None` without
/// models.
pub async fn load(o: &OrchestratorConfig) -> Result<Option<(ModelSet, Vec<u32>)>> {
    if o.models.is_empty() {
        return Ok(None);
    }
    let device: Device = o.ai_device.parse().map_err(anyhow::Error::msg).context("orchestrator.ai_device")?;
    let opts = RuntimeOptions { library: o.onnxruntime_path.clone(), device, threads: o.ai_threads as usize };
    let specs = o
        .models
        .iter()
        .map(|m| {
            if !m.path.exists() {
                bail!(
                    "orchestrator.models: {} model {:?}: {} does not exist",
                    m.pipeline,
                    m.model_id,
                    m.path.display()
                );
            }
            Ok(ModelSpec {
                pipeline: pipeline(&m.pipeline)?,
                model_id: m.model_id.clone(),
                path: m.path.clone(),
                warm: m.warm,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let capacities = o.models.iter().map(|m| m.capacity).collect();
    let budget = o.ai_cold_memory_mb.saturating_mul(1 << 20);
    let set = actix_web::rt::task::spawn_blocking(move || -> Result<ModelSet> {
        let rt = Runtime::start(&opts).context("starting ONNX Runtime for orchestrator.models")?;
        let mut set = ModelSet::new(rt, specs, budget);
        for l in set.load_warm().context("loading the warm models")? {
            info!(target: "lp::ai", pipeline = %l.pipeline, model = %l.model_id, seconds = l.seconds, "warm model loaded");
        }
        Ok(set)
    })
    .await
    .context("the model loader panicked")??;
    Ok(Some((set, capacities)))
}

/// The gateway's caps on AI prices (`[[gateway.ai_max_prices]]`): per (pipeline, model), with
/// model `None` for a `"default"` entry.
pub fn max_prices(g: &GatewayConfig) -> Result<AiPriceCaps> {
    g.ai_max_prices
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let model = (p.model_id != "default").then(|| p.model_id.clone());
            let per_unit = u64::try_from(p.price_per_unit.as_u256())
                .with_context(|| format!("gateway.ai_max_prices[{i}].price_per_unit"))?;
            Ok(((pipeline(&p.pipeline)?, model), Price { per_unit, pixels_per_unit: p.pixels_per_unit }))
        })
        .collect()
}
