//! AI benchmark: the same super-resolution model through our `upscale` and through ONNX
//! Runtime's Python API (the `onnxruntime` wheel `make setup` installs, whose library ours loads
//! too), on the same 512 × 512 RGB image with the same intra-op threads; then tokens/s of the llm
//! pipeline's greedy decoding.
//!
//! The model is made here, offline, with the `onnx` package: an ESPCN-like x2 net (Conv 3→64
//! 5×5, ReLU, Conv 64→32 3×3, ReLU, Conv 32→12 3×3, DepthToSpace 2; fixed weights from a seeded
//! numpy RNG, 105 KiB; dynamic H and W), about 7 GMAC on a 512 × 512 image.
//!
//! Rows:
//! * ours: [`ImageModel::upscale`] with a tile covering the image (one model run), end to end as
//!   a request pays it: u8 RGB to planar f32, the run, and back to u8;
//! * python: the same work in numpy (u8 HWC → f32 NCHW / 255, `InferenceSession.run`, clip × 255
//!   → u8) in one long-lived `python` process that loaded the model and warmed up once; each
//!   timed run is one request to it, so the interpreter's start is not counted;
//! * bare `session.run` of both: ours on a session from [`Runtime::session`] with its input
//!   tensor made beforehand, Python's timed inside its run;
//! * ours tiled: `upscale` in tiles of 256 (9 tiles with their overlap), which must give the
//!   same pixels;
//! * llm: `LlmModel::generate`, greedy, on the tiny counting model of `make setup`
//!   (build/models/tiny-llm): a per-token overhead figure, the model itself does next to nothing.
//!
//! Run with `cargo bench -p lp-pipelines --bench ai`. Environment:
//! * `AI_RUNS` (default 7): timed runs of each, after one warm-up, interleaved (ours, ours tiled,
//!   python, ours bare, ours, ...) so machine noise hits all alike, each after a 50 ms pause (see
//!   [`settle`]);
//! * `AI_THREADS` (default: the number of cores): ONNX Runtime's intra-op threads on both sides;
//! * `AI_PYTHON` (default `build/py/bin/python`): a Python with onnxruntime, onnx and numpy.
//!
//! Prints human lines and one JSON line (prefixed `{"bench":"ai"`), and asserts that our output
//! is Python's pixel for pixel: equal to its floats rounded as we round (exact halves away from
//! zero), and within 1 of what numpy's `round` (halves to even) gives, which differs on the few
//! values that are exact halves; that the tiled output equals the untiled one; and that the llm
//! answer is the known count.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use image::{Rgb, RgbImage};
use lp_pipelines::ai::image::{ImageModel, ImageTask};
use lp_pipelines::ai::llm::{LlmModel, Sampling};
use lp_pipelines::ai::{Device, Runtime, RuntimeOptions};
use ort::value::Tensor;

const SIDE: u32 = 512;
const TILE: u32 = 256;
/// Generations per timed llm run (one is a millisecond or so).
const LLM_GENERATIONS: usize = 20;

/// Writes the model to argv[1].
const MAKE_MODEL: &str = r#"
import sys
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

rng = np.random.default_rng(20240601)

def conv(name, cin, cout, k, std, bias=0.0):
    w = (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32)
    b = (bias + rng.standard_normal(cout) * 0.01).astype(np.float32)
    return [nh.from_array(w, name + "_w"), nh.from_array(b, name + "_b")]

# He-scaled weights; the last layer small around 0.5, so that the output spans 0..1 (2 % clipped).
init = (conv("c1", 3, 64, 5, (2 / 75) ** 0.5) + conv("c2", 64, 32, 3, (2 / 576) ** 0.5)
        + conv("c3", 32, 12, 3, 0.3 * (1 / 288) ** 0.5, 0.5))
nodes = [
    h.make_node("Conv", ["image", "c1_w", "c1_b"], ["a1"], pads=[2, 2, 2, 2]),
    h.make_node("Relu", ["a1"], ["r1"]),
    h.make_node("Conv", ["r1", "c2_w", "c2_b"], ["a2"], pads=[1, 1, 1, 1]),
    h.make_node("Relu", ["a2"], ["r2"]),
    h.make_node("Conv", ["r2", "c3_w", "c3_b"], ["a3"], pads=[1, 1, 1, 1]),
    h.make_node("DepthToSpace", ["a3"], ["upscaled"], blocksize=2),
]
g = h.make_graph(nodes, "bench_espcn_x2",
                 [h.make_tensor_value_info("image", T.FLOAT, [1, 3, "H", "W"])],
                 [h.make_tensor_value_info("upscaled", T.FLOAT, [1, 3, "H2", "W2"])],
                 initializer=init)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
"#;

/// argv: model, raw u8 RGB image, width, height, threads, output path. Warms up once, prints
/// `ready`, then answers each `run` line with one timed run as JSON and `save` by writing the
/// last output (raw u8 RGB) to the output path, and the same with halves rounded away from zero
/// to the output path + `.away`.
const SERVE: &str = r#"
import json, sys, time
import numpy as np
import onnxruntime as ort

model, image, w, h, threads, out = sys.argv[1:7]
so = ort.SessionOptions()
so.intra_op_num_threads = int(threads)
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
rgb = np.fromfile(image, np.uint8).reshape(int(h), int(w), 3)

def once():
    t0 = time.perf_counter()
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)[np.newaxis] / np.float32(255)
    t1 = time.perf_counter()
    y = sess.run(None, {name: x})[0]
    t2 = time.perf_counter()
    o = np.ascontiguousarray((np.clip(y[0], 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0))
    t3 = time.perf_counter()
    return y, o, (t3 - t0) * 1000, (t2 - t1) * 1000

last_y, last, _, _ = once()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "run":
        last_y, last, ms, run_ms = once()
        print(json.dumps({"ms": ms, "run_ms": run_ms}), flush=True)
    elif line.strip() == "save":
        last.tofile(out)
        # The same floats with halves rounded away from zero, as Rust's round does (exact in f64).
        away = np.floor(np.clip(last_y[0], 0, 1) * np.float32(255) + np.float64(0.5)).astype(np.uint8)
        np.ascontiguousarray(away.transpose(1, 2, 0)).tofile(out + ".away")
        print("saved", flush=True)
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("AI_PYTHON").map_or_else(|| workspace().join("build/py/bin/python"), PathBuf::from)
}

fn make_model(dir: &Path) -> PathBuf {
    let path = dir.join("bench_espcn_x2.onnx");
    let out = Command::new(python()).arg("-c").arg(MAKE_MODEL).arg(&path).output().expect("python (make setup)");
    assert!(out.status.success(), "making the model failed: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// A deterministic image whose every pixel differs from its neighbours (ai_image.rs's pattern).
fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7 + y * 3) as u8, ((x * 13) ^ (y * 5)) as u8, (x + y * 11) as u8]))
}

/// The long-lived Python side.
struct Python {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    out: PathBuf,
}

impl Python {
    fn start(model: &Path, image: &RgbImage, threads: usize, dir: &Path) -> Python {
        let input = dir.join("input.rgb");
        std::fs::write(&input, image.as_raw()).unwrap();
        let out = dir.join("python.rgb");
        let (w, h) = image.dimensions();
        let mut child = Command::new(python())
            .arg("-c")
            .arg(SERVE)
            .arg(model)
            .arg(&input)
            .args([w.to_string(), h.to_string(), threads.to_string()])
            .arg(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python (make setup)");
        let (stdin, stdout) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        let mut py = Python { child, stdin, stdout, out };
        assert_eq!(py.line(), "ready");
        py
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the python side ended (its error is above)");
        line.trim().to_string()
    }

    fn ask(&mut self, what: &str) -> String {
        writeln!(self.stdin, "{what}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }

    /// One timed run: (end to end, bare `run`) milliseconds.
    fn once(&mut self) -> (f64, f64) {
        settle();
        let v: serde_json::Value = serde_json::from_str(&self.ask("run")).unwrap();
        (v["ms"].as_f64().unwrap(), v["run_ms"].as_f64().unwrap())
    }

    /// The last run's output (numpy's rounding, and halves rounded away from zero), and the end
    /// of the process.
    fn finish(mut self) -> (Vec<u8>, Vec<u8>) {
        assert_eq!(self.ask("save"), "saved");
        drop(self.stdin);
        assert!(self.child.wait().unwrap().success());
        let away = self.out.with_extension("rgb.away");
        (std::fs::read(&self.out).unwrap(), std::fs::read(away).unwrap())
    }
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(v: &[f64]) -> Stats {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    Stats { median, min: s[0], max: s[n - 1] }
}

fn json_stats(s: &Stats, all: &[f64]) -> serde_json::Value {
    serde_json::json!({"median": s.median, "min": s.min, "max": s.max, "all": all})
}

/// (values that differ, the largest difference) between two u8 buffers of the same length.
fn compare(a: &[u8], b: &[u8]) -> (usize, u8) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).filter(|&d| d > 0).fold((0, 0), |(n, m), d| (n + 1, m.max(d)))
}

/// A pause before each timed run, so that the threads of the run before it (ONNX Runtime's
/// workers spin a while after their work, in either process) are idle when it starts: without it
/// whichever side runs second pays for the other's spinning.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(50));
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; a libtest-style filter argument is ignored.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    let runs = env("AI_RUNS").unwrap_or(7);
    let threads = env("AI_THREADS").unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let dir = tempfile::tempdir().unwrap();
    let model_path = make_model(dir.path());
    let image = pattern(SIDE, SIDE);

    let rt = Runtime::start(&RuntimeOptions { library: None, device: Device::Cpu, threads })
        .expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)");
    let mut model = ImageModel::load(&rt, "bench_espcn_x2", &model_path, ImageTask::Upscale).unwrap();
    let mut session = rt.session(&model_path).unwrap();
    let planar: Vec<f32> =
        (0..3).flat_map(|c| image.pixels().map(move |p| p[c] as f32 / 255.0).collect::<Vec<_>>()).collect();
    let tensor = Tensor::from_array(([1usize, 3, SIDE as usize, SIDE as usize], planar)).unwrap();
    let mut py = Python::start(&model_path, &image, threads, dir.path());

    let mut ours_once = || {
        settle();
        let t = Instant::now();
        let out = model.upscale(&image, SIDE).expect("upscale");
        let ms = ms_since(t);
        settle();
        let t = Instant::now();
        let tiled = model.upscale(&image, TILE).expect("tiled upscale");
        (ms, ms_since(t), out, tiled)
    };
    let mut bare_once = || {
        settle();
        let t = Instant::now();
        let outputs = session.run(ort::inputs!["image" => &tensor]).expect("session.run");
        let ms = ms_since(t);
        let (shape, _) = outputs["upscaled"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(**shape, [1, 3, 2 * SIDE as i64, 2 * SIDE as i64]);
        ms
    };

    // Warm-up (Python warmed up on its own), then interleaved timed runs.
    let (_, _, mut last, mut last_tiled) = ours_once();
    bare_once();
    let (mut ours, mut ours_tiled, mut ours_bare) = (Vec::new(), Vec::new(), Vec::new());
    let (mut theirs, mut theirs_bare) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (ms, tiled_ms, out, tiled) = ours_once();
        ours.push(ms);
        ours_tiled.push(tiled_ms);
        (last, last_tiled) = (out, tiled);
        let (ms, run_ms) = py.once();
        theirs.push(ms);
        theirs_bare.push(run_ms);
        ours_bare.push(bare_once());
    }

    // A fast wrong answer is worthless: ours must be Python's, and tiles must not show.
    let (python_out, python_away) = py.finish();
    assert_eq!(last.dimensions(), (2 * SIDE, 2 * SIDE));
    let (differing, max_diff) = compare(last.as_raw(), &python_out);
    assert!(max_diff <= 1, "our output differs from Python's by up to {max_diff} in {differing} values");
    let (away_differing, _) = compare(last.as_raw(), &python_away);
    assert_eq!(away_differing, 0, "our output must be Python's floats rounded alike, pixel for pixel");
    let (tiled_differing, _) = compare(last.as_raw(), last_tiled.as_raw());
    assert_eq!(tiled_differing, 0, "tiles of {TILE} with their overlap must equal one pass");

    // llm: greedy counting, nine words and the end of the answer per generation.
    let llm_dir =
        PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)")).join("tiny-llm");
    let mut llm = LlmModel::load(&rt, "tiny-llm", &llm_dir).expect("build/models/tiny-llm (make setup)");
    let chat = [("system", "count to nine"), ("user", "start at zero")].map(|(r, c)| (r.to_string(), c.to_string()));
    let greedy = Sampling { temperature: 0.0, top_p: 1.0, top_k: -1, max_tokens: 64, seed: None };
    let mut llm_once = || {
        let (mut tokens, t) = (0, Instant::now());
        for _ in 0..LLM_GENERATIONS {
            let g = llm.generate(&chat, &greedy, &mut |_| true).expect("generate");
            assert_eq!(g.text, "one two three four five six seven eight nine");
            tokens += g.completion_tokens;
        }
        (ms_since(t), tokens)
    };
    llm_once();
    let mut llm_ms = Vec::new();
    let mut llm_tokens = 0;
    for _ in 0..runs {
        let (ms, tokens) = llm_once();
        llm_ms.push(ms);
        llm_tokens = tokens;
    }

    let (o, p, ob, pb, ot, l) =
        (stats(&ours), stats(&theirs), stats(&ours_bare), stats(&theirs_bare), stats(&ours_tiled), stats(&llm_ms));
    let ratio = o.median / p.median;
    let bare_ratio = ob.median / pb.median;
    let tokens_per_s = llm_tokens as f64 / (l.median / 1000.0);
    println!(
        "ai upscale x2 {SIDE}x{SIDE} (ESPCN-like, intra-op threads {threads}): ours median {:.1} ms (min {:.1}, max {:.1}), \
         python onnxruntime median {:.1} ms (min {:.1}, max {:.1}), ratio {ratio:.3} ({runs} runs each)",
        o.median, o.min, o.max, p.median, p.min, p.max
    );
    println!(
        "  bare session.run: ours median {:.1} ms, python {:.1} ms, ratio {bare_ratio:.3}; ours tiled at {TILE} \
         median {:.1} ms; outputs: equal to Python's but {differing} of {} values, exact halves rounded to even there",
        ob.median,
        pb.median,
        ot.median,
        python_out.len()
    );
    println!(
        "  llm tiny-llm greedy: {tokens_per_s:.0} tokens/s ({llm_tokens} tokens in {LLM_GENERATIONS} generations, \
         median {:.1} ms)",
        l.median
    );
    let json = serde_json::json!({
        "bench": "ai",
        "input": format!("{SIDE}x{SIDE}"),
        "model": "espcn_x2",
        "threads": threads,
        "runs": runs,
        "ours_ms": json_stats(&o, &ours),
        "python_ms": json_stats(&p, &theirs),
        "ratio": ratio,
        "ours_run_ms": json_stats(&ob, &ours_bare),
        "python_run_ms": json_stats(&pb, &theirs_bare),
        "run_ratio": bare_ratio,
        "ours_tiled_ms": json_stats(&ot, &ours_tiled),
        "tile": TILE,
        "values_differing": differing,
        "llm_tokens_per_s": tokens_per_s,
        "llm_ms": json_stats(&l, &llm_ms),
    });
    println!("{json}");
}
