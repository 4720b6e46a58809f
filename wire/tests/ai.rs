//! The AI gateway API: each served pipeline's body parsed with all its fields and with only the
//! required ones (the spec's defaults), FastAPI's 422s and the 400s, the spec's JSON for
//! responses and errors, the worker frames' MessagePack, units, and the multipart parser's
//! corners.

use lp_wire::ai::*;
use lp_wire::limits::{
    MAX_AI_BODY_BYTES, MAX_AI_IMAGE_PIXELS, MAX_LLM_MESSAGES, MAX_LLM_PROMPT_BYTES, MAX_LLM_TOKENS,
    MAX_VALIDATION_ERRORS,
};
use lp_wire::multipart::{self, MultipartError};
use serde_json::json;

const BOUNDARY: &str = "----lpBoundary7MA4YWxk";
const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake image bytes\r\n--not-a-boundary\r\n";

fn form_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A multipart/form-data body: text fields, and `image` as a file.
fn form(fields: &[(&str, &str)], image: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    if let Some(image) = image {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"in.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .bytes(),
        );
        body.extend(image);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

fn parse_form(pipeline: Pipeline, fields: &[(&str, &str)], image: Option<&[u8]>) -> Result<AiRequest, ApiError> {
    AiRequest::parse(pipeline, &form_type(), &form(fields, image))
}

fn error_json(e: &ApiError) -> serde_json::Value {
    serde_json::from_slice(&e.to_json()).unwrap()
}

#[test]
fn pipelines_are_go_livepeers_in_capability_order() {
    let names = [
        "text-to-image",
        "image-to-image",
        "image-to-video",
        "upscale",
        "audio-to-text",
        "segment-anything-2",
        "llm",
        "image-to-text",
        "live-video-to-video",
        "text-to-speech",
    ];
    for (i, name) in names.iter().enumerate() {
        let p = Pipeline::from_name(name).unwrap();
        assert_eq!(p.name(), *name);
        assert_eq!(p.to_string(), *name);
        assert_eq!(p.capability(), 27 + i as u32);
        assert_eq!(Pipeline::from_capability(27 + i as u32), Some(p));
        assert_eq!(Pipeline::ALL[i], p);
        assert_eq!(serde_json::to_value(p).unwrap(), json!(name));
    }
    assert_eq!(Pipeline::from_name("Upscale"), None);
    assert_eq!(Pipeline::from_capability(26), None);
    assert_eq!(Pipeline::from_capability(37), None);
    let served: Vec<_> = Pipeline::ALL.into_iter().filter(|p| p.served()).map(Pipeline::name).collect();
    assert_eq!(served, ["image-to-image", "upscale", "llm", "image-to-text"]);
    let e = parse_form(Pipeline::TextToImage, &[("model_id", "m"), ("prompt", "p")], None).unwrap_err();
    assert_eq!(e.status, 400);
}

#[test]
fn upscale_with_every_field_and_with_the_required_ones() {
    let fields = [
        ("prompt", "a cat"),
        ("model_id", "stabilityai/stable-diffusion-x4-upscaler"),
        ("safety_check", "False"),
        ("seed", "-42"),
        ("num_inference_steps", " 20 "),
    ];
    let r = parse_form(Pipeline::Upscale, &fields, Some(IMAGE)).unwrap();
    let expected = UpscaleRequest {
        model_id: "stabilityai/stable-diffusion-x4-upscaler".into(),
        prompt: "a cat".into(),
        image: IMAGE.to_vec().into(),
        safety_check: false,
        seed: Some(-42),
        num_inference_steps: 20,
    };
    assert_eq!(r, AiRequest::Upscale(expected));
    assert_eq!(r.pipeline(), Pipeline::Upscale);
    assert_eq!(r.model_id(), "stabilityai/stable-diffusion-x4-upscaler");
    assert_eq!(r.image(), Some(IMAGE));

    let r = parse_form(Pipeline::Upscale, &[("model_id", "m"), ("prompt", "p")], Some(IMAGE)).unwrap();
    let AiRequest::Upscale(r) = r else { panic!("{r:?}") };
    assert!(r.safety_check);
    assert_eq!(r.seed, None);
    assert_eq!(r.num_inference_steps, 75);
    assert_eq!(r, UpscaleRequest::new("m", "p", IMAGE));
}

#[test]
fn image_to_image_with_every_field_and_with_the_required_ones() {
    let fields = [
        ("prompt", "make it blue"),
        ("model_id", "timbrooks/instruct-pix2pix"),
        ("loras", r#"{"nerijs/pixel-art-xl": 1.2}"#),
        ("strength", "0.5"),
        ("guidance_scale", "3"),
        ("image_guidance_scale", "2.25"),
        ("negative_prompt", "red"),
        ("safety_check", "TRUE"),
        ("seed", "7"),
        ("num_inference_steps", "30"),
        ("num_images_per_prompt", "2"),
    ];
    let r = parse_form(Pipeline::ImageToImage, &fields, Some(IMAGE)).unwrap();
    let expected = ImageToImageRequest {
        model_id: "timbrooks/instruct-pix2pix".into(),
        prompt: "make it blue".into(),
        image: IMAGE.to_vec().into(),
        strength: 0.5,
        guidance_scale: 3.0,
        image_guidance_scale: 2.25,
        negative_prompt: "red".into(),
        safety_check: true,
        seed: Some(7),
        num_inference_steps: 30,
        num_images_per_prompt: 2,
        loras: r#"{"nerijs/pixel-art-xl": 1.2}"#.into(),
    };
    assert_eq!(r, AiRequest::ImageToImage(expected));

    let r = parse_form(Pipeline::ImageToImage, &[("model_id", "m"), ("prompt", "p")], Some(IMAGE)).unwrap();
    let AiRequest::ImageToImage(r) = r else { panic!("{r:?}") };
    assert_eq!((r.strength, r.guidance_scale, r.image_guidance_scale), (0.8, 7.5, 1.5));
    assert_eq!((r.negative_prompt.as_str(), r.loras.as_str()), ("", ""));
    assert!(r.safety_check);
    assert_eq!((r.seed, r.num_inference_steps, r.num_images_per_prompt), (None, 100, 1));
    assert_eq!(r, ImageToImageRequest::new("m", "p", IMAGE));
}

#[test]
fn image_to_text_with_every_field_and_with_the_required_ones() {
    let fields = [("model_id", "Salesforce/blip-image-captioning-large"), ("prompt", "a photo of")];
    let r = parse_form(Pipeline::ImageToText, &fields, Some(IMAGE)).unwrap();
    let expected = ImageToTextRequest {
        model_id: "Salesforce/blip-image-captioning-large".into(),
        image: IMAGE.to_vec().into(),
        prompt: "a photo of".into(),
    };
    assert_eq!(r, AiRequest::ImageToText(expected));

    let r = parse_form(Pipeline::ImageToText, &[("model_id", "m")], Some(IMAGE)).unwrap();
    assert_eq!(r, AiRequest::ImageToText(ImageToTextRequest::new("m", IMAGE)));
}

#[test]
fn llm_with_every_field_and_with_the_required_ones() {
    let body = json!({
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "temperature": 0.2,
        "max_tokens": 100,
        "top_p": 0.9,
        "top_k": 40,
        "stream": true,
        "unknown": {"ignored": [1, 2]},
    });
    let r = AiRequest::parse(Pipeline::Llm, "application/json; charset=utf-8", body.to_string().as_bytes()).unwrap();
    let expected = LlmRequest {
        messages: vec![
            LlmMessage { role: "system".into(), content: "be brief".into() },
            LlmMessage { role: "user".into(), content: "hi".into() },
        ],
        model: "meta-llama/Llama-3.1-8B-Instruct".into(),
        temperature: 0.2,
        max_tokens: 100,
        top_p: 0.9,
        top_k: 40,
        stream: true,
    };
    assert_eq!(r, AiRequest::Llm(expected));
    assert_eq!(r.model_id(), "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(r.image(), None);

    let body = json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    let r = AiRequest::parse(Pipeline::Llm, "application/json", body.as_bytes()).unwrap();
    let AiRequest::Llm(r) = r else { panic!("{r:?}") };
    assert_eq!(
        (r.model.as_str(), r.temperature, r.max_tokens, r.top_p, r.top_k, r.stream),
        ("", 0.7, 256, 1.0, -1, false)
    );
    assert_eq!(r, LlmRequest::new(vec![LlmMessage { role: "user".into(), content: "hi".into() }]));
    // No content type is read as JSON (FastAPI).
    assert!(AiRequest::parse(Pipeline::Llm, "", body.as_bytes()).is_ok());
}

#[test]
fn a_missing_image_is_fastapis_422() {
    for pipeline in [Pipeline::Upscale, Pipeline::ImageToImage, Pipeline::ImageToText] {
        let e = parse_form(pipeline, &[("model_id", "m"), ("prompt", "p")], None).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(
            error_json(&e),
            json!({"detail": [{"loc": ["body", "image"], "msg": "Field required", "type": "missing"}]})
        );
        // An empty file is no file.
        let e = parse_form(pipeline, &[("model_id", "m"), ("prompt", "p")], Some(b"")).unwrap_err();
        assert_eq!(e, ApiError::validation(["body", "image"], "Field required", "missing"));
    }
}

#[test]
fn every_missing_field_is_reported_in_order() {
    let e = parse_form(Pipeline::Upscale, &[("prompt", "")], None).unwrap_err();
    assert_eq!(
        error_json(&e),
        json!({"detail": [
            {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "image"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "model_id"], "msg": "Field required", "type": "missing"},
        ]})
    );
    assert_eq!(
        e.to_string(),
        "422: body.prompt: Field required (missing); body.image: Field required (missing); body.model_id: Field required (missing)"
    );
}

#[test]
fn fields_that_do_not_convert_are_pydantics_422s() {
    let required = [("model_id", "m"), ("prompt", "p")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut fields = required.to_vec();
        fields.extend_from_slice(extra);
        fields
    };
    let e = parse_form(Pipeline::Upscale, &with(&[("safety_check", "notabool")]), Some(IMAGE)).unwrap_err();
    assert_eq!(
        error_json(&e),
        json!({"detail": [{"loc": ["body", "safety_check"], "msg": "Input should be a valid boolean, unable to interpret input", "type": "bool_parsing"}]})
    );
    for (value, expected) in [("true", true), ("False", false), ("YES", true), ("0", false), ("on", true), ("n", false)]
    {
        let r = parse_form(Pipeline::Upscale, &with(&[("safety_check", value)]), Some(IMAGE)).unwrap();
        let AiRequest::Upscale(r) = r else { panic!() };
        assert_eq!(r.safety_check, expected, "{value}");
    }

    let fields = with(&[
        ("seed", "1.5"),
        ("strength", "lots"),
        ("num_inference_steps", "0"),
        ("num_images_per_prompt", "99999999999"),
        ("loras", "{not json"),
    ]);
    let e = parse_form(Pipeline::ImageToImage, &fields, Some(IMAGE)).unwrap_err();
    assert_eq!(e.status, 422);
    let detail = error_json(&e)["detail"].clone();
    let kinds: Vec<_> = detail.as_array().unwrap().iter().map(|d| (d["loc"][1].clone(), d["type"].clone())).collect();
    assert_eq!(
        kinds,
        [
            (json!("loras"), json!("json_invalid")),
            (json!("strength"), json!("float_parsing")),
            (json!("seed"), json!("int_parsing")),
            (json!("num_inference_steps"), json!("greater_than_equal")),
            (json!("num_images_per_prompt"), json!("less_than_equal")),
        ]
    );
    assert_eq!(detail[3]["msg"], "Input should be greater than or equal to 1");

    let e = parse_form(Pipeline::Upscale, &with(&[("seed", "99999999999999999999")]), Some(IMAGE)).unwrap_err();
    assert_eq!(error_json(&e)["detail"][0]["type"], "int_parsing_size");
    // A text field that is not UTF-8.
    let mut body = form(&[("model_id", "m")], Some(IMAGE));
    body.splice(
        0..0,
        [
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n").as_bytes(),
            b"\xff\xfe\r\n",
        ]
        .concat(),
    );
    let e = AiRequest::parse(Pipeline::ImageToText, &form_type(), &body).unwrap_err();
    assert_eq!(error_json(&e)["detail"][0]["type"], "string_unicode");
}

#[test]
fn bodies_that_are_not_forms_or_json_are_400s() {
    let garbage = b"\x00\x01garbage, not a form\r\n--nope";
    let e = AiRequest::parse(Pipeline::Upscale, &form_type(), garbage).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.to_string().contains("multipart"), "{e}");
    // A form cut short.
    let body = form(&[("model_id", "m"), ("prompt", "p")], Some(IMAGE));
    let e = AiRequest::parse(Pipeline::Upscale, &form_type(), &body[..body.len() / 2]).unwrap_err();
    assert_eq!(e.status, 400);
    // Wrong content types.
    for ct in ["application/json", "multipart/form-data", "multipart/mixed; boundary=x", ""] {
        let e = AiRequest::parse(Pipeline::ImageToText, ct, &body).unwrap_err();
        assert_eq!(e.status, 400, "{ct}");
    }
    let e = AiRequest::parse(Pipeline::Llm, &form_type(), &body).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.to_string().contains("application/json"), "{e}");
    for bad in [&b"{\"messages\": ["[..], b"", b"\xff", b"nul"] {
        let e = AiRequest::parse(Pipeline::Llm, "application/json", bad).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }
}

#[test]
fn llm_errors() {
    let parse = |v: serde_json::Value| AiRequest::parse(Pipeline::Llm, "application/json", v.to_string().as_bytes());
    // go-livepeer's gateway: no messages is a 400.
    let e = parse(json!({"messages": [], "max_tokens": 10})).unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(error_json(&e), json!({"detail": {"msg": "messages must not be empty"}}));
    // The spec: messages are required.
    let e = parse(json!({"model": "m"})).unwrap_err();
    assert_eq!(
        error_json(&e),
        json!({"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]})
    );
    let e = parse(json!(["not", "an", "object"])).unwrap_err();
    assert_eq!(error_json(&e)["detail"][0]["type"], "model_attributes_type");
    let e = parse(json!({"messages": "hi"})).unwrap_err();
    assert_eq!(error_json(&e)["detail"][0]["type"], "list_type");
    let e = parse(json!({"messages": [{"role": "user"}, 5, {"role": 1, "content": "x"}]})).unwrap_err();
    assert_eq!(
        error_json(&e)["detail"],
        json!([
            {"loc": ["body", "messages", 0, "content"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "messages", 1], "msg": "Input should be a valid dictionary or object to extract fields from", "type": "model_attributes_type"},
            {"loc": ["body", "messages", 2, "role"], "msg": "Input should be a valid string", "type": "string_type"},
        ])
    );
    // max_tokens is bounded.
    let hi = json!([{"role": "user", "content": "hi"}]);
    let e = parse(json!({"messages": hi, "max_tokens": MAX_LLM_TOKENS + 1})).unwrap_err();
    assert_eq!(error_json(&e)["detail"][0]["type"], "less_than_equal");
    assert_eq!(error_json(&e)["detail"][0]["loc"], json!(["body", "max_tokens"]));
    let e = parse(json!({"messages": hi, "max_tokens": 0})).unwrap_err();
    assert_eq!(error_json(&e)["detail"][0]["type"], "greater_than_equal");
    let e = parse(json!({"messages": hi, "max_tokens": 1.5, "stream": "maybe", "temperature": null, "model": 3}))
        .unwrap_err();
    let kinds: Vec<_> = error_json(&e)["detail"].as_array().unwrap().iter().map(|d| d["type"].clone()).collect();
    assert_eq!(kinds, [json!("string_type"), json!("float_type"), json!("int_from_float"), json!("bool_parsing")]);
    // pydantic's lax mode: numbers and booleans in strings, integral floats.
    let r = parse(json!({"messages": hi, "max_tokens": "64", "stream": "true", "temperature": "0.5", "top_k": 5.0}))
        .unwrap();
    let AiRequest::Llm(r) = r else { panic!() };
    assert_eq!((r.max_tokens, r.stream, r.temperature, r.top_k), (64, true, 0.5, 5));
}

/// What an llm request may carry is bounded before anything costly: the messages' count (a
/// 422, pydantic's `too_long`), their text (a 400, checked before the text is tokenized, which
/// took 8 GB for 48 MB of words), and the field errors a 422 lists (a million bad messages made
/// a 555 MB answer); and sampling numbers are finite as the model uses them.
#[test]
fn llm_requests_are_bounded_before_they_cost() {
    let parse = |v: serde_json::Value| AiRequest::parse(Pipeline::Llm, "application/json", v.to_string().as_bytes());
    let message = json!({"role": "user", "content": "hi"});
    let e = parse(json!({"messages": vec![message.clone(); MAX_LLM_MESSAGES + 1]})).unwrap_err();
    assert_eq!(e.status, 422);
    let msg =
        format!("List should have at most {MAX_LLM_MESSAGES} items after validation, not {}", MAX_LLM_MESSAGES + 1);
    assert_eq!(error_json(&e)["detail"], json!([{"loc": ["body", "messages"], "msg": msg, "type": "too_long"}]));
    assert!(parse(json!({"messages": vec![message; MAX_LLM_MESSAGES]})).is_ok());

    let text = |bytes: usize| json!({"messages": [{"role": "user", "content": "a".repeat(bytes - 4)}]});
    assert!(parse(text(MAX_LLM_PROMPT_BYTES)).is_ok(), "role and content count");
    let e = parse(text(MAX_LLM_PROMPT_BYTES + 1)).unwrap_err();
    assert_eq!(e.status, 400);
    let want =
        format!("the messages hold {} bytes of text, more than {MAX_LLM_PROMPT_BYTES}", MAX_LLM_PROMPT_BYTES + 1);
    assert!(e.to_string().contains(&want), "{e}");

    for field in ["temperature", "top_p"] {
        let e = parse(json!({"messages": [{"role": "user", "content": "hi"}], field: 1e308})).unwrap_err();
        let want = json!([{"loc": ["body", field], "msg": "Input should be a finite number", "type": "finite_number"}]);
        assert_eq!(error_json(&e)["detail"], want);
        let e = parse(json!({"messages": [{"role": "user", "content": "hi"}], field: "nan"})).unwrap_err();
        assert_eq!(error_json(&e)["detail"][0]["type"], "finite_number");
    }

    let e = parse(json!({"messages": vec![json!({}); MAX_LLM_MESSAGES]})).unwrap_err();
    let detail = error_json(&e)["detail"].as_array().unwrap().clone();
    assert_eq!(detail.len(), MAX_VALIDATION_ERRORS);
    assert_eq!(detail[0], json!({"loc": ["body", "messages", 0, "role"], "msg": "Field required", "type": "missing"}));
}

#[test]
fn limits() {
    let big = vec![0u8; MAX_AI_BODY_BYTES + 1];
    let e = AiRequest::parse(Pipeline::Upscale, &form_type(), &big).unwrap_err();
    assert_eq!(e.status, 413);
    assert_eq!(check_image_dims(4096, 4096), Ok(()));
    assert_eq!(MAX_AI_IMAGE_PIXELS, 4096 * 4096);
    assert_eq!(check_image_dims(4097, 4096).unwrap_err().status, 413);
    assert_eq!(check_image_dims(u32::MAX, u32::MAX).unwrap_err().status, 413);
    assert_eq!(check_image_dims(0, 10).unwrap_err().status, 400);
}

#[test]
fn responses_are_the_specs_json() {
    let image = AiResponse::Image(ImageResponse {
        images: vec![Media { url: "https://o/stream/abc.png".into(), seed: 42, nsfw: false }],
    });
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&image.to_json()).unwrap(),
        json!({"images": [{"url": "https://o/stream/abc.png", "seed": 42, "nsfw": false}]})
    );
    let text = AiResponse::ImageToText(ImageToTextResponse { text: "a cat".into() });
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&text.to_json()).unwrap(), json!({"text": "a cat"}));
    let llm = AiResponse::Llm(LlmResponse {
        id: "chatcmpl-1".into(),
        model: "m".into(),
        created: 1_700_000_000,
        usage: LlmTokenUsage { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
        choices: vec![
            LlmChoice {
                index: 0,
                finish_reason: Some("stop".into()),
                delta: None,
                message: Some(LlmMessage { role: "assistant".into(), content: "hello".into() }),
            },
            LlmChoice {
                index: 1,
                finish_reason: None,
                delta: Some(LlmMessage { role: "assistant".into(), content: "he".into() }),
                message: None,
            },
        ],
    });
    let expected = json!({
        "id": "chatcmpl-1",
        "model": "m",
        "created": 1_700_000_000,
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hello"}},
            {"index": 1, "delta": {"role": "assistant", "content": "he"}},
        ],
    });
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&llm.to_json()).unwrap(), expected);
    // Read back, from JSON and from MessagePack.
    for r in [image, text, llm] {
        assert_eq!(serde_json::from_slice::<AiResponse>(&r.to_json()).unwrap(), r);
        assert_eq!(lp_wire::decode::<AiResponse>(&lp_wire::encode(&r)).unwrap(), r);
    }
}

#[test]
fn errors_are_the_specs_json() {
    let e = ApiError::bad_request("no orchestrators available");
    assert_eq!(e.to_json(), br#"{"detail":{"msg":"no orchestrators available"}}"#);
    assert_eq!(e.status, 400);
    assert_eq!(e.to_string(), "400: no orchestrators available");
    for (e, status) in [
        (ApiError::unavailable("x"), 503),
        (ApiError::too_large("x"), 413),
        (ApiError::internal("x"), 500),
        (ApiError::http(401, "x"), 401),
    ] {
        assert_eq!(e.status, status);
        assert_eq!(e.to_json(), br#"{"detail":{"msg":"x"}}"#);
    }
    let e = ApiError::validation(["body", "image"], "Field required", "missing");
    assert_eq!(e.status, 422);
    assert_eq!(e.to_json(), br#"{"detail":[{"loc":["body","image"],"msg":"Field required","type":"missing"}]}"#);
    let body: ApiErrorBody = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(body, e.body);
}

#[test]
fn requests_round_trip_in_worker_frames() {
    let mut img2img = ImageToImageRequest::new("m", "p", IMAGE);
    img2img.seed = Some(i64::MIN);
    let requests = [
        AiRequest::Upscale(UpscaleRequest::new("m", "p", IMAGE)),
        AiRequest::ImageToImage(img2img),
        AiRequest::ImageToText(ImageToTextRequest::new("m", vec![0u8; 1000])),
        AiRequest::Llm(LlmRequest::new(vec![LlmMessage { role: "user".into(), content: "hi".into() }])),
    ];
    for r in requests {
        let bytes = lp_wire::encode(&r);
        assert_eq!(lp_wire::decode::<AiRequest>(&bytes).unwrap(), r);
        if let Some(image) = r.image() {
            // Binary as MessagePack bin, not an array of numbers.
            assert!(bytes.windows(image.len()).any(|w| w == image));
        }
    }
}

/// The worker protocol's AI frames: the typed request out, the typed answer (an untagged enum)
/// and streamed text back, through MessagePack with named fields.
#[test]
fn ai_jobs_round_trip_in_worker_frames() {
    use lp_wire::{OrchestratorMessage, TranscoderMessage, Work, WorkOutcome};
    let mut llm = LlmRequest::new(vec![LlmMessage { role: "user".into(), content: "hi".into() }]);
    llm.stream = true;
    for request in [AiRequest::Upscale(UpscaleRequest::new("m", "p", IMAGE)), AiRequest::Llm(llm)] {
        let job = OrchestratorMessage::Job { task_id: 7, work: Work::Infer { request }, timeout_ms: 5 };
        assert_eq!(lp_wire::decode::<OrchestratorMessage>(&lp_wire::encode(&job)).unwrap(), job);
    }
    let answers = [
        AiResponse::Image(ImageResponse {
            images: vec![Media { url: "data:image/png;base64,AAAA".into(), seed: 3, nsfw: false }],
        }),
        AiResponse::ImageToText(ImageToTextResponse { text: "a cat".into() }),
        AiResponse::Llm(LlmResponse {
            id: "x".into(),
            model: "m".into(),
            created: 1,
            usage: LlmTokenUsage::default(),
            choices: vec![],
        }),
    ];
    for answer in answers {
        let frame = TranscoderMessage::Result { task_id: 7, outcome: WorkOutcome::Inferred(answer) };
        assert_eq!(lp_wire::decode::<TranscoderMessage>(&lp_wire::encode(&frame)).unwrap(), frame);
    }
    let partial = TranscoderMessage::Partial { task_id: 7, text: " world".into() };
    assert_eq!(lp_wire::decode::<TranscoderMessage>(&lp_wire::encode(&partial)).unwrap(), partial);
}

#[test]
fn units_are_go_livepeers() {
    let mut img2img = ImageToImageRequest::new("m", "p", IMAGE);
    assert_eq!(AiRequest::ImageToImage(img2img.clone()).units(Some((512, 768))), 512 * 768);
    img2img.num_images_per_prompt = 3;
    assert_eq!(AiRequest::ImageToImage(img2img).units(Some((512, 768))), 512 * 768, "one image is made and paid");
    assert_eq!(AiRequest::Upscale(UpscaleRequest::new("m", "p", IMAGE)).units(Some((256, 256))), 65536);
    assert_eq!(
        AiRequest::ImageToText(ImageToTextRequest::new("m", IMAGE)).units(Some((u32::MAX, u32::MAX))),
        u64::from(u32::MAX) * u64::from(u32::MAX)
    );
    assert_eq!(AiRequest::Upscale(UpscaleRequest::new("m", "p", IMAGE)).units(None), 0);
    let mut llm = LlmRequest::new(vec![]);
    assert_eq!(AiRequest::Llm(llm.clone()).units(None), 256);
    llm.max_tokens = 1000;
    assert_eq!(AiRequest::Llm(llm).units(Some((9, 9))), 1000);
}

#[test]
fn multipart_corners() {
    let ct = "multipart/form-data; boundary=\"b:1\"";
    // Preamble, transport padding after a delimiter, a part without a filename, the boundary's
    // text inside data, a part with no bytes, an epilogue.
    let body = b"preamble\r\n--b:1\r\nignored\r\n--b:1  \t\r\ncontent-disposition: form-data; name=a\r\n\r\nx\r\n--b:1x\r\n--b:\r\n\
--b:1\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\xc3\xa9.png\"\r\nContent-Type: image/png\r\nX-Other: 1\r\n\r\n\r\n--b:1--epilogue\r\n--b:1\r\n";
    let e = multipart::parse(ct, body).unwrap_err();
    // The first part's headers run to the next blank line, and `ignored` is no header.
    assert_eq!(e, MultipartError::BadHeaders);
    let body = b"preamble\r\n--b:1  \t\r\ncontent-disposition: form-data; name=a\r\n\r\nx\r\n--b:1x\r\n--b:\r\n\
--b:1\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\xc3\xa9.png\"\r\nContent-Type: image/png\r\nX-Other: 1\r\n\r\n\r\n--b:1--epilogue\r\n--b:1\r\n";
    let parts = multipart::parse(ct, body).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        (parts[0].name.as_str(), parts[0].filename.as_deref(), parts[0].data),
        ("a", None, &b"x\r\n--b:1x\r\n--b:"[..])
    );
    assert_eq!((parts[1].name.as_str(), parts[1].filename.as_deref()), ("f", Some("é.png")));
    assert_eq!((parts[1].content_type.as_deref(), parts[1].data), (Some("image/png"), &b""[..]));
    // An empty form, and the failures.
    assert_eq!(multipart::parse(ct, b"--b:1--"), Ok(vec![]));
    assert_eq!(multipart::parse(ct, b"no delimiter"), Err(MultipartError::NoOpening));
    assert_eq!(
        multipart::parse(ct, b"--b:1\r\nContent-Disposition: form-data; name=a\r\n\r\nx"),
        Err(MultipartError::Truncated)
    );
    assert_eq!(
        multipart::parse(ct, b"--b:1\r\nContent-Disposition: form-data; name=a"),
        Err(MultipartError::Truncated)
    );
    assert_eq!(
        multipart::parse(ct, b"--b:1\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b:1--"),
        Err(MultipartError::NoName)
    );
    assert_eq!(
        multipart::parse(ct, b"--b:1\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b:1--"),
        Err(MultipartError::NoName)
    );
    assert_eq!(multipart::parse(ct, b"--b:1\r\n\r\nx\r\n--b:1--"), Err(MultipartError::NoName));
    let mut long = b"--b:1\r\nX: ".to_vec();
    long.extend(vec![b'a'; multipart::MAX_HEADER_BYTES]);
    long.extend(b"\r\n\r\n\r\n--b:1--");
    assert_eq!(multipart::parse(ct, &long), Err(MultipartError::HeadersTooLong));
    // At most 64 parts.
    let fields: Vec<(String, String)> = (0..65).map(|i| (format!("f{i}"), "v".to_string())).collect();
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(multipart::parse(&form_type(), &form(&refs[..64], None)).unwrap().len(), 64);
    assert_eq!(multipart::parse(&form_type(), &form(&refs, None)), Err(MultipartError::TooManyParts));
    // The last of two fields of one name wins (Starlette's form).
    let r = parse_form(Pipeline::ImageToText, &[("model_id", "first"), ("model_id", "last")], Some(IMAGE)).unwrap();
    assert_eq!(r.model_id(), "last");
}
