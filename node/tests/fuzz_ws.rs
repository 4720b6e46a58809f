//! Fuzzing of the path a remote transcoder's bytes take into the orchestrator: the WebSocket
//! upgrade of `/transcoder` (`actix_ws::handle`), frame decoding with the orchestrator's limits
//! (`max_frame_size`, `aggregate_continuations`, `max_continuation_size`, as in
//! `http/orchestrator.rs`), then `lp_wire::decode::<TranscoderMessage>` of every binary message (as
//! `WorkerLink::on_frame` in lp-actors does).
//!
//! The bytes arrive in chunks, each delivered after the stream has said "pending" once, so
//! frames split anywhere are parsed across reads. Properties: arbitrary bytes and mutated or
//! malformed frames (unmasked, reserved bits, bad opcodes, fragmented control frames, lying
//! lengths, bad close codes, invalid UTF-8 text) end in messages or a protocol error, never a
//! panic; well-formed frames (fragmented, masked, with control frames between the fragments)
//! give back exactly the messages sent.
//!
//! `cargo test` runs a bounded number of cases (`PROPTEST_CASES` overrides); `make fuzz` runs
//! each target for `FUZZ_SECS` seconds.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use actix_web::FromRequest;
use actix_web::test::TestRequest;
use actix_web::web::{self, Bytes};
use futures::{Stream, StreamExt};
use lp_wire::{
    Capabilities, ErrorCode, TranscodeData, TranscodeFailure, TranscodedSegmentData, TranscoderMessage, WorkOutcome,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_bytes::ByteBuf;

use lp_wire::limits::MAX_FRAME_BYTES as MAX_FRAME;

/// A request body that hands out one chunk per read, saying "pending" before each.
struct Chunks {
    chunks: VecDeque<Bytes>,
    ready: bool,
}

impl Stream for Chunks {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        Poll::Ready(self.chunks.pop_front().map(Ok))
    }
}

/// Binary messages seen and decoded as a `TranscoderMessage`, over all targets (reported).
static BINARIES: AtomicU64 = AtomicU64::new(0);
static DECODED: AtomicU64 = AtomicU64::new(0);

fn report(name: &str) {
    eprintln!(
        "fuzz {name}: so far {} binary messages reached lp_wire::decode, {} decoded",
        BINARIES.load(Ordering::Relaxed),
        DECODED.load(Ordering::Relaxed)
    );
}

/// What the orchestrator's transcoder endpoint makes of `chunks`: the aggregated messages until
/// the first error or close (where the `WorkerLink` stops), every binary one decoded as a
/// `TranscoderMessage`; and the error, if one ended it.
fn orchestrator_reads(chunks: Vec<Vec<u8>>) -> (Vec<actix_ws::AggregatedMessage>, Option<String>) {
    let (req, _) = TestRequest::get()
        .uri("/transcoder")
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "Upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .to_http_parts();
    let body = Chunks { chunks: chunks.into_iter().map(Bytes::from).collect(), ready: false };
    let mut payload: actix_web::dev::Payload = actix_web::dev::Payload::Stream { payload: Box::pin(body) };
    futures::executor::block_on(async move {
        let body = web::Payload::from_request(&req, &mut payload).await.unwrap();
        let (_response, _session, stream) = actix_ws::handle(&req, body).unwrap();
        let mut stream = stream.max_frame_size(MAX_FRAME).aggregate_continuations().max_continuation_size(MAX_FRAME);
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(msg) => {
                    if let actix_ws::AggregatedMessage::Binary(bytes) = &msg {
                        let ok = lp_wire::decode::<TranscoderMessage>(bytes).is_ok();
                        BINARIES.fetch_add(1, Ordering::Relaxed);
                        DECODED.fetch_add(u64::from(ok), Ordering::Relaxed);
                    }
                    let close = matches!(msg, actix_ws::AggregatedMessage::Close(_));
                    out.push(msg);
                    if close {
                        return (out, None);
                    }
                }
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        (out, None)
    })
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// How a frame writes its payload length.
#[derive(Debug, Clone)]
enum Len {
    /// The shortest form.
    Exact,
    /// 16-bit or 64-bit form even when shorter would do.
    Wide16,
    Wide64,
    /// A length that is not the payload's (then the stream is out of step, as an attacker's).
    Lie(u64),
}

#[derive(Debug, Clone)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    /// Clients must mask; `None` sends an unmasked frame.
    mask: Option<[u8; 4]>,
    len: Len,
    payload: Vec<u8>,
}

impl Frame {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0xf));
        let m = if self.mask.is_some() { 0x80 } else { 0 };
        let n = match self.len {
            Len::Lie(n) => n,
            _ => self.payload.len() as u64,
        };
        match self.len {
            Len::Exact | Len::Lie(_) if n < 126 => out.push(m | n as u8),
            Len::Exact | Len::Wide16 | Len::Lie(_) if n <= 0xffff => {
                out.push(m | 126);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(m | 127);
                out.extend(n.to_be_bytes());
            }
        }
        match self.mask {
            Some(key) => {
                out.extend(key);
                out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend(&self.payload),
        }
    }
}

fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out);
    }
    out
}

/// Splits `data` at the given points (delivered as separate reads).
fn chunked(data: Vec<u8>, cuts: &[Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for a in at {
        out.push(data[prev..a].to_vec());
        prev = a;
    }
    out.push(data[prev..].to_vec());
    out
}

/// What a transcoder sends: registrations and results, small enough to be cheap.
fn transcoder_message() -> impl Strategy<Value = TranscoderMessage> {
    let failure = (0..ErrorCode::ALL.len(), ".{0,16}").prop_map(|(c, message)| {
        let code = ErrorCode::ALL[c];
        WorkOutcome::Error(TranscodeFailure { code, message })
    });
    let segment = (any::<i64>(), proptest::collection::vec(any::<u8>(), 0..300), "[a-z0-9]{0,8}", any::<u32>())
        .prop_map(|(pixels, data, name, side)| TranscodedSegmentData {
            url: String::new(),
            pixels,
            data: ByteBuf::from(data),
            name,
            width: side,
            height: side / 2,
        });
    let data = (proptest::collection::vec(segment, 0..3), proptest::collection::vec(any::<u8>(), 0..8))
        .prop_map(|(segments, sig)| WorkOutcome::Transcoded(TranscodeData { segments, sig: ByteBuf::from(sig) }));
    prop_oneof![
        (".{0,24}", any::<u32>()).prop_map(|(secret, capacity)| TranscoderMessage::Register {
            secret,
            capacity,
            capabilities: Capabilities::transcoding(),
            sessions: None,
        }),
        (any::<u64>(), prop_oneof![failure, data])
            .prop_map(|(task_id, outcome)| TranscoderMessage::Result { task_id, outcome }),
    ]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => transcoder_message().prop_map(|m| lp_wire::encode(&m)),
        // An encoding with a byte changed.
        2 => (transcoder_message(), any::<Index>(), any::<u8>()).prop_map(|(m, i, b)| {
            let mut v = lp_wire::encode(&m);
            let at = i.index(v.len());
            v[at] = b;
            v
        }),
        2 => proptest::collection::vec(any::<u8>(), 0..200),
        // Close payloads: a code (valid, reserved or unknown) and a reason (maybe not UTF-8).
        1 => (prop_oneof![Just(1000u16), Just(1005), Just(1006), Just(1015), Just(2999), Just(4000), any::<u16>()],
              proptest::collection::vec(any::<u8>(), 0..130))
            .prop_map(|(code, reason)| {
                let mut v = code.to_be_bytes().to_vec();
                v.extend(reason);
                v
            }),
        1 => Just(vec![0xff, 0xfe, 0xc0, 0x80]),
    ]
}

/// Any frame: every opcode and header bit, masked or not, honest or lying about its length.
fn any_frame() -> impl Strategy<Value = Frame> {
    let opcode = prop_oneof![3 => Just(2u8), 1 => Just(0u8), 1 => Just(1u8), 1 => Just(8u8), 1 => Just(9u8), 1 => Just(10u8), 1 => 0u8..16];
    let len = prop_oneof![
        8 => Just(Len::Exact),
        1 => Just(Len::Wide16),
        1 => Just(Len::Wide64),
        1 => prop_oneof![0u64..400, Just(MAX_FRAME as u64), Just(MAX_FRAME as u64 + 1), Just(u64::MAX), Just(1 << 63), any::<u64>()]
            .prop_map(Len::Lie),
    ];
    (
        proptest::bool::weighted(0.8),
        prop_oneof![9 => Just(0u8), 1 => 0u8..8],
        opcode,
        proptest::option::weighted(0.95, any::<[u8; 4]>()),
        len,
        payload(),
    )
        .prop_map(|(fin, rsv, opcode, mask, len, payload)| Frame { fin, rsv, opcode, mask, len, payload })
}

/// A frame the orchestrator takes: complete, masked, binary (or a ping, pong or text).
fn sane_frame() -> impl Strategy<Value = Frame> {
    let opcode = prop_oneof![6 => Just(2u8), 1 => Just(9u8), 1 => Just(10u8), 1 => Just(1u8)];
    (opcode, any::<[u8; 4]>(), payload()).prop_map(|(opcode, mask, mut payload)| {
        if opcode == 9 || opcode == 10 {
            payload.truncate(125);
        }
        Frame { fin: true, rsv: 0, opcode, mask: Some(mask), len: Len::Exact, payload }
    })
}

#[test]
fn arbitrary_frames_never_panic() {
    let frames = prop_oneof![
        proptest::collection::vec(any_frame(), 1..8),
        // Good frames, then anything: the bad frame is met in a busy stream.
        (proptest::collection::vec(sane_frame(), 0..6), any_frame(), proptest::collection::vec(sane_frame(), 0..2))
            .prop_map(|(mut a, f, b)| {
                a.push(f);
                a.extend(b);
                a
            }),
    ];
    let strategy = (
        frames,
        proptest::collection::vec(any::<Index>(), 0..6),
        proptest::collection::vec((any::<Index>(), any::<u8>()), 0..3),
    );
    lp_testkit::fuzz::run("ws_frames", 256, 1, strategy, |(frames, cuts, edits)| {
        let mut bytes = encode_frames(&frames);
        for (i, b) in &edits {
            if !bytes.is_empty() {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
        }
        let _ = orchestrator_reads(chunked(bytes, &cuts));
        Ok(())
    });
    report("ws");
}

#[test]
fn arbitrary_bytes_never_panic() {
    let strategy = (proptest::collection::vec(any::<u8>(), 0..600), proptest::collection::vec(any::<Index>(), 0..6));
    lp_testkit::fuzz::run("ws_bytes", 256, 1, strategy, |(bytes, cuts)| {
        let _ = orchestrator_reads(chunked(bytes, &cuts));
        Ok(())
    });
    report("ws");
}

/// Well-formed traffic: each message fragmented into 1 to 4 frames, with pings between the
/// fragments, masked with random keys, cut into random reads. Exactly the messages come back.
#[test]
fn well_formed_frames_give_back_the_messages() {
    let message =
        (transcoder_message(), proptest::collection::vec(any::<Index>(), 0..3), any::<[u8; 4]>(), any::<bool>());
    let strategy = (proptest::collection::vec(message, 1..5), proptest::collection::vec(any::<Index>(), 0..8));
    lp_testkit::fuzz::run("ws_well_formed", 128, 1, strategy, |(messages, cuts)| {
        let mut frames = Vec::new();
        for (msg, splits, mask, ping) in &messages {
            let bytes = lp_wire::encode(msg);
            let mut at: Vec<usize> = splits.iter().map(|s| s.index(bytes.len() + 1)).collect();
            at.push(bytes.len());
            at.sort_unstable();
            at.dedup();
            let mut prev = 0;
            for (k, end) in at.iter().enumerate() {
                let last = k == at.len() - 1;
                frames.push(Frame {
                    fin: last,
                    rsv: 0,
                    opcode: if k == 0 { 2 } else { 0 },
                    mask: Some(*mask),
                    len: Len::Exact,
                    payload: bytes[prev..*end].to_vec(),
                });
                prev = *end;
                if *ping && !last {
                    frames.push(Frame {
                        fin: true,
                        rsv: 0,
                        opcode: 9,
                        mask: Some(*mask),
                        len: Len::Exact,
                        payload: b"hi".to_vec(),
                    });
                }
            }
        }
        let (got, error) = orchestrator_reads(chunked(encode_frames(&frames), &cuts));
        prop_assert!(error.is_none(), "{error:?}");
        let binaries: Vec<TranscoderMessage> = got
            .iter()
            .filter_map(|m| match m {
                actix_ws::AggregatedMessage::Binary(b) => Some(lp_wire::decode::<TranscoderMessage>(b).unwrap()),
                _ => None,
            })
            .collect();
        let sent: Vec<TranscoderMessage> = messages.iter().map(|m| m.0.clone()).collect();
        prop_assert_eq!(binaries, sent);
        let pings = got.iter().filter(|m| matches!(m, actix_ws::AggregatedMessage::Ping(_))).count();
        let expected_pings: usize = frames.iter().filter(|f| f.opcode == 9).count();
        prop_assert_eq!(pings, expected_pings);
        Ok(())
    });
}

/// The frame header alone decides nothing: a header that announces the largest frame the
/// orchestrator accepts, and then nothing, ends with the connection and no message.
#[test]
fn a_frame_announced_but_never_sent_is_no_message() {
    for n in [126u64, 65_536, MAX_FRAME as u64, MAX_FRAME as u64 + 1, u64::MAX >> 1] {
        let f = Frame { fin: true, rsv: 0, opcode: 2, mask: Some([1, 2, 3, 4]), len: Len::Lie(n), payload: vec![] };
        let (got, _) = orchestrator_reads(vec![encode_frames(&[f])]);
        assert!(got.is_empty(), "{n}: {got:?}");
    }
}
