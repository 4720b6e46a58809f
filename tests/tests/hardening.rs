//! Faults found by trying the node as an adversary would, each kept fixed by a test: bad
//! profiles from the network and from the config, session reuse across retries, input errors
//! classified before any orchestrator is asked, the source rendition remuxed to MPEG-TS,
//! durations probed rather than trusted, bounded body reads.

mod common;

use base64::Engine;
use common::*;
use lp_actors::wire::{self, ErrorCode, OrchestratorInfo, OrchestratorRequest, SegData, TranscodeFailure};
use lp_pipelines::{InputFormat, Profile};
use serde_bytes::ByteBuf;

/// Terms (with an auth token) from an orchestrator, as any client on the network can get them.
fn token(uri: &str) -> OrchestratorInfo {
    let body = wire::encode(&OrchestratorRequest::default());
    let resp = http().post(format!("{uri}/getOrchestrator")).body(body).send().unwrap();
    assert_eq!(resp.status(), 200);
    wire::decode(&resp.bytes().unwrap()).unwrap()
}

/// POST /segment with the given profiles, as a hostile gateway would; the status and the answer.
fn submit(info: &OrchestratorInfo, data: &[u8], profiles: Vec<Profile>) -> (u16, Vec<u8>) {
    let seg = SegData {
        manifest_id: ByteBuf::from(b"attack".to_vec()),
        seq: 1,
        hash: ByteBuf::from(blake3::hash(data).as_bytes().to_vec()),
        sig: ByteBuf::new(),
        duration: 1000,
        capabilities: None,
        auth_token: info.auth_token.clone(),
        profiles,
        format: InputFormat::MpegTs,
        segment_parameters: None,
        force_session_reinit: false,
    };
    let header = base64::engine::general_purpose::STANDARD.encode(wire::encode(&seg));
    let resp = http()
        .post(format!("{}/segment", info.transcoder))
        .header("Livepeer-Segment", header)
        .body(data.to_vec())
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

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
    let secret = keys.path().join("secret");
    std::fs::write(&secret, "s3cret-for-the-test").unwrap();
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
    let info = token(&orch.orchestrator_uri());

    for bad in [vec![profile(1)], vec![profile(999)], vec![profile(1 << 31)], vec![profile(u32::MAX)]] {
        let (status, body) = submit(&info, &data, bad);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        let failure: TranscodeFailure = wire::decode(&body).unwrap();
        assert_eq!(failure.code, ErrorCode::InvalidInput);
        assert!(failure.message.contains("bitrate"), "{}", failure.message);
    }
    let renamed = Profile { name: "../../x".into(), ..profile(100_000) };
    let (status, _) = submit(&info, &data, vec![renamed]);
    assert_eq!(status, 400);

    // Everyone is alive and the next good segment is transcoded by the same transcoder.
    let (status, body) = submit(&info, &data, vec![profile(100_000)]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let result: lp_actors::wire::TranscodeResult = wire::decode(&body).unwrap();
    assert!(matches!(result.result, lp_actors::wire::TranscodeOutcome::Data(_)), "{result:?}");
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
            "data_dir = {:?}\n[gateway]\nhttp_addr = \"127.0.0.1:0\"\norchestrators = [\"https://127.0.0.1:1\"]\nprofiles_file = {:?}\nmax_attempts = 0\n[admin]\naddr = \"127.0.0.1:0\"\n",
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

fn remote_orchestrator(secret: &std::path::Path, extra: &str) -> Node {
    Node::start(
        "orchestrator",
        &format!(
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\ntranscode = false\nsecret_file = {secret:?}\n{extra}\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    )
}

fn remote_transcoder(orch: &Node, secret: &std::path::Path) -> Node {
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
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\norchestrators = [{:?}]\nprofiles = [\"P144p30fps16x9\"]\n{extra}\n[admin]\naddr = \"127.0.0.1:0\"\n",
            orch.orchestrator_uri()
        ),
    )
}

fn sessions(orch: &Node) -> u64 {
    orch.status()["orchestrator"]["status"]["current_sessions"].as_u64().expect("current_sessions")
}

fn wait_for(what: &str, deadline: std::time::Duration, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Every retry of a failed segment used to open a new orchestrator session while the old one kept
/// its slot for 70 s: a short transcoder outage filled `max_sessions` and locked every stream out
/// after the transcoders were back. A stream now keeps one session per orchestrator across
/// retries, and a stream that ends frees its session on the orchestrator at once.
#[test]
fn a_transcoder_outage_does_not_lock_streams_out_and_ended_streams_free_their_sessions() {
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("secret");
    std::fs::write(&secret, "outage-secret").unwrap();
    let orch = remote_orchestrator(&secret, "max_sessions = 2");
    let gw = gateway(&orch, "stream_idle_timeout_secs = 1\nmax_attempts = 3");
    let segment = make_segments(gw.dir.path(), 1, 320, 180).remove(0);

    // The outage: no transcoder, so every attempt of every segment fails (3 attempts each).
    for seq in 0..4 {
        let (status, _, body) = push(&gw.gateway(), "a", &format!("{seq}.ts"), segment.clone());
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(sessions(&orch), 1, "twelve failed attempts of one stream hold one session");

    // The transcoder is back: this stream and a new one both get through (2 = max_sessions).
    let _transcoder = remote_transcoder(&orch, &secret);
    orch.wait_transcoders(1);
    let (status, _, body) = push(&gw.gateway(), "a", "4.ts", segment.clone());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = push(&gw.gateway(), "b", "0.ts", segment.clone());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(sessions(&orch), 2);

    // Both streams go idle on the gateway (1 s) and end their sessions; the orchestrator's own
    // idle timeout (70 s) is not what frees them.
    wait_for("the ended streams' sessions to be freed", std::time::Duration::from_secs(30), || sessions(&orch) == 0);
}
