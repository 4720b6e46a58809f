//! Faults found by trying the node as an adversary would, each kept fixed by a test: bad
//! profiles from the network and from the config, session reuse across retries, input errors
//! classified before any orchestrator is asked, the source rendition remuxed to MPEG-TS,
//! durations probed rather than trusted, bounded body reads.

mod common;

use common::*;
use lp_pipelines::Profile;
use lp_testkit::media::{ffmpeg, one_frame_with_audio, segment_with_jumps};
use lp_wire::{ErrorCode, TranscodeFailure};

fn profile(bitrate: u32) -> Profile {
    Profile { bitrate, ..lp_pipelines::preset("P144p30fps16x9").unwrap() }
}

/// Bitrates under 1000 or from 2^31 made libavutil corrupt the heap in the encoder thread and
/// killed the orchestrator (exit 139); with remote transcoders the job went to each in turn and
/// killed them all. Now the orchestrator refuses such profiles before any work, and keeps
/// serving, its transcoder still connected.
#[test]
fn profiles_the_encoder_cannot_take_are_refused_on_the_wire_and_nothing_dies() {
    let keys = tempfile::tempdir().unwrap();
    let secret = write_secret(keys.path(), "secret", "s3cret-for-the-test");
    let orch = Node::start(
        "orchestrator",
        &format!(
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\ntranscode = false\nsecret_file = {secret:?}\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let transcoder = Node::start(
        "transcoder",
        &format!(
            "[transcoder]\norchestrator = {:?}\nsecret_file = {secret:?}\ncapacity = 1\nx264_preset = \"ultrafast\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
            orch.orchestrator_uri()
        ),
    );
    orch.wait_transcoders(1);
    let data = make_segments(orch.dir.path(), 1, 320, 180).remove(0);
    let info = wire_token(&orch.orchestrator_uri());

    for bad in [vec![profile(1)], vec![profile(999)], vec![profile(1 << 31)], vec![profile(u32::MAX)]] {
        let (status, body) = wire_submit(&info, &data, bad);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        let failure: TranscodeFailure = lp_wire::decode(&body).unwrap();
        assert_eq!(failure.code, ErrorCode::InvalidInput);
        assert!(failure.message.contains("bitrate"), "{}", failure.message);
    }
    let renamed = Profile { name: "../../x".into(), ..profile(100_000) };
    let (status, _) = wire_submit(&info, &data, vec![renamed]);
    assert_eq!(status, 400);

    // Everyone is alive and the next good segment is transcoded by the same transcoder.
    let (status, body) = wire_submit(&info, &data, vec![profile(100_000)]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let result: lp_wire::TranscodeResult = lp_wire::decode(&body).unwrap();
    assert!(matches!(result.result, lp_wire::TranscodeOutcome::Data(_)), "{result:?}");
    orch.wait_transcoders(1);
    drop(transcoder);
}

/// A gateway operator's profiles file with a bitrate the encoder cannot take is a config error
/// (exit 64, the entry named) before any port is bound, listed with the other errors.
#[test]
fn a_profiles_file_with_an_unusable_bitrate_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.json");
    std::fs::write(&profiles, r#"[{"name":"low","width":320,"height":180,"bitrate":999}]"#).unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [\"https://127.0.0.1:1\"]\nprofiles_file = {:?}\nmax_attempts = 0\n[admin]\naddr = \"127.0.0.1:0\"\n",
            dir.path().join("data"),
            profiles
        ),
    )
    .unwrap();
    let out = std::process::Command::new(livepeer_bin()).args(["gateway", "-c"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("bitrate must be 1000"), "{stderr}");
    assert!(stderr.contains("profile #1 (\"low\")"), "{stderr}");
    assert!(stderr.contains("max_attempts"), "every error at once: {stderr}");
}

fn remote_orchestrator(secret: &str, extra: &str) -> Node {
    Node::start(
        "orchestrator",
        &format!(
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\ntranscode = false\nsecret_file = {secret:?}\n{extra}\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    )
}

fn remote_transcoder(orch: &Node, secret: &str) -> Node {
    Node::start(
        "transcoder",
        &format!(
            "[transcoder]\norchestrator = {:?}\nsecret_file = {secret:?}\ncapacity = 1\nx264_preset = \"ultrafast\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
            orch.orchestrator_uri()
        ),
    )
}

fn gateway(orch: &Node, extra: &str) -> Node {
    Node::start(
        "gateway",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [{:?}]\nprofiles = [\"P144p30fps16x9\"]\n{extra}\n[admin]\naddr = \"127.0.0.1:0\"\n",
            orch.orchestrator_uri()
        ),
    )
}

fn sessions(orch: &Node) -> u64 {
    orch.status()["orchestrator"]["status"]["current_sessions"].as_u64().expect("current_sessions")
}

/// Every retry of a failed segment used to open a new orchestrator session while the old one kept
/// its slot for 70 s: a short transcoder outage filled `max_sessions` and locked every stream out
/// after the transcoders were back. A stream now keeps one session per orchestrator across
/// retries, and a stream that ends frees its session on the orchestrator at once.
#[test]
fn a_transcoder_outage_does_not_lock_streams_out_and_ended_streams_free_their_sessions() {
    let keys = tempfile::tempdir().unwrap();
    let secret = write_secret(keys.path(), "secret", "outage-secret");
    // One session slot: every retry must reuse the stream's session, the cap must not refuse it.
    let orch = remote_orchestrator(&secret, "max_sessions = 1");
    let gw = gateway(&orch, "stream_idle_timeout_secs = 1\nmax_attempts = 3");
    let segment = make_segments(gw.dir.path(), 1, 320, 180).remove(0);

    // The outage: no transcoder, so every attempt of every segment fails (3 attempts each).
    for seq in 0..4 {
        let (status, _, body) = push(&gw.gateway(), "a", &format!("{seq}.ts"), segment.clone());
        let body = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("NoTranscoders") && !body.contains("OrchestratorCapped"), "{body}");
        assert!(body.contains("MaxAttempts") && body.contains("after 3 attempts"), "{body}");
    }
    assert_eq!(sessions(&orch), 1, "twelve failed attempts of one stream hold one session");

    // The transcoder is back: the stream gets through at once; another stream finds the one
    // slot taken.
    let _transcoder = remote_transcoder(&orch, &secret);
    orch.wait_transcoders(1);
    let (status, _, body) = push(&gw.gateway(), "a", "4.ts", segment.clone());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = push(&gw.gateway(), "b", "0.ts", segment.clone());
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("OrchestratorCapped"), "{}", String::from_utf8_lossy(&body));

    // Stream a goes idle on the gateway (1 s) and ends its session; the orchestrator's own idle
    // timeout (70 s) is not what frees it. Then stream b gets the slot.
    eventually("the ended streams' sessions to be freed", || (sessions(&orch) == 0).then_some(()));
    let (status, _, body) = push(&gw.gateway(), "b", "1.ts", segment);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

const ALL_IN_ONE: &str = r#"
[gateway]
http_addr = "127.0.0.1:0"
rtmp_addr = "127.0.0.1:0"
profiles = ["P144p30fps16x9"]
body_timeout_secs = 1
[orchestrator]
service_addr = "127.0.0.1:0"
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#;

/// Segments so short that their AAC track has no parameters (one frame; a TS truncated at a
/// packet boundary) came back 503 after three attempts; they are transcoded now (video only).
/// Garbage is still 422, refused by the gateway itself: the orchestrator never sees it.
#[test]
fn short_segments_with_audio_are_transcoded_and_garbage_never_reaches_an_orchestrator() {
    let node = Node::start("run", ALL_IN_ONE);
    let gw = node.gateway();
    let one = one_frame_with_audio(node.dir.path(), "one.ts");
    let full = make_segments(node.dir.path(), 2, 320, 180).remove(0);
    for (seq, data) in [std::fs::read(&one).unwrap(), full[..10 * 188].to_vec()].into_iter().enumerate() {
        let (status, ct, body) = push(&gw, "short", &format!("{seq}.ts"), data);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let parts = multipart_parts(&ct, &body);
        assert_eq!(ffprobe_bytes(&parts[0].2).video().frames, 1);
    }
    let transcoded = metric(&node.metrics(), "livepeer_mil_pixels_processed");
    for garbage in [vec![0x47; 188 * 20], b"GIF89a not a video".to_vec(), full[..188 * 3].to_vec()] {
        let (status, _, body) = push(&gw, "short", "9.ts", garbage);
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    }
    let text = node.metrics();
    assert_eq!(metric(&text, "livepeer_mil_pixels_processed"), transcoded, "no garbage reached the transcoder");
    assert_eq!(metric(&text, "livepeer_segment_transcode_failed_total{error_code=\"InvalidInput\"}"), 3.0);
}

/// An MP4 segment's source rendition was served as MP4 bytes labelled video/mp2t; it is remuxed
/// to MPEG-TS (the same H.264 frames, no re-encode).
#[test]
fn the_source_rendition_of_an_mp4_segment_is_mpegts() {
    let node = Node::start("run", ALL_IN_ONE);
    let gw = node.gateway();
    let ts = node.dir.path().join("in.ts");
    std::fs::write(&ts, make_segments(node.dir.path(), 2, 320, 180).remove(0)).unwrap();
    let mp4 = node.dir.path().join("in.mp4");
    ffmpeg(&["-i", ts.to_str().unwrap(), "-c", "copy", mp4.to_str().unwrap()]);
    let (status, _, body) = push(&gw, "mp4", "0.mp4", std::fs::read(&mp4).unwrap());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let resp = http().get(format!("{gw}/stream/mp4/source/0.ts")).send().unwrap();
    assert_eq!(resp.headers()["content-type"], "video/mp2t");
    let bytes = resp.bytes().unwrap();
    assert_eq!(bytes[0], 0x47, "MPEG-TS, not MP4");
    assert_eq!(bytes.len() % 188, 0);
    let got = ffprobe_bytes(&bytes);
    assert_eq!((got.video().width, got.video().height, got.video().frames), (320, 180, 60));
    assert!(got.has_audio());
}

/// `Content-Duration: 300000` on a 2 s segment wrote `#EXTINF:300` and a target duration that
/// never shrank; the probed duration is used.
#[test]
fn a_content_duration_that_disagrees_with_the_segment_is_not_trusted() {
    let node = Node::start("run", ALL_IN_ONE);
    let gw = node.gateway();
    let seg = make_segments(node.dir.path(), 2, 320, 180).remove(0);
    let resp = http().put(format!("{gw}/live/dur/0.ts")).header("Content-Duration", "300000").body(seg).send().unwrap();
    assert_eq!(resp.status(), 200);
    let playlist = http().get(format!("{gw}/stream/dur/P144p30fps16x9.m3u8")).send().unwrap().text().unwrap();
    assert!(playlist.contains("#EXT-X-TARGETDURATION:2\n"), "{playlist}");
    let extinf: f64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXTINF:"))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .expect("an EXTINF line");
    assert!((extinf - 2.0).abs() < 0.1, "{playlist}");
    assert!(node.log().contains("Content-Duration disagrees"), "{}", node.log());
}

/// A `Content-Length` of 5 MB with 10 bytes sent used to hold the request forever; the upload
/// is refused with 408 once it sends nothing for `body_timeout_secs`, and the gateway serves on.
/// An AI request's body is bounded the same way (it was held as long as the client liked: 30
/// stalled 45 MB uploads held 1.4 GB), with the AI API's error shape.
#[test]
fn a_stalled_upload_is_refused_with_408() {
    use std::io::{Read, Write};
    let node = Node::start("run", ALL_IN_ONE);
    let addr = node.listen["gateway"].as_str().unwrap().to_string();
    let stalled = |head: &str| {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        sock.write_all(format!("{head}\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n0123456789").as_bytes()).unwrap();
        let mut answer = [0u8; 512];
        let n = sock.read(&mut answer).expect("an answer, not a hang");
        String::from_utf8_lossy(&answer[..n]).to_string()
    };
    let answer = stalled("PUT /live/slow/0.ts HTTP/1.1");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("after 10 bytes"), "{answer}");
    let answer = stalled("POST /upscale HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=x");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#"{"detail":{"msg":"no body bytes for 1s after 10 bytes"}}"#), "{answer}");
    let seg = make_segments(node.dir.path(), 2, 320, 180).remove(0);
    assert_eq!(push(&node.gateway(), "fast", "0.ts", seg).0, 200);
}

/// Metric series were absent until their first event, so dashboards and `rate()` saw nothing
/// on a healthy node; every counter and gauge is declared at start at 0, each error code too.
#[test]
fn a_fresh_node_exports_every_series_at_zero() {
    let node = Node::start("run", ALL_IN_ONE);
    let text = node.metrics();
    for series in [
        "livepeer_segment_source_appeared_total{seg_type=\"live\"} 0",
        "livepeer_segment_transcoded_total 0",
        "livepeer_stream_created_total 0",
        "livepeer_transcode_worker_restarts_total 0",
        "livepeer_transcode_abandoned_total{stage=\"queued\"} 0",
        "livepeer_current_sessions_total 0",
    ] {
        assert!(text.lines().any(|l| l == series), "{series} missing:\n{text}");
    }
    for code in ErrorCode::ALL {
        let series = format!("livepeer_segment_transcode_failed_total{{error_code=\"{}\"}} 0", code.as_str());
        assert!(text.lines().any(|l| l == series), "{series} missing:\n{text}");
    }
}

/// A segment whose timestamps jump 1000 s between its two halves was probed as 1000 s long:
/// the gateway paid the orchestrator for 1000 s of pixels and its playlist's target duration,
/// which only grows, told players to wait 1000 s between reloads. The jump counts as one
/// frame now. A segment of more honest media than `Content-Duration` may state (31 frames
/// 10 s apart) is refused, and the stream serves on.
#[test]
fn a_timestamp_jump_is_not_media_and_a_segment_spans_300_s_at_most() {
    let node = Node::start("run", ALL_IN_ONE);
    let gw = node.gateway();
    let jumps = segment_with_jumps(node.dir.path(), 2, 25, 1000);
    let (status, _, body) = push(&gw, "jump", "0.ts", jumps);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let playlist = http().get(format!("{gw}/stream/jump/P144p30fps16x9.m3u8")).send().unwrap().text().unwrap();
    assert!(playlist.contains("#EXT-X-TARGETDURATION:2\n"), "{playlist}");
    assert!(playlist.contains("#EXTINF:2.000,"), "{playlist}");

    let long = segment_with_jumps(node.dir.path(), 31, 1, 10);
    let (status, _, body) = push(&gw, "jump", "1.ts", long);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("the segment spans 310.0 s of media; at most 300 s"), "{body}");
    let again = http().get(format!("{gw}/stream/jump/P144p30fps16x9.m3u8")).send().unwrap().text().unwrap();
    assert_eq!(again, playlist, "the refused segment changed nothing");
    let (status, _, _) = push(&gw, "jump", "2.ts", make_segments(node.dir.path(), 2, 320, 180).remove(0));
    assert_eq!(status, 200);
}
