//! The AI API end to end: a gateway and an orchestrator as real `livepeer` processes on
//! loopback, the orchestrator running models on ONNX Runtime (the models `make setup` makes in
//! build/models, and PP-OCR from the rapidocr-onnxruntime wheel), clients speaking plain HTTP
//! multipart and JSON as the spec has them.

mod common;

use base64::Engine;
use common::{Node, http, metric, model};
use lp_testkit::multipart::form;
use serde_json::{Value, json};

/// An orchestrator serving the test models (`extra` goes into `[orchestrator]`).
fn orchestrator(extra: &str) -> Node {
    let config = format!(
        r#"
[orchestrator]
service_addr = "127.0.0.1:0"
x264_preset = "ultrafast"
{extra}
[[orchestrator.models]]
pipeline = "upscale"
model_id = "x2"
path = "{x2}"
warm = true
[[orchestrator.models]]
pipeline = "image-to-image"
model_id = "invert"
path = "{invert}"
[[orchestrator.models]]
pipeline = "image-to-text"
model_id = "ppocr"
path = "{ppocr}"
price_per_unit = "3"
[[orchestrator.models]]
pipeline = "llm"
model_id = "tiny"
path = "{llm}"
[admin]
addr = "127.0.0.1:0"
"#,
        x2 = model("upscale_x2_nearest.onnx"),
        invert = model("invert.onnx"),
        ppocr = model("ppocr"),
        llm = model("tiny-llm"),
    );
    Node::start("orchestrator", &config)
}

fn gateway(orchestrators: &[String], extra: &str) -> Node {
    let list: Vec<String> = orchestrators.iter().map(|o| format!("{o:?}")).collect();
    let config = format!(
        "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [{}]\n{extra}\n[admin]\naddr = \"127.0.0.1:0\"\n",
        list.join(", ")
    );
    Node::start("gateway", &config)
}

fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String, String) {
    let resp = http().post(url).header("content-type", content_type).body(body).send().unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, ct, resp.text().unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn png(image: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The image of an `ImageResponse`, from its data URL.
fn image_of(response: &Value) -> image::RgbImage {
    let url = response["images"][0]["url"].as_str().expect("an image URL");
    let b64 = url.strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    image::load_from_memory(&bytes).unwrap().into_rgb8()
}

fn chat(stream: bool) -> Vec<u8> {
    let messages =
        json!([{"role": "system", "content": "count to four"}, {"role": "user", "content": "start at zero"}]);
    serde_json::to_vec(&json!({"model": "tiny", "messages": messages, "temperature": 0, "stream": stream})).unwrap()
}

#[test]
fn every_pipeline_answers_through_the_gateway_as_the_spec_says() {
    // The safety model here is a stand-in with NudeNet's shape that finds every image exposed
    // (scripts/models/safety.py): it shows the nsfw flag comes from it, as configured.
    let o = orchestrator(&format!("safety_model = {:?}", model("safety_exposed.onnx")));
    let g = gateway(&[o.orchestrator_uri()], "");
    let base = g.gateway();

    // upscale: twice the size, every pixel its source's (nearest).
    let src = image::RgbImage::from_fn(37, 21, |x, y| image::Rgb([(x * 6) as u8, (y * 11) as u8, 200]));
    let (ct, body) = form(&[("model_id", "x2"), ("prompt", "sharper")], &[("image", &png(&src))]);
    let (status, content_type, text) = post(&format!("{base}/upscale"), &ct, body);
    assert_eq!((status, content_type.as_str()), (200, "application/json"), "{text}");
    let answer = json_of(&text);
    assert_eq!(answer["images"][0]["nsfw"], true, "safety_check defaults to true: {text}");
    let out = image_of(&answer);
    assert_eq!(out.dimensions(), (74, 42));
    assert!(out.enumerate_pixels().all(|(x, y, p)| p == src.get_pixel(x / 2, y / 2)));

    // image-to-image: a cold model, loaded at its first request.
    let fields = [("model_id", "invert"), ("prompt", "negative"), ("safety_check", "false")];
    let (ct, body) = form(&fields, &[("image", &png(&src))]);
    let (status, _, text) = post(&format!("{base}/image-to-image"), &ct, body);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text)["images"][0]["nsfw"], false, "no safety check asked for: {text}");
    assert_eq!(image_of(&json_of(&text)).get_pixel(3, 4), &image::Rgb([255 - 18, 255 - 44, 55]));

    // image-to-text: OCR of an image rendered with known text.
    let rendered = std::fs::read(model("ocr/livepeer.png")).unwrap();
    let (ct, body) = form(&[("model_id", "ppocr")], &[("image", &rendered)]);
    let (status, _, text) = post(&format!("{base}/image-to-text"), &ct, body);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text), json!({"text": "Livepeer 2026"}));

    // llm: the tiny model's greedy continuation, whole and as server-sent events.
    let (status, _, text) = post(&format!("{base}/llm"), "application/json", chat(false));
    assert_eq!(status, 200, "{text}");
    let answer = json_of(&text);
    assert_eq!(answer["choices"][0]["message"]["content"], "one two three four");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"], json!({"prompt_tokens": 14, "completion_tokens": 5, "total_tokens": 19}));
    let (status, content_type, text) = post(&format!("{base}/llm"), "application/json", chat(true));
    assert_eq!((status, content_type.as_str()), (200, "text/event-stream"), "{text}");
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "{text}");
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| json_of(e.strip_prefix("data: ").expect("data: lines"))).collect();
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, "one two three four");
    // At least one text event and the final one. How many pieces the text comes in depends on
    // timing: once the answer is in, the pieces still on their way are sent as one (the tiny
    // model can finish before its first piece is forwarded on a loaded machine), so this is not
    // a count; the model's token-by-token streaming is checked in pipelines/tests/ai_llm.rs.
    assert!(chunks.len() >= 2, "text events and the final one: {text}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 5);

    // The gateway counted them, by pipeline and model.
    let metrics = g.metrics();
    assert_eq!(metric(&metrics, "livepeer_ai_request_count{pipeline=\"upscale\",model_id=\"x2\"}"), 1.0);
    assert_eq!(metric(&metrics, "livepeer_ai_request_count{pipeline=\"llm\",model_id=\"tiny\"}"), 2.0);
    let o_metrics = o.metrics();
    assert!(
        metric(&o_metrics, "livepeer_ai_model_load_seconds_count{pipeline=\"image-to-image\"}") >= 1.0,
        "{o_metrics}"
    );
}

#[test]
fn bad_requests_get_the_specs_errors_and_change_nothing() {
    let o = orchestrator("");
    let g = gateway(&[o.orchestrator_uri()], "");
    let base = g.gateway();
    let src = png(&image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])));
    let msg = |text: &str| json_of(text)["detail"]["msg"].as_str().unwrap_or_default().to_string();

    // A model no orchestrator offers: 400, the spec's HTTPError shape.
    let (ct, body) = form(&[("model_id", "no-such-model"), ("prompt", "p")], &[("image", &src)]);
    let (status, _, text) = post(&format!("{base}/upscale"), &ct, body);
    assert_eq!(status, 400, "{text}");
    assert!(msg(&text).contains("no-such-model"), "{text}");
    // The orchestrator itself says the same, asked directly.
    let (ct, body) = form(&[("model_id", "no-such-model"), ("prompt", "p")], &[("image", &src)]);
    let (status, _, text) = post(&format!("{}/upscale", o.orchestrator_uri()), &ct, body);
    assert_eq!(status, 400, "{text}");
    assert!(msg(&text).contains("not served here"), "{text}");

    // A missing field: 422 with its location.
    let (ct, body) = form(&[("model_id", "x2")], &[("image", &src)]);
    let (status, _, text) = post(&format!("{base}/upscale"), &ct, body);
    assert_eq!(status, 422, "{text}");
    assert_eq!(json_of(&text)["detail"][0]["loc"], json!(["body", "prompt"]));

    // An image that does not decode: 400 with the reason, before any orchestrator is asked.
    let (ct, body) = form(&[("model_id", "x2"), ("prompt", "p")], &[("image", b"GIF89a not really")]);
    let (status, _, text) = post(&format!("{base}/upscale"), &ct, body);
    assert_eq!(status, 400, "{text}");
    assert!(msg(&text).contains("Gif is not supported"), "{text}");
    let truncated = &src[..src.len() / 2];
    let (ct, body) = form(&[("model_id", "x2"), ("prompt", "p")], &[("image", truncated)]);
    let (status, _, text) = post(&format!("{base}/upscale"), &ct, body);
    assert_eq!(status, 400, "{text}");

    // A streamed llm request for a model not served keeps its status: the stream starts only
    // once the request is taken.
    let streamed = br#"{"model":"no-such-model","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, content_type, text) =
        post(&format!("{}/llm", o.orchestrator_uri()), "application/json", streamed.to_vec());
    assert_eq!((status, content_type.as_str()), (400, "application/json"), "{text}");

    // llm without messages, and not JSON at all.
    let (status, _, text) =
        post(&format!("{base}/llm"), "application/json", br#"{"model":"tiny","messages":[]}"#.to_vec());
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = post(&format!("{base}/llm"), "application/json", b"{nope".to_vec());
    assert_eq!(status, 400, "{text}");

    // A body past the 50 MB limit: 413, read no further.
    let huge = vec![b'x'; lp_wire::limits::MAX_AI_BODY_BYTES + 1];
    let (status, _, text) = post(&format!("{base}/upscale"), "multipart/form-data; boundary=x", huge);
    assert_eq!(status, 413, "{text}");
    assert!(msg(&text).contains("exceeds"), "{text}");

    // Nothing of it hurt: the next request is served, and no worker restarted.
    let (ct, body) = form(&[("model_id", "x2"), ("prompt", "p")], &[("image", &src)]);
    assert_eq!(post(&format!("{base}/upscale"), &ct, body).0, 200);
    assert_eq!(metric(&o.metrics(), "livepeer_ai_worker_restarts_total"), 0.0);
}

#[test]
fn without_a_capable_orchestrator_the_answer_is_503_and_one_priced_above_the_cap_is_not_used() {
    let o = orchestrator("");
    // The gateway pays at most 1 wei per pixel for image-to-text; the orchestrator asks 3.
    let capped = "[[gateway.ai_max_prices]]\npipeline = \"image-to-text\"\nprice_per_unit = \"1\"\n";
    let g = gateway(&[o.orchestrator_uri()], capped);
    let rendered = std::fs::read(model("ocr/livepeer.png")).unwrap();
    let (ct, body) = form(&[("model_id", "ppocr")], &[("image", &rendered)]);
    let (status, _, text) = post(&format!("{}/image-to-text", g.gateway()), &ct, body);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("above the cap"), "{text}");
    // Other pipelines have no cap of their own here, and go through.
    let (status, _, text) = post(&format!("{}/llm", g.gateway()), "application/json", chat(false));
    assert_eq!(status, 200, "{text}");

    // The only orchestrator is down: 503, saying why.
    let down = gateway(&["http://127.0.0.1:9".to_string()], "");
    let (status, _, text) = post(&format!("{}/llm", down.gateway()), "application/json", chat(false));
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no orchestrators available"), "{text}");
}

#[test]
fn a_model_that_does_not_fit_its_pipeline_or_a_missing_runtime_stops_the_start_with_the_reason() {
    let start = |extra: &str, path: &str| {
        let config = format!(
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\n{extra}\n[[orchestrator.models]]\npipeline = \"upscale\"\n\
             model_id = \"bad\"\npath = \"{path}\"\nwarm = true\n[admin]\naddr = \"127.0.0.1:0\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.toml"), format!("data_dir = {:?}\n{config}", dir.path().join("d"))).unwrap();
        let out = std::process::Command::new(common::livepeer_bin())
            .args(["orchestrator", "-c"])
            .arg(dir.path().join("c.toml"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = start("", &model("mismatch_int_input.onnx"));
    assert!(err.contains("model bad does not fit the upscale pipeline") && err.contains("ids"), "{err}");
    let err = start("onnxruntime_path = \"/nonexistent/libonnxruntime.so\"", &model("upscale_x2_nearest.onnx"));
    assert!(err.contains("/nonexistent/libonnxruntime.so") && err.contains("ORT_DYLIB_PATH"), "{err}");
    let err = start("", "/nonexistent/model.onnx");
    assert!(err.contains("/nonexistent/model.onnx does not exist"), "{err}");
}
