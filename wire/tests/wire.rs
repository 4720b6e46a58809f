//! The wire's promises: messages round-trip, garbage is an error, a newer peer's additions
//! (unknown fields, unknown error codes) are read, and the encoding of a video profile is fixed
//! by this crate alone.

use lp_wire::capability::{self, Capabilities};
use lp_wire::*;
use serde_bytes::ByteBuf;

#[test]
fn capabilities_match_like_go_livepeer() {
    let offered = Capabilities::transcoding();
    let mut wanted = Capabilities::default();
    wanted.set(capability::H264);
    wanted.set(capability::AUTH_TOKEN);
    assert!(wanted.compatible_with(&offered));
    // Missing the mandatory auth-token bit.
    let mut legacy = Capabilities::default();
    legacy.set(capability::H264);
    assert!(!legacy.compatible_with(&offered));
    // Asking for something not offered.
    let mut hevc = wanted.clone();
    hevc.set(16);
    assert!(!hevc.compatible_with(&offered));
}

#[test]
fn messages_round_trip_and_garbage_is_an_error() {
    let msg = TranscodeResult {
        seq: 7,
        result: TranscodeOutcome::Error(TranscodeFailure {
            code: ErrorCode::OrchestratorBusy,
            message: "queue full".into(),
        }),
        info: Some(OrchestratorInfo { transcoder: "https://127.0.0.1:8935".into(), ..Default::default() }),
    };
    let bytes = encode(&msg);
    assert_eq!(decode::<TranscodeResult>(&bytes).unwrap(), msg);
    assert!(decode::<TranscodeResult>(b"\xc1garbage").is_err());
    assert!(decode::<TranscodeResult>(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn every_error_code_round_trips_and_an_unknown_one_is_read_as_unknown() {
    for code in ErrorCode::ALL {
        let f = TranscodeFailure { code, message: code.as_str().into() };
        assert_eq!(decode::<TranscodeFailure>(&encode(&f)).unwrap(), f);
    }
    // What a newer peer sends: a code this build has never heard of, and an extra field.
    #[derive(serde::Serialize)]
    struct Newer {
        code: &'static str,
        message: &'static str,
        retry_after_ms: u64,
    }
    let bytes = encode(&Newer { code: "PaymentRejected", message: "ticket too old", retry_after_ms: 500 });
    let f = decode::<TranscodeFailure>(&bytes).expect("a newer peer's failure is readable");
    assert_eq!(f.code, ErrorCode::Unknown);
    assert_eq!(f.message, "ticket too old");
    assert!(f.code.is_retryable());
}

#[test]
fn a_video_profile_is_encoded_by_field_name() {
    let p = VideoProfile {
        name: "P240p30fps16x9".into(),
        width: 426,
        height: 240,
        bitrate: 250_000,
        fps: 30,
        fps_den: 1,
        gop_ms: 0,
        profile: H264Profile::ConstrainedHigh,
    };
    let bytes = encode(&p);
    // The encoding is a map keyed by these names and the profile's snake_case spelling; a
    // change to any of them breaks older peers, so this test pins them.
    let as_json: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(
        as_json,
        serde_json::json!({"name": "P240p30fps16x9", "width": 426, "height": 240, "bitrate": 250000,
            "fps": 30, "fps_den": 1, "gop_ms": 0, "profile": "constrained_high"})
    );
    assert_eq!(decode::<VideoProfile>(&bytes).unwrap(), p);
}

#[test]
fn worker_frames_round_trip_for_both_job_kinds() {
    let jobs = [
        Work::Transcode { seq: 3, format: Container::MpegTs, profiles: vec![], data: ByteBuf::from(vec![0x47; 188]) },
        Work::Infer {
            request: lp_wire::ai::AiRequest::Upscale(lp_wire::ai::UpscaleRequest::new("x2", "a cat", vec![0x89, b'P'])),
        },
    ];
    for work in jobs {
        let msg = OrchestratorMessage::Job { task_id: 9, work, timeout_ms: 8_000 };
        assert_eq!(decode::<OrchestratorMessage>(&encode(&msg)).unwrap(), msg);
    }
    let answer = TranscoderMessage::Result {
        task_id: 9,
        outcome: WorkOutcome::Inferred(lp_wire::ai::AiResponse::ImageToText(lp_wire::ai::ImageToTextResponse {
            text: "a cat".into(),
        })),
    };
    assert_eq!(decode::<TranscoderMessage>(&encode(&answer)).unwrap(), answer);
}

/// `sessions` (a transcoder's measured figure) is a key of its own, absent when there is none:
/// a frame of a worker that has none, or that predates it, reads as `None`, and one that has it
/// carries it.
#[test]
fn a_registration_carries_its_measured_sessions_only_when_there_are_some() {
    let register = |sessions| TranscoderMessage::Register {
        secret: "s".into(),
        capacity: 2,
        capabilities: lp_wire::Capabilities::transcoding(),
        sessions,
    };
    // The frame as any MessagePack reader sees it: {"Register": {field: value, …}}.
    let fields = |msg: &TranscoderMessage| {
        let value: serde_json::Value = rmp_serde::from_slice(&encode(msg)).unwrap();
        value["Register"].as_object().unwrap().clone()
    };
    let keys = |msg: &TranscoderMessage| fields(msg).keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&register(None)), ["capabilities", "capacity", "secret"]);
    assert_eq!(keys(&register(Some(3))), ["capabilities", "capacity", "secret", "sessions"]);
    assert_eq!(fields(&register(Some(3)))["sessions"], 3);
    for msg in [register(None), register(Some(3))] {
        assert_eq!(decode::<TranscoderMessage>(&encode(&msg)).unwrap(), msg);
    }
}

#[test]
fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
    // An unknown field holding arrays nested far deeper than any message of ours.
    let mut bytes = vec![0x81, 0xa3, b'z', b'z', b'z'];
    bytes.extend(std::iter::repeat_n(0x91, 10_000));
    bytes.push(0xc0);
    assert!(decode::<EndSession>(&bytes).is_err());
}

#[test]
fn the_segment_timeout_is_go_livepeers() {
    assert_eq!(segment_timeout(0), std::time::Duration::from_secs(8));
    assert_eq!(segment_timeout(2_000), std::time::Duration::from_secs(8));
    assert_eq!(segment_timeout(10_000), std::time::Duration::from_secs(40));
    assert_eq!(segment_timeout(u64::MAX), std::time::Duration::from_millis(u64::MAX));
}
