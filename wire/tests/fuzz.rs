//! Fuzzing of the MessagePack wire codec ([`lp_wire::decode`] / [`lp_wire::encode`]) for every message
//! that crosses the network: what gateways, orchestrators and transcoders send each other.
//!
//! For each message type: arbitrary values round-trip (`decode(encode(v)) == v`); decoding
//! arbitrary bytes, mutated encodings of arbitrary values and MessagePack built to be hostile
//! (wrong types, unknown fields holding deep nesting, huge declared lengths) is an error or a
//! value, never a panic, an abort or a stack overflow. The capability check the orchestrator runs
//! on what a gateway sends ([`Capabilities::compatible_with`]) is fuzzed on decoded values too.
//!
//! The AI API's HTTP bodies too: `multipart/form-data` bodies round-trip through
//! [`lp_wire::multipart::parse`], and it answers mutated and arbitrary bodies without a panic;
//! [`AiRequest::parse`] answers well-formed forms with a request or a 422, and mutated forms,
//! arbitrary JSON and mutated JSON with a request, a 400 or a 422, never a panic or a deep
//! recursion.
//!
//! `cargo test` runs a bounded number of cases per target (`PROPTEST_CASES` overrides);
//! `make fuzz` runs each for `FUZZ_SECS` seconds.

use std::collections::BTreeMap;
use std::fmt::Debug;

use lp_wire::ai::{AiRequest, AiResponse, ImageToTextResponse, Pipeline};
use lp_wire::multipart::{self, MultipartError};
use lp_wire::{
    AuthToken, Capabilities, EndSession, ErrorCode, OrchestratorInfo, OrchestratorMessage, OrchestratorRequest,
    Payment, PriceInfo, SegData, SegParameters, TicketExpirationParams, TicketParams, TicketSenderParams,
    TranscodeData, TranscodeFailure, TranscodeOutcome, TranscodeResult, TranscodedSegmentData, TranscoderMessage,
};
use lp_wire::{Container, H264Profile, ModelConstraint, VideoProfile, Work, WorkOutcome};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseResult;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Strategies for every wire type
// ---------------------------------------------------------------------------------------------

fn bytes() -> impl Strategy<Value = ByteBuf> {
    proptest::collection::vec(any::<u8>(), 0..48).prop_map(ByteBuf::from)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,24}", "[a-z0-9:/._-]{0,24}"]
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    (
        proptest::collection::vec(any::<u64>(), 0..4),
        proptest::collection::vec(any::<u64>(), 0..4),
        proptest::collection::btree_map(any::<u32>(), any::<u32>(), 0..4),
        text(),
        proptest::collection::btree_map(
            any::<u32>(),
            proptest::collection::btree_map(text(), (any::<bool>(), any::<u32>(), any::<u32>()), 0..3),
            0..3,
        ),
    )
        .prop_map(|(bitstring, mandatories, capacities, version, constraints)| Capabilities {
            bitstring,
            mandatories,
            capacities,
            version,
            constraints: constraints
                .into_iter()
                .map(|(cap, models)| {
                    let models = models
                        .into_iter()
                        .map(|(id, (warm, capacity, capacity_in_use))| {
                            (id, ModelConstraint { warm, capacity, capacity_in_use })
                        })
                        .collect();
                    (cap, models)
                })
                .collect(),
        })
}

fn auth_token() -> impl Strategy<Value = AuthToken> {
    (bytes(), text(), any::<i64>()).prop_map(|(token, session_id, expiration)| AuthToken {
        token,
        session_id,
        expiration,
    })
}

fn price_info() -> impl Strategy<Value = PriceInfo> {
    (any::<i64>(), any::<i64>(), any::<u32>(), text()).prop_map(
        |(price_per_unit, pixels_per_unit, capability, constraint)| PriceInfo {
            price_per_unit,
            pixels_per_unit,
            capability,
            constraint,
        },
    )
}

fn expiration_params() -> impl Strategy<Value = TicketExpirationParams> {
    (any::<i64>(), bytes()).prop_map(|(creation_round, creation_round_block_hash)| TicketExpirationParams {
        creation_round,
        creation_round_block_hash,
    })
}

fn ticket_params() -> impl Strategy<Value = TicketParams> {
    (bytes(), bytes(), bytes(), bytes(), bytes(), bytes(), proptest::option::of(expiration_params())).prop_map(
        |(recipient, face_value, win_prob, recipient_rand_hash, seed, expiration_block, expiration_params)| {
            TicketParams {
                recipient,
                face_value,
                win_prob,
                recipient_rand_hash,
                seed,
                expiration_block,
                expiration_params,
            }
        },
    )
}

fn payment() -> impl Strategy<Value = Payment> {
    (
        proptest::option::of(ticket_params()),
        bytes(),
        proptest::option::of(expiration_params()),
        proptest::collection::vec(
            (any::<u32>(), bytes()).prop_map(|(sender_nonce, sig)| TicketSenderParams { sender_nonce, sig }),
            0..4,
        ),
        proptest::option::of(price_info()),
    )
        .prop_map(|(ticket_params, sender, expiration_params, ticket_sender_params, expected_price)| Payment {
            ticket_params,
            sender,
            expiration_params,
            ticket_sender_params,
            expected_price,
        })
}

fn orchestrator_request() -> impl Strategy<Value = OrchestratorRequest> {
    (bytes(), bytes(), proptest::option::of(capabilities()), any::<bool>()).prop_map(
        |(address, sig, capabilities, ignore_capacity_check)| OrchestratorRequest {
            address,
            sig,
            capabilities,
            ignore_capacity_check,
        },
    )
}

fn orchestrator_info() -> impl Strategy<Value = OrchestratorInfo> {
    (
        text(),
        proptest::option::of(ticket_params()),
        proptest::option::of(price_info()),
        bytes(),
        proptest::option::of(capabilities()),
        proptest::option::of(auth_token()),
        proptest::collection::vec(price_info(), 0..3),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(transcoder, ticket_params, price_info, address, capabilities, auth_token, capabilities_prices, nodes)| {
                OrchestratorInfo {
                    transcoder,
                    ticket_params,
                    price_info,
                    address,
                    capabilities,
                    auth_token,
                    capabilities_prices,
                    nodes,
                }
            },
        )
}

fn input_format() -> impl Strategy<Value = Container> {
    prop_oneof![Just(Container::MpegTs), Just(Container::Mp4)]
}

/// Any profile, valid or not: the codec carries whatever it is given; validation is elsewhere.
fn profile() -> impl Strategy<Value = VideoProfile> {
    let h264 = prop_oneof![
        Just(H264Profile::EncoderDefault),
        Just(H264Profile::Baseline),
        Just(H264Profile::Main),
        Just(H264Profile::High),
        Just(H264Profile::ConstrainedHigh),
    ];
    (text(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), h264).prop_map(
        |(name, width, height, bitrate, fps, fps_den, gop_ms, profile)| VideoProfile {
            name,
            width,
            height,
            bitrate,
            fps,
            fps_den,
            gop_ms,
            profile,
        },
    )
}

fn seg_data() -> impl Strategy<Value = SegData> {
    (
        (bytes(), any::<i64>(), bytes(), bytes(), any::<i32>()),
        (proptest::option::of(capabilities()), proptest::option::of(auth_token())),
        (proptest::collection::vec(profile(), 0..4), input_format()),
        (proptest::option::of((any::<u64>(), any::<u64>())), any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |(
                (manifest_id, seq, hash, sig, duration),
                (capabilities, auth_token),
                (profiles, format),
                (params, force_session_reinit, timeout_ms),
            )| SegData {
                manifest_id,
                seq,
                hash,
                sig,
                duration,
                capabilities,
                auth_token,
                profiles,
                format,
                segment_parameters: params.map(|(from, to)| SegParameters { from, to }),
                force_session_reinit,
                timeout_ms,
            },
        )
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec())
}

fn transcode_failure() -> impl Strategy<Value = TranscodeFailure> {
    (error_code(), text()).prop_map(|(code, message)| TranscodeFailure { code, message })
}

fn transcode_data() -> impl Strategy<Value = TranscodeData> {
    let segment = (text(), any::<i64>(), bytes(), text(), any::<u32>(), any::<u32>()).prop_map(
        |(url, pixels, data, name, width, height)| TranscodedSegmentData { url, pixels, data, name, width, height },
    );
    (proptest::collection::vec(segment, 0..4), bytes()).prop_map(|(segments, sig)| TranscodeData { segments, sig })
}

fn outcome() -> impl Strategy<Value = TranscodeOutcome> {
    prop_oneof![
        transcode_failure().prop_map(TranscodeOutcome::Error),
        transcode_data().prop_map(TranscodeOutcome::Data)
    ]
}

fn transcode_result() -> impl Strategy<Value = TranscodeResult> {
    (any::<i64>(), outcome(), proptest::option::of(orchestrator_info()))
        .prop_map(|(seq, result, info)| TranscodeResult { seq, result, info })
}

fn end_session() -> impl Strategy<Value = EndSession> {
    auth_token().prop_map(|auth_token| EndSession { auth_token })
}

fn transcoder_message() -> impl Strategy<Value = TranscoderMessage> {
    prop_oneof![
        (text(), any::<u32>(), capabilities(), any::<Option<u32>>()).prop_map(
            |(secret, capacity, capabilities, sessions)| TranscoderMessage::Register {
                secret,
                capacity,
                capabilities,
                sessions
            }
        ),
        (any::<u64>(), work_outcome()).prop_map(|(task_id, outcome)| TranscoderMessage::Result { task_id, outcome }),
        (any::<u64>(), text()).prop_map(|(task_id, text)| TranscoderMessage::Partial { task_id, text }),
    ]
}

fn orchestrator_message() -> impl Strategy<Value = OrchestratorMessage> {
    prop_oneof![
        Just(OrchestratorMessage::Registered),
        text().prop_map(|reason| OrchestratorMessage::Refused { reason }),
        (any::<u64>(), work(), any::<u64>()).prop_map(|(task_id, work, timeout_ms)| OrchestratorMessage::Job {
            task_id,
            work,
            timeout_ms
        }),
        any::<u64>().prop_map(|task_id| OrchestratorMessage::Cancel { task_id }),
    ]
}

fn work() -> impl Strategy<Value = Work> {
    prop_oneof![
        (any::<i64>(), input_format(), proptest::collection::vec(profile(), 0..3), bytes())
            .prop_map(|(seq, format, profiles, data)| Work::Transcode { seq, format, profiles, data }),
        (text(), text(), bytes()).prop_map(|(model_id, prompt, image)| Work::Infer {
            request: AiRequest::Upscale(lp_wire::ai::UpscaleRequest::new(model_id, prompt, image.into_vec())),
        }),
    ]
}

fn work_outcome() -> impl Strategy<Value = WorkOutcome> {
    prop_oneof![
        transcode_failure().prop_map(WorkOutcome::Error),
        transcode_data().prop_map(WorkOutcome::Transcoded),
        text().prop_map(|text| WorkOutcome::Inferred(AiResponse::ImageToText(ImageToTextResponse { text }))),
    ]
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Delete(Index, u8),
    Insert(Index, Vec<u8>),
    /// A MessagePack marker that claims a huge length (str32, bin32, array32, map32, ext32).
    HugeLength(Index, u8, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let marker = prop_oneof![Just(0xdbu8), Just(0xc6), Just(0xdd), Just(0xdf), Just(0xc9), Just(0xda), Just(0xdc)];
    let len = prop_oneof![Just(u32::MAX), Just(0x7fff_ffff), Just(0x1000_0000), any::<u32>()];
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), marker, len).prop_map(|(i, m, n)| Mutation::HugeLength(i, m, n)),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let len = data.len();
    match m {
        Mutation::FlipBit(i, b) if len > 0 => data[i.index(len)] ^= 1 << b,
        Mutation::SetByte(i, v) if len > 0 => data[i.index(len)] = *v,
        Mutation::Truncate(i) => data.truncate(i.index(len + 1)),
        Mutation::Delete(i, n) if len > 0 => {
            let at = i.index(len);
            data.drain(at..(at + usize::from(*n)).min(len));
        }
        Mutation::Insert(i, b) => {
            let at = i.index(len + 1);
            data.splice(at..at, b.iter().copied());
        }
        Mutation::HugeLength(i, marker, n) => {
            let at = i.index(len + 1);
            let mut b = vec![*marker];
            match marker {
                0xda | 0xdc => b.extend((*n as u16).to_be_bytes()),
                _ => b.extend(n.to_be_bytes()),
            }
            data.splice(at..at, b);
        }
        _ => {}
    }
}

/// Decoding must give an answer, never a panic; a value that decodes re-encodes and decodes to
/// itself (so nothing the codec accepts is half-read).
fn decodes_cleanly<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) -> TestCaseResult {
    if let Ok(v) = lp_wire::decode::<T>(bytes) {
        let again: T = lp_wire::decode(&lp_wire::encode(&v)).map_err(|e| TestCaseError::fail(format!("{v:?}: {e}")))?;
        prop_assert_eq!(again, v);
    }
    Ok(())
}

/// MessagePack that nests `depth` arrays (or maps) inside `field` of an otherwise empty map.
fn nested(field: &str, depth: usize, map: bool) -> Vec<u8> {
    let mut out = vec![0x81, 0xa0 | field.len() as u8];
    out.extend(field.as_bytes());
    for _ in 0..depth {
        if map {
            out.extend([0x81, 0xa1, b'k']);
        } else {
            out.push(0x91);
        }
    }
    out.push(0xc0);
    out
}

/// Runs `f` on a thread with a `bytes` stack.
fn on_stack(bytes: usize, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(bytes).spawn(f).unwrap().join().unwrap();
}

macro_rules! wire_targets {
    ($($ty:ident => $strategy:expr, [$($field:literal),*];)*) => {
        /// How many message types the per-type targets go through.
        const TYPES: u64 = [$(stringify!($ty)),*].len() as u64;

        /// `decode(encode(v)) == v` for arbitrary values of every message type.
        #[test]
        fn every_message_round_trips() {
            $(
                lp_testkit::fuzz::run(concat!("round_trip_", stringify!($ty)), 128, TYPES, $strategy, |v: $ty| {
                    let bytes = lp_wire::encode(&v);
                    let back = lp_wire::decode::<$ty>(&bytes).map_err(|e| TestCaseError::fail(format!("{v:?}: {e}")))?;
                    prop_assert_eq!(back, v);
                    Ok(())
                });
            )*
        }

        /// Mutated encodings of arbitrary values decode to an answer.
        #[test]
        fn mutated_messages_never_panic() {
            $(
                let strategy = ($strategy, proptest::collection::vec(mutation(), 1..6));
                lp_testkit::fuzz::run(concat!("mutated_", stringify!($ty)), 128, TYPES, strategy, |(v, mutations): ($ty, Vec<Mutation>)| {
                    let mut bytes = lp_wire::encode(&v);
                    for m in &mutations {
                        apply(&mut bytes, m);
                    }
                    decodes_cleanly::<$ty>(&bytes)
                });
            )*
        }

        /// Arbitrary bytes, and arbitrary bytes after a map header, decode to an answer.
        #[test]
        fn arbitrary_bytes_never_panic() {
            let strategy = (proptest::option::of(0u8..16), proptest::collection::vec(any::<u8>(), 0..256));
            lp_testkit::fuzz::run("arbitrary_bytes", 256, 1, strategy, |(map, tail)| {
                let mut bytes: Vec<u8> = map.map(|n| vec![0x80 | n]).unwrap_or_default();
                bytes.extend(tail);
                $( decodes_cleanly::<$ty>(&bytes)?; )*
                Ok(())
            });
        }

        /// Unknown fields (which the codec skips) and known fields holding nesting as deep as
        /// the decoder's limit (1024) and beyond are skipped or refused, never a panic; huge
        /// declared lengths allocate nothing. Run on a big stack: how much stack the nesting
        /// takes is [`nesting_fits_a_worker_stack`]'s question.
        #[test]
        fn deep_nesting_and_huge_lengths_are_refused() {
            on_stack(256 << 20, || {
                for depth in [1, 100, 1000, 1023, 1024, 1025, 5000, 200_000] {
                    for map in [false, true] {
                        $(
                            for field in ["unknown_field" $(, $field)*] {
                                let _ = lp_wire::decode::<$ty>(&nested(field, depth, map));
                            }
                        )*
                    }
                }
                for marker in [&[0xdbu8, 0xff, 0xff, 0xff, 0xff][..], &[0xc6, 0xff, 0xff, 0xff, 0xff], &[0xdd, 0xff, 0xff, 0xff, 0xff], &[0xdf, 0xff, 0xff, 0xff, 0xff]] {
                    $(
                        for field in ["unknown_field" $(, $field)*] {
                            let mut bytes = vec![0x81, 0xa0 | field.len() as u8];
                            bytes.extend(field.as_bytes());
                            bytes.extend(marker);
                            assert!(lp_wire::decode::<$ty>(&bytes).is_err());
                            assert!(lp_wire::decode::<$ty>(marker).is_err());
                        }
                    )*
                }
            });
        }

        /// Found by fuzzing: a message with an unknown field holding ~1000 nested arrays
        /// (`81 a0` then `91` × 1000 then `c0`, 1 KiB) is skipped by recursion in rmp-serde,
        /// whose depth limit is 1024 levels. An unoptimized build takes over 2 KiB of stack per
        /// level, so decoding it on a 2 MiB thread (actix's workers, where the orchestrator
        /// decodes `/getOrchestrator` and `/segment` bodies and transcoder frames) overflows the
        /// stack and aborts the whole process; an optimized build takes ~100 bytes per level
        /// and refuses it (`DepthLimitExceeded`). Fixed: `lp_wire::decode` caps the depth at
        /// `wire::MAX_DEPTH` (32; the messages nest a handful of levels).
        #[test]
        fn nesting_fits_a_worker_stack() {
            on_stack(2 << 20, || {
                for depth in [1000, 1023, 1024, 1025, 5000] {
                    for map in [false, true] {
                        $( let _ = lp_wire::decode::<$ty>(&nested("", depth, map)); )*
                    }
                }
            });
        }
    };
}

wire_targets! {
    OrchestratorRequest => orchestrator_request(), ["capabilities", "address"];
    OrchestratorInfo => orchestrator_info(), ["ticket_params", "capabilities", "nodes"];
    AuthToken => auth_token(), ["token"];
    PriceInfo => price_info(), ["constraint"];
    TicketParams => ticket_params(), ["expiration_params"];
    Payment => payment(), ["ticket_sender_params", "ticket_params"];
    Capabilities => capabilities(), ["capacities", "bitstring"];
    SegData => seg_data(), ["profiles", "capabilities", "format"];
    TranscodeData => transcode_data(), ["segments"];
    TranscodeFailure => transcode_failure(), ["code"];
    TranscodeOutcome => outcome(), ["Data", "Error"];
    TranscodeResult => transcode_result(), ["result", "info"];
    EndSession => end_session(), ["auth_token"];
    TranscoderMessage => transcoder_message(), ["Register", "Result"];
    OrchestratorMessage => orchestrator_message(), ["Job", "Refused"];
    Work => work(), ["Transcode", "Infer"];
    WorkOutcome => work_outcome(), ["Transcoded", "Inferred"];
}

/// What the orchestrator does with a gateway's capabilities, on decoded hostile values: an
/// answer, and the same answer for the same value.
#[test]
fn capability_checks_never_panic() {
    let strategy = (capabilities(), proptest::collection::vec(mutation(), 0..4));
    lp_testkit::fuzz::run("compatible_with", 256, 1, strategy, |(caps, mutations)| {
        let mut bytes = lp_wire::encode(&caps);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(caps) = lp_wire::decode::<Capabilities>(&bytes) {
            let offered = Capabilities::transcoding();
            let ok = caps.compatible_with(&offered);
            prop_assert_eq!(ok, caps.compatible_with(&offered));
            let _ = offered.compatible_with(&caps);
        }
        Ok(())
    });
}

/// Every bit that fits in a few words: `set` then `compatible_with` agree with a plain model.
#[test]
fn capability_bits_follow_the_model() {
    lp_testkit::fuzz::run("capability_bits", 256, 1, proptest::collection::vec(0u32..512, 0..16), |bits| {
        let mut caps = Capabilities::default();
        let mut model: BTreeMap<u32, ()> = BTreeMap::new();
        for b in &bits {
            caps.set(*b);
            model.insert(*b, ());
        }
        for b in 0..512u32 {
            let word = caps.bitstring.get((b / 64) as usize).copied().unwrap_or(0);
            prop_assert_eq!(word & (1 << (b % 64)) != 0, model.contains_key(&b));
        }
        prop_assert!(caps.compatible_with(&caps.clone()));
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data and the AI request bodies
// ---------------------------------------------------------------------------------------------

const FORM_BOUNDARY: &str = "B0UND";
const FORM_TYPE: &str = "multipart/form-data; boundary=\"B0UND\"";

#[derive(Debug, Clone)]
struct FormPart {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
    /// Transport padding after the delimiter.
    padding: String,
}

/// Bytes made of pieces that come close to a delimiter (`\r\n--B0UND`) without making one:
/// the delimiter has no border, and no piece starts with its tail.
fn near_delimiters() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"a"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"-"[..]),
        Just(&b"\r"[..]),
        Just(&b"\r\n--B0UN"[..]),
        Just(&b"\r\n--B0UNDz"[..]),
        Just(&b"\xff\x00"[..]),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

fn form_part() -> impl Strategy<Value = FormPart> {
    (
        "[a-z_]{1,12}",
        proptest::option::of("[a-zA-Z0-9 ._-]{0,12}"),
        proptest::option::of("[a-z]{1,8}/[a-z0-9.+-]{1,12}"),
        near_delimiters(),
        "[ \t]{0,2}",
    )
        .prop_map(|(name, filename, content_type, data, padding)| FormPart {
            name,
            filename,
            content_type,
            data,
            padding,
        })
}

fn form_body(preamble: &Option<Vec<u8>>, parts: &[FormPart], epilogue: &[u8]) -> Vec<u8> {
    let mut body = preamble.as_ref().map(|p| [&p[..], b"\r\n"].concat()).unwrap_or_default();
    for p in parts {
        body.extend(
            format!("--{FORM_BOUNDARY}{}\r\nContent-Disposition: form-data; name=\"{}\"", p.padding, p.name).bytes(),
        );
        if let Some(f) = &p.filename {
            body.extend(format!("; filename=\"{f}\"").bytes());
        }
        body.extend(b"\r\n");
        if let Some(ct) = &p.content_type {
            body.extend(format!("Content-Type: {ct}\r\n").bytes());
        }
        body.extend(b"\r\n");
        body.extend(&p.data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{FORM_BOUNDARY}--").bytes());
    body.extend(epilogue);
    body
}

fn form() -> impl Strategy<Value = (Option<Vec<u8>>, Vec<FormPart>, Vec<u8>)> {
    (
        proptest::option::of(near_delimiters()),
        proptest::collection::vec(form_part(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
}

/// What the parser says of any body: an error, or parts within the body and within the limit.
fn parses_cleanly(content_type: &str, body: &[u8]) -> TestCaseResult {
    if let Ok(parts) = multipart::parse(content_type, body) {
        prop_assert!(parts.len() <= multipart::MAX_PARTS);
        let range = body.as_ptr_range();
        for p in &parts {
            prop_assert!(
                p.data.is_empty() || (range.start <= p.data.as_ptr() && p.data.as_ptr_range().end <= range.end)
            );
        }
    }
    Ok(())
}

/// Well-formed bodies parse to their parts; mutated and arbitrary ones to an answer.
#[test]
fn multipart_forms() {
    lp_testkit::fuzz::run("multipart_round_trip", 256, 3, form(), |(preamble, parts, epilogue)| {
        let body = form_body(&preamble, &parts, &epilogue);
        let parsed = multipart::parse(FORM_TYPE, &body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.len(), parts.len());
        for (got, sent) in parsed.iter().zip(&parts) {
            prop_assert_eq!(&got.name, &sent.name);
            prop_assert_eq!(&got.filename, &sent.filename);
            prop_assert_eq!(&got.content_type, &sent.content_type);
            prop_assert_eq!(got.data, &sent.data[..]);
        }
        Ok(())
    });
    let strategy = (form(), proptest::collection::vec(mutation(), 1..6));
    lp_testkit::fuzz::run("multipart_mutated", 256, 3, strategy, |((preamble, parts, epilogue), mutations)| {
        let mut body = form_body(&preamble, &parts, &epilogue);
        for m in &mutations {
            apply(&mut body, m);
        }
        parses_cleanly(FORM_TYPE, &body)
    });
    let content_type = prop_oneof![
        Just(FORM_TYPE.to_string()),
        "multipart/form-data; ?boundary=\"?[-a-zA-Z0-9:;\"\\\\ ]{0,12}\"?",
        ".{0,32}",
    ];
    let body = (proptest::option::of(Just(b"--B0UND\r\n".to_vec())), proptest::collection::vec(any::<u8>(), 0..256));
    lp_testkit::fuzz::run("multipart_arbitrary", 256, 3, (content_type, body), |(content_type, (head, tail))| {
        let _ = multipart::boundary(&content_type);
        let body = [head.unwrap_or_default(), tail].concat();
        parses_cleanly(&content_type, &body)
    });
}

/// A form of the image pipelines' fields, each with a value that converts or one that does not.
fn ai_form() -> impl Strategy<Value = Vec<FormPart>> {
    let name = prop_oneof![
        Just("model_id"),
        Just("prompt"),
        Just("image"),
        Just("safety_check"),
        Just("seed"),
        Just("num_inference_steps"),
        Just("num_images_per_prompt"),
        Just("strength"),
        Just("guidance_scale"),
        Just("loras"),
        Just("other"),
    ];
    let value = prop_oneof![
        Just(b"".to_vec()),
        Just(b"true".to_vec()),
        Just(b"Off".to_vec()),
        Just(b"12".to_vec()),
        Just(b"-3".to_vec()),
        Just(b"0.25".to_vec()),
        Just(b"nan".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just(b"{\"a\": 1}".to_vec()),
        Just(b"{".to_vec()),
        near_delimiters(),
    ];
    let part = (name, value, any::<bool>()).prop_map(|(name, data, file)| FormPart {
        name: name.to_string(),
        filename: file.then(|| "x.png".to_string()),
        content_type: None,
        data,
        padding: String::new(),
    });
    proptest::collection::vec(part, 0..12)
}

const IMAGE_PIPELINES: [Pipeline; 3] = [Pipeline::Upscale, Pipeline::ImageToImage, Pipeline::ImageToText];

/// A JSON value, with the strings and numbers llm's fields convert from among the others.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-10i64..5000).prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        text().prop_map(Value::from),
        prop_oneof![Just("true"), Just("12"), Just("-1"), Just("0.5"), Just("user")].prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![Just("role".to_string()), Just("content".to_string()), text()];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An llm body: some of its fields (messages often well-formed), holding any JSON.
fn llm_body() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("messages"),
        Just("model"),
        Just("temperature"),
        Just("max_tokens"),
        Just("top_p"),
        Just("top_k"),
        Just("stream"),
        Just("other"),
    ];
    let message =
        ("[a-z]{0,9}", text()).prop_map(|(role, content)| serde_json::json!({"role": role, "content": content}));
    let messages = proptest::collection::vec(message, 0..3).prop_map(Value::Array);
    (proptest::collection::btree_map(key, json_value(), 0..6), proptest::option::of(messages)).prop_map(
        |(fields, messages)| {
            let mut object: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            if let Some(m) = messages {
                object.insert("messages".into(), m);
            }
            Value::Object(object)
        },
    )
}

/// What parsing any body may answer: a request of the pipeline, a 400 or a 422.
fn answers(pipeline: Pipeline, content_type: &str, body: &[u8]) -> Result<Option<AiRequest>, TestCaseError> {
    match AiRequest::parse(pipeline, content_type, body) {
        Ok(r) => {
            prop_assert_eq!(r.pipeline(), pipeline);
            if let AiRequest::Llm(r) = &r {
                prop_assert!(!r.messages.is_empty());
                prop_assert!((1..=lp_wire::limits::MAX_LLM_TOKENS).contains(&r.max_tokens));
            }
            Ok(Some(r))
        }
        Err(e) => {
            prop_assert!(e.status == 400 || e.status == 422, "{e}");
            prop_assert!(serde_json::from_slice::<Value>(&e.to_json()).is_ok());
            Ok(None)
        }
    }
}

/// The AI request parser on forms of its fields, mutated forms, JSON and mutated JSON.
#[test]
fn ai_request_bodies() {
    lp_testkit::fuzz::run("ai_forms", 256, 4, ai_form(), |parts| {
        let body = form_body(&None, &parts, b"");
        for pipeline in IMAGE_PIPELINES {
            // A well-formed form is a request or a 422, and the request has the last model_id.
            match AiRequest::parse(pipeline, FORM_TYPE, &body) {
                Ok(r) => {
                    let last = parts.iter().rev().find(|p| p.name == "model_id").map(|p| &p.data[..]);
                    prop_assert_eq!(Some(r.model_id().as_bytes()), last);
                    prop_assert!(!r.image().unwrap_or_default().is_empty());
                }
                Err(e) => prop_assert_eq!(e.status, 422, "{}", e),
            }
        }
        Ok(())
    });
    let strategy = (ai_form(), proptest::collection::vec(mutation(), 1..6));
    lp_testkit::fuzz::run("ai_forms_mutated", 256, 4, strategy, |(parts, mutations)| {
        let mut body = form_body(&None, &parts, b"");
        for m in &mutations {
            apply(&mut body, m);
        }
        for pipeline in IMAGE_PIPELINES {
            answers(pipeline, FORM_TYPE, &body)?;
        }
        Ok(())
    });
    lp_testkit::fuzz::run("llm_json", 256, 4, llm_body(), |body| {
        answers(Pipeline::Llm, "application/json", body.to_string().as_bytes()).map(|_| ())
    });
    let strategy = (llm_body(), proptest::collection::vec(mutation(), 1..6));
    lp_testkit::fuzz::run("llm_json_mutated", 256, 4, strategy, |(body, mutations)| {
        let mut bytes = body.to_string().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        answers(Pipeline::Llm, "application/json", &bytes).map(|_| ())
    });
}

/// JSON nested 100 000 deep (100 KB) in an llm body is refused (serde_json stops at 128 levels)
/// on a 2 MiB stack, an actix worker's; so is a form field of it.
#[test]
fn deep_json_fits_a_worker_stack() {
    on_stack(2 << 20, || {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let deep = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
            for body in [deep.clone(), format!("{{\"messages\": {deep}}}")] {
                let e = AiRequest::parse(Pipeline::Llm, "application/json", body.as_bytes()).unwrap_err();
                assert_eq!(e.status, 400);
            }
            let body = form_body(
                &None,
                &[FormPart {
                    name: "loras".into(),
                    filename: None,
                    content_type: None,
                    data: deep.into_bytes(),
                    padding: String::new(),
                }],
                b"",
            );
            let e = AiRequest::parse(Pipeline::ImageToImage, FORM_TYPE, &body).unwrap_err();
            assert_eq!(e.status, 422);
        }
    });
}

/// The parser's own errors are what the body's fault is (a check on the fuzzed parser's answers).
#[test]
fn multipart_errors_name_the_fault() {
    assert_eq!(multipart::parse(FORM_TYPE, b""), Err(MultipartError::NoOpening));
    assert_eq!(multipart::parse("text/plain", b"--B0UND--"), Err(MultipartError::NotFormData));
    assert_eq!(multipart::parse(FORM_TYPE, b"--B0UND\r\n"), Err(MultipartError::Truncated));
}
