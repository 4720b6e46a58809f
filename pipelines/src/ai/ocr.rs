//! `image-to-text` as OCR with PP-OCR: a DB text detector finds the text in an image and a CTC
//! recogniser reads each piece, the way rapidocr (PaddleOCR on ONNX Runtime) does it; the lines
//! come back in reading order, top to bottom, each left to right, joined with `"\n"`.
//!
//! A model is a directory holding `det.onnx` (image `x` f32[b, 3, H, W] → probability of text
//! f32[b, 1, H, W]), `rec.onnx` (a text line `x` f32[b, 3, 48, W] → per step class scores
//! f32[b, T, C]) and the recogniser's dictionary, one character a line: `keys.txt` when there is
//! one, else the recogniser's own metadata (`character`, which rapidocr's PP-OCRv4 model
//! carries). Class 0 is CTC's blank, then the dictionary, then (when C has room for it) a space.
//! A model entry's `path` names the directory; `make setup` installs PP-OCRv4 from the
//! rapidocr-onnxruntime wheel at `build/models/ppocr`.
//!
//! The pre- and post-processing constants are rapidocr 1.4.4's (pixels normalised with mean and
//! std 0.5, in OpenCV's BGR order; the probability map thresholded at 0.3 and dilated 2 × 2;
//! boxes kept at a mean probability of 0.5 and grown by unclip ratio 1.6; lines recognised at
//! height 48, at least 320 wide, in batches of 6; a line kept at a mean confidence of 0.5), except
//! that the detector's input is capped at [`DET_MAX_SIDE`] a side (PaddleOCR's default) where
//! rapidocr scales the short side up to 736, several times the work on a small image.
//!
//! Text boxes are axis-aligned rectangles and there is no orientation (cls) model: horizontal
//! text is read, rotated or vertical text is not.

use std::path::Path;

use image::{RgbImage, imageops};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType};

use super::io::{Want, describe, mismatch, tensor};
use super::{AiError, Runtime};

const PIPELINE: &str = "image-to-text";

/// The detector's input is at most this many pixels a side (PaddleOCR's `det_limit_side_len`
/// with the `max` limit); smaller images keep their size, rounded to multiples of 32.
pub const DET_MAX_SIDE: u32 = 960;
/// Probability above which a pixel of the detector's map is text.
const DET_THRESH: f32 = 0.3;
/// Mean probability a box needs to be kept.
const BOX_THRESH: f32 = 0.5;
/// How far a box grows beyond its text core: by area × ratio / perimeter on each side.
const UNCLIP_RATIO: f32 = 1.6;
/// Boxes whose short side is under this many map pixels are noise.
const MIN_BOX_SIDE: f32 = 3.0;
/// The most boxes taken from one image.
const MAX_BOXES: usize = 1000;
/// The recogniser's input height, and the narrowest input it is given (padded to it).
const REC_HEIGHT: u32 = 48;
const REC_MIN_WIDTH: u32 = 320;
/// Text lines recognised in one run.
const REC_BATCH: usize = 6;
/// Mean confidence a recognised box needs to be kept.
const TEXT_SCORE: f32 = 0.5;

/// One of the two models of a directory and what its pipeline needs of it.
struct Part {
    file: &'static str,
    what: &'static str,
    input: Want,
    output: Want,
    needs: &'static str,
}

const DET: Part = Part {
    file: "det.onnx",
    what: "text detector",
    input: Want { ty: TensorElementType::Float32, dims: &[None, Some(3), None, None] },
    output: Want { ty: TensorElementType::Float32, dims: &[None, Some(1), None, None] },
    needs: "an image f32[b, 3, H, W] in, a text probability map f32[b, 1, H, W] out",
};
const REC: Part = Part {
    file: "rec.onnx",
    what: "text recogniser",
    input: Want { ty: TensorElementType::Float32, dims: &[None, Some(3), Some(REC_HEIGHT as i64), None] },
    output: Want { ty: TensorElementType::Float32, dims: &[None, None, None] },
    needs: "a text line f32[b, 3, 48, W] in, class scores f32[b, T, C] out",
};

/// A loaded PP-OCR detector and recogniser and the recogniser's classes.
pub struct OcrModel {
    det: Net,
    rec: Net,
    /// What each class reads as: "" for the blank, then the dictionary, then maybe " ".
    classes: Vec<String>,
}

/// A session and the names of its one input and one output.
struct Net {
    session: Session,
    input: String,
    output: String,
}

/// A text box in the image's pixels: columns `x0..x1`, rows `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextBox {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl OcrModel {
    /// Load the detector and recogniser in `dir`, refusing a directory that lacks one, a model
    /// whose inputs or outputs do not fit, or a dictionary that does not match the recogniser's
    /// classes.
    pub fn load(rt: &Runtime, model_id: &str, dir: &Path) -> Result<OcrModel, AiError> {
        let det = load_net(rt, model_id, dir, &DET)?;
        let rec = load_net(rt, model_id, dir, &REC)?;
        let refuse =
            |reason: String| AiError::ModelMismatch { model_id: model_id.into(), pipeline: PIPELINE.into(), reason };
        let keys = dir.join("keys.txt");
        let (dictionary, source) = if keys.is_file() {
            let text = std::fs::read_to_string(&keys).map_err(|e| AiError::ModelLoad {
                model_id: model_id.into(),
                path: keys.clone(),
                reason: e.to_string(),
            })?;
            (text, "keys.txt")
        } else {
            let metadata = rec.session.metadata().map_err(|e| AiError::ModelLoad {
                model_id: model_id.into(),
                path: dir.join("rec.onnx"),
                reason: format!("cannot read its metadata: {e}"),
            })?;
            let Some(text) = metadata.custom("character") else {
                return Err(refuse(format!(
                    "{} has no dictionary: put one character a line in keys.txt beside it \
                     (its metadata has no `character`)",
                    dir.join("rec.onnx").display()
                )));
            };
            (text, "the recogniser's metadata")
        };
        let mut classes: Vec<String> =
            std::iter::once(String::new()).chain(dictionary.lines().map(String::from)).collect();
        let n = classes.len() - 1;
        let (_, out_shape) = tensor(&rec.session.outputs()[0]).expect("checked to be a tensor");
        match out_shape[2] {
            c if c < 0 || c == n as i64 + 2 => classes.push(" ".into()),
            c if c == n as i64 + 1 => {}
            c => {
                return Err(refuse(format!(
                    "the recogniser has {c} classes (the blank, the characters and maybe a space), \
                     and the dictionary ({source}) has {n} characters, which make {} or {}",
                    n + 1,
                    n + 2
                )));
            }
        }
        Ok(OcrModel { det, rec, classes })
    }

    /// The text in `rgb`: its lines top to bottom, the words of each left to right and joined
    /// with a space, the lines with `"\n"`; "" when there is none.
    pub fn read(&mut self, rgb: &RgbImage) -> Result<String, AiError> {
        if rgb.width() == 0 || rgb.height() == 0 {
            return Err(AiError::InvalidInput("the image is empty".into()));
        }
        let boxes = self.detect(rgb)?;
        let crops: Vec<RgbImage> =
            boxes.iter().map(|b| imageops::crop_imm(rgb, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0).to_image()).collect();
        let texts = self.recognise(&crops)?;
        let read: Vec<(TextBox, String)> = boxes
            .into_iter()
            .zip(texts)
            .filter(|(_, (text, score))| *score >= TEXT_SCORE && !text.trim().is_empty())
            .map(|(b, (text, _))| (b, text.trim().to_string()))
            .collect();
        Ok(reading_order(read))
    }

    /// The text boxes in `rgb`, in its pixels.
    fn detect(&mut self, rgb: &RgbImage) -> Result<Vec<TextBox>, AiError> {
        let (w, h) = rgb.dimensions();
        let ratio = (DET_MAX_SIDE as f32 / w.max(h) as f32).min(1.0);
        let side = |s: u32| ((((s as f32 * ratio) as u32) as f32 / 32.0).round() as u32 * 32).max(32);
        let (dw, dh) = (side(w), side(h));
        let resized = imageops::resize(rgb, dw, dh, imageops::FilterType::Triangle);
        let input = Tensor::from_array(([1usize, 3, dh as usize, dw as usize], planar_bgr(&resized, dw)))?;
        let outputs = self.det.session.run(ort::inputs![self.det.input.as_str() => input])?;
        let (shape, prob) = outputs[self.det.output.as_str()].try_extract_tensor::<f32>()?;
        if shape.len() != 4 || shape[0] != 1 || shape[1] != 1 || shape[2] <= 0 || shape[3] <= 0 {
            return Err(AiError::Inference(format!("the text detector answered a tensor of shape {shape:?}")));
        }
        let (mh, mw) = (shape[2] as usize, shape[3] as usize);
        Ok(boxes_from_map(prob, mw, mh, w, h))
    }

    /// Each crop's text and mean confidence.
    fn recognise(&mut self, crops: &[RgbImage]) -> Result<Vec<(String, f32)>, AiError> {
        let aspect = |c: &RgbImage| c.width() as f32 / c.height() as f32;
        // Similar widths together, so that little of a batch is padding.
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by(|a, b| aspect(&crops[*a]).total_cmp(&aspect(&crops[*b])));
        let mut texts = vec![(String::new(), 0.0); crops.len()];
        for batch in order.chunks(REC_BATCH) {
            let max_aspect =
                batch.iter().map(|i| aspect(&crops[*i])).fold(REC_MIN_WIDTH as f32 / REC_HEIGHT as f32, f32::max);
            let width = (REC_HEIGHT as f32 * max_aspect) as u32;
            let plane = (REC_HEIGHT * width) as usize;
            // Zero is mid-grey after normalisation: the padding right of each line.
            let mut data = vec![0f32; batch.len() * 3 * plane];
            for (slot, i) in batch.iter().enumerate() {
                let fit = ((REC_HEIGHT as f32 * aspect(&crops[*i])).ceil() as u32).clamp(1, width);
                let line = imageops::resize(&crops[*i], fit, REC_HEIGHT, imageops::FilterType::Triangle);
                let planes = planar_bgr(&line, width);
                data[slot * 3 * plane..(slot + 1) * 3 * plane].copy_from_slice(&planes);
            }
            let input = Tensor::from_array(([batch.len(), 3, REC_HEIGHT as usize, width as usize], data))?;
            let outputs = self.rec.session.run(ort::inputs![self.rec.input.as_str() => input])?;
            let (shape, scores) = outputs[self.rec.output.as_str()].try_extract_tensor::<f32>()?;
            if shape.len() != 3 || shape[0] != batch.len() as i64 || shape[2] != self.classes.len() as i64 {
                return Err(AiError::Inference(format!(
                    "the text recogniser answered a tensor of shape {shape:?} for {} lines and {} classes",
                    batch.len(),
                    self.classes.len()
                )));
            }
            let steps = shape[1] as usize;
            for (slot, i) in batch.iter().enumerate() {
                let per_line = steps * self.classes.len();
                texts[*i] = ctc_greedy(&scores[slot * per_line..(slot + 1) * per_line], &self.classes);
            }
        }
        Ok(texts)
    }
}

/// The session for `part` of the model in `dir`, refused when it does not fit.
fn load_net(rt: &Runtime, model_id: &str, dir: &Path, part: &Part) -> Result<Net, AiError> {
    let path = dir.join(part.file);
    let load_error = |reason: String| AiError::ModelLoad { model_id: model_id.into(), path: path.clone(), reason };
    if !path.is_file() {
        return Err(load_error(format!(
            "the {} is missing: an OCR model directory holds det.onnx and rec.onnx (and may hold keys.txt)",
            part.what
        )));
    }
    let session = rt.session(&path).map_err(load_error)?;
    let refuse = |reason: String| AiError::ModelMismatch {
        model_id: model_id.into(),
        pipeline: PIPELINE.into(),
        reason: format!(
            "the {} {}: {reason}; it needs {} (it has {})",
            part.what,
            path.display(),
            part.needs,
            describe(&session)
        ),
    };
    let (Some(input), Some(output)) = (session.inputs().first(), session.outputs().first()) else {
        return Err(refuse("it has no input or no output".into()));
    };
    if session.inputs().len() > 1 {
        return Err(refuse("it has more than one input".into()));
    }
    if let Some(why) = mismatch(input, &part.input) {
        return Err(refuse(format!("input {why}")));
    }
    if let Some(why) = mismatch(output, &part.output) {
        return Err(refuse(format!("output {why}")));
    }
    let (input, output) = (input.name().to_string(), output.name().to_string());
    Ok(Net { session, input, output })
}

/// `image`'s pixels as three planes, blue, green, red (PaddleOCR's models read OpenCV's order),
/// each `width` wide (the image's columns, then zeros), normalised to -1..1.
fn planar_bgr(image: &RgbImage, width: u32) -> Vec<f32> {
    let plane = (width * image.height()) as usize;
    let mut data = vec![0f32; 3 * plane];
    for (x, y, p) in image.enumerate_pixels() {
        let i = (y * width + x) as usize;
        for c in 0..3 {
            data[(2 - c) * plane + i] = (p[c] as f32 / 255.0 - 0.5) / 0.5;
        }
    }
    data
}

/// DB post-processing: the text boxes in a `mw` × `mh` probability map, scaled to a `w` × `h`
/// image. Each 8-connected region of text pixels (the map thresholded, then dilated by a 2 × 2
/// square) gives its bounding box, kept when its mean probability is high enough and grown by
/// the unclip distance.
fn boxes_from_map(prob: &[f32], mw: usize, mh: usize, w: u32, h: u32) -> Vec<TextBox> {
    let text: Vec<bool> = prob.iter().map(|p| *p > DET_THRESH).collect();
    // Dilation by [[1, 1], [1, 1]] anchored at its centre (OpenCV's): a pixel is set when it or
    // its neighbour above, left or above-left is.
    let mut mask = vec![false; mw * mh];
    for y in 0..mh {
        for x in 0..mw {
            let at = |dx: usize, dy: usize| x >= dx && y >= dy && text[(y - dy) * mw + x - dx];
            mask[y * mw + x] = at(0, 0) || at(1, 0) || at(0, 1) || at(1, 1);
        }
    }
    let mut seen = vec![false; mw * mh];
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mw * mh {
        if !mask[start] || seen[start] || boxes.len() >= MAX_BOXES {
            continue;
        }
        // One region, flood-filled: its bounding box in map pixel centres.
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % mw, i / mw);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            for ny in y.saturating_sub(1)..=(y + 1).min(mh - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(mw - 1) {
                    let j = ny * mw + nx;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let (bw, bh) = ((x1 - x0) as f32, (y1 - y0) as f32);
        if bw.min(bh) < MIN_BOX_SIDE {
            continue;
        }
        let score = {
            let rows = (y0..=y1).map(|y| prob[y * mw + x0..=y * mw + x1].iter().sum::<f32>()).sum::<f32>();
            rows / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32
        };
        if score < BOX_THRESH {
            continue;
        }
        let grow = bw * bh * UNCLIP_RATIO / (2.0 * (bw + bh));
        if bw.min(bh) + 2.0 * grow < MIN_BOX_SIDE + 2.0 {
            continue;
        }
        // To the image's pixels, inside it.
        let to_image = |v: f32, map: usize, image: u32| {
            (v / map as f32 * image as f32).round().clamp(0.0, (image - 1) as f32) as u32
        };
        let b = TextBox {
            x0: to_image(x0 as f32 - grow, mw, w),
            y0: to_image(y0 as f32 - grow, mh, h),
            x1: to_image(x1 as f32 + grow, mw, w),
            y1: to_image(y1 as f32 + grow, mh, h),
        };
        if b.x1 - b.x0 > 3 && b.y1 - b.y0 > 3 {
            boxes.push(b);
        }
    }
    boxes
}

/// CTC greedy decoding of one line's scores (steps × classes): the best class at each step,
/// repeats merged, blanks dropped; and the mean score of the classes kept (0 for none).
fn ctc_greedy(scores: &[f32], classes: &[String]) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut kept) = (0f32, 0usize);
    let mut last = 0;
    for step in scores.chunks_exact(classes.len()) {
        let (best, p) =
            step.iter().enumerate().fold((0, f32::MIN), |acc, (i, p)| if *p > acc.1 { (i, *p) } else { acc });
        if best != 0 && best != last {
            text.push_str(&classes[best]);
            sum += p;
            kept += 1;
        }
        last = best;
    }
    (text, if kept == 0 { 0.0 } else { sum / kept as f32 })
}

/// Boxes and their text as lines: a box joins the line above it when its vertical middle lies
/// within that line's rows; lines top to bottom, boxes in a line left to right and joined with a
/// space, lines with `"\n"`.
fn reading_order(mut read: Vec<(TextBox, String)>) -> String {
    /// A line's rows and its words, each with its left edge.
    struct Line {
        top: u32,
        bottom: u32,
        words: Vec<(u32, String)>,
    }
    read.sort_by_key(|(b, _)| (b.y0 + b.y1, b.x0));
    let mut lines: Vec<Line> = Vec::new();
    for (b, text) in read {
        let middle = (b.y0 + b.y1) / 2;
        match lines.iter_mut().find(|line| (line.top..=line.bottom).contains(&middle)) {
            Some(line) => {
                (line.top, line.bottom) = (line.top.min(b.y0), line.bottom.max(b.y1));
                line.words.push((b.x0, text));
            }
            None => lines.push(Line { top: b.y0, bottom: b.y1, words: vec![(b.x0, text)] }),
        }
    }
    lines.sort_by_key(|line| line.top + line.bottom);
    lines
        .into_iter()
        .map(|mut line| {
            line.words.sort_by_key(|(x0, _)| *x0);
            line.words.into_iter().map(|(_, text)| text).collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tb(x0: u32, y0: u32, x1: u32, y1: u32) -> TextBox {
        TextBox { x0, y0, x1, y1 }
    }

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let classes: Vec<String> = ["", "a", "b", " "].iter().map(|s| s.to_string()).collect();
        // Steps: a a blank a b b space b blank.
        let best = [1, 1, 0, 1, 2, 2, 3, 2, 0];
        let scores: Vec<f32> =
            best.iter().flat_map(|b| (0..4).map(move |c| if c == *b { 0.9 } else { 0.1 / 3.0 })).collect();
        let (text, score) = ctc_greedy(&scores, &classes);
        assert_eq!(text, "aab b");
        assert!((score - 0.9).abs() < 1e-6);
        let (text, score) = ctc_greedy(&[0.9, 0.1, 0.0, 0.0], &classes);
        assert_eq!((text.as_str(), score), ("", 0.0));
    }

    #[test]
    fn boxes_read_top_to_bottom_then_left_to_right() {
        let read = vec![
            (tb(120, 42, 230, 72), "world".to_string()),
            (tb(30, 110, 265, 145), "transcode 42".to_string()),
            (tb(30, 40, 125, 70), "hello".to_string()),
        ];
        assert_eq!(reading_order(read), "hello world\ntranscode 42");
        assert_eq!(reading_order(Vec::new()), "");
    }

    #[test]
    fn a_region_of_text_becomes_its_grown_box() {
        // A 64 × 32 map with text in columns 10..=49, rows 10..=19, read onto a 128 × 64 image.
        let (mw, mh) = (64, 32);
        let prob: Vec<f32> = (0..mw * mh)
            .map(|i| if (10..50).contains(&(i % mw)) && (10..20).contains(&(i / mw)) { 0.9 } else { 0.0 })
            .collect();
        let boxes = boxes_from_map(&prob, mw, mh, 128, 64);
        assert_eq!(boxes.len(), 1);
        // The dilated region spans 10..=50 × 10..=20 (40 × 10), grown by 40·10·1.6 / 100 = 6.4.
        let b = boxes[0];
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (7, 7, 113, 53));
        // Noise thinner than the minimum and faint regions give no box.
        let faint: Vec<f32> = prob.iter().map(|p| p * 0.5).collect();
        assert!(boxes_from_map(&faint, mw, mh, 128, 64).is_empty());
        assert!(boxes_from_map(&vec![0.0; mw * mh], mw, mh, 128, 64).is_empty());
    }
}
