//! Fuzzing of everything in this crate that takes bytes or values from the network or a config
//! file: the segment demux/probe/decode path ([`probe`], [`transcode`]) on arbitrary bytes, on
//! container-shaped bytes and on mutated real MPEG-TS and MP4 segments, and profile validation
//! ([`Profile::validate`], [`validate_profiles`], [`profiles_from_json`]) on arbitrary values and
//! JSON, with every profile `validate` accepts run through a real transcode.
//!
//! Properties: nothing panics (a panic in an encoder thread surfaces as an error naming it, so
//! that is checked too), bad input is an error and never a crash, and a profile that validates
//! transcodes.
//!
//! `cargo test` runs a bounded number of cases (a few hundred for the cheap targets, a few dozen
//! for the FFmpeg ones; `PROPTEST_CASES` overrides every target). `make fuzz` runs each target
//! for `FUZZ_SECS` seconds (see `fuzzing::run`); with `FUZZ_CRASH_DIR` set, the input of every
//! FFmpeg case is written there first, so an input that kills the process (a segfault in
//! FFmpeg) is left behind as `<target>.current`.

use std::sync::OnceLock;

use lp_pipelines::profile::total_area;
use lp_pipelines::{
    H264Profile, InputFormat, MAX_PROFILES, MAX_TOTAL_AREA, Profile, TranscodeError, TranscodeOptions, probe,
    profiles_from_json, transcode, validate_profiles,
};
use lp_testkit::media::make_segment;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseResult;
use serde_json::{Value, json};

mod fuzzing {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::sync::Mutex;

    use lp_pipelines::TranscodeError;
    use proptest::strategy::Strategy;
    use proptest::test_runner::TestCaseResult;

    /// [`lp_testkit::fuzz::run`], then how the target's probes and transcodes ended.
    pub fn run<S>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
    where
        S: Strategy,
        S::Value: Debug,
    {
        lp_testkit::fuzz::run(name, cases, 1, strategy, test);
        if let Some(o) = OUTCOMES.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            eprintln!("fuzz {name} outcomes [probe ok, transcode ok, invalid input, invalid profile, other]: {o:?}");
        }
    }

    /// How probes and transcodes ended, per target: [probe ok, transcode ok, invalid input,
    /// invalid profile, other (retryable) FFmpeg error].
    static OUTCOMES: Mutex<BTreeMap<String, [u64; 5]>> = Mutex::new(BTreeMap::new());

    pub fn count<A, B>(name: &str, probed: &Result<A, TranscodeError>, out: &Result<B, TranscodeError>) {
        let mut all = OUTCOMES.lock().unwrap_or_else(|e| e.into_inner());
        let o = all.entry(name.to_string()).or_default();
        o[0] += u64::from(probed.is_ok());
        match out {
            Ok(_) => o[1] += 1,
            Err(TranscodeError::InvalidInput(_)) => o[2] += 1,
            Err(TranscodeError::InvalidProfile(_)) => o[3] += 1,
            Err(e) => {
                o[4] += 1;
                let mut seen = RETRYABLE.lock().unwrap_or_else(|e| e.into_inner());
                let m = e.to_string();
                if seen.len() < 8 && !seen.contains(&m) {
                    eprintln!("fuzz {name}: a retryable error for bad input: {m}");
                    seen.push(m);
                }
            }
        }
    }

    /// The distinct retryable (not `InvalidInput`) errors seen so far, a few.
    static RETRYABLE: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// With `FUZZ_CRASH_DIR` set, keeps `data` as `<dir>/<name>.current` before a risky call.
    pub fn keep_input(name: &str, data: &[u8]) {
        if let Ok(dir) = std::env::var("FUZZ_CRASH_DIR") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.current")), data);
        }
    }
}

/// Real segments to mutate: (bytes, container).
struct Seeds {
    /// 1 s of 160x90 at 15 fps with AAC audio, MPEG-TS.
    ts: Vec<u8>,
    /// The same as MP4.
    mp4: Vec<u8>,
    /// 1 s of 96x54 at 10 fps, no audio, MPEG-TS.
    ts_silent: Vec<u8>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let read = |p: std::path::PathBuf| std::fs::read(p).unwrap();
        Seeds {
            ts: read(make_segment(dir.path(), "a.ts", 160, 90, 15, 1, true)),
            mp4: read(make_segment(dir.path(), "a.mp4", 160, 90, 15, 1, true)),
            ts_silent: read(make_segment(dir.path(), "b.ts", 96, 54, 10, 1, false)),
        }
    })
}

fn seed(i: usize) -> (&'static [u8], InputFormat) {
    let s = seeds();
    match i % 3 {
        0 => (&s.ts, InputFormat::MpegTs),
        1 => (&s.mp4, InputFormat::Mp4),
        _ => (&s.ts_silent, InputFormat::MpegTs),
    }
}

fn fast() -> TranscodeOptions {
    TranscodeOptions { x264_preset: "ultrafast".into(), threads: 1, ..Default::default() }
}

fn tiny_profile() -> Profile {
    Profile {
        name: "tiny".into(),
        width: 64,
        height: 36,
        bitrate: 100_000,
        fps: 0,
        fps_den: 1,
        gop_ms: 0,
        profile: H264Profile::EncoderDefault,
    }
}

fn any_format() -> impl Strategy<Value = InputFormat> {
    prop_oneof![Just(InputFormat::MpegTs), Just(InputFormat::Mp4)]
}

/// What an error from FFmpeg work may not be: the sign of a panic behind it.
fn no_panic_behind(r: &Result<impl Sized, TranscodeError>) -> TestCaseResult {
    if let Err(e) = r {
        prop_assert!(!e.to_string().contains("panicked"), "a thread panicked: {e}");
    }
    Ok(())
}

/// Probe and transcode (tiny profile) `data`: neither may panic, and a transcode that succeeds
/// gives one non-empty MPEG-TS rendition inside the profile's box.
fn probe_and_transcode(name: &str, data: &[u8], format: InputFormat) -> TestCaseResult {
    fuzzing::keep_input(name, data);
    let probed = probe(data, format);
    no_panic_behind(&probed)?;
    let out = transcode(data, format, &[tiny_profile()], &fast());
    no_panic_behind(&out)?;
    fuzzing::count(name, &probed, &out);
    if std::env::var_os("FUZZ_STRICT_ERRORS").is_some()
        && let Err(e @ TranscodeError::Ffmpeg(_)) = &out
    {
        // Bad input that fails as retryable: with this set, a failure, shrunk to a minimal input.
        return Err(TestCaseError::fail(format!("bad input gave a retryable error: {e}")));
    }
    if let Ok(out) = out {
        prop_assert_eq!(out.renditions.len(), 1);
        let r = &out.renditions[0];
        prop_assert!(r.width <= 64 && r.height <= 36 && r.width >= 2 && r.height >= 2, "{}x{}", r.width, r.height);
        prop_assert!(!r.data.is_empty() && r.data.len() % 188 == 0, "{} bytes", r.data.len());
        prop_assert!(out.decoded_frames > 0);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Arbitrary and container-shaped bytes
// ---------------------------------------------------------------------------------------------

/// MPEG-TS-looking bytes: 188-byte packets with the sync byte, PIDs of PAT/PMT/SDT/elementary
/// streams as FFmpeg writes them, and random headers and payloads.
fn ts_shaped() -> impl Strategy<Value = Vec<u8>> {
    let pid = prop_oneof![Just(0u16), Just(0x11), Just(0x1000), Just(0x100), Just(0x101), 0u16..0x2000];
    let packet = (pid, any::<u8>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 184)).prop_map(
        |(pid, flags, start, payload)| {
            let mut p = Vec::with_capacity(188);
            p.push(0x47);
            p.push(((pid >> 8) as u8 & 0x1f) | if start { 0x40 } else { 0 });
            p.push(pid as u8);
            p.push(flags);
            p.extend(payload);
            p
        },
    );
    proptest::collection::vec(packet, 0..24).prop_map(|ps| ps.concat())
}

/// MP4-looking bytes: a list of boxes with real box types, sizes either right or random.
fn mp4_shaped() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just(*b"ftyp"),
        Just(*b"moov"),
        Just(*b"mvhd"),
        Just(*b"trak"),
        Just(*b"tkhd"),
        Just(*b"mdia"),
        Just(*b"mdhd"),
        Just(*b"hdlr"),
        Just(*b"minf"),
        Just(*b"stbl"),
        Just(*b"stsd"),
        Just(*b"avc1"),
        Just(*b"avcC"),
        Just(*b"stts"),
        Just(*b"stsc"),
        Just(*b"stsz"),
        Just(*b"stco"),
        Just(*b"mdat"),
        any::<[u8; 4]>(),
    ];
    let b = (kind, proptest::option::of(any::<u32>()), proptest::collection::vec(any::<u8>(), 0..96)).prop_map(
        |(kind, size, payload)| {
            let size = size.unwrap_or(payload.len() as u32 + 8);
            let mut out = size.to_be_bytes().to_vec();
            out.extend(kind);
            out.extend(payload);
            out
        },
    );
    proptest::collection::vec(b, 0..16).prop_map(|bs| bs.concat())
}

#[test]
fn probe_and_transcode_never_panic_on_arbitrary_bytes() {
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        ts_shaped(),
        mp4_shaped(),
        // A valid first packet or header, then garbage.
        (0usize..3, proptest::collection::vec(any::<u8>(), 0..1024), 1usize..2048).prop_map(|(s, tail, keep)| {
            let (data, _) = seed(s);
            let mut v = data[..keep.min(data.len())].to_vec();
            v.extend(tail);
            v
        }),
    ];
    fuzzing::run("arbitrary_bytes", 256, (bytes, any_format()), |(data, format)| {
        probe_and_transcode("arbitrary_bytes", &data, format)
    });
}

// ---------------------------------------------------------------------------------------------
// Mutated real segments
// ---------------------------------------------------------------------------------------------

/// Where a mutation lands: anywhere, or in the first 4 KiB (container headers, PAT/PMT, SPS/PPS).
#[derive(Debug, Clone)]
enum Pos {
    Anywhere(Index),
    Head(u16),
}

impl Pos {
    fn at(&self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        match self {
            Pos::Anywhere(i) => i.index(len),
            Pos::Head(h) => usize::from(*h) % len.min(4096),
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Pos, u8),
    SetByte(Pos, u8),
    /// Overwrite 1, 2 or 4 bytes with a boundary value (0, -1, max, min, 0x47...).
    Interesting(Pos, u8, u32),
    Truncate(Index),
    Delete(Pos, u16),
    Insert(Pos, Vec<u8>),
    /// Copy a run of the input elsewhere in it (duplicated packets, boxes, NAL units).
    Duplicate(Pos, u16, Pos),
    /// Paste a run of another seed (TS into MP4 and so on).
    Splice(usize, Pos, u16, Pos),
}

fn pos() -> impl Strategy<Value = Pos> {
    prop_oneof![any::<Index>().prop_map(Pos::Anywhere), any::<u16>().prop_map(Pos::Head)]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0xffff),
        Just(0x7f),
        Just(0x80),
        Just(0xff),
        Just(0x47),
        Just(1),
        any::<u32>()
    ];
    prop_oneof![
        4 => (pos(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        3 => (pos(), any::<u8>()).prop_map(|(p, v)| Mutation::SetByte(p, v)),
        3 => (pos(), prop_oneof![Just(1u8), Just(2), Just(4)], interesting).prop_map(|(p, w, v)| Mutation::Interesting(p, w, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (pos(), 1u16..2048).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (pos(), proptest::collection::vec(any::<u8>(), 1..64)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (pos(), 1u16..2048, pos()).prop_map(|(a, n, b)| Mutation::Duplicate(a, n, b)),
        1 => (0usize..3, pos(), 1u16..2048, pos()).prop_map(|(s, a, n, b)| Mutation::Splice(s, a, n, b)),
    ]
}

/// Applies `m`. With `packet` (188 for MPEG-TS), whatever changes the length moves whole
/// packets, so the input keeps passing the container's framing checks and reaches the demuxer
/// and decoder; without it, bytes.
fn apply(data: &mut Vec<u8>, m: &Mutation, packet: Option<usize>) {
    let len = data.len();
    let unit = packet.unwrap_or(1);
    let align = |at: usize| at / unit * unit;
    let run = |n: u16| (usize::from(n) / unit).max(1) * unit;
    match m {
        Mutation::FlipBit(p, bit) if len > 0 => data[p.at(len)] ^= 1 << bit,
        Mutation::SetByte(p, v) if len > 0 => data[p.at(len)] = *v,
        Mutation::Interesting(p, width, v) if len > 0 => {
            let at = p.at(len);
            let bytes = v.to_be_bytes();
            let w = usize::from(*width);
            for (i, b) in bytes[4 - w..].iter().enumerate() {
                if let Some(slot) = data.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        Mutation::Truncate(i) => data.truncate(align(i.index(len + 1))),
        Mutation::Delete(p, n) if len > 0 => {
            let at = align(p.at(len));
            let end = (at + run(*n)).min(len);
            data.drain(at..end);
        }
        Mutation::Insert(p, bytes) => {
            let at = align(p.at(len + 1).min(len));
            let mut bytes = bytes.clone();
            if let Some(unit) = packet {
                bytes.resize(unit, 0xff);
                bytes[0] = 0x47;
            }
            data.splice(at..at, bytes);
        }
        Mutation::Duplicate(from, n, to) if len > 0 => {
            let a = align(from.at(len));
            let copied = data[a..(a + run(*n)).min(len)].to_vec();
            let b = align(to.at(len + 1).min(len));
            data.splice(b..b, copied);
        }
        Mutation::Splice(s, from, n, to) => {
            let (other, _) = seed(*s);
            let a = align(from.at(other.len()));
            let copied = &other[a..(a + run(*n)).min(other.len())];
            let b = align(to.at(len + 1).min(len));
            data.splice(b..b, copied.iter().copied());
        }
        _ => {}
    }
}

#[test]
fn probe_and_transcode_never_panic_on_mutated_segments() {
    let strategy = (
        0usize..3,
        proptest::collection::vec(mutation(), 1..6),
        proptest::bool::weighted(0.8),
        proptest::option::weighted(0.1, any_format()),
    );
    fuzzing::run("mutated_segments", 32, strategy, |(s, mutations, aligned, other_format)| {
        let (data, format) = seed(s);
        let mut data = data.to_vec();
        let packet = (aligned && format == InputFormat::MpegTs).then_some(188);
        for m in &mutations {
            apply(&mut data, m, packet);
        }
        probe_and_transcode("mutated_segments", &data, other_format.unwrap_or(format))
    });
}

/// The unmutated seeds transcode: the mutation target checks something real.
#[test]
fn the_fuzzing_seeds_transcode() {
    for s in 0..3 {
        let (data, format) = seed(s);
        probe(data, format).unwrap();
        let out = transcode(data, format, &[tiny_profile()], &fast()).unwrap();
        assert!(out.decoded_frames >= 10, "{}", out.decoded_frames);
    }
}

/// Encoder options from elsewhere in the config: any x264 preset string and thread count is an
/// answer, never a crash.
#[test]
fn any_preset_and_thread_count_is_an_answer() {
    let preset = prop_oneof![
        Just("ultrafast".to_string()),
        Just("placebo".to_string()),
        Just("".to_string()),
        Just("ultrafast\0".to_string()),
        Just("ultrafast,slow".to_string()),
        "[a-z]{0,12}",
        any::<String>(),
    ];
    let threads = prop_oneof![Just(0usize), 1usize..64, Just(usize::MAX), any::<usize>()];
    fuzzing::run("options", 16, (preset, threads), |(x264_preset, threads)| {
        let (data, format) = seed(2);
        fuzzing::keep_input("options", format!("{x264_preset:?} {threads}").as_bytes());
        let opts = TranscodeOptions { x264_preset, threads, ..Default::default() };
        let out = transcode(data, format, &[tiny_profile()], &opts);
        no_panic_behind(&out)?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

fn any_h264_profile() -> impl Strategy<Value = H264Profile> {
    prop_oneof![
        Just(H264Profile::EncoderDefault),
        Just(H264Profile::Baseline),
        Just(H264Profile::Main),
        Just(H264Profile::High),
        Just(H264Profile::ConstrainedHigh),
    ]
}

/// Any profile at all, with the boundaries of every range drawn often.
fn any_profile() -> impl Strategy<Value = Profile> {
    let name = prop_oneof![
        "[A-Za-z0-9_.-]{0,70}".boxed(),
        any::<String>().boxed(),
        Just("source".to_string()).boxed(),
        Just("Source".to_string()).boxed(),
        Just(".hidden".to_string()).boxed(),
        Just("a".repeat(64)).boxed(),
        Just("a".repeat(65)).boxed(),
    ];
    let side = prop_oneof![any::<u32>(), 0u32..10, 8185u32..8200];
    let bitrate = prop_oneof![any::<u32>(), 990u32..1010, 999_999_990u32..1_000_000_010, Just(1 << 31), Just(u32::MAX)];
    let term = prop_oneof![Just(0u32), 0u32..300, 999_990u32..1_000_010, any::<u32>()];
    let gop = prop_oneof![0u32..5, 3_599_990u32..3_600_010, any::<u32>()];
    (name, side.clone(), side, bitrate, term.clone(), term, gop, any_h264_profile()).prop_map(
        |(name, width, height, bitrate, fps, fps_den, gop_ms, profile)| Profile {
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

#[test]
fn validate_never_panics_and_agrees_with_validate_profiles() {
    let list = proptest::collection::vec(any_profile(), 0..=MAX_PROFILES + 2);
    fuzzing::run("validate", 256, list, |profiles| {
        let each: Vec<Result<(), String>> = profiles.iter().map(Profile::validate).collect();
        let all = validate_profiles(&profiles);
        let names_unique = profiles.iter().enumerate().all(|(i, p)| profiles[..i].iter().all(|q| q.name != p.name));
        let expect_ok = !profiles.is_empty()
            && profiles.len() <= MAX_PROFILES
            && each.iter().all(Result::is_ok)
            && names_unique
            && total_area(&profiles) <= MAX_TOTAL_AREA;
        prop_assert_eq!(all.is_ok(), expect_ok, "{:?} / {:?}", all, each);
        for (p, r) in profiles.iter().zip(&each) {
            if r.is_ok() {
                // What validate promises the encoder.
                prop_assert!((2..=8192).contains(&p.width) && (2..=8192).contains(&p.height));
                prop_assert!((1000..=1_000_000_000).contains(&p.bitrate));
                prop_assert!(!p.name.is_empty() && !p.name.eq_ignore_ascii_case("source"));
                let (w, h) = p.output_size(1920, 1080);
                prop_assert!(w >= 2 && h >= 2 && w <= p.width.max(2) && h <= p.height.max(2));
            }
        }
        Ok(())
    });
}

/// JSON values shaped like go-livepeer profile entries: the known keys with values of every JSON
/// type, boundary numbers and numeric strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u32..10_000_000).prop_map(|n| Value::from(n as f64 + 0.5)),
        prop_oneof![Just(0u32), Just(1000), Just(999), Just(8192), Just(8193), Just(240), Just(241), 0u32..4000]
            .prop_map(Value::from),
        "[0-9]{0,12}(\\.[0-9]{0,4})?[kKmM]?".prop_map(Value::from),
        "(h264)?(baseline|main|high|constrainedhigh|constrained_high|intra|none|H264)".prop_map(Value::from),
        Just(Value::from("1e400")),
        Just(Value::from("NaN")),
        Just(Value::from("inf")),
        Just(Value::from("-1")),
        Just(Value::from("source")),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn profile_entry() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("name"),
        Just("width"),
        Just("height"),
        Just("bitrate"),
        Just("fps"),
        Just("fpsDen"),
        Just("fps_den"),
        Just("gop"),
        Just("gop_ms"),
        Just("gopMs"),
        Just("profile"),
        Just("encoder"),
        Just("quality"),
    ];
    // Mostly a plausible base entry with a few keys replaced, sometimes anything at all.
    let base = (
        "[A-Za-z0-9_-]{1,10}",
        prop_oneof![Just(64u32), 2u32..400, 0u32..10_000],
        prop_oneof![Just(36u32), 2u32..400, 0u32..10_000],
        prop_oneof![Just(100_000u32), 0u32..2_000_000],
    )
        .prop_map(|(name, w, h, b)| json!({"name": name, "width": w, "height": h, "bitrate": b}));
    let entry = (base, proptest::collection::vec((key, json_value()), 0..5)).prop_map(|(mut obj, edits)| {
        for (k, v) in edits {
            obj[k] = v;
        }
        obj
    });
    prop_oneof![8 => entry, 1 => json_value()]
}

fn profile_json() -> impl Strategy<Value = String> {
    let list = || proptest::collection::vec(profile_entry(), 0..5);
    prop_oneof![
        4 => list().prop_map(|l| Value::Array(l).to_string()),
        1 => list().prop_map(|l| json!({"profiles": l}).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => any::<String>(),
        // Valid JSON cut short or with a byte changed.
        1 => (proptest::collection::vec(profile_entry(), 1..3), any::<Index>(), any::<char>()).prop_map(|(l, i, c)| {
            let mut s: Vec<char> = Value::Array(l).to_string().chars().collect();
            let at = i.index(s.len());
            if c.is_ascii_digit() { s.truncate(at) } else { s[at] = c }
            s.into_iter().collect()
        }),
    ]
}

#[test]
fn profiles_from_json_never_panics_and_returns_only_valid_profiles() {
    fuzzing::run("profiles_from_json", 512, profile_json(), |text| {
        if let Ok(list) = profiles_from_json(&text) {
            prop_assert!(!list.is_empty());
            for (i, p) in list.iter().enumerate() {
                prop_assert!(p.validate().is_ok(), "{p:?} from {text}");
                prop_assert!(list[..i].iter().all(|q| q.name != p.name), "duplicate {:?}", p.name);
            }
            if list.len() <= MAX_PROFILES && total_area(&list) <= MAX_TOTAL_AREA {
                prop_assert!(validate_profiles(&list).is_ok());
            }
            // The serde form round-trips.
            let again: Vec<Profile> = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
            prop_assert_eq!(&again, &list);
            prop_assert_eq!(profiles_from_json(&serde_json::to_string(&list).unwrap()).ok(), Some(list));
        }
        Ok(())
    });
}

/// Profiles near and at the edges of what `validate` accepts (tiny and huge boxes, 1 kbit/s and
/// 1 Gbit/s, 1 to 240 fps with odd denominators, 1 ms GOPs), kept only when `validate` accepts.
fn accepted_profile() -> impl Strategy<Value = Profile> {
    let side = prop_oneof![4 => 2u32..200, 1 => Just(2u32), 1 => Just(3u32), 1 => 2u32..=8192, 1 => Just(8192u32)];
    let bitrate = prop_oneof![Just(1000u32), 1000u32..2_000_000, Just(1_000_000_000), 1000u32..=1_000_000_000];
    let fps = prop_oneof![
        2 => Just((0u32, 1u32)),
        2 => (1u32..=240).prop_map(|f| (f, 1)),
        1 => Just((240, 1)),
        1 => Just((1, 1)),
        1 => Just((30_000, 1001)),
        1 => Just((1_000_000, 999_999)),
        1 => Just((1_000_000, 4167)),
        1 => (1u32..=240, 1u32..=1_000_000).prop_map(|(r, d)| (r.saturating_mul(d).min(1_000_000), d)),
    ];
    let gop = prop_oneof![2 => Just(0u32), 1 => 1u32..5, 1 => 1u32..5000, 1 => Just(3_600_000)];
    ("[a-z][a-z0-9_-]{0,8}", side.clone(), side, bitrate, fps, gop, any_h264_profile())
        .prop_map(|(name, width, height, bitrate, (fps, fps_den), gop_ms, profile)| Profile {
            name,
            width,
            height,
            bitrate,
            fps,
            fps_den,
            gop_ms,
            profile,
        })
        .prop_filter("validate accepts it", |p| p.validate().is_ok())
}

#[test]
fn every_profile_validate_accepts_transcodes() {
    let list = proptest::collection::vec(accepted_profile(), 1..=3).prop_map(|mut l| {
        for (i, p) in l.iter_mut().enumerate() {
            p.name = format!("{}{i}", p.name);
        }
        l
    });
    fuzzing::run("accepted_profiles", 12, list, |profiles| {
        prop_assume!(validate_profiles(&profiles).is_ok());
        let (data, format) = seed(0);
        fuzzing::keep_input("accepted_profiles", format!("{profiles:?}").as_bytes());
        let out = transcode(data, format, &profiles, &fast());
        let out = match out {
            Ok(out) => out,
            Err(e) => return Err(TestCaseError::fail(format!("{profiles:?} was accepted but failed: {e}"))),
        };
        prop_assert_eq!(out.renditions.len(), profiles.len());
        for (r, p) in out.renditions.iter().zip(&profiles) {
            prop_assert!(
                r.width <= p.width.max(2) && r.height <= p.height.max(2),
                "{}x{} for {:?}",
                r.width,
                r.height,
                p
            );
            prop_assert!(r.frames > 0 && !r.data.is_empty(), "{p:?}");
        }
        Ok(())
    });
}

/// Found by fuzzing (`mutated_segments` with `FUZZ_STRICT_ERRORS=1`, shrunk): the MP4 seed with
/// one byte set to 0xff (byte 37608 of 38031: in the second track's `stsz`, the first sample's
/// size, which becomes 0xff0000 bytes larger) probes fine, then fails in the rendition's MPEG-TS muxer ("muxing video failed: Invalid data
/// found when processing input") as [`TranscodeError::Ffmpeg`], which is retryable: the gateway
/// and the orchestrator would try the same bad bytes again elsewhere. About 1 mutated segment in
/// 2000 does this. Bad input should fail as `InvalidInput`.
#[test]
fn a_corrupt_mp4_sample_table_is_invalid_input_not_retryable() {
    let (data, format) = seed(1);
    let mut data = data.to_vec();
    let at = ((data.len() as u128 * 18_241_570_064_528_116_989u128) >> 64) as usize;
    data[at] = 0xff;
    let out = transcode(&data, format, &[tiny_profile()], &fast());
    match out {
        Ok(_) | Err(TranscodeError::InvalidInput(_)) => {}
        Err(e) => panic!("byte {at} of {} set to 0xff: {e} (retryable: {})", data.len(), e.is_retryable()),
    }
}
