//! The orchestrator's AI models, from `[orchestrator]`'s keys and `[[orchestrator.models]]`:
//! what it advertises to gateways (capability bits, models, prices) and the models its local
//! inference worker loads at start (those with a `path`; the others only remote AI workers
//! serve). An AI worker's (`[ai_worker]`) models load the same way, and it registers them with
//! its orchestrator ([`worker_capabilities`]).

use anyhow::{Context as _, Result, bail};
use lp_actors::gateway::AiPriceCaps;
use lp_chain::pm::Price;
use lp_config::{AiWorkerConfig, GatewayConfig, OrchestratorConfig};
use lp_pipelines::ai::{Device, ModelSet, ModelSpec, Runtime, RuntimeOptions, SafetyModel};
use lp_wire::ai::Pipeline;
use lp_wire::{Capabilities, ModelConstraint, PriceInfo};
use tracing::info;

/// A model entry's pipeline (lp-config accepts only served ones).
fn pipeline(name: &str) -> Result<Pipeline> {
    Pipeline::from_name(name).filter(|p| p.served()).with_context(|| format!("AI pipeline {name:?} is not served"))
}

/// Add `model_id` of `pipeline_name` to `caps`: the pipeline's capability bit, and the model in
/// its constraints. Answers the capability.
fn offer(caps: &mut Capabilities, pipeline_name: &str, model_id: &str, warm: bool, capacity: u32) -> Result<u32> {
    let cap = pipeline(pipeline_name)?.capability();
    caps.set(cap);
    let model = ModelConstraint { warm, capacity, capacity_in_use: 0 };
    caps.constraints.entry(cap).or_default().insert(model_id.to_string(), model);
    Ok(cap)
}

/// What the orchestrator offers gateways: `base` plus each model's capability bit and
/// constraint (warm, capacity), and each model's price (`capabilities_prices`).
pub fn offered(o: &OrchestratorConfig, mut base: Capabilities) -> Result<(Capabilities, Vec<PriceInfo>)> {
    let mut prices = Vec::new();
    for (i, m) in o.models.iter().enumerate() {
        let key = |k: &str| format!("orchestrator.models[{i}].{k}");
        let cap = offer(&mut base, &m.pipeline, &m.model_id, m.warm, m.capacity)?;
        prices.push(PriceInfo {
            price_per_unit: i64::try_from(m.price_per_unit.as_u256()).with_context(|| key("price_per_unit"))?,
            pixels_per_unit: i64::try_from(m.pixels_per_unit).with_context(|| key("pixels_per_unit"))?,
            capability: cap,
            constraint: m.model_id.clone(),
        });
    }
    Ok((base, prices))
}

/// One model to run locally.
struct Local {
    pipeline: String,
    model_id: String,
    path: std::path::PathBuf,
    warm: bool,
    capacity: u32,
}

/// Where and how the models run: `[orchestrator]`'s or `[ai_worker]`'s AI keys.
struct RuntimeKeys<'a> {
    /// The section, in error messages (`orchestrator`, `ai_worker`).
    section: &'static str,
    onnxruntime_path: &'a Option<std::path::PathBuf>,
    ai_device: &'a str,
    ai_threads: u32,
    ai_cold_memory_mb: u64,
    safety_model: &'a Option<std::path::PathBuf>,
}

/// Start ONNX Runtime and load the warm models (on a blocking thread: a large model takes
/// seconds). Answers the models and each one's capacity, in config order; `None` without
/// models, or when none has a `path` (remote AI workers serve them).
pub async fn load(o: &OrchestratorConfig) -> Result<Option<(ModelSet, Vec<u32>)>> {
    for m in o.models.iter().filter(|m| m.path.is_none()) {
        info!(
            target: "lp::ai",
            pipeline = %m.pipeline,
            model = %m.model_id,
            "no path: served by remote AI workers only (`livepeer ai-worker`); requests get 503 until one registers it"
        );
    }
    let local = o
        .models
        .iter()
        .filter_map(|m| {
            let path = m.path.clone()?;
            Some(Local {
                pipeline: m.pipeline.clone(),
                model_id: m.model_id.clone(),
                path,
                warm: m.warm,
                capacity: m.capacity,
            })
        })
        .collect();
    let keys = RuntimeKeys {
        section: "orchestrator",
        onnxruntime_path: &o.onnxruntime_path,
        ai_device: &o.ai_device,
        ai_threads: o.ai_threads,
        ai_cold_memory_mb: o.ai_cold_memory_mb,
        safety_model: &o.safety_model,
    };
    load_models(keys, local).await
}

/// An AI worker's models, loaded as [`load`] does the orchestrator's.
pub async fn load_worker(w: &AiWorkerConfig) -> Result<(ModelSet, Vec<u32>)> {
    let local = w
        .models
        .iter()
        .map(|m| Local {
            pipeline: m.pipeline.clone(),
            model_id: m.model_id.clone(),
            path: m.path.clone(),
            warm: m.warm,
            capacity: m.capacity,
        })
        .collect();
    let keys = RuntimeKeys {
        section: "ai_worker",
        onnxruntime_path: &w.onnxruntime_path,
        ai_device: &w.ai_device,
        ai_threads: w.ai_threads,
        ai_cold_memory_mb: w.ai_cold_memory_mb,
        safety_model: &w.safety_model,
    };
    load_models(keys, local).await?.context("[ai_worker] lists no model")
}

/// What an AI worker registers with: each model's pipeline bit, and the model with its
/// capacity and warmth in the constraints.
pub fn worker_capabilities(w: &AiWorkerConfig) -> Result<Capabilities> {
    let mut caps = Capabilities { version: env!("CARGO_PKG_VERSION").to_string(), ..Default::default() };
    for m in &w.models {
        offer(&mut caps, &m.pipeline, &m.model_id, m.warm, m.capacity)?;
    }
    Ok(caps)
}

async fn load_models(keys: RuntimeKeys<'_>, models: Vec<Local>) -> Result<Option<(ModelSet, Vec<u32>)>> {
    if models.is_empty() {
        return Ok(None);
    }
    let section = keys.section;
    let device: Device =
        keys.ai_device.parse().map_err(anyhow::Error::msg).with_context(|| format!("{section}.ai_device"))?;
    let opts = RuntimeOptions { library: keys.onnxruntime_path.clone(), device, threads: keys.ai_threads as usize };
    let specs = models
        .iter()
        .map(|m| {
            if !m.path.exists() {
                bail!("{section}.models: {} model {:?}: {} does not exist", m.pipeline, m.model_id, m.path.display());
            }
            Ok(ModelSpec {
                pipeline: pipeline(&m.pipeline)?,
                model_id: m.model_id.clone(),
                path: m.path.clone(),
                warm: m.warm,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let capacities = models.iter().map(|m| m.capacity).collect();
    let budget = keys.ai_cold_memory_mb.saturating_mul(1 << 20);
    let safety = keys.safety_model.clone();
    let set = actix_web::rt::task::spawn_blocking(move || -> Result<ModelSet> {
        let rt = Runtime::start(&opts).with_context(|| format!("starting ONNX Runtime for {section}.models"))?;
        let mut set = ModelSet::new(rt.clone(), specs, budget);
        if let Some(path) = safety {
            let model = SafetyModel::load(&rt, &path).with_context(|| format!("{section}.safety_model"))?;
            set = set.with_safety(model);
        }
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
