//! The models of one worker: warm ones at start, cold ones on first use and evicted
//! least-recently-used past the budget, requests run on the model they name.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use image::{DynamicImage, Rgb, RgbImage};
use lp_pipelines::ai::image::encode_png;
use lp_pipelines::ai::{AiError, ModelSet, ModelSpec, Runtime, RuntimeOptions};
use lp_wire::ai::{AiRequest, AiResponse, ImageToImageRequest, Pipeline, UpscaleRequest};

fn runtime() -> Arc<Runtime> {
    Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)")
}

fn model(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)")).join(name)
}

fn spec(pipeline: Pipeline, model_id: &str, file: &str, warm: bool) -> ModelSpec {
    ModelSpec { pipeline, model_id: model_id.into(), path: model(file), warm }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    encode_png(&DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 7]))))
}

fn upscale(model_id: &str) -> AiRequest {
    AiRequest::Upscale(UpscaleRequest::new(model_id, "", png(8, 6)))
}

fn no_tokens() -> impl FnMut(&str) -> bool {
    |_| true
}

/// The image of a response, decoded from its data URL.
fn image_of(response: &AiResponse) -> RgbImage {
    let AiResponse::Image(images) = response else { panic!("not an image response: {response:?}") };
    let url = &images.images[0].url;
    let b64 = url.strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    image::load_from_memory(&bytes).unwrap().into_rgb8()
}

#[test]
fn requests_run_on_the_model_they_name() {
    let mut set = ModelSet::new(
        runtime(),
        vec![
            spec(Pipeline::Upscale, "x2", "upscale_x2_nearest.onnx", true),
            spec(Pipeline::ImageToImage, "invert", "invert.onnx", false),
            spec(Pipeline::Upscale, "blur", "upscale_x2_blur.onnx", false),
        ],
        1 << 30,
    );
    let loaded = |set: &mut ModelSet| set.take_loaded().into_iter().map(|l| l.model_id).collect::<Vec<_>>();
    assert_eq!(set.load_warm().unwrap().len(), 1);
    let response = set.infer(&upscale("x2"), &mut no_tokens()).unwrap();
    assert!(loaded(&mut set).is_empty(), "warm: loaded at start");
    let out = image_of(&response);
    assert_eq!(out.dimensions(), (16, 12));
    assert_eq!(out.get_pixel(15, 11), &Rgb([7, 5, 7]));

    let request = AiRequest::ImageToImage(ImageToImageRequest::new("invert", "", png(4, 4)));
    let response = set.infer(&request, &mut no_tokens()).unwrap();
    assert_eq!(loaded(&mut set), ["invert"], "cold: loaded now");
    assert_eq!(image_of(&response).get_pixel(3, 2), &Rgb([252, 253, 248]));
    set.infer(&request, &mut no_tokens()).unwrap();
    assert!(loaded(&mut set).is_empty(), "loaded once");

    let err = set.infer(&upscale("nobody"), &mut no_tokens()).unwrap_err();
    assert_eq!(err, AiError::UnknownModel("nobody".into()));
    // A model of another pipeline is not found under this one.
    let err = set.infer(&upscale("invert"), &mut no_tokens()).unwrap_err();
    assert_eq!(err, AiError::UnknownModel("invert".into()));
    // An image that does not decode is the client's error.
    let bad = AiRequest::Upscale(UpscaleRequest::new("x2", "", b"not a png".to_vec()));
    assert!(set.infer(&bad, &mut no_tokens()).unwrap_err().is_client_error());
    // A cold model loaded for a request that then fails was loaded all the same.
    let bad = AiRequest::Upscale(UpscaleRequest::new("blur", "", b"not a png".to_vec()));
    assert!(set.infer(&bad, &mut no_tokens()).unwrap_err().is_client_error());
    assert_eq!(loaded(&mut set), ["blur"]);
}

#[test]
fn cold_models_are_evicted_least_recently_used_past_the_budget() {
    let files = ["upscale_x2_nearest.onnx", "upscale_x2_blur.onnx", "upscale_x3_fixed.onnx"];
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(model(f)).unwrap().len()).collect();
    // Room for any two of the three.
    let budget = sizes.iter().sum::<u64>() - sizes.iter().min().unwrap();
    let mut set = ModelSet::new(
        runtime(),
        vec![
            spec(Pipeline::Upscale, "a", files[0], false),
            spec(Pipeline::Upscale, "b", files[1], false),
            spec(Pipeline::Upscale, "c", files[2], false),
            spec(Pipeline::ImageToImage, "warm", "invert.onnx", true),
        ],
        budget,
    );
    set.load_warm().unwrap();
    let run = |set: &mut ModelSet, id: &str| {
        set.infer(&upscale(id), &mut no_tokens()).unwrap();
        !set.take_loaded().is_empty()
    };
    let evicted = |set: &mut ModelSet| set.take_evicted().into_iter().map(|(_, id)| id).collect::<Vec<_>>();
    assert!(run(&mut set, "a"));
    assert!(run(&mut set, "b"));
    assert!(evicted(&mut set).is_empty());
    assert!(run(&mut set, "c"));
    assert_eq!(evicted(&mut set), ["a"]);
    assert!(!run(&mut set, "b"), "still loaded");
    // c is now the least recently used.
    assert!(run(&mut set, "a"));
    assert_eq!(evicted(&mut set), ["c"]);
    let mut loaded: Vec<String> = set.loaded().into_iter().map(|(_, id, _)| id).collect();
    loaded.sort();
    assert_eq!(loaded, ["a", "b", "warm"], "the warm model is never evicted");
}

#[test]
fn a_cold_model_over_the_budget_and_a_warm_model_that_does_not_fit_are_refused() {
    let mut set = ModelSet::new(runtime(), vec![spec(Pipeline::Upscale, "big", "upscale_x2_blur.onnx", false)], 10);
    let err = set.infer(&upscale("big"), &mut no_tokens()).unwrap_err();
    assert!(matches!(err, AiError::OverBudget { .. }), "{err}");

    let mut set =
        ModelSet::new(runtime(), vec![spec(Pipeline::Upscale, "bad", "mismatch_int_input.onnx", true)], 1 << 30);
    let err = set.load_warm().unwrap_err();
    assert!(err.to_string().contains("model bad does not fit the upscale pipeline"), "{err}");
}

/// A cold model that fails to load is refused with that error for `LOAD_RETRY_AFTER` without
/// another try: asked for again and again, it does not evict the cold model that works each
/// time (it made room for itself once, before its first load failed). Past the wait it is
/// tried again.
#[test]
fn a_cold_model_that_failed_to_load_is_not_tried_again_at_once() {
    let specs = vec![
        spec(Pipeline::Upscale, "good", "upscale_x2_nearest.onnx", false),
        spec(Pipeline::Upscale, "bad", "mismatch_int_input.onnx", false),
    ];
    // Room for either, not both.
    let budget = std::fs::metadata(model("upscale_x2_nearest.onnx")).unwrap().len();
    for (retry_after, tried_again) in [(lp_pipelines::ai::LOAD_RETRY_AFTER, false), (Duration::ZERO, true)] {
        let mut set = ModelSet::new(runtime(), specs.clone(), budget).load_retry_after(retry_after);
        set.infer(&upscale("good"), &mut no_tokens()).unwrap();
        assert_eq!(set.take_loaded().len(), 1);
        let first = set.infer(&upscale("bad"), &mut no_tokens()).unwrap_err();
        assert!(first.to_string().contains("model bad does not fit the upscale pipeline"), "{first}");
        // The room was made before the load failed, and the eviction is told all the same.
        assert_eq!(set.take_evicted(), [(Pipeline::Upscale, "good".to_string())]);
        set.infer(&upscale("good"), &mut no_tokens()).unwrap();
        assert_eq!(set.take_loaded().len(), 1, "loaded again");
        for _ in 0..3 {
            assert_eq!(set.infer(&upscale("bad"), &mut no_tokens()).unwrap_err(), first);
        }
        assert_eq!(set.take_evicted().len(), usize::from(tried_again), "retry after {retry_after:?}");
        let loaded: Vec<String> = set.loaded().into_iter().map(|(_, id, _)| id).collect();
        assert_eq!(loaded.is_empty(), tried_again, "retry after {retry_after:?}: {loaded:?}");
    }
}
