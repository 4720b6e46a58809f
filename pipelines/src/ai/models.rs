//! The models one inference worker serves on its device: which are loaded, loading cold ones on
//! first use and evicting them least-recently-used past a memory budget, and running a request
//! on the model it names.
//!
//! - **Warm** models load at start ([`ModelSet::load_warm`]; a failure stops the start) and stay
//!   loaded.
//! - **Cold** models load on their first request and share `cold_budget` bytes: a model's size
//!   is taken to be its files' size on disk (the weights ONNX Runtime holds); loading one that
//!   does not fit evicts the cold models used least recently until it does, and one larger than
//!   the whole budget is refused ([`AiError::OverBudget`]). The room is made before the load,
//!   so that the budget holds while it runs: a load that then fails has evicted all the same,
//!   and [`ModelSet::take_evicted`] tells every eviction either way ([`ModelSet::take_loaded`]
//!   every load, also for a request that then failed).
//! - A model whose load on a request **failed** (a file ONNX Runtime refuses, inputs that do not
//!   fit) is answered that error for [`LOAD_RETRY_AFTER`] without another try: a broken cold
//!   model asked for over and over must not evict the cold models that work, and load again,
//!   every time.
//!
//! An image response's `nsfw` is the verdict of the worker's safety model
//! ([`ModelSet::with_safety`], NudeNet: [`super::safety`]) on the output image when the request
//! asks for the check (`safety_check`, true by default); it is false when the request does not
//! ask, and always false for a worker without a safety model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use lp_wire::ai::{
    AiRequest, AiResponse, ImageResponse, ImageToTextResponse, LlmChoice, LlmMessage, LlmRequest, LlmResponse,
    LlmTokenUsage, Media, Pipeline,
};

use super::image::{self, ImageModel, ImageTask};
use super::llm::{Generation, LlmModel, Sampling};
use super::ocr::OcrModel;
use super::safety::SafetyModel;
use super::{AiError, Runtime};

/// One model a worker serves, as the config declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub pipeline: Pipeline,
    pub model_id: String,
    /// The model file, or for multi-file models (OCR, LLM) their directory.
    pub path: PathBuf,
    pub warm: bool,
}

/// A model loaded for its pipeline.
enum Loaded {
    Image(ImageModel),
    Ocr(OcrModel),
    Llm(LlmModel),
}

struct Slot {
    model: Loaded,
    bytes: u64,
    warm: bool,
    last_used: u64,
}

/// A model that was loaded, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Loading {
    pub pipeline: Pipeline,
    pub model_id: String,
    pub seconds: f64,
}

/// How long a model whose load failed is refused with that error before it is tried again.
pub const LOAD_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The models of one worker. Not `Sync`: one thread owns it.
pub struct ModelSet {
    rt: Arc<Runtime>,
    specs: Vec<ModelSpec>,
    loaded: HashMap<(Pipeline, String), Slot>,
    /// The models whose last load failed: when, and why.
    failed: HashMap<(Pipeline, String), (Instant, AiError)>,
    /// The cold models evicted since [`take_evicted`](Self::take_evicted) was last called.
    evicted: Vec<(Pipeline, String)>,
    /// The cold models loaded since [`take_loaded`](Self::take_loaded) was last called.
    loads: Vec<Loading>,
    retry_after: Duration,
    cold_budget: u64,
    clock: u64,
    safety: Option<SafetyModel>,
}

impl ModelSet {
    pub fn new(rt: Arc<Runtime>, specs: Vec<ModelSpec>, cold_budget: u64) -> ModelSet {
        ModelSet {
            rt,
            specs,
            loaded: HashMap::new(),
            failed: HashMap::new(),
            evicted: Vec::new(),
            loads: Vec::new(),
            retry_after: LOAD_RETRY_AFTER,
            cold_budget,
            clock: 0,
            safety: None,
        }
    }

    /// How long a failed load is answered without another try, instead of
    /// [`LOAD_RETRY_AFTER`] (tests).
    pub fn load_retry_after(mut self, wait: Duration) -> ModelSet {
        self.retry_after = wait;
        self
    }

    /// This set with `safety` checking the images it makes (`nsfw`), for requests that ask.
    /// It is not one of the served models: it stays loaded and outside the cold budget.
    pub fn with_safety(mut self, safety: SafetyModel) -> ModelSet {
        self.safety = Some(safety);
        self
    }

    pub fn specs(&self) -> &[ModelSpec] {
        &self.specs
    }

    /// Load every warm model; the first that fails is the error.
    pub fn load_warm(&mut self) -> Result<Vec<Loading>, AiError> {
        let warm: Vec<ModelSpec> = self
            .specs
            .iter()
            .filter(|s| s.warm && !self.loaded.contains_key(&(s.pipeline, s.model_id.clone())))
            .cloned()
            .collect();
        warm.iter().map(|s| self.load(s)).collect()
    }

    /// Forget every loaded model (after a panic left them in an unknown state); warm ones load
    /// again on [`load_warm`](Self::load_warm), cold ones on their next request.
    pub fn reset(&mut self) {
        self.loaded.clear();
    }

    /// The models loaded now: (pipeline, model id, warm).
    pub fn loaded(&self) -> Vec<(Pipeline, String, bool)> {
        let mut list: Vec<_> = self.loaded.iter().map(|((p, m), slot)| (*p, m.clone(), slot.warm)).collect();
        list.sort();
        list
    }

    /// The cold models evicted to make room for another since the last call, whether its load
    /// then succeeded or not.
    pub fn take_evicted(&mut self) -> Vec<(Pipeline, String)> {
        std::mem::take(&mut self.evicted)
    }

    /// The cold models loaded for a request since the last call, whether the request then
    /// succeeded or not.
    pub fn take_loaded(&mut self) -> Vec<Loading> {
        std::mem::take(&mut self.loads)
    }

    fn load(&mut self, spec: &ModelSpec) -> Result<Loading, AiError> {
        let bytes = size_on_disk(&spec.path);
        if !spec.warm {
            if bytes > self.cold_budget {
                return Err(AiError::OverBudget {
                    model_id: spec.model_id.clone(),
                    needed_mb: bytes.div_ceil(1 << 20),
                    budget_mb: self.cold_budget >> 20,
                });
            }
            while self.cold_bytes() + bytes > self.cold_budget {
                let Some(lru) = self.least_recent_cold() else { break };
                self.loaded.remove(&lru);
                self.evicted.push(lru);
            }
        }
        let started = Instant::now();
        let model = match spec.pipeline {
            Pipeline::Upscale => {
                Loaded::Image(ImageModel::load(&self.rt, &spec.model_id, &spec.path, ImageTask::Upscale)?)
            }
            Pipeline::ImageToImage => {
                Loaded::Image(ImageModel::load(&self.rt, &spec.model_id, &spec.path, ImageTask::ImageToImage)?)
            }
            Pipeline::ImageToText => Loaded::Ocr(OcrModel::load(&self.rt, &spec.model_id, &spec.path)?),
            Pipeline::Llm => Loaded::Llm(LlmModel::load(&self.rt, &spec.model_id, &spec.path)?),
            other => {
                return Err(AiError::ModelMismatch {
                    model_id: spec.model_id.clone(),
                    pipeline: other.to_string(),
                    reason: "this build does not serve the pipeline".into(),
                });
            }
        };
        self.clock += 1;
        let slot = Slot { model, bytes, warm: spec.warm, last_used: self.clock };
        self.loaded.insert((spec.pipeline, spec.model_id.clone()), slot);
        Ok(Loading {
            pipeline: spec.pipeline,
            model_id: spec.model_id.clone(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn cold_bytes(&self) -> u64 {
        self.loaded.values().filter(|s| !s.warm).map(|s| s.bytes).sum()
    }

    fn least_recent_cold(&self) -> Option<(Pipeline, String)> {
        self.loaded.iter().filter(|(_, s)| !s.warm).min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone())
    }

    /// The loaded model for `pipeline` and `model_id`, loading it if it is cold (the loading
    /// is told by [`take_loaded`](Self::take_loaded)).
    fn model(&mut self, pipeline: Pipeline, model_id: &str) -> Result<&mut Loaded, AiError> {
        let key = (pipeline, model_id.to_string());
        if !self.loaded.contains_key(&key) {
            let spec = self
                .specs
                .iter()
                .find(|s| s.pipeline == pipeline && s.model_id == model_id)
                .cloned()
                .ok_or_else(|| AiError::UnknownModel(model_id.into()))?;
            if let Some((at, e)) = self.failed.get(&key)
                && at.elapsed() < self.retry_after
            {
                return Err(e.clone());
            }
            match self.load(&spec) {
                Ok(loading) => {
                    self.failed.remove(&key);
                    self.loads.push(loading);
                }
                Err(e) => {
                    self.failed.insert(key, (Instant::now(), e.clone()));
                    return Err(e);
                }
            }
        }
        self.clock += 1;
        let slot = self.loaded.get_mut(&key).expect("loaded above");
        slot.last_used = self.clock;
        Ok(&mut slot.model)
    }

    /// Run `request` on the model it names. `on_token` hears the text of a streaming
    /// generation as it is made (returning false stops it). A cold model it needed is loaded
    /// first (see [`take_loaded`](Self::take_loaded)).
    pub fn infer(
        &mut self,
        request: &AiRequest,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<AiResponse, AiError> {
        let model = self.model(request.pipeline(), request.model_id())?;
        let (out, seed, safety_check) = match (request, model) {
            (AiRequest::Upscale(r), Loaded::Image(m)) => {
                let out = m.upscale(&image::decode(&r.image)?, image::DEFAULT_TILE)?;
                (::image::DynamicImage::ImageRgb8(out), r.seed, r.safety_check)
            }
            (AiRequest::ImageToImage(r), Loaded::Image(m)) => {
                (m.transform(&image::decode(&r.image)?)?, r.seed, r.safety_check)
            }
            (AiRequest::ImageToText(r), Loaded::Ocr(m)) => {
                let text = m.read(&image::decode(&r.image)?)?;
                return Ok(AiResponse::ImageToText(ImageToTextResponse { text }));
            }
            (AiRequest::Llm(r), Loaded::Llm(m)) => {
                let messages: Vec<_> = r.messages.iter().map(|m| (m.role.clone(), m.content.clone())).collect();
                return Ok(chat(r, m.generate(&messages, &sampling(r), on_token)?));
            }
            (request, _) => {
                return Err(AiError::Inference(format!(
                    "model {} is not a {} model",
                    request.model_id(),
                    request.pipeline()
                )));
            }
        };
        let nsfw = match (&mut self.safety, safety_check) {
            (Some(safety), true) => match &out {
                ::image::DynamicImage::ImageRgb8(rgb) => safety.is_nsfw(rgb)?,
                other => safety.is_nsfw(&other.to_rgb8())?,
            },
            _ => false,
        };
        Ok(images(&out, seed, nsfw))
    }
}

/// An [`ImageResponse`] with `image` as a PNG data URL (go-livepeer's runner answers the same;
/// an orchestrator with object storage would answer a URL instead) and the safety verdict.
fn images(image: &::image::DynamicImage, seed: Option<i64>, nsfw: bool) -> AiResponse {
    let png = image::encode_png(image);
    let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
    AiResponse::Image(ImageResponse { images: vec![Media { url, seed: seed.unwrap_or(0), nsfw }] })
}

fn sampling(r: &LlmRequest) -> Sampling {
    Sampling {
        temperature: r.temperature as f32,
        top_p: r.top_p as f32,
        top_k: r.top_k.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        max_tokens: r.max_tokens,
        seed: None,
    }
}

/// An [`LlmResponse`] with the whole answer as its one choice's `message`.
fn chat(r: &LlmRequest, g: Generation) -> AiResponse {
    let (prompt, completion) = (u64::from(g.prompt_tokens), u64::from(g.completion_tokens));
    AiResponse::Llm(LlmResponse {
        id: format!("chatcmpl-{:016x}", rand::random::<u64>()),
        model: r.model.clone(),
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
        usage: LlmTokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        },
        choices: vec![LlmChoice {
            index: 0,
            finish_reason: Some(g.finish_reason.to_string()),
            delta: None,
            message: Some(LlmMessage { role: "assistant".into(), content: g.text }),
        }],
    })
}

/// The bytes of a file, or of the files in a directory (not recursive).
fn size_on_disk(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|dir| dir.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
