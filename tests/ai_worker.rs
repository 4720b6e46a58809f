//! Remote AI workers end to end: an orchestrator that lists a model without a path (only remote
//! workers serve it) and `livepeer ai-worker` processes that dial it; a request to the
//! orchestrator's `POST /upscale` runs on a worker, and one whose worker is SIGKILLed mid-job
//! completes on the other.

mod common;

use std::time::{Duration, Instant};

use common::{Node, http, model, wait_log, write_secret};

/// An orchestrator that runs no model itself: x2 has no path.
fn orchestrator(secret_file: &str) -> Node {
    Node::start(
        "orchestrator",
        &format!(
            r#"
[orchestrator]
service_addr = "127.0.0.1:0"
transcode = false
secret_file = {secret_file:?}
[[orchestrator.models]]
pipeline = "upscale"
model_id = "x2"
capacity = 2
[admin]
addr = "127.0.0.1:0"
"#
        ),
    )
}

fn ai_worker(orchestrator_uri: &str, secret_file: &str) -> Node {
    Node::start(
        "ai-worker",
        &format!(
            r#"
[ai_worker]
orchestrator = {orchestrator_uri:?}
secret_file = {secret_file:?}
[[ai_worker.models]]
pipeline = "upscale"
model_id = "x2"
path = {path:?}
warm = true
[admin]
addr = "127.0.0.1:0"
"#,
            path = model("upscale_x2_blur.onnx"),
        ),
    )
}

/// Wait until the orchestrator has `n` AI worker registrations.
fn wait_ai_workers(o: &Node, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let workers = o.status()["orchestrator"]["ai_workers"].as_array().map(|a| a.len()).unwrap_or(0);
        if workers == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the orchestrator never had {n} AI workers:\n{}", o.log());
}

/// The load the orchestrator's AI workers carry, summed.
fn ai_load(o: &Node) -> u64 {
    let status = o.status();
    let workers = status["orchestrator"]["ai_workers"].as_array().cloned().unwrap_or_default();
    workers.iter().map(|w| w["load"].as_u64().unwrap_or(0)).sum()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 99]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `POST {uri}/upscale` of `image` with model x2: the status and body.
fn upscale(uri: &str, image: &[u8]) -> (u16, String) {
    let boundary = "lp-ai-worker-test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\nx2\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nsharper\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"in.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = http()
        .post(format!("{uri}/upscale"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// The dimensions of the image of an `ImageResponse`.
fn dims_of(text: &str) -> (u32, u32) {
    use base64::Engine;
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let url = v["images"][0]["url"].as_str().expect("an image URL");
    let b64 = url.strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    image::load_from_memory(&bytes).unwrap().into_rgb8().dimensions()
}

#[test]
fn remote_ai_workers_serve_a_model_the_orchestrator_does_not_run_and_a_killed_ones_job_moves() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "correct horse battery staple\n");
    let o = orchestrator(&secret_file);
    let uri = o.orchestrator_uri();

    // No worker yet: the model is listed, nothing serves it, and the start said so.
    let (status, text) = upscale(&uri, &png(8, 8));
    assert_eq!(status, 503, "{text}");
    let log = o.log();
    let said = log.lines().any(|l| l.contains("served by remote AI workers only") && l.contains("model=x2"));
    assert!(said, "{log}");

    let mut first = ai_worker(&uri, &secret_file);
    wait_ai_workers(&o, 1);
    let (status, text) = upscale(&uri, &png(37, 21));
    assert_eq!(status, 200, "{text}\n{}", o.log());
    assert_eq!(dims_of(&text), (74, 42));

    // A slow job (a 2048x2048 upscale) on the first worker; a second worker joins while it runs,
    // then the first is killed: the job completes on the second, and the client sees a 200.
    let slow = std::thread::spawn({
        let uri = uri.clone();
        move || upscale(&uri, &png(2048, 2048))
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while ai_load(&o) == 0 {
        assert!(Instant::now() < deadline, "the slow job never reached a worker:\n{}", o.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = ai_worker(&uri, &secret_file);
    wait_ai_workers(&o, 2);
    first.kill();
    let (status, text) = slow.join().unwrap();
    assert_eq!(status, 200, "{text}\n{}\n{}", o.log(), second.log());
    assert_eq!(dims_of(&text), (4096, 4096));
    wait_log(&o, "worker went away mid-job; re-queueing it");
    wait_ai_workers(&o, 1);

    // The survivor goes on serving.
    let (status, text) = upscale(&uri, &png(5, 3));
    assert_eq!(status, 200, "{text}");
    assert_eq!(dims_of(&text), (10, 6));
}
