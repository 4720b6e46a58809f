//! The demo's AI requests: the orchestrator serves two small models that `make setup` makes
//! (`build/models`: a ×2 upscaler and a tiny chat model; free offchain, priced on the devnet,
//! [`priced`]), and after the stream the demo sends one `upscale` and one `llm` request through
//! the gateway, as a client would.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use base64::Engine;
use lp_config::{ModelConfig, Wei};
use serde::Serialize;
use serde_json::{Value, json};

pub const UPSCALE_MODEL: &str = "demo-upscale-x2";
pub const LLM_MODEL: &str = "demo-tiny-llm";
const UPSCALE_FILE: &str = "upscale_x2_blur.onnx";
const LLM_DIR: &str = "tiny-llm";
/// The upscaled frame's width (its height keeps the stream's aspect: 320x180).
pub const FRAME_WIDTH: u32 = 320;
const FRAME_PIXELS: u64 = FRAME_WIDTH as u64 * FRAME_WIDTH as u64 * 9 / 16;
/// The chat's `max_tokens`, which it pays for up front.
const LLM_MAX_TOKENS: u64 = 64;
/// On the devnet, the upscale costs this many tickets' expected value, and the chat this many.
pub const UPSCALE_EVS: u64 = 2;
pub const LLM_EVS: u64 = 1;
/// What `make setup` installs, when no ORT_DYLIB_PATH says otherwise.
const SETUP_RUNTIME: &str = "build/onnxruntime/libonnxruntime.so";

/// The demo's models in `dir`, and the ONNX Runtime to load them with; `None` when `dir` lacks
/// them or no runtime is found (the demo then runs without AI and says so).
pub fn models(dir: &Path) -> Option<(Option<PathBuf>, Vec<ModelConfig>)> {
    let (upscale, llm) = (dir.join(UPSCALE_FILE), dir.join(LLM_DIR));
    if !upscale.is_file() || !llm.is_dir() {
        return None;
    }
    let runtime = match std::env::var_os(lp_pipelines::ai::runtime::LIBRARY_ENV) {
        Some(_) => None,
        None => Some(std::fs::canonicalize(SETUP_RUNTIME).ok()?),
    };
    let upscale = ModelConfig { warm: true, path: Some(upscale), ..ModelConfig::new("upscale", UPSCALE_MODEL) };
    let llm = ModelConfig { warm: true, path: Some(llm), ..ModelConfig::new("llm", LLM_MODEL) };
    Some((runtime, vec![upscale, llm]))
}

/// `models` priced so that the demo's upscale costs [`UPSCALE_EVS`] tickets of `ticket_ev` and
/// its chat [`LLM_EVS`] (in wei per input pixel and per token of `max_tokens`), as the gateway
/// pays them up front.
pub fn priced(models: Vec<ModelConfig>, ticket_ev: u64) -> Vec<ModelConfig> {
    models
        .into_iter()
        .map(|m| {
            let price_per_unit = match m.model_id.as_str() {
                UPSCALE_MODEL => Wei::from(UPSCALE_EVS * ticket_ev / FRAME_PIXELS),
                LLM_MODEL => Wei::from(LLM_EVS * ticket_ev / LLM_MAX_TOKENS),
                _ => m.price_per_unit,
            };
            ModelConfig { price_per_unit, ..m }
        })
        .collect()
}

/// The AI requests of the run, in `summary.json`.
#[derive(Debug, Serialize)]
pub struct AiSummary {
    pub upscale_input: String,
    pub upscale_output: String,
    pub upscaled_image: String,
    pub upscale_ms: u64,
    pub llm_prompt: String,
    pub llm_answer: String,
    pub llm_completion_tokens: u64,
    pub llm_ms: u64,
}

impl AiSummary {
    pub fn print(&self) {
        println!(
            "  ai upscale      {} → {} in {} ms ({UPSCALE_MODEL}): {}",
            self.upscale_input, self.upscale_output, self.upscale_ms, self.upscaled_image
        );
        println!(
            "  ai llm          {:?} → {:?}, {} tokens in {} ms ({LLM_MODEL})",
            self.llm_prompt, self.llm_answer, self.llm_completion_tokens, self.llm_ms
        );
    }
}

/// One upscale of a frame of the test stream (the result written to `out`) and one chat,
/// through `gateway`.
pub async fn run(gateway: &str, frame: &[u8], out: &Path) -> Result<AiSummary> {
    let client = crate::client::http_client(std::time::Duration::from_secs(120));
    let input = image::load_from_memory(frame).context("the demo frame")?;
    let boundary = "livepeer-demo";
    let mut body = Vec::new();
    for (name, value) in [("model_id", UPSCALE_MODEL), ("prompt", "a sharper test card")] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"frame.png\"\r\nContent-Type: image/png\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(frame);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let started = Instant::now();
    let answer =
        post(&client, &format!("{gateway}/upscale"), &format!("multipart/form-data; boundary={boundary}"), body)
            .await?;
    let upscale_ms = started.elapsed().as_millis() as u64;
    let url = answer["images"][0]["url"].as_str().context("no image in the upscale answer")?;
    let png = url.strip_prefix("data:image/png;base64,").context("the upscaled image is not a PNG data URL")?;
    let png = base64::engine::general_purpose::STANDARD.decode(png)?;
    std::fs::write(out, &png)?;
    let output = image::load_from_memory(&png)?;
    if (output.width(), output.height()) != (input.width() * 2, input.height() * 2) {
        bail!("upscale answered {}x{} for {}x{}", output.width(), output.height(), input.width(), input.height());
    }

    let prompt = "start at zero";
    let chat = json!({
        "model": LLM_MODEL,
        "messages": [{"role": "system", "content": "count to four"}, {"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": LLM_MAX_TOKENS,
    });
    let started = Instant::now();
    let answer = post(&client, &format!("{gateway}/llm"), "application/json", serde_json::to_vec(&chat)?).await?;
    let llm_ms = started.elapsed().as_millis() as u64;
    Ok(AiSummary {
        upscale_input: format!("{}x{}", input.width(), input.height()),
        upscale_output: format!("{}x{}", output.width(), output.height()),
        upscaled_image: out.display().to_string(),
        upscale_ms,
        llm_prompt: prompt.into(),
        llm_answer: answer["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_string(),
        llm_completion_tokens: answer["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        llm_ms,
    })
}

async fn post(client: &awc::Client, url: &str, content_type: &str, body: Vec<u8>) -> Result<Value> {
    let mut resp = client
        .post(url)
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
    let text = resp.body().limit(64 << 20).await?;
    if !resp.status().is_success() {
        bail!("POST {url}: HTTP {}: {}", resp.status(), String::from_utf8_lossy(&text));
    }
    Ok(serde_json::from_slice(&text)?)
}

/// The `curl` lines for the demo's models, for `--serve`.
pub fn print_curl(gateway: &str) {
    println!("AI requests (the demo's models; any PNG or JPEG works for upscale):");
    println!("  curl -F model_id={UPSCALE_MODEL} -F prompt=sharper -F image=@frame.png {gateway}/upscale");
    println!(
        "  curl -H 'Content-Type: application/json' -d '{{\"model\":\"{LLM_MODEL}\",\"messages\":[{{\"role\":\"system\",\"content\":\"count to four\"}},{{\"role\":\"user\",\"content\":\"start at zero\"}}],\"stream\":true}}' {gateway}/llm"
    );
}
