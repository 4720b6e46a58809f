//! llm on ONNX Runtime, with the tiny counting model `make setup` makes (scripts/models/llm.py):
//! the known greedy answer, its token counts and stream, sampling, the KV cache equal to a full
//! recompute, and models and prompts refused with the reason.

use std::path::PathBuf;
use std::sync::Arc;

use lp_pipelines::ai::llm::{self, Generation, LlmModel, Sampling};
use lp_pipelines::ai::{AiError, Runtime, RuntimeOptions};

fn runtime() -> Arc<Runtime> {
    Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)")
}

fn model(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)")).join(name)
}

fn load(name: &str) -> LlmModel {
    LlmModel::load(&runtime(), name, &model(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn load_err(dir: &std::path::Path) -> AiError {
    LlmModel::load(&runtime(), "bad", dir).err().expect("refused")
}

fn chat(messages: &[(&str, &str)]) -> Vec<(String, String)> {
    messages.iter().map(|(r, c)| (r.to_string(), c.to_string())).collect()
}

/// The model counts from the last number of the chat up to the first one.
fn count(to: &str, from: &str) -> Vec<(String, String)> {
    chat(&[("system", &format!("count to {to}")), ("user", &format!("start at {from}"))])
}

fn greedy(max_tokens: u32) -> Sampling {
    Sampling { temperature: 0.0, top_p: 1.0, top_k: -1, max_tokens, seed: None }
}

fn sampled(seed: u64) -> Sampling {
    Sampling { temperature: 1.0, top_p: 1.0, top_k: -1, max_tokens: 24, seed: Some(seed) }
}

/// The answer and the pieces streamed.
fn generate(m: &mut LlmModel, chat: &[(String, String)], params: &Sampling) -> (Generation, Vec<String>) {
    let mut pieces = Vec::new();
    let g = m
        .generate(chat, params, &mut |piece| {
            pieces.push(piece.to_string());
            true
        })
        .unwrap();
    (g, pieces)
}

#[test]
fn the_greedy_answer_is_the_known_count() {
    let mut m = load("tiny-llm");
    assert!(m.has_kv_cache());
    let (g, pieces) = generate(&mut m, &count("four", "zero"), &greedy(64));
    assert_eq!(g.text, "one two three four");
    assert_eq!(g.finish_reason, "stop");
    // <|im_start|> system count to four <|im_end|> <|im_start|> user start at zero <|im_end|>
    // <|im_start|> assistant; four words and <|im_end|>.
    assert_eq!((g.prompt_tokens, g.completion_tokens), (14, 5));
    assert_eq!(pieces, ["one", " two", " three", " four"]);
    assert_eq!(pieces.concat(), g.text);
    // The answer follows the prompt (and wraps after nine).
    assert_eq!(generate(&mut m, &count("seven", "five"), &greedy(64)).0.text, "six seven");
    assert_eq!(generate(&mut m, &count("one", "eight"), &greedy(64)).0.text, "nine zero one");
    // No number: nothing to say.
    let (g, pieces) = generate(&mut m, &chat(&[("user", "hello")]), &greedy(64));
    assert_eq!((g.text.as_str(), g.completion_tokens, g.finish_reason), ("", 1, "stop"));
    assert!(pieces.is_empty());
}

#[test]
fn max_tokens_cuts_the_answer() {
    let mut m = load("tiny-llm");
    let (g, pieces) = generate(&mut m, &count("four", "zero"), &greedy(2));
    assert_eq!((g.text.as_str(), g.completion_tokens, g.finish_reason), ("one two", 2, "length"));
    assert_eq!(pieces.concat(), g.text);
    // Four words fit in 4 tokens but the end does not; in 5 it does.
    let g = generate(&mut m, &count("four", "zero"), &greedy(4)).0;
    assert_eq!((g.text.as_str(), g.completion_tokens, g.finish_reason), ("one two three four", 4, "length"));
    let g = generate(&mut m, &count("four", "zero"), &greedy(5)).0;
    assert_eq!((g.completion_tokens, g.finish_reason), (5, "stop"));
}

#[test]
fn on_token_answering_false_stops_the_answer() {
    let mut m = load("tiny-llm");
    let mut pieces = Vec::new();
    let g = m
        .generate(&count("four", "zero"), &greedy(64), &mut |piece| {
            pieces.push(piece.to_string());
            pieces.len() < 2
        })
        .unwrap();
    assert_eq!(pieces, ["one", " two"]);
    assert_eq!((g.text.as_str(), g.completion_tokens, g.finish_reason), ("one two", 2, "stop"));
}

#[test]
fn sampling_is_seeded_and_top_k_1_is_greedy() {
    let mut m = load("tiny-llm");
    let prompt = count("four", "zero");
    let expected = generate(&mut m, &prompt, &greedy(24)).0;
    let mut differ = 0;
    for seed in 1..=6 {
        let a = generate(&mut m, &prompt, &sampled(seed));
        let b = generate(&mut m, &prompt, &sampled(seed));
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(a.1.concat(), a.0.text);
        differ += (a.0.text != expected.text) as u32;
    }
    assert!(differ > 0, "temperature 1 samples: some seed must leave the greedy answer");
    for narrow in [
        Sampling { top_k: 1, ..sampled(3) },
        Sampling { top_p: 0.1, ..sampled(3) },
        Sampling { temperature: 1e-6, ..sampled(3) },
    ] {
        assert_eq!(generate(&mut m, &prompt, &narrow).0, expected, "{narrow:?}");
    }
}

#[test]
fn the_kv_cache_equals_a_full_recompute() {
    let mut cached = load("tiny-llm");
    let mut full = load("tiny-llm");
    full.set_kv_cache(false);
    let mut nopast = load("tiny-llm-nopast");
    assert!(!nopast.has_kv_cache());
    for prompt in [count("four", "zero"), count("two", "six")] {
        // Sampled answers draw on the whole distribution at every step: equal logits or nearly.
        for params in [greedy(24), sampled(1), sampled(2), sampled(3), sampled(4)] {
            let want = generate(&mut cached, &prompt, &params);
            assert_eq!(generate(&mut full, &prompt, &params), want, "{params:?}");
            assert_eq!(generate(&mut nopast, &prompt, &params), want, "{params:?}");
        }
    }
}

/// A model whose cache and logits are float16 (as exports for GPUs have them) gives the same
/// answers as the float32 one: its empty first cache is made in f16, its present outputs are
/// fed back as they came, and its logits are read as f16. (The sampled answers need equal
/// probabilities, so the logits, 0, 3 and 6, are exact in f16.)
#[test]
fn a_float16_cache_and_logits_give_the_same_answers() {
    let mut f32 = load("tiny-llm");
    let mut f16 = load("tiny-llm-fp16");
    assert!(f16.has_kv_cache());
    for prompt in [count("four", "zero"), count("one", "eight")] {
        for params in [greedy(24), sampled(1), sampled(2)] {
            assert_eq!(generate(&mut f16, &prompt, &params), generate(&mut f32, &prompt, &params), "{params:?}");
        }
    }
    assert_eq!(generate(&mut f16, &count("four", "zero"), &greedy(64)).0.text, "one two three four");
}

/// The count as an onnxruntime-genai export computes it (GroupQueryAttention, two query heads
/// over one KV head, positions from the attention mask, its end in genai_config.json) gives
/// the same answers, with its cache and without; so does the int4 export (its weights in
/// MatMulNBits).
#[test]
fn genai_exports_with_group_query_attention_and_int4_weights_give_the_same_answers() {
    let mut reference = load("tiny-llm");
    for export in ["tiny-llm-gqa", "tiny-llm-int4"] {
        let mut cached = load(export);
        let mut recomputed = load(export);
        recomputed.set_kv_cache(false);
        for prompt in [count("four", "zero"), count("one", "eight"), chat(&[("user", "hello")])] {
            for params in [greedy(24), sampled(1), sampled(2)] {
                let want = generate(&mut reference, &prompt, &params);
                assert_eq!(generate(&mut cached, &prompt, &params), want, "{export} {params:?}");
                assert_eq!(generate(&mut recomputed, &prompt, &params), want, "{export} {params:?}");
            }
        }
    }
}

/// A model whose config gives its context (Hugging Face's config.json, or genai's
/// genai_config.json) refuses a request whose prompt and max_tokens do not fit in it, before
/// running anything, and answers one that fits.
#[test]
fn a_request_past_the_models_context_is_refused() {
    for (file, config) in [
        ("config.json", r#"{"max_position_embeddings": 20}"#),
        ("genai_config.json", r#"{"model": {"context_length": 20, "eos_token_id": 2}}"#),
    ] {
        let dir = tempfile::tempdir().unwrap();
        for f in ["model.onnx", "tokenizer.json"] {
            std::fs::copy(model("tiny-llm").join(f), dir.path().join(f)).unwrap();
        }
        std::fs::write(dir.path().join(file), config).unwrap();
        let mut m = LlmModel::load(&runtime(), "small", dir.path()).unwrap();
        // 14 prompt tokens: 6 more fit, 7 do not.
        let err = m.generate(&count("four", "zero"), &greedy(7), &mut |_| true).unwrap_err();
        assert!(matches!(err, AiError::InvalidInput(_)), "{file}: {err}");
        assert!(
            err.to_string().contains("the prompt's 14 tokens and max_tokens 7 are more than the model's context of 20"),
            "{err}"
        );
        assert_eq!(generate(&mut m, &count("four", "zero"), &greedy(6)).0.text, "one two three four", "{file}");
    }
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(model("tiny-llm").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("config.json"), r#"{"max_position_embeddings": "long"}"#).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("config.json") && err.to_string().contains("not a number of tokens"), "{err}");
}

#[test]
fn models_that_do_not_fit_are_refused_at_load_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model("tiny-llm/model.onnx"), dir.path().join("model.onnx")).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, AiError::ModelLoad { .. }) && err.to_string().contains("tokenizer.json"), "{err}");

    let err = load_err(&model("tiny-llm-no-logits"));
    let AiError::ModelMismatch { ref reason, .. } = err else { panic!("{err}") };
    assert!(reason.contains("no logits output") && reason.contains("scores"), "{err}");

    let err = load_err(&model("tiny-llm-past-without-present"));
    let AiError::ModelMismatch { ref reason, .. } = err else { panic!("{err}") };
    assert!(reason.contains("past_key_values.0.value") && reason.contains("present.0.value"), "{err}");

    // A tokenizer with no <|im_end|> and no generation_config.json: no way to end an answer.
    let tokenizer = std::fs::read_to_string(model("tiny-llm/tokenizer.json")).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer.replace("<|im_end|>", "<|end|>")).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("no end-of-answer token"), "{err}");
    // The same with an onnxruntime-genai config naming the end (the renamed token, id 2): it
    // loads, and its answer to no number stops there at once, not at max_tokens.
    let end = r#"{"model": {"type": "qwen2", "eos_token_id": [2], "decoder": {"filename": "model.onnx"}}}"#;
    std::fs::write(dir.path().join("genai_config.json"), end).unwrap();
    let mut genai = LlmModel::load(&runtime(), "genai", dir.path()).expect("its end from genai_config.json");
    let g = generate(&mut genai, &chat(&[("user", "hello")]), &greedy(64)).0;
    assert_eq!((g.text.as_str(), g.completion_tokens, g.finish_reason), ("", 1, "stop"));
    std::fs::write(dir.path().join("genai_config.json"), r#"{"model": {"eos_token_id": "end"}}"#).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("genai_config.json") && err.to_string().contains("is not a token id"), "{err}");

    let err = load_err(&model("nothing-here"));
    assert!(matches!(err, AiError::ModelLoad { .. }), "{err}");
}

#[test]
fn prompts_and_parameters_that_cannot_run_are_invalid_input() {
    let mut m = load("tiny-llm");
    let long = "one ".repeat(llm::MAX_PROMPT_TOKENS);
    let err = m.generate(&chat(&[("user", &long)]), &greedy(8), &mut |_| true).unwrap_err();
    assert!(matches!(err, AiError::InvalidInput(_)) && err.to_string().contains("tokens"), "{err}");
    assert!(err.is_client_error());
    let err = m.generate(&[], &greedy(8), &mut |_| true).unwrap_err();
    assert!(matches!(err, AiError::InvalidInput(_)), "{err}");
    let err = m.generate(&count("four", "zero"), &Sampling { top_p: 0.0, ..greedy(8) }, &mut |_| true).unwrap_err();
    assert!(matches!(err, AiError::InvalidInput(_)), "{err}");
    // A prompt just under the limit runs.
    let fits = "one ".repeat(llm::MAX_PROMPT_TOKENS - 20);
    let g = m.generate(&chat(&[("user", &fits)]), &greedy(3), &mut |_| true).unwrap();
    assert_eq!(g.text, "");
}
