//! The safety check behind an image response's `nsfw`: NudeNet's detector (`320n.onnx`, a
//! YOLOv8 at 320 × 320, from the `nudenet` wheel on PyPI; `make setup` puts it at
//! `build/models/nudenet/320n.onnx`), with its pre- and post-processing ported from
//! `nudenet/nudenet.py` (3.4.2):
//!
//! - **Input** (`_read_image`): the image padded with black at the right or bottom to a square,
//!   resized to 320 × 320, RGB (`blobFromImage(..., swapRB=True)` undoes OpenCV's BGR), planar
//!   floats `/ 255`. We resize first and pad after, which is the same but for the interpolation
//!   at the one edge where the image meets the padding, and spares a padded copy of a large image.
//! - **Output**: `[1, 4 + 18, N]`, per anchor (N of them) a box (cx, cy, w, h) and the scores of
//!   the 18 classes of [`CLASSES`]; an anchor is a detection of its best class.
//! - **Verdict**: nsfw when some anchor's best class is one of [`EXPOSED`] and scores above
//!   [`THRESHOLD`] (0.25: the score threshold `_postprocess` gives `cv2.dnn.NMSBoxes`, which
//!   keeps boxes scoring above it). NudeNet's non-maximum suppression ignores the class, so there an
//!   exposed box can be hidden by an overlapping box of another class that scores higher; we
//!   count it, so we answer nsfw at least whenever NudeNet reports an exposed class.

use std::path::Path;

use image::{RgbImage, imageops};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType};

use super::io::{Want, describe, mismatch};
use super::{AiError, Runtime};

/// The side of the square the model sees.
pub const SIDE: u32 = 320;
/// The score above which an anchor counts as a detection (`NMSBoxes(boxes, scores, 0.25, 0.45)`
/// in `_postprocess`).
pub const THRESHOLD: f32 = 0.25;
/// NudeNet's classes, in the order of the model's scores (`__labels` in `nudenet.py`).
pub const CLASSES: [&str; 18] = [
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
];
/// The classes that make an image nsfw, by index into [`CLASSES`]: exposed buttocks, female
/// breasts, genitalia and anus. Not `MALE_BREAST_EXPOSED` (5: a bare chest), feet, armpits or
/// belly.
pub const EXPOSED: [(usize, &str); 5] = [
    (2, "BUTTOCKS_EXPOSED"),
    (3, "FEMALE_BREAST_EXPOSED"),
    (4, "FEMALE_GENITALIA_EXPOSED"),
    (6, "ANUS_EXPOSED"),
    (14, "MALE_GENITALIA_EXPOSED"),
];

const PIPELINE: &str = "safety check";
const INPUT: Want =
    Want { ty: TensorElementType::Float32, dims: &[Some(1), Some(3), Some(SIDE as i64), Some(SIDE as i64)] };
const OUTPUT: Want = Want { ty: TensorElementType::Float32, dims: &[Some(1), Some(4 + CLASSES.len() as i64), None] };

/// A loaded safety model.
pub struct SafetyModel {
    session: Session,
    input: String,
    output: String,
}

impl SafetyModel {
    /// Load the model at `path`, refusing one whose input is not an image `[1, 3, 320, 320]`
    /// (dimensions may be dynamic) or whose output is not `[1, 22, N]`, both of f32.
    pub fn load(rt: &Runtime, path: &Path) -> Result<SafetyModel, AiError> {
        let model_id = path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned();
        let session = rt.session(path).map_err(|reason| AiError::ModelLoad {
            model_id: model_id.clone(),
            path: path.into(),
            reason,
        })?;
        let refuse = |reason: String| AiError::ModelMismatch {
            model_id: model_id.clone(),
            pipeline: PIPELINE.into(),
            reason: format!("{reason} (the model has {})", describe(&session)),
        };
        let ([input], [output]) = (session.inputs(), session.outputs()) else {
            return Err(refuse("it needs one image input and one detections output".into()));
        };
        if let Some(why) = mismatch(input, &INPUT) {
            return Err(refuse(format!("input {why}: an RGB image [1, 3, {SIDE}, {SIDE}] of f32")));
        }
        if let Some(why) = mismatch(output, &OUTPUT) {
            return Err(refuse(format!("output {why}: detections [1, 4 + {}, N] of f32", CLASSES.len())));
        }
        let (input, output) = (input.name().to_string(), output.name().to_string());
        Ok(SafetyModel { session, input, output })
    }

    /// Whether `rgb` shows one of the [`EXPOSED`] classes, scoring above [`THRESHOLD`].
    pub fn is_nsfw(&mut self, rgb: &RgbImage) -> Result<bool, AiError> {
        let input = Tensor::from_array(([1usize, 3, SIDE as usize, SIDE as usize], letterbox(rgb)))?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input])?;
        let (shape, out) = outputs[self.output.as_str()].try_extract_tensor::<f32>()?;
        let rows = 4 + CLASSES.len();
        if shape.len() != 3 || shape[0] != 1 || shape[1] != rows as i64 || out.len() != rows * shape[2] as usize {
            return Err(AiError::Inference(format!("the safety model answered a tensor of shape {shape:?}")));
        }
        let anchors = shape[2] as usize;
        // Row-major [1, 22, N]: class k's score for anchor i is at (4 + k) · N + i.
        let score = |k: usize, i: usize| out[(4 + k) * anchors + i];
        Ok((0..anchors).any(|i| {
            let best = (0..CLASSES.len()).max_by(|&a, &b| score(a, i).total_cmp(&score(b, i))).expect("18 classes");
            score(best, i) > THRESHOLD && EXPOSED.iter().any(|(k, _)| *k == best)
        }))
    }
}

/// The model's input: `rgb` scaled to fit [`SIDE`] × [`SIDE`] at the top left, black to the right
/// or below, as planar RGB floats in 0..1.
fn letterbox(rgb: &RgbImage) -> Vec<f32> {
    let (w, h) = rgb.dimensions();
    let long = w.max(h).max(1) as u64;
    let fit = |d: u32| ((d as u64 * SIDE as u64 + long / 2) / long).clamp(1, SIDE as u64) as u32;
    let scaled = imageops::resize(rgb, fit(w), fit(h), imageops::FilterType::Triangle);
    let side = SIDE as usize;
    let plane = side * side;
    let mut data = vec![0f32; 3 * plane];
    for (x, y, p) in scaled.enumerate_pixels() {
        let at = y as usize * side + x as usize;
        for (c, v) in p.0.iter().enumerate() {
            data[c * plane + at] = *v as f32 / 255.0;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposed_classes_are_named_at_their_indices() {
        for (k, name) in EXPOSED {
            assert_eq!(CLASSES[k], name);
        }
    }

    #[test]
    fn letterbox_keeps_the_aspect_and_pads_with_black() {
        let data = letterbox(&RgbImage::from_pixel(640, 320, image::Rgb([255, 0, 51])));
        let plane = (SIDE * SIDE) as usize;
        let at = |x: u32, y: u32| y as usize * SIDE as usize + x as usize;
        assert_eq!((data[at(319, 159)], data[plane + at(319, 159)], data[2 * plane + at(319, 159)]), (1.0, 0.0, 0.2));
        assert_eq!(data[at(0, 160)], 0.0, "padded below");
        assert_eq!(data[at(319, 319)], 0.0);
    }
}
