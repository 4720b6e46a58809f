//! The orchestrator's admission checks at the HTTP level, as a client on the network meets them:
//! every refusal has its status and error code, and none of them costs a transcode.

mod common;

use base64::Engine;
use common::*;
use lp_pipelines::Profile;
use lp_wire::{AuthToken, EndSession, ErrorCode, TranscodeFailure, TranscodeOutcome, TranscodeResult};
use serde_bytes::ByteBuf;

fn p144() -> Vec<Profile> {
    vec![lp_pipelines::preset("P144p30fps16x9").unwrap()]
}

fn refused(answer: (u16, Vec<u8>), status: u16, code: ErrorCode, words: &str) {
    let (got, body) = answer;
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(got, status, "{text}");
    let failure: TranscodeFailure = lp_wire::decode(&body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(failure.code, code, "{failure}");
    assert!(failure.message.contains(words), "{failure}");
}

#[test]
fn every_refusal_has_its_status_and_code_and_costs_no_transcode() {
    let orch = Node::start("orchestrator", ORCHESTRATOR);
    let data = make_segments(orch.dir.path(), 2, 320, 180).remove(0);
    let info = wire_token(&orch.orchestrator_uri());
    let uri = info.transcoder.clone();

    // The blake3 hash must match the bytes.
    let mut seg = wire_seg(&info, &data, p144());
    seg.hash = ByteBuf::from(vec![0u8; 32]);
    refused(wire_post(&uri, &lp_wire::encode(&seg), &data), 403, ErrorCode::HashMismatch, "do not match");
    let mut other = data.clone();
    other[1000] ^= 1;
    let seg = wire_seg(&info, &data, p144());
    refused(wire_post(&uri, &lp_wire::encode(&seg), &other), 403, ErrorCode::HashMismatch, "do not match");

    // The auth token: missing, forged (another session id, a later expiry, random bytes).
    let mut seg = wire_seg(&info, &data, p144());
    seg.auth_token = None;
    refused(wire_post(&uri, &lp_wire::encode(&seg), &data), 403, ErrorCode::AuthFailed, "missing auth token");
    let token = info.auth_token.clone().unwrap();
    let forgeries = [
        AuthToken { session_id: "0".repeat(32), ..token.clone() },
        AuthToken { expiration: token.expiration + 3600, ..token.clone() },
        AuthToken { token: ByteBuf::from(vec![7u8; 32]), ..token.clone() },
    ];
    for forged in forgeries {
        let mut seg = wire_seg(&info, &data, p144());
        seg.auth_token = Some(forged.clone());
        refused(wire_post(&uri, &lp_wire::encode(&seg), &data), 403, ErrorCode::AuthFailed, "invalid auth token");
        let end =
            http().post(format!("{uri}/endSession")).body(lp_wire::encode(&EndSession { auth_token: forged })).send();
        let end = end.unwrap();
        assert_eq!(end.status(), 403, "a forged token cannot end a session");
    }

    // The profiles: none, or more than 16.
    refused(wire_submit(&info, &data, vec![]), 400, ErrorCode::InvalidInput, "1 to 16 renditions, not 0");
    let many: Vec<Profile> = (0..17).map(|i| Profile { name: format!("r{i}"), ..p144()[0].clone() }).collect();
    refused(wire_submit(&info, &data, many), 400, ErrorCode::InvalidInput, "not 17");

    // A malformed Livepeer-Segment header: absent, not base64, not MessagePack.
    let resp = http().post(format!("{uri}/segment")).body(data.clone()).send().unwrap();
    assert_eq!(resp.status(), 400);
    let failure: TranscodeFailure = lp_wire::decode(&resp.bytes().unwrap()).unwrap();
    assert!(failure.message.contains("missing Livepeer-Segment"), "{failure}");
    let resp = http().post(format!("{uri}/segment")).header("Livepeer-Segment", "%%%").body(data.clone()).send();
    let failure: TranscodeFailure = lp_wire::decode(&resp.unwrap().bytes().unwrap()).unwrap();
    assert!(failure.message.contains("not base64"), "{failure}");
    refused(wire_post(&uri, b"\xc1 not msgpack", &data), 400, ErrorCode::InvalidInput, "Livepeer-Segment");
    // A malformed Livepeer-Payment header, beside a valid segment header.
    let seg = base64::engine::general_purpose::STANDARD.encode(lp_wire::encode(&wire_seg(&info, &data, p144())));
    for (payment, why) in [("%%%", "Livepeer-Payment is not base64"), ("wAA=", "Livepeer-Payment: malformed")] {
        let resp = http()
            .post(format!("{uri}/segment"))
            .header("Livepeer-Segment", seg.clone())
            .header("Livepeer-Payment", payment)
            .body(data.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400, "{payment}");
        let failure: TranscodeFailure = lp_wire::decode(&resp.bytes().unwrap()).unwrap();
        assert!(failure.message.contains(why), "{failure}");
    }

    // The small messages are read under a small limit (they come before any authentication).
    for path in ["getOrchestrator", "endSession"] {
        let resp = http().post(format!("{uri}/{path}")).body(vec![0x90u8; 100 * 1024]).send().unwrap();
        assert_eq!(resp.status(), 413, "/{path} with a 100 KiB body");
    }

    // Nothing above reached a transcoder; the valid segment does.
    assert_eq!(metric(&orch.metrics(), "livepeer_transcode_time_seconds_count"), 0.0);
    let (status, body) = wire_submit(&info, &data, p144());
    assert_eq!(status, 200);
    let result: TranscodeResult = lp_wire::decode(&body).unwrap();
    assert!(matches!(result.result, TranscodeOutcome::Data(_)), "{result:?}");
    assert_eq!(metric(&orch.metrics(), "livepeer_transcode_time_seconds_count"), 1.0);
}

/// The terms name the price and, ready for AI, each model's price under its capability id.
#[test]
fn terms_carry_the_price_and_a_price_per_capability_and_model() {
    let models = common::test_models();
    let config = format!(
        "{ORCHESTRATOR}\n[[orchestrator.models]]\npipeline = \"upscale\"\nmodel_id = \"stabilityai/sd-x2-latent-upscaler\"\n\
         path = \"{models}/upscale_x2_nearest.onnx\"\nprice_per_unit = \"7\"\npixels_per_unit = 1000\n"
    )
    .replace("[orchestrator]", "[orchestrator]\nprice_per_unit = \"3\"\npixels_per_unit = 2");
    let orch = Node::start("orchestrator", &config);
    let info = wire_token(&orch.orchestrator_uri());
    let price = info.price_info.expect("a price");
    assert_eq!((price.price_per_unit, price.pixels_per_unit), (3, 2));
    assert_eq!(info.capabilities_prices.len(), 1);
    let upscale = &info.capabilities_prices[0];
    assert_eq!((upscale.capability, upscale.constraint.as_str()), (30, "stabilityai/sd-x2-latent-upscaler"));
    assert_eq!((upscale.price_per_unit, upscale.pixels_per_unit), (7, 1000));
    assert!(info.ticket_params.is_none(), "offchain: no tickets");
}

/// `/segment` reads its headers before its body: without them it is answered 400 at once,
/// whatever body it announces (it read up to 300 MB first); with them, a body that stops
/// arriving is answered 408 after `BODY_IDLE` (it was held as long as the client liked).
#[test]
fn a_segment_body_is_read_only_after_its_headers_and_a_stalled_one_is_refused() {
    use std::io::{Read, Write};
    let config = ORCHESTRATOR.replace("x264_preset", "tls = false\nx264_preset");
    let orch = Node::start("orchestrator", &config);
    let addr = orch.listen["orchestrator"].as_str().unwrap().to_string();
    let post = |headers: &str| {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        let head = format!("POST /segment HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 200000000\r\n\r\n0123456789");
        sock.write_all(head.as_bytes()).unwrap();
        let mut answer = vec![0u8; 4096];
        let n = sock.read(&mut answer).expect("an answer, not a hang");
        String::from_utf8_lossy(&answer[..n]).to_string()
    };
    // Before, this waited for 200 MB that never come: the read below timed out.
    let answer = post("");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("missing Livepeer-Segment header"), "{answer}");

    let info = wire_token(&orch.orchestrator_uri());
    let seg = lp_wire::encode(&wire_seg(&info, b"0123456789", p144()));
    let header = base64::engine::general_purpose::STANDARD.encode(seg);
    let answer = post(&format!("Livepeer-Segment: {header}\r\n"));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("no body bytes for 10s after 10 bytes"), "{answer}");
}
