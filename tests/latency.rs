//! Per-segment overhead benchmark (ignored by `cargo test`; `make bench-latency` runs it on the
//! release build): what a segment costs around its transcode, as a client sees it.
//!
//! One `livepeer run` process (gateway + orchestrator with a local transcoder) takes
//! `LATENCY_SEGMENTS` (default 30) 2-second segments of one stream, pushed one after another
//! over loopback by a real HTTP client (`PUT`, `Accept: multipart/mixed`, the whole answer read).
//! Before and after each push it reads the node's own `livepeer_transcode_time_seconds_sum`
//! from `/metrics`: the difference is that segment's transcode time, and the client's time minus
//! it is the segment's overhead (ingest, probe, the trip to the orchestrator and back, HLS, the
//! multipart answer). Two cases: a 720p source into P360p30fps16x9 + P240p30fps16x9, and a 1080p
//! source into livepeer_bench's 720p/480p/360p/240p ladder. Prints p50 and p99 of the overhead
//! and the transcode times, and one JSON line per case (`latency: {...}`). `LP_TEST_BIN` picks
//! the binary, as for every end-to-end test.

mod common;

use std::time::Instant;

use common::*;
use serde_json::json;

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn transcode_seconds(node: &Node) -> f64 {
    metric(&node.metrics(), "livepeer_transcode_time_seconds_sum")
}

const LADDER: &str = r#"[
  {"name": "720p", "width": 1280, "height": 720, "bitrate": 3000000, "fps": 0, "gop": "1"},
  {"name": "480p", "width": 854, "height": 480, "bitrate": 1600000, "fps": 0, "gop": "1"},
  {"name": "360p", "width": 640, "height": 360, "bitrate": 800000, "fps": 0, "gop": "1"},
  {"name": "240p", "width": 426, "height": 240, "bitrate": 250000, "fps": 0, "gop": "1"}
]"#;

fn case(name: &str, profiles: &str, (w, h): (u32, u32), segments: usize) {
    let node = Node::start(
        "run",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\n{profiles}\n\
             [orchestrator]\nservice_addr = \"127.0.0.1:0\"\ncapacity = 1\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let gw = node.gateway();
    let media = make_segments(node.dir.path(), 2 * segments.min(10) as u32, w, h);
    let client = http();
    let (mut overhead, mut transcode) = (Vec::new(), Vec::new());
    // One warm-up segment (connections, lazy initialisation), then the timed ones.
    for seq in 0..=segments {
        let body = media[seq % media.len()].clone();
        let before = transcode_seconds(&node);
        let t = Instant::now();
        let resp = client
            .put(format!("{gw}/live/lat/{seq}.ts"))
            .header("Accept", "multipart/mixed")
            .body(body)
            .send()
            .expect("push");
        assert_eq!(resp.status(), 200);
        let answer = resp.bytes().unwrap();
        let client_ms = t.elapsed().as_secs_f64() * 1000.0;
        assert!(!answer.is_empty());
        let transcode_ms = (transcode_seconds(&node) - before) * 1000.0;
        if seq > 0 {
            overhead.push(client_ms - transcode_ms);
            transcode.push(transcode_ms);
        }
    }
    let result = json!({
        "case": name,
        "segments": segments,
        "overhead_ms": {"p50": percentile(&overhead, 0.5), "p99": percentile(&overhead, 0.99), "max": percentile(&overhead, 1.0)},
        "transcode_ms": {"p50": percentile(&transcode, 0.5), "p99": percentile(&transcode, 0.99)},
    });
    println!(
        "{name}: overhead p50 {:.1} ms, p99 {:.1} ms; transcode p50 {:.0} ms ({segments} segments)",
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.99),
        percentile(&transcode, 0.5)
    );
    println!("latency: {result}");
}

#[test]
#[ignore = "benchmark: run with `make bench-latency`"]
fn per_segment_overhead_around_the_transcode() {
    let segments = std::env::var("LATENCY_SEGMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    case("720p -> 360p + 240p", "profiles = [\"P360p30fps16x9\", \"P240p30fps16x9\"]", (1280, 720), segments);
    let dir = tempfile::tempdir().unwrap();
    let ladder = dir.path().join("ladder.json");
    std::fs::write(&ladder, LADDER).unwrap();
    case("1080p -> 720p/480p/360p/240p", &format!("profiles_file = {:?}", ladder), (1920, 1080), segments);
}
