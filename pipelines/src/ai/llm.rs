//! `llm`: a decoder-only language model answering a chat, token by token, with a KV cache.
//!
//! A model is a directory: `model.onnx`, `tokenizer.json` (Hugging Face tokenizers format) and,
//! optionally, `generation_config.json` (its `eos_token_id`, a number or a list; or, in an
//! onnxruntime-genai model folder, `genai_config.json`'s `model.eos_token_id`). The ONNX model
//! follows the Hugging Face optimum / onnxruntime-genai export: inputs `input_ids` i64[batch,
//! seq], `attention_mask` i64[batch, past + seq], optionally `position_ids` i64[batch, seq] and
//! the cache `past_key_values.{i}.key` / `.value` f32[batch, heads, past, head_dim]; outputs
//! `logits` f32[batch, seq, vocab] and, for each past input, `present.{i}.key` / `.value` of
//! its type. The cache and the logits may be f16 instead (as exports for GPUs have them), each
//! cache tensor's type its own; a cache's heads are its own too (grouped-query attention has
//! fewer than the queries), and `position_ids` may be absent (genai's exports make positions
//! from the mask). What is inside is ONNX Runtime's (genai's int4 exports run, their weights in
//! `MatMulNBits`). This is checked at load. The prompt is fed once, then one token a step with
//! the `present` outputs fed back as the next `past`. A model without past inputs is accepted
//! too: each step then reruns the whole sequence (slow for long answers, but the same logits).
//!
//! Messages become one prompt through ChatML ([`chat_prompt`]), the template of Qwen2.5. An
//! answer ends at `<|im_end|>` (when the tokenizer has it) or at any of the config's
//! `eos_token_id`s, or after `max_tokens`. A request whose prompt and `max_tokens` together are
//! more than the model's context (genai_config.json's `model.context_length`, or config.json's
//! `max_position_embeddings`) is refused before it runs. Only a batch of one is supported.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use half::f16;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Outlet, Tensor, TensorElementType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokenizers::Tokenizer;

use super::io::{Want, describe, mismatch, tensor};
use super::{AiError, Runtime};

/// The longest prompt, in tokens, that a request may send (after the chat template).
pub const MAX_PROMPT_TOKENS: usize = 4096;
/// The most tokens a request may ask for (`max_tokens`).
pub const MAX_COMPLETION_TOKENS: u32 = 4096;
/// Temperatures up to this one pick the most likely token (greedy decoding).
pub const GREEDY_BELOW: f32 = 1e-5;
/// ChatML's end of a message, which also ends the answer.
pub const IM_END: &str = "<|im_end|>";

const PIPELINE: &str = "llm";
const IDS: Want = Want { ty: TensorElementType::Int64, dims: &[Some(1), None] };
const KV: Want = Want { ty: TensorElementType::Float32, dims: &[Some(1), None, None, None] };
const KV16: Want = Want { ty: TensorElementType::Float16, ..KV };
const LOGITS: Want = Want { ty: TensorElementType::Float32, dims: &[Some(1), None, None] };
const LOGITS16: Want = Want { ty: TensorElementType::Float16, ..LOGITS };

/// How to choose each token (the LLMRequest fields of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 (or up to [`GREEDY_BELOW`]): greedy; otherwise the logits are divided by it.
    pub temperature: f32,
    /// Nucleus sampling: keep the most likely tokens whose probabilities add up to `top_p`
    /// (0 < top_p ≤ 1; 1 keeps all).
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; 0 or less (-1) keeps all.
    pub top_k: i32,
    /// The most tokens to generate, the end-of-answer token included (1..=
    /// [`MAX_COMPLETION_TOKENS`]).
    pub max_tokens: u32,
    /// The same seed gives the same answer; `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl Default for Sampling {
    /// LLMRequest's defaults.
    fn default() -> Self {
        Sampling { temperature: 0.7, top_p: 1.0, top_k: -1, max_tokens: 256, seed: None }
    }
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The answer's text (special tokens left out); the pieces streamed add up to it.
    pub text: String,
    pub prompt_tokens: u32,
    /// Tokens generated, the end-of-answer token included.
    pub completion_tokens: u32,
    /// `"stop"`: the model ended the answer, or `on_token` asked to stop; `"length"`:
    /// `max_tokens` ran out first.
    pub finish_reason: &'static str,
}

/// One tensor of the KV cache: its `past_key_values.*` input, its `present.*` output and the
/// fixed sizes of its empty first value.
struct CacheTensor {
    past: String,
    present: String,
    heads: usize,
    head_dim: usize,
    f16: bool,
}

/// A loaded language model and its tokenizer.
pub struct LlmModel {
    session: Session,
    tokenizer: Tokenizer,
    /// The tokens that end an answer.
    eos: Vec<u32>,
    /// The most tokens it takes, prompt and answer, when its config says.
    context: Option<usize>,
    position_ids: bool,
    /// Its logits are f16.
    logits_f16: bool,
    /// Empty for a model without past inputs.
    cache: Vec<CacheTensor>,
    /// Off: every step reruns the whole sequence even when the model has a cache (for tests).
    use_cache: bool,
}

impl LlmModel {
    /// Load the model directory `dir`, refusing one without a tokenizer, whose inputs and
    /// outputs do not follow the convention above, or with no end-of-answer token.
    pub fn load(rt: &Runtime, model_id: &str, dir: &Path) -> Result<LlmModel, AiError> {
        let load_err =
            |path: &Path, reason: String| AiError::ModelLoad { model_id: model_id.into(), path: path.into(), reason };
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(load_err(
                &tokenizer_path,
                "no tokenizer.json in the model directory (a Hugging Face tokenizers file)".into(),
            ));
        }
        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| load_err(&tokenizer_path, e.to_string()))?;
        let config_eos = config_eos(dir).map_err(|(path, reason)| load_err(&path, reason))?;
        let context = config_context(dir).map_err(|(path, reason)| load_err(&path, reason))?;
        let model_path = dir.join("model.onnx");
        let session = rt.session(&model_path).map_err(|reason| load_err(&model_path, reason))?;
        let refuse = |reason: String| AiError::ModelMismatch {
            model_id: model_id.into(),
            pipeline: PIPELINE.into(),
            reason: format!("{reason} (the model has {})", describe(&session)),
        };
        let Io { position_ids, logits_f16, cache } = check_io(&session).map_err(refuse)?;
        let mut eos: Vec<u32> = tokenizer.token_to_id(IM_END).into_iter().chain(config_eos).collect();
        eos.sort_unstable();
        eos.dedup();
        if eos.is_empty() {
            return Err(refuse(format!(
                "no end-of-answer token: the tokenizer has no {IM_END} and there is no eos_token_id in \
                 generation_config.json or genai_config.json"
            )));
        }
        Ok(LlmModel { session, tokenizer, eos, context, position_ids, logits_f16, cache, use_cache: true })
    }

    /// Whether the model has a KV cache (past inputs); without one every step reruns the whole
    /// sequence.
    pub fn has_kv_cache(&self) -> bool {
        !self.cache.is_empty()
    }

    /// Turn the KV cache off (every step reruns the whole sequence) or back on: for tests that
    /// the cache changes nothing.
    #[doc(hidden)]
    pub fn set_kv_cache(&mut self, on: bool) {
        self.use_cache = on;
    }

    /// Answer the chat `messages` ((role, content), oldest first), streaming the text through
    /// `on_token` as it decodes; `on_token` answers false to stop (the client went away).
    /// Errors: [`AiError::InvalidInput`] for no messages, bad sampling parameters or a prompt
    /// over [`MAX_PROMPT_TOKENS`] or, with `max_tokens`, over the model's context;
    /// [`AiError::Inference`] when the model fails.
    pub fn generate(
        &mut self,
        messages: &[(String, String)],
        params: &Sampling,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, AiError> {
        check_sampling(params)?;
        if messages.is_empty() {
            return Err(AiError::InvalidInput("the chat has no messages".into()));
        }
        let prompt = self
            .tokenizer
            .encode(chat_prompt(messages), false)
            .map_err(|e| AiError::InvalidInput(format!("cannot tokenize the prompt: {e}")))?;
        let mut tokens: Vec<i64> = prompt.get_ids().iter().map(|&t| t as i64).collect();
        if tokens.len() > MAX_PROMPT_TOKENS {
            return Err(AiError::InvalidInput(format!(
                "the prompt has {} tokens, over the limit of {MAX_PROMPT_TOKENS}",
                tokens.len()
            )));
        }
        if tokens.is_empty() {
            return Err(AiError::InvalidInput("the prompt tokenizes to nothing".into()));
        }
        if let Some(context) = self.context
            && tokens.len() + params.max_tokens as usize > context
        {
            return Err(AiError::InvalidInput(format!(
                "the prompt's {} tokens and max_tokens {} are more than the model's context of {context} tokens \
                 (max_tokens is {} unless the request sets it)",
                tokens.len(),
                params.max_tokens,
                Sampling::default().max_tokens
            )));
        }
        let prompt_tokens = tokens.len() as u32;
        let mut rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let cached = self.use_cache && !self.cache.is_empty();
        let mut past = Vec::new();
        let mut in_cache = 0; // tokens whose keys and values `past` holds
        let mut answer: Vec<u32> = Vec::new(); // the tokens generated, less an end-of-answer
        let mut ended = false;
        let mut sent = String::new();
        let mut stopped = false;
        while !ended && !stopped && answer.len() < params.max_tokens as usize {
            let logits = if cached {
                let logits = self.forward(&tokens[in_cache..], in_cache, &mut past)?;
                in_cache = tokens.len();
                logits
            } else {
                self.forward(&tokens, 0, &mut Vec::new())?
            };
            let token = pick(&logits, params, &mut rng) as u32;
            if self.eos.contains(&token) {
                ended = true;
                continue;
            }
            answer.push(token);
            tokens.push(token as i64);
            // The whole answer is decoded again each step (decoders join tokens in context).
            let text = self.decode(&answer)?;
            if let Some(piece) = unsent(&sent, &text) {
                stopped = !on_token(piece);
                sent = text;
            }
        }
        let text = self.decode(&answer)?;
        // What was held back (an incomplete character at the end of a cut answer) goes now.
        if !stopped && let Some(rest) = text.strip_prefix(sent.as_str()).filter(|r| !r.is_empty()) {
            on_token(rest);
        }
        Ok(Generation {
            text,
            prompt_tokens,
            completion_tokens: answer.len() as u32 + ended as u32,
            finish_reason: if ended || stopped { "stop" } else { "length" },
        })
    }

    /// The text of `tokens`, special tokens left out.
    fn decode(&self, tokens: &[u32]) -> Result<String, AiError> {
        self.tokenizer.decode(tokens, true).map_err(|e| AiError::Inference(format!("cannot decode the answer: {e}")))
    }

    /// Run the model on the tokens `new`, at positions `past_len..`, after the `past_len`
    /// tokens whose cache `past` holds (nothing: an empty cache). Answers the logits of the
    /// last token and leaves the `present` outputs in `past`.
    fn forward(&mut self, new: &[i64], past_len: usize, past: &mut Vec<DynValue>) -> Result<Vec<f32>, AiError> {
        let (n, total) = (new.len(), past_len + new.len());
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = vec![
            ("input_ids".into(), Tensor::from_array(([1, n], new.to_vec()))?.into()),
            ("attention_mask".into(), Tensor::from_array(([1, total], vec![1i64; total]))?.into()),
        ];
        if self.position_ids {
            let positions: Vec<i64> = (past_len as i64..total as i64).collect();
            inputs.push(("position_ids".into(), Tensor::from_array(([1, n], positions))?.into()));
        }
        let given = std::mem::take(past);
        if given.is_empty() {
            for c in &self.cache {
                let shape = [1, c.heads, 0, c.head_dim];
                let empty = match c.f16 {
                    true => Tensor::from_array((shape, Vec::<f16>::new()))?.into_dyn(),
                    false => Tensor::from_array((shape, Vec::<f32>::new()))?.into_dyn(),
                };
                inputs.push((c.past.as_str().into(), empty.into()));
            }
        } else {
            for (c, value) in self.cache.iter().zip(given) {
                inputs.push((c.past.as_str().into(), value.into()));
            }
        }
        let mut outputs = self.session.run(inputs)?;
        let logits = &outputs["logits"];
        let last: Vec<f32> = match self.logits_f16 {
            true => {
                let (shape, logits) = logits.try_extract_tensor::<f16>()?;
                last_row(shape, logits, n)?.iter().map(|l| l.to_f32()).collect()
            }
            false => {
                let (shape, logits) = logits.try_extract_tensor::<f32>()?;
                last_row(shape, logits, n)?.to_vec()
            }
        };
        for c in &self.cache {
            let present = outputs
                .remove(&c.present)
                .ok_or_else(|| AiError::Inference(format!("the model gave no {}", c.present)))?;
            past.push(present);
        }
        Ok(last)
    }
}

/// The logits of the last of `n` tokens, from logits of `shape` [1, n, vocab].
fn last_row<'a, T>(shape: &ort::value::Shape, logits: &'a [T], n: usize) -> Result<&'a [T], AiError> {
    if shape.len() != 3 || shape[0] != 1 || shape[1] != n as i64 || shape[2] <= 0 {
        return Err(AiError::Inference(format!("the model answered logits of shape {shape:?} for {n} tokens")));
    }
    let vocab = shape[2] as usize;
    Ok(&logits[(n - 1) * vocab..n * vocab])
}

/// ChatML, as Qwen2.5 uses: each message as `<|im_start|>{role}\n{content}<|im_end|>\n`, then
/// `<|im_start|>assistant\n` for the answer. No system message is added when there is none
/// (Qwen2.5's own template adds a default one).
pub fn chat_prompt(messages: &[(String, String)]) -> String {
    let mut prompt = String::new();
    for (role, content) in messages {
        prompt.push_str(&format!("<|im_start|>{role}\n{content}{IM_END}\n"));
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

/// An error in a file of the model directory, naming it.
type ConfigError = (PathBuf, String);

/// The first value found at `places` (a file of the model directory and a JSON pointer in it),
/// with its file; `None` when no file there has it.
fn config_value(dir: &Path, places: &[(&str, &str)]) -> Result<Option<(PathBuf, serde_json::Value)>, ConfigError> {
    for (file, pointer) in places {
        let path = dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err((path, e.to_string())),
        };
        let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| (path.clone(), e.to_string()))?;
        if let Some(v) = config.pointer(pointer).filter(|v| !v.is_null()) {
            return Ok(Some((path, v.clone())));
        }
    }
    Ok(None)
}

/// The end-of-answer ids the model directory's config names (a number or a list):
/// generation_config.json's `eos_token_id`, else genai_config.json's `model.eos_token_id`.
fn config_eos(dir: &Path) -> Result<Vec<u32>, ConfigError> {
    let places = [("generation_config.json", "/eos_token_id"), ("genai_config.json", "/model/eos_token_id")];
    let Some((path, value)) = config_value(dir, &places)? else { return Ok(Vec::new()) };
    let id = |v: &serde_json::Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| (path.clone(), format!("eos_token_id {v} is not a token id")))
    };
    match &value {
        serde_json::Value::Array(ids) => ids.iter().map(id).collect(),
        v => Ok(vec![id(v)?]),
    }
}

/// The most tokens the model takes, prompt and answer together, when its config says:
/// genai_config.json's `model.context_length`, else config.json's `max_position_embeddings`
/// (Hugging Face's).
fn config_context(dir: &Path) -> Result<Option<usize>, ConfigError> {
    let places = [("genai_config.json", "/model/context_length"), ("config.json", "/max_position_embeddings")];
    let Some((path, value)) = config_value(dir, &places)? else { return Ok(None) };
    match value.as_u64().filter(|n| *n > 0) {
        Some(n) => Ok(Some(n as usize)),
        None => Err((path, format!("the context length {value} is not a number of tokens"))),
    }
}

/// What [`check_io`] found.
struct Io {
    position_ids: bool,
    logits_f16: bool,
    cache: Vec<CacheTensor>,
}

/// Whether `outlet` holds f16, for a tensor that may be f32 or f16.
fn is_f16(outlet: &Outlet) -> bool {
    tensor(outlet).is_some_and(|(ty, _)| ty == TensorElementType::Float16)
}

/// Check the model's inputs and outputs against the convention in the module's header.
fn check_io(session: &Session) -> Result<Io, String> {
    let output = |name: &str| session.outputs().iter().find(|o| o.name() == name);
    let mut names = Vec::new();
    let mut cache = Vec::new();
    for input in session.inputs() {
        let name = input.name();
        let past = name.strip_prefix("past_key_values.");
        let f16 = is_f16(input);
        let kv = if f16 { &KV16 } else { &KV };
        let want = match name {
            "input_ids" | "attention_mask" | "position_ids" => &IDS,
            _ if past.is_some() => kv,
            _ => {
                return Err(format!(
                    "input {name} is not one the pipeline feeds (input_ids, attention_mask, position_ids, \
                     past_key_values.N.key/value)"
                ));
            }
        };
        if let Some(why) = mismatch(input, want) {
            let or_f16 = if past.is_some() { " (or Float16)" } else { "" };
            return Err(format!("input {why}{or_f16}"));
        }
        names.push(name);
        let Some(rest) = past else { continue };
        let other = match rest.rsplit_once('.') {
            Some((layer, "key")) if is_number(layer) => format!("past_key_values.{layer}.value"),
            Some((layer, "value")) if is_number(layer) => format!("past_key_values.{layer}.key"),
            _ => return Err(format!("input {name} is not past_key_values.N.key or past_key_values.N.value")),
        };
        if !session.inputs().iter().any(|i| i.name() == other) {
            return Err(format!("input {name} has no {other} beside it"));
        }
        let present = format!("present.{rest}");
        let Some(out) = output(&present) else {
            return Err(format!("the past input {name} has no present output {present}"));
        };
        if let Some(why) = mismatch(out, kv) {
            return Err(format!("output {why}, as its past input {name}"));
        }
        let (heads, head_dim) = fixed_heads(input)?;
        if let Some((_, shape)) = tensor(out)
            && ((shape[1] >= 0 && shape[1] != heads as i64) || (shape[3] >= 0 && shape[3] != head_dim as i64))
        {
            return Err(format!("output {present} has shape {shape:?}, its past input {heads} heads of {head_dim}"));
        }
        cache.push(CacheTensor { past: name.into(), present, heads, head_dim, f16 });
    }
    for needed in ["input_ids", "attention_mask"] {
        if !names.contains(&needed) {
            return Err(format!("it has no {needed} input"));
        }
    }
    let Some(logits) = output("logits") else {
        return Err("it has no logits output".into());
    };
    let logits_f16 = is_f16(logits);
    if let Some(why) = mismatch(logits, if logits_f16 { &LOGITS16 } else { &LOGITS }) {
        return Err(format!("output {why}: logits [batch, seq, vocab] of f32 or f16"));
    }
    Ok(Io { position_ids: names.contains(&"position_ids"), logits_f16, cache })
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A cache input's heads and head size, which must be fixed (the first, empty, cache is made
/// with them).
fn fixed_heads(input: &Outlet) -> Result<(usize, usize), String> {
    let (_, shape) = tensor(input).ok_or_else(|| format!("{} is not a tensor", input.name()))?;
    match (shape[1], shape[3]) {
        (heads, head_dim) if heads > 0 && head_dim > 0 => Ok((heads as usize, head_dim as usize)),
        _ => Err(format!(
            "input {} has shape {shape:?}: its heads (axis 1) and head size (axis 3) must be fixed",
            input.name()
        )),
    }
}

fn check_sampling(p: &Sampling) -> Result<(), AiError> {
    let bad = |what: String| Err(AiError::InvalidInput(what));
    if !(p.temperature.is_finite() && p.temperature >= 0.0) {
        return bad(format!("temperature {} is not a number ≥ 0", p.temperature));
    }
    if !(p.top_p > 0.0 && p.top_p <= 1.0) {
        return bad(format!("top_p {} is not in (0, 1]", p.top_p));
    }
    if p.max_tokens == 0 || p.max_tokens > MAX_COMPLETION_TOKENS {
        return bad(format!("max_tokens {} is not in 1..={MAX_COMPLETION_TOKENS}", p.max_tokens));
    }
    Ok(())
}

/// The next token from `logits`: the most likely one when greedy, else one drawn from the
/// softmax at `temperature` over the `top_k` most likely tokens, cut to the `top_p` nucleus.
fn pick(logits: &[f32], p: &Sampling, rng: &mut StdRng) -> usize {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if l.total_cmp(&logits[best]).is_gt() {
            best = i;
        }
    }
    if p.temperature <= GREEDY_BELOW {
        return best;
    }
    let more_likely = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let mut candidates: Vec<usize> = (0..logits.len()).collect();
    if p.top_k > 0 && (p.top_k as usize) < candidates.len() {
        let k = p.top_k as usize;
        candidates.select_nth_unstable_by(k - 1, more_likely);
        candidates.truncate(k);
    }
    if p.top_p < 1.0 {
        candidates.sort_unstable_by(more_likely);
    }
    let mut probs: Vec<f32> = candidates.iter().map(|&i| ((logits[i] - logits[best]) / p.temperature).exp()).collect();
    if p.top_p < 1.0 {
        let sum: f32 = probs.iter().sum();
        let mut mass = 0.0;
        let keep = probs.iter().position(|q| {
            mass += q / sum;
            mass >= p.top_p
        });
        let keep = keep.map_or(probs.len(), |k| k + 1);
        candidates.truncate(keep);
        probs.truncate(keep);
    }
    let mut r = rng.random::<f32>() * probs.iter().sum::<f32>();
    for (&i, &q) in candidates.iter().zip(&probs) {
        if r < q {
            return i;
        }
        r -= q;
    }
    candidates.last().copied().unwrap_or(best)
}

/// What of `text` (the decoded answer so far) has not been streamed after `sent`, if it can
/// go now: not while it ends in an incomplete character (decoded as U+FFFD until its other
/// bytes come), nor if the decoder changed text already sent.
fn unsent<'a>(sent: &str, text: &'a str) -> Option<&'a str> {
    if text.ends_with('\u{FFFD}') {
        return None;
    }
    text.strip_prefix(sent).filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_wraps_each_message_and_opens_the_answer() {
        let chat = [("system".to_string(), "be brief".to_string()), ("user".to_string(), "hi".to_string())];
        assert_eq!(
            chat_prompt(&chat),
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_split_character_waits_for_its_last_byte() {
        assert_eq!(unsent("", "caf"), Some("caf"));
        assert_eq!(unsent("caf", "caf\u{FFFD}"), None, "the first byte of é alone");
        assert_eq!(unsent("caf", "café"), Some("é"));
        assert_eq!(unsent("café", "café"), None, "nothing new");
        assert_eq!(unsent("café", "cafe!"), None, "text already sent changed");
    }

    #[test]
    fn sampling_keeps_the_top_k_and_the_nucleus() {
        let logits = [0.0, 5.0, 4.9, -3.0, 4.8];
        let mut rng = StdRng::seed_from_u64(7);
        let with = |temperature, top_p, top_k| Sampling { temperature, top_p, top_k, max_tokens: 1, seed: None };
        assert_eq!(pick(&logits, &with(0.0, 1.0, -1), &mut rng), 1);
        for _ in 0..200 {
            assert_eq!(pick(&logits, &with(1.0, 1.0, 1), &mut rng), 1);
            assert!([1, 2].contains(&pick(&logits, &with(2.0, 1.0, 2), &mut rng)));
            // 1 and 2 hold 0.36 + 0.33 of the mass: a nucleus of 0.5 needs both.
            assert!([1, 2].contains(&pick(&logits, &with(1.0, 0.5, -1), &mut rng)));
        }
        // A high temperature flattens the distribution: every token comes up.
        let drawn: std::collections::HashSet<_> =
            (0..500).map(|_| pick(&logits, &with(5.0, 1.0, -1), &mut rng)).collect();
        assert_eq!(drawn.len(), logits.len(), "{drawn:?}");
    }

    #[test]
    fn bad_sampling_parameters_are_refused() {
        let ok = Sampling::default();
        assert!(check_sampling(&ok).is_ok());
        for bad in [
            Sampling { temperature: -1.0, ..ok.clone() },
            Sampling { temperature: f32::NAN, ..ok.clone() },
            Sampling { top_p: 0.0, ..ok.clone() },
            Sampling { top_p: 1.5, ..ok.clone() },
            Sampling { max_tokens: 0, ..ok.clone() },
            Sampling { max_tokens: MAX_COMPLETION_TOKENS + 1, ..ok.clone() },
        ] {
            assert!(matches!(check_sampling(&bad), Err(AiError::InvalidInput(_))), "{bad:?}");
        }
    }
}
