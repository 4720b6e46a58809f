//! The AI gateway API (ai-runner's `gateway.openapi.yaml` v0.14.1) as typed messages: the
//! pipelines, their requests parsed from the HTTP bodies both the gateway and the orchestrator
//! receive at `POST /<pipeline>`, their responses, and the errors, in the spec's JSON.
//!
//! Requests also travel to workers in MessagePack frames, so their binary fields are
//! [`ByteBuf`]s. Parsing follows FastAPI (which serves the spec in ai-runner): a missing field,
//! or one that does not convert to its type, is a 422 [`HttpValidationError`] naming every such
//! field, with pydantic's error types (`missing`, `bool_parsing`, `int_parsing` …); a form field
//! sent empty counts as absent, as FastAPI has it (so an empty `image` is a missing one; the
//! `image` part need not carry a filename), and of two fields of one name the last counts, as
//! in Starlette's form. `model_id` is required, as the gateway spec has it (its `default: ''` is
//! the runner's). A body of the wrong content type, or one that is not multipart or JSON at all,
//! is a 400 (the spec lists no 415 for these routes), as is an LLM request without messages
//! (go-livepeer's gateway rule). Limits are in [`crate::limits`].
//!
//! What a request costs is [`AiRequest::units`], go-livepeer's unit count per pipeline.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use serde_json::Value;

use crate::capability::FIRST_AI;
use crate::limits::{
    MAX_AI_BODY_BYTES, MAX_AI_IMAGE_PIXELS, MAX_LLM_MESSAGES, MAX_LLM_PROMPT_BYTES, MAX_LLM_TOKENS,
    MAX_VALIDATION_ERRORS,
};
use crate::multipart::{self, Part};

// ---------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------

/// go-livepeer's AI pipelines, in capability order (27 text-to-image … 36 text-to-speech).
/// [`Pipeline::served`] says which ones this build answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pipeline {
    #[serde(rename = "text-to-image")]
    TextToImage,
    #[serde(rename = "image-to-image")]
    ImageToImage,
    #[serde(rename = "image-to-video")]
    ImageToVideo,
    #[serde(rename = "upscale")]
    Upscale,
    #[serde(rename = "audio-to-text")]
    AudioToText,
    #[serde(rename = "segment-anything-2")]
    SegmentAnything2,
    #[serde(rename = "llm")]
    Llm,
    #[serde(rename = "image-to-text")]
    ImageToText,
    #[serde(rename = "live-video-to-video")]
    LiveVideoToVideo,
    #[serde(rename = "text-to-speech")]
    TextToSpeech,
}

impl Pipeline {
    /// Every pipeline, in capability order.
    pub const ALL: [Pipeline; 10] = [
        Pipeline::TextToImage,
        Pipeline::ImageToImage,
        Pipeline::ImageToVideo,
        Pipeline::Upscale,
        Pipeline::AudioToText,
        Pipeline::SegmentAnything2,
        Pipeline::Llm,
        Pipeline::ImageToText,
        Pipeline::LiveVideoToVideo,
        Pipeline::TextToSpeech,
    ];

    /// The URL path segment (`POST /<name>`), go-livepeer's pipeline name.
    pub fn name(self) -> &'static str {
        match self {
            Pipeline::TextToImage => "text-to-image",
            Pipeline::ImageToImage => "image-to-image",
            Pipeline::ImageToVideo => "image-to-video",
            Pipeline::Upscale => "upscale",
            Pipeline::AudioToText => "audio-to-text",
            Pipeline::SegmentAnything2 => "segment-anything-2",
            Pipeline::Llm => "llm",
            Pipeline::ImageToText => "image-to-text",
            Pipeline::LiveVideoToVideo => "live-video-to-video",
            Pipeline::TextToSpeech => "text-to-speech",
        }
    }

    /// The pipeline of a go-livepeer name (exact, as in URLs and `aiModels.json`).
    pub fn from_name(name: &str) -> Option<Pipeline> {
        Pipeline::ALL.into_iter().find(|p| p.name() == name)
    }

    /// go-livepeer's capability id: [`FIRST_AI`] + the pipeline's index.
    pub fn capability(self) -> u32 {
        FIRST_AI + self as u32
    }

    /// The pipeline of a capability id.
    pub fn from_capability(capability: u32) -> Option<Pipeline> {
        let index = capability.checked_sub(FIRST_AI)?;
        Pipeline::ALL.get(usize::try_from(index).ok()?).copied()
    }

    /// Whether this build parses and serves the pipeline's requests.
    pub fn served(self) -> bool {
        matches!(self, Pipeline::ImageToImage | Pipeline::Upscale | Pipeline::Llm | Pipeline::ImageToText)
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// `Body_genUpscale` (multipart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpscaleRequest {
    pub model_id: String,
    pub prompt: String,
    /// The image file as uploaded (any format the worker decodes).
    pub image: ByteBuf,
    pub safety_check: bool,
    pub seed: Option<i64>,
    pub num_inference_steps: u32,
}

impl UpscaleRequest {
    /// The required fields; the rest take the spec's defaults.
    pub fn new(model_id: impl Into<String>, prompt: impl Into<String>, image: impl Into<Vec<u8>>) -> Self {
        UpscaleRequest {
            model_id: model_id.into(),
            prompt: prompt.into(),
            image: ByteBuf::from(image.into()),
            safety_check: true,
            seed: None,
            num_inference_steps: 75,
        }
    }
}

/// `Body_genImageToImage` (multipart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageToImageRequest {
    pub model_id: String,
    pub prompt: String,
    pub image: ByteBuf,
    pub strength: f64,
    pub guidance_scale: f64,
    pub image_guidance_scale: f64,
    pub negative_prompt: String,
    pub safety_check: bool,
    pub seed: Option<i64>,
    pub num_inference_steps: u32,
    /// At least 1.
    pub num_images_per_prompt: u32,
    /// JSON, e.g. `{"nerijs/pixel-art-xl": 1.2}`, or empty; checked to be JSON when parsed.
    pub loras: String,
}

impl ImageToImageRequest {
    /// The required fields; the rest take the spec's defaults.
    pub fn new(model_id: impl Into<String>, prompt: impl Into<String>, image: impl Into<Vec<u8>>) -> Self {
        ImageToImageRequest {
            model_id: model_id.into(),
            prompt: prompt.into(),
            image: ByteBuf::from(image.into()),
            strength: 0.8,
            guidance_scale: 7.5,
            image_guidance_scale: 1.5,
            negative_prompt: String::new(),
            safety_check: true,
            seed: None,
            num_inference_steps: 100,
            num_images_per_prompt: 1,
            loras: String::new(),
        }
    }
}

/// `Body_genImageToText` (multipart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageToTextRequest {
    pub model_id: String,
    pub image: ByteBuf,
    pub prompt: String,
}

impl ImageToTextRequest {
    /// The required fields; the prompt is empty.
    pub fn new(model_id: impl Into<String>, image: impl Into<Vec<u8>>) -> Self {
        ImageToTextRequest { model_id: model_id.into(), image: ByteBuf::from(image.into()), prompt: String::new() }
    }
}

/// `LLMMessage`: one turn of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmMessage {
    pub role: String,
    pub content: String,
}

/// `LLMRequest` (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Not empty.
    pub messages: Vec<LlmMessage>,
    /// The model, empty for the node's default (the spec's name for `model_id` here).
    pub model: String,
    pub temperature: f64,
    /// 1 ..= [`MAX_LLM_TOKENS`]; what the request is paid for.
    pub max_tokens: u32,
    pub top_p: f64,
    /// -1: no top-k.
    pub top_k: i64,
    /// Answer with server-sent events, one [`LlmResponse`] each.
    pub stream: bool,
}

impl LlmRequest {
    /// The messages; the rest take the spec's defaults.
    pub fn new(messages: Vec<LlmMessage>) -> Self {
        LlmRequest {
            messages,
            model: String::new(),
            temperature: 0.7,
            max_tokens: 256,
            top_p: 1.0,
            top_k: -1,
            stream: false,
        }
    }
}

/// A request of one of the served pipelines (tagged by pipeline name on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AiRequest {
    #[serde(rename = "image-to-image")]
    ImageToImage(ImageToImageRequest),
    #[serde(rename = "upscale")]
    Upscale(UpscaleRequest),
    #[serde(rename = "llm")]
    Llm(LlmRequest),
    #[serde(rename = "image-to-text")]
    ImageToText(ImageToTextRequest),
}

impl AiRequest {
    /// Parses the body of `POST /<pipeline>` with its `Content-Type`: multipart/form-data for
    /// the image pipelines, JSON for llm.
    pub fn parse(pipeline: Pipeline, content_type: &str, body: &[u8]) -> Result<AiRequest, ApiError> {
        if body.len() > MAX_AI_BODY_BYTES {
            return Err(ApiError::too_large(format!("the body exceeds {MAX_AI_BODY_BYTES} bytes")));
        }
        match pipeline {
            Pipeline::Upscale => {
                let mut f = Fields::form(content_type, body)?;
                let prompt = f.required("prompt", string);
                let image = f.file("image");
                let model_id = f.required("model_id", string);
                let safety_check = f.optional("safety_check", boolean);
                let seed = f.optional("seed", integer);
                let steps = f.optional("num_inference_steps", count(1, u32::MAX));
                f.finish()?;
                let mut r = UpscaleRequest::new(model_id.unwrap_or_default(), prompt.unwrap_or_default(), image);
                set(&mut r.safety_check, safety_check);
                r.seed = seed;
                set(&mut r.num_inference_steps, steps);
                Ok(AiRequest::Upscale(r))
            }
            Pipeline::ImageToImage => {
                let mut f = Fields::form(content_type, body)?;
                let prompt = f.required("prompt", string);
                let image = f.file("image");
                let model_id = f.required("model_id", string);
                let loras = f.optional("loras", json_text);
                let strength = f.optional("strength", float);
                let guidance_scale = f.optional("guidance_scale", float);
                let image_guidance_scale = f.optional("image_guidance_scale", float);
                let negative_prompt = f.optional("negative_prompt", string);
                let safety_check = f.optional("safety_check", boolean);
                let seed = f.optional("seed", integer);
                let steps = f.optional("num_inference_steps", count(1, u32::MAX));
                let images = f.optional("num_images_per_prompt", count(1, u32::MAX));
                f.finish()?;
                let mut r = ImageToImageRequest::new(model_id.unwrap_or_default(), prompt.unwrap_or_default(), image);
                set(&mut r.loras, loras);
                set(&mut r.strength, strength);
                set(&mut r.guidance_scale, guidance_scale);
                set(&mut r.image_guidance_scale, image_guidance_scale);
                set(&mut r.negative_prompt, negative_prompt);
                set(&mut r.safety_check, safety_check);
                r.seed = seed;
                set(&mut r.num_inference_steps, steps);
                set(&mut r.num_images_per_prompt, images);
                Ok(AiRequest::ImageToImage(r))
            }
            Pipeline::ImageToText => {
                let mut f = Fields::form(content_type, body)?;
                let image = f.file("image");
                let prompt = f.optional("prompt", string);
                let model_id = f.required("model_id", string);
                f.finish()?;
                let mut r = ImageToTextRequest::new(model_id.unwrap_or_default(), image);
                set(&mut r.prompt, prompt);
                Ok(AiRequest::ImageToText(r))
            }
            Pipeline::Llm => parse_llm(content_type, body).map(AiRequest::Llm),
            other => Err(ApiError::bad_request(format!("the {other} pipeline is not served here"))),
        }
    }

    pub fn pipeline(&self) -> Pipeline {
        match self {
            AiRequest::ImageToImage(_) => Pipeline::ImageToImage,
            AiRequest::Upscale(_) => Pipeline::Upscale,
            AiRequest::Llm(_) => Pipeline::Llm,
            AiRequest::ImageToText(_) => Pipeline::ImageToText,
        }
    }

    /// The model asked for (llm's `model`, the others' `model_id`).
    pub fn model_id(&self) -> &str {
        match self {
            AiRequest::ImageToImage(r) => &r.model_id,
            AiRequest::Upscale(r) => &r.model_id,
            AiRequest::Llm(r) => &r.model,
            AiRequest::ImageToText(r) => &r.model_id,
        }
    }

    /// The uploaded image, for the pipelines that take one.
    pub fn image(&self) -> Option<&[u8]> {
        match self {
            AiRequest::ImageToImage(r) => Some(&r.image),
            AiRequest::Upscale(r) => Some(&r.image),
            AiRequest::Llm(_) => None,
            AiRequest::ImageToText(r) => Some(&r.image),
        }
    }

    /// What the request is paid for (go-livepeer's units, ai.md §1.4): the input image's width ×
    /// height for upscale, image-to-text and image-to-image (go-livepeer multiplies by
    /// `num_images_per_prompt`; we make one image, so we count one), and
    /// `max_tokens` for llm. `input_dims` (width, height) come from the caller, who decodes the
    /// image's header ([`check_image_dims`] first); without them an image request counts 0.
    pub fn units(&self, input_dims: Option<(u32, u32)>) -> u64 {
        let pixels = input_dims.map_or(0, |(w, h)| u64::from(w) * u64::from(h));
        match self {
            AiRequest::Upscale(_) | AiRequest::ImageToText(_) => pixels,
            // One image is made whatever `num_images_per_prompt` asks (no diffusion models here),
            // so one is paid for.
            AiRequest::ImageToImage(_) => pixels,
            AiRequest::Llm(r) => u64::from(r.max_tokens),
        }
    }
}

/// Checks an input image's decoded dimensions: no pixels is a 400, more than
/// [`MAX_AI_IMAGE_PIXELS`] a 413.
pub fn check_image_dims(width: u32, height: u32) -> Result<(), ApiError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(ApiError::bad_request(format!("the image is {width}x{height}: it has no pixels")));
    }
    if pixels > MAX_AI_IMAGE_PIXELS {
        return Err(ApiError::too_large(format!(
            "the image is {width}x{height}: more than {MAX_AI_IMAGE_PIXELS} pixels"
        )));
    }
    Ok(())
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn parse_llm(content_type: &str, body: &[u8]) -> Result<LlmRequest, ApiError> {
    // FastAPI reads a body without a content type as JSON too.
    let media_type = media_type(content_type);
    if !(media_type.is_empty() || media_type == "application/json" || media_type.ends_with("+json")) {
        return Err(ApiError::bad_request(format!("expected an application/json body, got {content_type:?}")));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(object) = &value else {
        return Err(ApiError::validation(["body"], MODEL_ATTRIBUTES_TYPE_MSG, "model_attributes_type"));
    };
    let mut f = Fields { source: Source::Json(object), errors: Vec::new() };
    let messages = f.messages();
    let model = f.optional("model", string);
    let temperature = f.optional("temperature", finite_f32);
    let max_tokens = f.optional("max_tokens", count(1, MAX_LLM_TOKENS));
    let top_p = f.optional("top_p", finite_f32);
    let top_k = f.optional("top_k", integer);
    let stream = f.optional("stream", boolean);
    f.finish()?;
    let messages = messages.unwrap_or_default();
    if messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    let text: usize = messages.iter().map(|m| m.role.len() + m.content.len()).sum();
    if text > MAX_LLM_PROMPT_BYTES {
        return Err(ApiError::bad_request(format!(
            "the messages hold {text} bytes of text, more than {MAX_LLM_PROMPT_BYTES}: a prompt may have at most 4096 \
             tokens"
        )));
    }
    let mut r = LlmRequest::new(messages);
    set(&mut r.model, model);
    set(&mut r.temperature, temperature);
    set(&mut r.max_tokens, max_tokens);
    set(&mut r.top_p, top_p);
    set(&mut r.top_k, top_k);
    set(&mut r.stream, stream);
    Ok(r)
}

/// The media type of a `Content-Type`, lower-cased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Fields: form or JSON values converted as pydantic (lax mode) converts them
// ---------------------------------------------------------------------------------------------

const MODEL_ATTRIBUTES_TYPE_MSG: &str = "Input should be a valid dictionary or object to extract fields from";

/// Where a request's fields come from.
enum Source<'a> {
    Form(Vec<Part<'a>>),
    Json(&'a serde_json::Map<String, Value>),
}

/// A field's value as sent.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Text(&'a [u8]),
    Json(&'a Value),
}

/// Why a value does not convert: pydantic's error type and message.
struct Invalid {
    kind: &'static str,
    msg: String,
}

fn invalid(kind: &'static str, msg: impl Into<String>) -> Invalid {
    Invalid { kind, msg: msg.into() }
}

/// A request's fields, read one by one; what does not convert is collected and reported by
/// [`Fields::finish`], all at once as FastAPI does.
struct Fields<'a> {
    source: Source<'a>,
    errors: Vec<ValidationError>,
}

impl<'a> Fields<'a> {
    fn form(content_type: &str, body: &'a [u8]) -> Result<Self, ApiError> {
        if media_type(content_type) != "multipart/form-data" {
            return Err(ApiError::bad_request(format!("expected a multipart/form-data body, got {content_type:?}")));
        }
        let parts = multipart::parse(content_type, body)
            .map_err(|e| ApiError::bad_request(format!("malformed multipart/form-data body: {e}")))?;
        Ok(Fields { source: Source::Form(parts), errors: Vec::new() })
    }

    /// The field's value: the last part of that name (an empty one is absent), or the JSON member.
    fn raw(&self, name: &str) -> Option<Raw<'a>> {
        match &self.source {
            Source::Form(parts) => {
                parts.iter().rev().find(|p| p.name == name).filter(|p| !p.data.is_empty()).map(|p| Raw::Text(p.data))
            }
            Source::Json(object) => object.get(name).map(Raw::Json),
        }
    }

    fn optional<T>(&mut self, name: &str, convert: impl FnOnce(Raw<'a>) -> Result<T, Invalid>) -> Option<T> {
        match convert(self.raw(name)?) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(ValidationError::new([LocItem::from("body"), name.into()], e.msg, e.kind));
                None
            }
        }
    }

    fn required<T>(&mut self, name: &str, convert: impl FnOnce(Raw<'a>) -> Result<T, Invalid>) -> Option<T> {
        if self.raw(name).is_none() {
            self.errors.push(ValidationError::missing([LocItem::from("body"), name.into()]));
        }
        self.optional(name, convert)
    }

    /// A required file: its bytes as uploaded.
    fn file(&mut self, name: &str) -> Vec<u8> {
        self.required(name, |raw| match raw {
            Raw::Text(bytes) => Ok(bytes.to_vec()),
            Raw::Json(_) => Err(invalid("value_error", "Expected UploadFile")),
        })
        .unwrap_or_default()
    }

    /// llm's `messages`: a list of `{role, content}`.
    fn messages(&mut self) -> Option<Vec<LlmMessage>> {
        let Some(Raw::Json(value)) = self.raw("messages") else {
            self.errors.push(ValidationError::missing(["body", "messages"]));
            return None;
        };
        let Value::Array(items) = value else {
            self.errors.push(ValidationError::new(["body", "messages"], "Input should be a valid list", "list_type"));
            return None;
        };
        if items.len() > MAX_LLM_MESSAGES {
            let msg =
                format!("List should have at most {MAX_LLM_MESSAGES} items after validation, not {}", items.len());
            self.errors.push(ValidationError::new(["body", "messages"], msg, "too_long"));
            return None;
        }
        let mut messages = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = |field: Option<&str>| {
                let mut loc = vec![LocItem::from("body"), "messages".into(), LocItem::Index(i as u64)];
                loc.extend(field.map(LocItem::from));
                loc
            };
            let Value::Object(object) = item else {
                self.errors.push(ValidationError::new(at(None), MODEL_ATTRIBUTES_TYPE_MSG, "model_attributes_type"));
                continue;
            };
            let mut field = |name: &str| match object.get(name) {
                None => {
                    self.errors.push(ValidationError::missing(at(Some(name))));
                    None
                }
                Some(v) => match string(Raw::Json(v)) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        self.errors.push(ValidationError::new(at(Some(name)), e.msg, e.kind));
                        None
                    }
                },
            };
            let (role, content) = (field("role"), field("content"));
            if let (Some(role), Some(content)) = (role, content) {
                messages.push(LlmMessage { role, content });
            }
        }
        Some(messages)
    }

    /// The errors found, the first [`MAX_VALIDATION_ERRORS`] of them, as a 422.
    fn finish(mut self) -> Result<(), ApiError> {
        self.errors.truncate(MAX_VALIDATION_ERRORS);
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::validations(self.errors)) }
    }
}

/// A form field's text (UTF-8), or a JSON string.
fn text<'a>(raw: Raw<'a>, not_text: &'static str, msg: &str) -> Result<&'a str, Invalid> {
    match raw {
        Raw::Text(bytes) => std::str::from_utf8(bytes).map_err(|_| {
            invalid("string_unicode", "Input should be a valid string, unable to parse raw data as a unicode string")
        }),
        Raw::Json(Value::String(s)) => Ok(s),
        Raw::Json(_) => Err(invalid(not_text, msg)),
    }
}

fn string(raw: Raw<'_>) -> Result<String, Invalid> {
    text(raw, "string_type", "Input should be a valid string").map(str::to_string)
}

/// A string that must hold JSON (image-to-image's `loras`).
fn json_text(raw: Raw<'_>) -> Result<String, Invalid> {
    let s = string(raw)?;
    serde_json::from_str::<serde::de::IgnoredAny>(&s)
        .map_err(|e| invalid("json_invalid", format!("Invalid JSON: {e}")))?;
    Ok(s)
}

/// pydantic's booleans: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, `t`/`f`, `y`/`n`, in
/// any case (and JSON's booleans, and the integers 0 and 1).
fn boolean(raw: Raw<'_>) -> Result<bool, Invalid> {
    const BOOL_PARSING: &str = "Input should be a valid boolean, unable to interpret input";
    let parse = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(invalid("bool_parsing", BOOL_PARSING)),
    };
    match raw {
        Raw::Json(Value::Bool(b)) => Ok(*b),
        Raw::Json(Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(invalid("bool_parsing", BOOL_PARSING)),
        },
        raw => parse(text(raw, "bool_type", "Input should be a valid boolean")?),
    }
}

/// An integer: a form field's digits, or a JSON integer (or a float without a fraction).
fn integer(raw: Raw<'_>) -> Result<i64, Invalid> {
    match raw {
        Raw::Json(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
            (None, Some(f)) if f.fract() == 0.0 => Err(invalid("int_parsing_size", INT_SIZE_MSG)),
            _ => Err(invalid("int_from_float", "Input should be a valid integer, got a number with a fractional part")),
        },
        raw => {
            let s = text(raw, "int_type", "Input should be a valid integer")?.trim();
            s.parse::<i64>().map_err(|e| match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    invalid("int_parsing_size", INT_SIZE_MSG)
                }
                _ => invalid("int_parsing", "Input should be a valid integer, unable to parse string as an integer"),
            })
        }
    }
}

const INT_SIZE_MSG: &str = "Unable to parse input string as an integer, exceeded maximum size";

/// An integer in `min ..= max`, as pydantic's `ge`/`le` constraints report it.
fn count(min: u32, max: u32) -> impl FnOnce(Raw<'_>) -> Result<u32, Invalid> {
    move |raw| {
        let v = integer(raw)?;
        if v < i64::from(min) {
            return Err(invalid("greater_than_equal", format!("Input should be greater than or equal to {min}")));
        }
        u32::try_from(v)
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| invalid("less_than_equal", format!("Input should be less than or equal to {max}")))
    }
}

/// A number: a form field's text as Python's `float` reads it (`inf` and `nan` too), or a JSON
/// number.
/// A number the model's sampling can use: finite as an f32 (1e308 passed as a float and came
/// back from the worker as a 400, after a gateway had paid for it).
fn finite_f32(raw: Raw<'_>) -> Result<f64, Invalid> {
    float(raw).and_then(|v| {
        if (v as f32).is_finite() { Ok(v) } else { Err(invalid("finite_number", "Input should be a finite number")) }
    })
}

fn float(raw: Raw<'_>) -> Result<f64, Invalid> {
    match raw {
        Raw::Json(Value::Number(n)) => {
            n.as_f64().ok_or_else(|| invalid("float_type", "Input should be a valid number"))
        }
        raw => text(raw, "float_type", "Input should be a valid number")?.trim().parse::<f64>().map_err(|_| {
            invalid("float_parsing", "Input should be a valid number, unable to parse string as a number")
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// `Media`: one generated image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Where to fetch it (a URL, or a `data:` URL).
    pub url: String,
    pub seed: i64,
    pub nsfw: bool,
}

/// `ImageResponse`: the answer of image-to-image and upscale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResponse {
    pub images: Vec<Media>,
}

/// `ImageToTextResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageToTextResponse {
    pub text: String,
}

/// `LLMTokenUsage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmTokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// `LLMChoice`: `message` in a whole answer, `delta` in a streamed event; only `index` is
/// required, so absent fields are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmChoice {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<LlmMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<LlmMessage>,
}

/// `LLMResponse`: a whole answer, or one server-sent event of a streamed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmResponse {
    pub id: String,
    pub model: String,
    /// Unix seconds.
    pub created: i64,
    pub usage: LlmTokenUsage,
    pub choices: Vec<LlmChoice>,
}

/// The answer of a served pipeline. It (de)serializes as the inner response, untagged: its JSON
/// is the spec's body, and a body is read back as the first variant whose required fields it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AiResponse {
    Llm(LlmResponse),
    Image(ImageResponse),
    ImageToText(ImageToTextResponse),
}

impl AiResponse {
    /// The spec's JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs with string keys: serializing them cannot fail.
        serde_json::to_vec(self).expect("AI responses serialize")
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error answer: an HTTP status and the spec's body for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {body}")]
pub struct ApiError {
    pub status: u16,
    pub body: ApiErrorBody,
}

/// The body of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ApiErrorBody {
    /// Every status but 422.
    Http(HttpError),
    /// 422.
    Validation(HttpValidationError),
}

/// `HTTPError`: `{"detail": {"msg": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpError {
    pub detail: ErrorDetail,
}

/// `APIError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub msg: String,
}

/// `HTTPValidationError`: `{"detail": [{"loc": […], "msg": "…", "type": "…"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpValidationError {
    pub detail: Vec<ValidationError>,
}

/// `ValidationError`: where (`["body", "image"]`), what, and pydantic's error type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    pub loc: Vec<LocItem>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl ValidationError {
    pub fn new<L: Into<LocItem>>(
        loc: impl IntoIterator<Item = L>,
        msg: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        ValidationError { loc: loc.into_iter().map(Into::into).collect(), msg: msg.into(), kind: kind.into() }
    }

    /// pydantic's `missing`.
    pub fn missing<L: Into<LocItem>>(loc: impl IntoIterator<Item = L>) -> Self {
        ValidationError::new(loc, "Field required", "missing")
    }
}

/// One step of a [`ValidationError::loc`]: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Index(u64),
}

impl From<&str> for LocItem {
    fn from(name: &str) -> Self {
        LocItem::Name(name.to_string())
    }
}

impl From<String> for LocItem {
    fn from(name: String) -> Self {
        LocItem::Name(name)
    }
}

impl From<u64> for LocItem {
    fn from(index: u64) -> Self {
        LocItem::Index(index)
    }
}

impl ApiError {
    /// An `HTTPError` with any status.
    pub fn http(status: u16, msg: impl Into<String>) -> Self {
        ApiError { status, body: ApiErrorBody::Http(HttpError { detail: ErrorDetail { msg: msg.into() } }) }
    }

    /// 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::http(400, msg)
    }

    /// 413.
    pub fn too_large(msg: impl Into<String>) -> Self {
        ApiError::http(413, msg)
    }

    /// 500.
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError::http(500, msg)
    }

    /// 503: no orchestrator, no capacity.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        ApiError::http(503, msg)
    }

    /// 422 with one error, e.g. `validation(["body", "image"], "Field required", "missing")`.
    pub fn validation<L: Into<LocItem>>(
        loc: impl IntoIterator<Item = L>,
        msg: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        ApiError::validations(vec![ValidationError::new(loc, msg, kind)])
    }

    /// 422 with these errors.
    pub fn validations(errors: Vec<ValidationError>) -> Self {
        ApiError { status: 422, body: ApiErrorBody::Validation(HttpValidationError { detail: errors }) }
    }

    /// The body's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs with string keys: serializing them cannot fail.
        serde_json::to_vec(&self.body).expect("API errors serialize")
    }
}

impl fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiErrorBody::Http(e) => f.write_str(&e.detail.msg),
            ApiErrorBody::Validation(e) => {
                for (i, v) in e.detail.iter().enumerate() {
                    let loc: Vec<String> = v
                        .loc
                        .iter()
                        .map(|l| match l {
                            LocItem::Name(n) => n.clone(),
                            LocItem::Index(i) => i.to_string(),
                        })
                        .collect();
                    write!(f, "{}{}: {} ({})", if i > 0 { "; " } else { "" }, loc.join("."), v.msg, v.kind)?;
                }
                Ok(())
            }
        }
    }
}
