//! The safety check: NudeNet's real detector on harmless images, stand-in models with its I/O
//! (scripts/models/safety.py) for the class mapping and the threshold, the verdict in a
//! response's `nsfw` through `ModelSet::infer`, and a model of the wrong shape refused at load.

use std::path::PathBuf;
use std::sync::Arc;

use image::{DynamicImage, Rgb, RgbImage};
use lp_pipelines::ai::image::encode_png;
use lp_pipelines::ai::{AiError, ModelSet, ModelSpec, Runtime, RuntimeOptions, SafetyModel};
use lp_wire::ai::{AiRequest, AiResponse, ImageToImageRequest, Pipeline, UpscaleRequest};

fn runtime() -> Arc<Runtime> {
    Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)")
}

fn model(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)")).join(name)
}

fn safety(name: &str) -> SafetyModel {
    SafetyModel::load(&runtime(), &model(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 5) as u8, (y * 3) as u8, ((x ^ y) * 7) as u8]))
}

fn nsfw_of(response: &AiResponse) -> bool {
    let AiResponse::Image(images) = response else { panic!("not an image response: {response:?}") };
    images.images[0].nsfw
}

#[test]
fn nudenet_says_harmless_images_are_safe() {
    let mut nudenet = safety("nudenet/320n.onnx");
    assert!(!nudenet.is_nsfw(&pattern(200, 120)).unwrap(), "a test pattern");
    assert!(!nudenet.is_nsfw(&pattern(90, 400)).unwrap(), "a tall test pattern");
    assert!(!nudenet.is_nsfw(&RgbImage::from_pixel(64, 64, Rgb([128, 128, 128]))).unwrap(), "a flat image");
    assert!(!nudenet.is_nsfw(&RgbImage::from_pixel(1, 1, Rgb([255, 255, 255]))).unwrap(), "one pixel");
}

#[test]
fn an_exposed_class_over_the_threshold_is_nsfw() {
    let image = pattern(50, 30);
    assert!(safety("safety_exposed.onnx").is_nsfw(&image).unwrap(), "FEMALE_BREAST_EXPOSED at 0.9");
    assert!(!safety("safety_covered.onnx").is_nsfw(&image).unwrap(), "FEMALE_BREAST_COVERED at 0.9");
    assert!(!safety("safety_faint.onnx").is_nsfw(&image).unwrap(), "FEMALE_BREAST_EXPOSED at 0.2");
}

#[test]
fn a_response_is_nsfw_when_the_request_asks_and_the_safety_model_says_so() {
    let specs = || {
        vec![
            ModelSpec {
                pipeline: Pipeline::Upscale,
                model_id: "x2".into(),
                path: model("upscale_x2_nearest.onnx"),
                warm: true,
            },
            ModelSpec {
                pipeline: Pipeline::ImageToImage,
                model_id: "invert".into(),
                path: model("invert.onnx"),
                warm: true,
            },
        ]
    };
    let png = encode_png(&DynamicImage::ImageRgb8(pattern(8, 6)));
    let mut upscale = UpscaleRequest::new("x2", "", png.clone());
    assert!(upscale.safety_check, "checked by default");
    let mut to_image = ImageToImageRequest::new("invert", "", png);
    let run = |set: &mut ModelSet, request: AiRequest| nsfw_of(&set.infer(&request, &mut |_| true).unwrap());

    let mut set = ModelSet::new(runtime(), specs(), 1 << 30).with_safety(safety("safety_exposed.onnx"));
    assert!(run(&mut set, AiRequest::Upscale(upscale.clone())));
    assert!(run(&mut set, AiRequest::ImageToImage(to_image.clone())));
    upscale.safety_check = false;
    to_image.safety_check = false;
    assert!(!run(&mut set, AiRequest::Upscale(upscale.clone())), "the request did not ask");
    assert!(!run(&mut set, AiRequest::ImageToImage(to_image.clone())), "the request did not ask");

    upscale.safety_check = true;
    let mut set = ModelSet::new(runtime(), specs(), 1 << 30);
    assert!(!run(&mut set, AiRequest::Upscale(upscale.clone())), "no safety model: false");
    let mut set = ModelSet::new(runtime(), specs(), 1 << 30).with_safety(safety("nudenet/320n.onnx"));
    assert!(!run(&mut set, AiRequest::Upscale(upscale)), "NudeNet on a test pattern");
}

#[test]
fn a_model_of_the_wrong_shape_is_refused_at_load() {
    let err = SafetyModel::load(&runtime(), &model("invert.onnx")).err().expect("refused");
    let AiError::ModelMismatch { ref model_id, ref pipeline, ref reason } = err else { panic!("{err}") };
    assert_eq!((model_id.as_str(), pipeline.as_str()), ("invert.onnx", "safety check"));
    assert!(reason.contains("output output has shape") && reason.contains("rank 3"), "{err}");
    let err = SafetyModel::load(&runtime(), &model("mismatch_int_input.onnx")).err().expect("refused");
    assert!(err.to_string().contains("input ids holds Int64"), "{err}");
}
