//! Split orchestrator/transcoder setups: remote transcoders over the WebSocket, one killed
//! mid-stream, one with the wrong secret.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn orchestrator(secret_file: &str) -> Node {
    Node::start(
        "orchestrator",
        &format!(
            r#"
[orchestrator]
service_addr = "127.0.0.1:0"
transcode = false
secret_file = {secret_file:?}
[admin]
addr = "127.0.0.1:0"
"#
        ),
    )
}

fn transcoder(orchestrator_uri: &str, secret_file: &str) -> Node {
    Node::start(
        "transcoder",
        &format!(
            r#"
[transcoder]
orchestrator = {orchestrator_uri:?}
secret_file = {secret_file:?}
capacity = 1
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#
        ),
    )
}

fn secret(dir: &std::path::Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    path.display().to_string()
}

#[test]
fn two_remote_transcoders_one_killed_mid_stream_every_segment_comes_back() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = secret(keys.path(), "secret", "correct horse battery staple\n");
    let orch = orchestrator(&secret_file);
    let mut t1 = transcoder(&orch.orchestrator_uri(), &secret_file);
    let _t2 = transcoder(&orch.orchestrator_uri(), &secret_file);
    orch.wait_transcoders(2);
    let gateway = Node::start(
        "gateway",
        &format!(
            r#"
[gateway]
http_addr = "127.0.0.1:0"
orchestrators = [{:?}]
profiles = ["P360p30fps16x9", "P240p30fps16x9"]
[admin]
addr = "127.0.0.1:0"
"#,
            orch.orchestrator_uri()
        ),
    );
    let segments = make_segments(keys.path(), 20, 1280, 720);
    let gw = gateway.gateway();

    // Push the stream from another thread, as a live source would, and kill one transcoder
    // while segment 4 is in flight.
    let pusher = {
        let segments = segments.clone();
        let gw = gw.clone();
        std::thread::spawn(move || {
            segments
                .into_iter()
                .enumerate()
                .map(|(seq, seg)| push(&gw, "split", &format!("{seq}.ts"), seg))
                .collect::<Vec<_>>()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&gateway.metrics(), "livepeer_segment_transcoded_total") < 4.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    t1.kill();

    let answers = pusher.join().unwrap();
    for (seq, (status, ct, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "segment {seq}: {}\n{}", String::from_utf8_lossy(body), orch.log());
        let parts = multipart_parts(ct, body);
        assert_eq!(parts.len(), 2);
        for (name, _, bytes) in parts {
            let p = ffprobe_bytes(&bytes);
            assert_eq!(p.frames, 60, "{name} of segment {seq}");
        }
    }
    orch.wait_transcoders(1);
    assert_eq!(metric(&orch.metrics(), "livepeer_transcoders_number"), 1.0);
}

#[test]
fn a_transcoder_with_the_wrong_secret_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let good = secret(keys.path(), "good", "the right secret");
    let bad = secret(keys.path(), "bad", "a wrong secret");
    let orch = orchestrator(&good);
    let mut t = transcoder(&orch.orchestrator_uri(), &bad);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = t.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the refused transcoder kept running:\n{}", t.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    assert!(t.log().contains("invalid secret"), "{}", t.log());
    assert!(orch.log().contains("transcoder refused"), "{}", orch.log());
    assert_eq!(orch.status()["orchestrator"]["transcoders"], serde_json::json!([]));
}

#[test]
fn an_orchestrator_killed_mid_stream_its_segments_go_to_another() {
    let local = r#"
[orchestrator]
service_addr = "127.0.0.1:0"
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#;
    let mut orchestrators = [Node::start("orchestrator", local), Node::start("orchestrator", local)];
    let list = format!("{:?}, {:?}", orchestrators[0].orchestrator_uri(), orchestrators[1].orchestrator_uri());
    let gateway = Node::start(
        "gateway",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\norchestrators = [{list}]\nprofiles = [\"P240p30fps16x9\"]\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let segments = make_segments(dir.path(), 20, 640, 360);
    let gw = gateway.gateway();
    let pusher = {
        let gw = gw.clone();
        std::thread::spawn(move || {
            segments
                .into_iter()
                .enumerate()
                .map(|(seq, seg)| push(&gw, "failover", &format!("{seq}.ts"), seg))
                .collect::<Vec<_>>()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&gateway.metrics(), "livepeer_segment_transcoded_total") < 3.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill the orchestrator the stream is on.
    let busy = orchestrators
        .iter()
        .position(|o| metric(&o.metrics(), "livepeer_current_sessions_total") == 1.0)
        .expect("one orchestrator serves the stream");
    orchestrators[busy].kill();

    let answers = pusher.join().unwrap();
    for (seq, (status, ct, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "segment {seq}: {}\n{}", String::from_utf8_lossy(body), gateway.log());
        assert_eq!(multipart_parts(ct, body).len(), 1);
    }
    // The stream's next attempt hit the dead orchestrator and was retried on the other one.
    assert!(gateway.log().contains("segment attempt failed"), "{}", gateway.log());
    let other = &orchestrators[1 - busy];
    assert!(metric(&other.metrics(), "livepeer_transcode_time_seconds_count") >= 1.0, "the survivor took over");
}
