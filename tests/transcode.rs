//! A gateway and an orchestrator with a local transcoder in one `livepeer run` process: segments
//! in over HTTP, renditions out, HLS, bad input, metrics, and the ffmpeg CLI as the client.

mod common;

use std::process::Command;

use common::*;

const ALL_IN_ONE: &str = r#"
[gateway]
http_addr = "127.0.0.1:0"
rtmp_addr = "127.0.0.1:0"
profiles = ["P360p30fps16x9", "P240p30fps16x9"]
max_segment_bytes = 4000000
[orchestrator]
service_addr = "127.0.0.1:0"
capacity = 2
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#;

#[test]
fn ten_segments_come_back_in_every_rendition_and_hls_lists_them() {
    let node = Node::start("run", ALL_IN_ONE);
    let segments = make_segments(node.dir.path(), 20, 1280, 720);
    assert_eq!(segments.len(), 10);
    let gw = node.gateway();
    for (seq, seg) in segments.iter().enumerate() {
        let source = ffprobe_bytes(seg);
        let (status, ct, body) = push(&gw, "e2e", &format!("{seq}.ts"), seg.clone());
        assert_eq!(status, 200, "segment {seq}: {}", String::from_utf8_lossy(&body));
        assert!(ct.starts_with("multipart/mixed"), "{ct}");
        let parts = multipart_parts(&ct, &body);
        let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        for (name, disposition, bytes) in &parts {
            assert_eq!(disposition, &format!("attachment; filename=\"{name}_{seq}.ts\""));
            let got = ffprobe_bytes(bytes);
            let (w, h) = if name == "P360p30fps16x9" { (640, 360) } else { (426, 240) };
            assert_eq!((got.video().width, got.video().height), (w, h), "{name} of segment {seq}");
            assert_eq!(
                got.video().frames,
                source.video().frames,
                "{name} of segment {seq} must keep the source's frame count"
            );
            assert!(got.has_audio(), "{name} keeps the audio");
        }
    }

    // HLS: the master lists the source and both renditions; each media playlist lists the last
    // six segments, and what it lists is served and decodes.
    let client = http();
    let master = client.get(format!("{gw}/stream/e2e.m3u8")).send().unwrap().text().unwrap();
    for (r, size) in [("source", (1280, 720)), ("P360p30fps16x9", (640, 360)), ("P240p30fps16x9", (426, 240))] {
        assert!(master.contains(&format!("e2e/{r}.m3u8")), "{master}");
        let media = client.get(format!("{gw}/stream/e2e/{r}.m3u8")).send().unwrap().text().unwrap();
        let listed: Vec<&str> = media.lines().filter(|l| l.ends_with(".ts")).collect();
        assert_eq!(listed, (4..10).map(|s| format!("{r}/{s}.ts")).collect::<Vec<_>>(), "{media}");
        let seg = client.get(format!("{gw}/stream/e2e/{}", listed[5])).send().unwrap();
        assert_eq!(seg.headers()["content-type"], "video/mp2t");
        let got = ffprobe_bytes(&seg.bytes().unwrap());
        assert_eq!((got.video().width, got.video().height, got.video().frames), (size.0, size.1, 60), "{r}");
    }
    assert_eq!(client.get(format!("{gw}/stream/nope.m3u8")).send().unwrap().status(), 404);

    let m = node.metrics();
    assert_eq!(metric(&m, "livepeer_segment_source_appeared_total{seg_type=\"live\"}"), 10.0);
    assert_eq!(metric(&m, "livepeer_segment_transcoded_total"), 10.0);
    assert_eq!(metric(&m, "livepeer_transcode_overall_latency_seconds_count"), 10.0);
    assert_eq!(metric(&m, "livepeer_transcode_time_seconds_count"), 10.0);
    assert_eq!(metric(&m, "livepeer_current_sessions_total"), 1.0);
    assert_eq!(metric(&m, "livepeer_max_sessions_total"), 10.0);
    assert_eq!(metric(&m, "livepeer_transcoders_number"), 2.0);
    assert_eq!(metric(&m, "livepeer_transcoders_capacity"), 2.0);
    assert!(!m.contains("e2e"), "no metric label carries the stream id:\n{m}");
}

#[test]
fn bad_input_gets_a_clear_4xx_and_the_next_segment_still_works() {
    let node = Node::start("run", ALL_IN_ONE);
    let segments = make_segments(node.dir.path(), 4, 640, 360);
    let good = &segments[0];
    let gw = node.gateway();
    let client = http();
    let put = |path: &str, body: Vec<u8>, headers: &[(&str, &str)]| {
        let mut req = client.put(format!("{gw}{path}")).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("/live/bad/1.ts", b"this is not an MPEG-TS segment at all".repeat(50), 422, "not a decodable segment"),
        ("/live/bad/2.ts", Vec::new(), 400, "empty body"),
        ("/live/bad/3.ts", vec![0x47; 5_000_000], 413, "larger than max_segment_bytes"),
        ("/live/bad/4.flv", good.clone(), 400, "unknown extension .flv"),
        ("/live/bad/5.ts", good[..good.len() / 2 + 77].to_vec(), 422, "not a decodable segment"),
        ("/live/bad/six.ts", good.clone(), 400, "no sequence number"),
        ("/live/bad%2F..%2Fx/7.ts", good.clone(), 400, "stream names"),
    ];
    for (path, body, want, reason) in cases {
        let (status, text) = put(path, body, &[]);
        assert_eq!(status, want, "{path}: {text}");
        assert!(text.contains(reason), "{path}: the reason {text:?} should mention {reason:?}");
        assert!(!text.trim().is_empty() && text.trim().lines().count() == 1, "one-line reason: {text:?}");
    }
    let headers: [(&str, &str, &str); 4] = [
        ("Content-Duration", "abc", "is not milliseconds"),
        ("Content-Duration", "0", "is not milliseconds"),
        ("Content-Duration", "300001", "is not milliseconds"),
        ("Content-Resolution", "12by9", "is not WIDTHxHEIGHT"),
    ];
    for (name, value, reason) in headers {
        let (status, text) = put("/live/bad/10.ts", good.clone(), &[(name, value)]);
        assert_eq!(status, 400, "{name}: {value}: {text}");
        assert!(text.contains(name) && text.contains(reason), "{name}: {value}: {text}");
    }
    // ffmpeg's HLS muxer uploads its playlist too: answered, and nothing is made of it.
    assert_eq!(put("/live/bad/index.m3u8", b"#EXTM3U\n".to_vec(), &[]), (200, "playlist ignored\n".into()));
    let resp = client.get(format!("{gw}/live/bad/1.ts")).send().unwrap();
    assert_eq!(resp.status(), 405);

    // Nothing was created by the bad pushes, and the next good segment works.
    assert_eq!(node.status()["gateway"]["status"]["streams"], serde_json::json!([]));
    let (status, ct, body) = push(&gw, "bad", "8.ts", good.clone());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(multipart_parts(&ct, &body).len(), 2);

    // Without Accept: multipart/mixed the answer is a JSON summary.
    let summary: serde_json::Value =
        client.put(format!("{gw}/live/bad/9.ts")).body(segments[1].clone()).send().unwrap().json().unwrap();
    assert_eq!(summary["seq"], 9);
    assert_eq!(summary["renditions"].as_array().unwrap().len(), 2);

    // Metrics count what was pushed: the two undecodable segments appeared and failed.
    let m = node.metrics();
    assert_eq!(metric(&m, "livepeer_segment_source_appeared_total{seg_type=\"live\"}"), 4.0);
    assert_eq!(metric(&m, "livepeer_segment_transcode_failed_total{error_code=\"InvalidInput\"}"), 2.0);
    assert_eq!(metric(&m, "livepeer_segment_transcoded_total"), 2.0);
}

#[test]
fn the_ffmpeg_cli_pushes_a_live_stream_over_chunked_puts() {
    let node = Node::start("run", ALL_IN_ONE);
    let gw = node.gateway();
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-sc_threshold", "0", "-c:a", "aac"])
        .args(["-f", "hls", "-hls_time", "2", "-method", "PUT"])
        .arg(format!("{gw}/live/cli/index.m3u8"))
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg: {}\n{}", String::from_utf8_lossy(&out.stderr), node.log());
    // ffmpeg does not wait for the answers; the segments finish transcoding after it exits.
    let client = http();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let media = loop {
        let resp = client.get(format!("{gw}/stream/cli/P240p30fps16x9.m3u8")).send().unwrap();
        let text = if resp.status() == 200 { resp.text().unwrap() } else { String::new() };
        if text.matches(".ts").count() == 3 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let listed: Vec<&str> = media.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(
        listed,
        ["P240p30fps16x9/0.ts", "P240p30fps16x9/1.ts", "P240p30fps16x9/2.ts"],
        "{media}\n{}",
        node.log()
    );
    assert_eq!(metric(&node.metrics(), "livepeer_current_sessions_total"), 1.0, "one orchestrator session per stream");
    for l in listed {
        let seg = client.get(format!("{gw}/stream/cli/{l}")).send().unwrap().bytes().unwrap();
        let p = ffprobe_bytes(&seg);
        assert_eq!((p.video().width, p.video().height, p.video().frames), (426, 240, 60));
    }
}

#[test]
fn an_orchestrator_at_max_sessions_answers_capped() {
    let node = Node::start("run", &ALL_IN_ONE.replace("capacity = 2", "capacity = 1\nmax_sessions = 1"));
    let segments = make_segments(node.dir.path(), 2, 640, 360);
    let gw = node.gateway();
    let (status, _, _) = push(&gw, "first", "0.ts", segments[0].clone());
    assert_eq!(status, 200);
    let (status, _, body) = push(&gw, "second", "0.ts", segments[0].clone());
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("OrchestratorCapped"), "{text}");
    // The first stream keeps working.
    assert_eq!(push(&gw, "first", "1.ts", segments[0].clone()).0, 200);
    let m = node.metrics();
    assert_eq!(metric(&m, "livepeer_segment_transcode_failed_total{error_code=\"NoOrchestrators\"}"), 1.0);
}

#[test]
fn a_full_stream_queue_answers_busy_at_once() {
    // One segment in flight per stream, and a slow one: 1080p into 720p with x264 veryslow.
    let config = ALL_IN_ONE
        .replace("max_segment_bytes = 4000000", "segment_queue = 1")
        .replace("ultrafast", "veryslow")
        .replace("\"P360p30fps16x9\", \"P240p30fps16x9\"", "\"P720p30fps16x9\"");
    let node = Node::start("run", &config);
    let segments = make_segments(node.dir.path(), 2, 1920, 1080);
    let gw = node.gateway();
    let first = {
        let (gw, seg) = (gw.clone(), segments[0].clone());
        std::thread::spawn(move || push(&gw, "q", "0.ts", seg))
    };
    // Wait until the first segment is being transcoded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric(&node.metrics(), "livepeer_transcoders_load") < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the first segment never started:\n{}", node.log());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (status, _, body) = push(&gw, "q", "1.ts", segments[0].clone());
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("GatewayBusy"), "{text}");
    // "At once": the refusal came back while the first segment was still being transcoded.
    assert!(!first.is_finished(), "the busy answer waited for the segment in flight");
    assert_eq!(first.join().unwrap().0, 200);
}

#[test]
fn idle_streams_and_sessions_end_and_a_new_push_starts_them_again() {
    let node = Node::start(
        "run",
        &ALL_IN_ONE
            .replace("max_segment_bytes = 4000000", "stream_idle_timeout_secs = 1")
            .replace("capacity = 2", "capacity = 1\nsession_idle_timeout_secs = 1"),
    );
    let segments = make_segments(node.dir.path(), 2, 320, 180);
    let gw = node.gateway();
    assert_eq!(push(&gw, "idle", "0.ts", segments[0].clone()).0, 200);
    assert_eq!(node.status()["gateway"]["status"]["streams"], serde_json::json!(["idle"]));
    // Both idle timeouts are 1 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = node.status();
        let ended = status["gateway"]["status"]["streams"] == serde_json::json!([]);
        if ended && status["orchestrator"]["status"]["current_sessions"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the stream and its session never ended: {status}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(metric(&node.metrics(), "livepeer_stream_ended_total"), 1.0);
    assert_eq!(push(&gw, "idle", "1.ts", segments[0].clone()).0, 200);
    assert_eq!(metric(&node.metrics(), "livepeer_stream_created_total"), 2.0);
    let status = node.status();
    assert_eq!(status["orchestrator"]["status"]["current_sessions"], 1, "a new session at the orchestrator: {status}");
}

/// `RUST_LOG` (the harness sets `info`) wins over `log.level`.
#[test]
fn rust_log_overrides_the_configured_level() {
    let node = Node::start("run", &format!("[log]\nlevel = \"error\"\n{ALL_IN_ONE}"));
    let log = node.log();
    assert!(log.contains("gateway listening") && log.contains("INFO"), "{log}");
}

#[test]
fn json_logs_on_request() {
    let node = Node::start("run", &format!("[log]\nformat = \"json\"\n{ALL_IN_ONE}"));
    let log = node.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
    }
    assert!(log.contains("gateway listening"));
}
