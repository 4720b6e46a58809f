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
    transcoder_with(orchestrator_uri, secret_file, "ultrafast")
}

/// A transcoder encoding with x264's `preset`.
fn transcoder_with(orchestrator_uri: &str, secret_file: &str, preset: &str) -> Node {
    Node::start(
        "transcoder",
        &format!(
            r#"
[transcoder]
orchestrator = {orchestrator_uri:?}
secret_file = {secret_file:?}
capacity = 1
x264_preset = {preset:?}
[admin]
addr = "127.0.0.1:0"
"#
        ),
    )
}

#[test]
fn two_remote_transcoders_one_killed_mid_stream_every_segment_comes_back() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "correct horse battery staple\n");
    let orch = orchestrator(&secret_file);
    // Slow transcoders (seconds a segment), so that the one killed is killed with one in flight.
    let mut t1 = transcoder_with(&orch.orchestrator_uri(), &secret_file, "veryslow");
    orch.wait_transcoders(1);
    let t1_name = orch.status()["orchestrator"]["transcoders"][0]["name"].as_str().unwrap().to_string();
    let mut t2 = transcoder_with(&orch.orchestrator_uri(), &secret_file, "veryslow");
    orch.wait_transcoders(2);
    let gateway = Node::start(
        "gateway",
        &format!(
            r#"
[gateway]
http_addr = "127.0.0.1:0"
rtmp_addr = "127.0.0.1:0"
orchestrators = [{:?}]
profiles = ["P360p30fps16x9", "P240p30fps16x9"]
[admin]
addr = "127.0.0.1:0"
"#,
            orch.orchestrator_uri()
        ),
    );
    let segments = make_segments(keys.path(), 10, 1280, 720);
    let gw = gateway.gateway();

    // Push the stream from another thread, as a live source would, and kill the transcoder the
    // orchestrator shows working on a segment.
    let pusher = push_in_background(&gw, "split", segments.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = loop {
        let status = orch.status();
        let workers = status["orchestrator"]["transcoders"].as_array().cloned().unwrap_or_default();
        if let Some(w) = workers.iter().find(|w| w["load"].as_u64() >= Some(1)) {
            break w["name"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no transcoder took a segment: {status}");
        std::thread::sleep(Duration::from_millis(10));
    };
    if busy == t1_name {
        t1.kill()
    } else {
        t2.kill()
    }

    let answers = pusher.join().unwrap();
    for (seq, (status, ct, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "segment {seq}: {}\n{}", String::from_utf8_lossy(body), orch.log());
        let parts = multipart_parts(ct, body);
        assert_eq!(parts.len(), 2);
        for (name, _, bytes) in parts {
            let p = ffprobe_bytes(&bytes);
            let size = if name == "P360p30fps16x9" { (640, 360) } else { (426, 240) };
            assert_eq!((p.video().width, p.video().height, p.video().frames), (size.0, size.1, 60), "{name} of {seq}");
        }
    }
    // The segment the killed transcoder had was re-queued by the orchestrator, not retried by
    // the gateway.
    assert!(orch.log().contains("worker went away mid-job; re-queueing it"), "{}", orch.log());
    assert!(!gateway.log().contains("segment attempt failed"), "{}", gateway.log());
    orch.wait_transcoders(1);
    assert_eq!(metric(&orch.metrics(), "livepeer_transcoders_number"), 1.0);
}

#[test]
fn a_transcoder_with_the_wrong_secret_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let good = write_secret(keys.path(), "good", "the right secret");
    let bad = write_secret(keys.path(), "bad", "a wrong secret");
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
    let mut orchestrators = [Node::start("orchestrator", ORCHESTRATOR), Node::start("orchestrator", ORCHESTRATOR)];
    let list = format!("{:?}, {:?}", orchestrators[0].orchestrator_uri(), orchestrators[1].orchestrator_uri());
    let gateway = Node::start(
        "gateway",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [{list}]\nprofiles = [\"P240p30fps16x9\"]\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let segments = make_segments(dir.path(), 20, 640, 360);
    let gw = gateway.gateway();
    let pusher = push_in_background(&gw, "failover", segments);
    wait_metric(&gateway, "livepeer_segment_transcoded_total", 3.0);
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

/// An orchestrator that waits for remote transcoders, over plain HTTP (allowed on loopback) so
/// that a raw TCP client can speak WebSocket to it.
fn plain_orchestrator(secret_file: &str) -> Node {
    Node::start(
        "orchestrator",
        &format!(
            r#"
[orchestrator]
service_addr = "127.0.0.1:0"
tls = false
transcode = false
secret_file = {secret_file:?}
[admin]
addr = "127.0.0.1:0"
"#
        ),
    )
}

/// A WebSocket client written by hand, for what a real transcoder never sends.
struct RawWs(std::net::TcpStream);

impl RawWs {
    /// Connect to `http://host:port` and upgrade `/transcoder`.
    fn connect(orchestrator_uri: &str) -> RawWs {
        use std::io::{Read, Write};
        let host = orchestrator_uri.strip_prefix("http://").expect("a plain-HTTP orchestrator");
        let mut tcp = std::net::TcpStream::connect(host).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            tcp,
            "GET /transcoder HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawWs(tcp)
    }

    /// The header of a masked client binary frame of `len` bytes (the mask is zero, so the
    /// payload goes as is).
    fn binary_header(len: u64) -> Vec<u8> {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    }

    /// The next frame from the orchestrator: (opcode, payload), or None when the connection ended.
    fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        use std::io::Read;
        let mut h = [0u8; 2];
        self.0.read_exact(&mut h).ok()?;
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.0.read_exact(&mut b).ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.0.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.0.read_exact(&mut payload).ok()?;
        Some((h[0] & 0x0f, payload))
    }
}

fn gateway_for(orchestrator_uri: &str) -> Node {
    Node::start(
        "gateway",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [{orchestrator_uri:?}]\n\
             profiles = [\"P240p30fps16x9\"]\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    )
}

#[test]
fn a_huge_frame_before_registering_is_cut_off_and_the_orchestrator_keeps_serving() {
    use std::io::Write;
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "s3cret");
    let orch = plain_orchestrator(&secret_file);

    // A client declares a 256 MiB first frame and sends all of it. The orchestrator reads at
    // most 64 KiB from a connection that has not registered, then hangs up; what it does not
    // buffer shows in its peak memory.
    const DECLARED: u64 = 256 << 20;
    let peak_before = peak_memory(&orch);
    let mut raw = RawWs::connect(&orch.orchestrator_uri());
    raw.0.write_all(&RawWs::binary_header(DECLARED)).unwrap();
    let chunk = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    while sent < DECLARED && raw.0.write_all(&chunk).is_ok() {
        sent += chunk.len() as u64;
    }
    // The connection ends: a close frame, or a reset.
    let mut closed_by = "reset";
    while let Some((opcode, _)) = raw.read_frame() {
        if opcode == 0x8 {
            closed_by = "close frame";
            break;
        }
    }
    let grew = peak_memory(&orch).saturating_sub(peak_before);
    eprintln!(
        "{sent} of {DECLARED} bytes written before the connection ended ({closed_by}); peak memory grew {grew} bytes"
    );
    assert!(grew < 64 << 20, "the orchestrator buffered the frame: its peak memory grew {grew} bytes");
    wait_log(&orch, "before registering");

    // It still serves: a real transcoder registers and a segment is transcoded through it.
    let _t = transcoder(&orch.orchestrator_uri(), &secret_file);
    orch.wait_transcoders(1);
    let gateway = gateway_for(&orch.orchestrator_uri());
    let segment = make_segments(keys.path(), 2, 640, 360).remove(0);
    let (status, ct, body) = push(&gateway.gateway(), "after-attack", "0.ts", segment);
    assert_eq!(status, 200, "{}\n{}", String::from_utf8_lossy(&body), orch.log());
    assert_eq!(multipart_parts(&ct, &body).len(), 1);
}

#[test]
fn a_connection_that_never_registers_is_refused_and_closed() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "s3cret");
    let orch = plain_orchestrator(&secret_file);
    let mut raw = RawWs::connect(&orch.orchestrator_uri());
    // Pings may come first; then the refusal (a binary frame) and a close frame.
    let mut refusal = None;
    let closed = loop {
        match raw.read_frame() {
            Some((0x9, _)) => continue,
            Some((0x2, payload)) => refusal = Some(payload),
            Some((0x8, _)) => break true,
            Some((op, _)) => panic!("unexpected frame, opcode {op}"),
            None => break false,
        }
    };
    let refusal = refusal.expect("a Refused frame before the close");
    assert!(String::from_utf8_lossy(&refusal).contains("no registration"), "{refusal:?}");
    assert!(closed, "the connection ended without a close frame");
    assert!(orch.log().contains("no registration"), "{}", orch.log());
}

/// A process's peak resident memory (VmHWM), in bytes.
fn peak_memory(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.child.id())).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

/// SIGTERM, as a supervisor stops a service.
fn terminate(node: &Node) {
    let status = std::process::Command::new("kill").args(["-TERM", &node.child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Wait for the process to exit by itself (the deadline only keeps a broken build from hanging
/// the test run).
fn wait_exit(node: &mut Node) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_closes_the_transcoder_links_and_the_orchestrator_exits() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "s3cret");
    let mut orch = orchestrator(&secret_file);
    let t = transcoder(&orch.orchestrator_uri(), &secret_file);
    orch.wait_transcoders(1);

    let asked = Instant::now();
    terminate(&orch);
    let status = wait_exit(&mut orch);
    eprintln!("the idle orchestrator exited {:?} after SIGTERM", asked.elapsed());
    assert_eq!(status.code(), Some(0), "{}", orch.log());
    assert!(orch.log().contains("orchestrator drained"), "{}", orch.log());
    // The transcoder was told, with a close frame; it did not find out by a dead connection.
    wait_log(&t, "the orchestrator closed the link");
    assert!(t.log().contains("orchestrator shutting down"), "{}", t.log());
}

#[test]
fn sigterm_finishes_the_segment_in_flight_before_closing_the_links() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "s3cret");
    let mut orch = orchestrator(&secret_file);
    // A 4-second 1080p segment keeps the job in flight while the signal arrives (about a second
    // of work; the test checks that it was in flight, and that it finished).
    let t = Node::start(
        "transcoder",
        &format!(
            "[transcoder]\norchestrator = {:?}\nsecret_file = {secret_file:?}\ncapacity = 1\nx264_preset = \"veryfast\"\n\
             [admin]\naddr = \"127.0.0.1:0\"\n",
            orch.orchestrator_uri()
        ),
    );
    orch.wait_transcoders(1);
    let gateway = Node::start(
        "gateway",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [{:?}]\n\
             profiles = [\"P720p30fps16x9\", \"P360p30fps16x9\"]\n[admin]\naddr = \"127.0.0.1:0\"\n",
            orch.orchestrator_uri()
        ),
    );
    let segment = {
        let dir = keys.path().join("long");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("long.ts");
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
            .args(["-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    };
    let gw = gateway.gateway();
    let pusher = std::thread::spawn(move || push(&gw, "drain", "0.ts", segment));

    // The job is on the transcoder.
    let deadline = Instant::now() + Duration::from_secs(60);
    while orch.status()["orchestrator"]["transcoders"][0]["load"] != 1 {
        assert!(Instant::now() < deadline, "the segment never reached the transcoder:\n{}", orch.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    terminate(&orch);

    let (status, ct, body) = pusher.join().unwrap();
    assert_eq!(status, 200, "{}\n{}", String::from_utf8_lossy(&body), orch.log());
    assert_eq!(multipart_parts(&ct, &body).len(), 2);
    assert_eq!(wait_exit(&mut orch).code(), Some(0), "{}", orch.log());
    let log = orch.log();
    assert!(log.contains("in_flight=1"), "the segment was not in flight at the signal:\n{log}");
    assert!(!log.contains("complete=false"), "{log}");
    wait_log(&t, "the orchestrator closed the link");
}
