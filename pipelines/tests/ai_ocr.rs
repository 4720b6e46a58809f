//! image-to-text (OCR) on ONNX Runtime with PP-OCRv4 (build/models/ppocr, from the
//! rapidocr-onnxruntime wheel) reading images of known text that `make setup` draws
//! (scripts/models/ocr_images.py); model directories that do not fit are refused at load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;
use lp_pipelines::ai::image as ai_image;
use lp_pipelines::ai::ocr::OcrModel;
use lp_pipelines::ai::{AiError, Runtime, RuntimeOptions};

fn runtime() -> Arc<Runtime> {
    Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)")
}

fn models() -> PathBuf {
    PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)"))
}

fn ppocr() -> OcrModel {
    OcrModel::load(&runtime(), "ppocr", &models().join("ppocr")).unwrap_or_else(|e| panic!("ppocr: {e}"))
}

fn image(name: &str) -> RgbImage {
    let path = models().join("ocr").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{} (make setup): {e}", path.display()));
    ai_image::decode(&bytes).unwrap()
}

/// The text is mixed case on purpose: the recogniser drops the space after a word in capitals
/// ("LIVEPEER2026"), see scripts/models/ocr_images.py.
#[test]
fn rendered_text_reads_back_exactly() {
    let mut model = ppocr();
    for (name, text) in [("livepeer.png", "Livepeer 2026"), ("two_lines.png", "hello world\ntranscode 42")] {
        let rgb = image(name);
        let read = model.read(&rgb).unwrap(); // the first run of a session is slower: not timed
        assert_eq!(read, text, "{name}");
        const RUNS: u32 = 3;
        let start = Instant::now();
        for _ in 0..RUNS {
            assert_eq!(model.read(&rgb).unwrap(), text, "{name}");
        }
        println!("{name} ({}×{}): {read:?} in {:?} an image", rgb.width(), rgb.height(), start.elapsed() / RUNS);
    }
}

#[test]
fn a_blank_image_reads_as_nothing() {
    assert_eq!(ppocr().read(&image("blank.png")).unwrap(), "");
}

/// A temporary model directory with `files` (name in it, file copied) in it.
fn model_dir(files: &[(&str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, from) in files {
        std::fs::copy(from, dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn a_directory_that_does_not_fit_is_refused_at_load_with_the_reason() {
    let (det, rec) = (models().join("ppocr/det.onnx"), models().join("ppocr/rec.onnx"));
    let load = |dir: &tempfile::TempDir| OcrModel::load(&runtime(), "bad", dir.path()).err().expect("refused");

    let err = load(&model_dir(&[("det.onnx", &det)]));
    let AiError::ModelLoad { ref path, ref reason, .. } = err else { panic!("{err}") };
    assert!(path.ends_with("rec.onnx") && reason.contains("missing"), "{err}");

    // An image-to-image model (RGB out) is no text detector: its output has 3 channels, not 1.
    let err = load(&model_dir(&[("det.onnx", &models().join("invert.onnx")), ("rec.onnx", &rec)]));
    let AiError::ModelMismatch { ref reason, .. } = err else { panic!("{err}") };
    assert!(reason.contains("text detector") && reason.contains("3 at axis 1"), "{err}");

    // The detector in the recogniser's place: its output has rank 4.
    let err = load(&model_dir(&[("det.onnx", &det), ("rec.onnx", &det)]));
    assert!(err.to_string().contains("text recogniser") && err.to_string().contains("rank 3"), "{err}");

    // A dictionary that does not match the recogniser's 6625 classes.
    let dir = model_dir(&[("det.onnx", &det), ("rec.onnx", &rec)]);
    std::fs::write(dir.path().join("keys.txt"), "a\nb\nc\n").unwrap();
    let err = load(&dir);
    let AiError::ModelMismatch { ref reason, .. } = err else { panic!("{err}") };
    assert!(reason.contains("6625 classes") && reason.contains("3 characters"), "{err}");
}
