//! Image models: `upscale` (super-resolution, tiled so that memory stays bounded whatever the
//! input's size) and `image-to-image` (any model that maps an RGB image to an image: style
//! transfer, background removal and matting, depth).
//!
//! A model takes one float tensor `[1, 3, H, W]` of RGB in 0..1 and gives one float tensor
//! `[1, C, H', W']`: for `upscale` C = 3 and H' = s·H, W' = s·W for an integer scale s; for
//! `image-to-image` C = 3 (an RGB image) or 1 (a mask or a depth map, stretched to 0..255 grey).
//! Spatial dimensions may be fixed (the input is then resized, or for `upscale` tiled at that
//! size) or dynamic.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits, RgbImage, imageops};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType};

use super::io::{Want, describe, mismatch, tensor};
use super::{AiError, Runtime};

/// The largest image a request may carry, in pixels (the wire's limit).
pub use lp_wire::limits::MAX_AI_IMAGE_PIXELS as MAX_INPUT_PIXELS;
/// The largest image an upscale makes (8192 × 8192 or equivalent: 192 MiB of RGB): a larger
/// one is refused as the client's error before it is allocated.
pub const MAX_OUTPUT_PIXELS: u64 = 8192 * 8192;
/// Upscale tile side (input pixels) for models with dynamic dimensions: a 4× model's output
/// tile is then 2048 × 2048 (48 MiB of floats), whatever the size of the image.
pub const DEFAULT_TILE: u32 = 512;
/// Input pixels of context each tile gets beyond the part of it that is kept: more than the
/// receptive field of the models in use, so a tiled result equals the untiled one.
pub const TILE_OVERLAP: u32 = 16;

const IMAGE_IN: Want = Want { ty: TensorElementType::Float32, dims: &[Some(1), Some(3), None, None] };
const IMAGE_OUT: Want = Want { ty: TensorElementType::Float32, dims: &[Some(1), None, None, None] };

/// What an image model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageTask {
    Upscale,
    ImageToImage,
}

impl ImageTask {
    fn pipeline(self) -> &'static str {
        match self {
            ImageTask::Upscale => "upscale",
            ImageTask::ImageToImage => "image-to-image",
        }
    }
}

/// A loaded image model and the names and sizes its pipeline uses.
pub struct ImageModel {
    session: Session,
    input: String,
    output: String,
    /// The input's fixed (width, height), when the model has one.
    fixed: Option<(u32, u32)>,
}

impl ImageModel {
    /// Load the model at `path` for `task`, refusing one whose inputs or outputs do not fit.
    pub fn load(rt: &Runtime, model_id: &str, path: &Path, task: ImageTask) -> Result<ImageModel, AiError> {
        let session = rt.session(path).map_err(|reason| AiError::ModelLoad {
            model_id: model_id.into(),
            path: path.into(),
            reason,
        })?;
        let refuse = |reason: String| AiError::ModelMismatch {
            model_id: model_id.into(),
            pipeline: task.pipeline().into(),
            reason: format!("{reason} (the model has {})", describe(&session)),
        };
        let (Some(input), Some(output)) = (session.inputs().first(), session.outputs().first()) else {
            return Err(refuse("it needs an image input and an image output".into()));
        };
        if let Some(why) = mismatch(input, &IMAGE_IN) {
            return Err(refuse(format!("input {why}: an RGB image [1, 3, H, W] of f32")));
        }
        if let Some(why) = mismatch(output, &IMAGE_OUT) {
            return Err(refuse(format!("output {why}: an image [1, C, H, W] of f32")));
        }
        let (_, in_shape) = tensor(input).expect("checked to be a tensor");
        let (_, out_shape) = tensor(output).expect("checked to be a tensor");
        let channels = out_shape[1];
        let allowed: &[i64] = match task {
            ImageTask::Upscale => &[3, -1],
            ImageTask::ImageToImage => &[1, 3, -1],
        };
        if !allowed.contains(&channels) {
            return Err(refuse(format!("output {} has {channels} channels", output.name())));
        }
        if session.inputs().len() > 1 {
            return Err(refuse("it has more than one input".into()));
        }
        let fixed = match (in_shape[3], in_shape[2]) {
            (w, h) if w > 0 && h > 0 => Some((w as u32, h as u32)),
            (w, h) if w <= 0 && h <= 0 => None,
            _ => return Err(refuse("one spatial input dimension is fixed and the other is not".into())),
        };
        let (input, output) = (input.name().to_string(), output.name().to_string());
        Ok(ImageModel { session, input, output, fixed })
    }

    /// Run the model on `rgb` as it is (its size must fit the model) and hand its answer,
    /// (channels, width, height, planar floats), to `convert` while ONNX Runtime still holds it
    /// (no copy of the floats).
    fn run<T>(&mut self, rgb: &RgbImage, convert: impl FnOnce(usize, u32, u32, &[f32]) -> T) -> Result<T, AiError> {
        let (w, h) = rgb.dimensions();
        let input = Tensor::from_array(([1usize, 3, h as usize, w as usize], planar_from_rgb(rgb)))?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input])?;
        let (shape, out) = outputs[self.output.as_str()].try_extract_tensor::<f32>()?;
        if shape.len() != 4 || shape[0] != 1 || !(shape[1] == 1 || shape[1] == 3) {
            return Err(AiError::Inference(format!("the model answered a tensor of shape {shape:?}")));
        }
        Ok(convert(shape[1] as usize, shape[3] as u32, shape[2] as u32, out))
    }

    /// Upscale `rgb`, in tiles of at most `tile` input pixels a side (the model's own size when
    /// its input is fixed), each with [`TILE_OVERLAP`] pixels of context that are cut away, so
    /// that memory stays bounded and the seams do not show.
    pub fn upscale(&mut self, rgb: &RgbImage, tile: u32) -> Result<RgbImage, AiError> {
        let (w, h) = rgb.dimensions();
        let (tile_w, tile_h) = self.fixed.unwrap_or((tile.max(2 * TILE_OVERLAP + 1), tile.max(2 * TILE_OVERLAP + 1)));
        if self.fixed.is_none() && w <= tile_w && h <= tile_h {
            let (ow, oh, out) = self.run(rgb, |c, ow, oh, out| rgb_of(c, ow, oh, out).map(|img| (ow, oh, img)))??;
            scale_of((w, h), (ow, oh))?;
            return Ok(out);
        }
        let core = |t: u32| t.saturating_sub(2 * TILE_OVERLAP).max(1);
        let (core_w, core_h) = (core(tile_w), core(tile_h));
        let mut result: Option<(u32, RgbImage)> = None;
        for cy in (0..h).step_by(core_h as usize) {
            for cx in (0..w).step_by(core_w as usize) {
                let (cw, ch) = (core_w.min(w - cx), core_h.min(h - cy));
                // The tile: the core and its context, inside the image and at most a tile.
                let x0 = cx.saturating_sub(TILE_OVERLAP);
                let y0 = cy.saturating_sub(TILE_OVERLAP);
                let x1 = (cx + cw + TILE_OVERLAP).min(w).min(x0 + tile_w);
                let y1 = (cy + ch + TILE_OVERLAP).min(h).min(y0 + tile_h);
                let mut piece = imageops::crop_imm(rgb, x0, y0, x1 - x0, y1 - y0).to_image();
                if let Some((fw, fh)) = self.fixed {
                    piece = pad_edge(&piece, fw, fh);
                }
                let upscaled = self.run(&piece, rgb_of)??;
                let s = scale_of(piece.dimensions(), upscaled.dimensions())?;
                let out_pixels = u64::from(w) * u64::from(h) * u64::from(s) * u64::from(s);
                if out_pixels > MAX_OUTPUT_PIXELS {
                    return Err(AiError::InvalidInput(format!(
                        "upscaled ×{s} the image would be {}×{}, over {MAX_OUTPUT_PIXELS} pixels",
                        u64::from(w) * u64::from(s),
                        u64::from(h) * u64::from(s)
                    )));
                }
                let (_, canvas) = result.get_or_insert_with(|| (s, RgbImage::new(w * s, h * s)));
                let kept = imageops::crop_imm(&upscaled, (cx - x0) * s, (cy - y0) * s, cw * s, ch * s).to_image();
                imageops::replace(canvas, &kept, (cx * s) as i64, (cy * s) as i64);
            }
        }
        Ok(result.map(|(_, img)| img).unwrap_or_default())
    }

    /// Map `rgb` to the model's output image, at `rgb`'s size.
    pub fn transform(&mut self, rgb: &RgbImage) -> Result<DynamicImage, AiError> {
        let (w, h) = rgb.dimensions();
        let fed = match self.fixed {
            Some((fw, fh)) if (fw, fh) != (w, h) => imageops::resize(rgb, fw, fh, imageops::FilterType::Triangle),
            _ => rgb.clone(),
        };
        let image = self.run(&fed, |channels, ow, oh, out| match channels {
            3 => DynamicImage::ImageRgb8(rgb_from_planar(ow, oh, out)),
            _ => DynamicImage::ImageLuma8(grey_stretched(ow, oh, out)),
        })?;
        Ok(match (image.width(), image.height()) == (w, h) {
            true => image,
            false => image.resize_exact(w, h, imageops::FilterType::Triangle),
        })
    }
}

/// An upscaler's answer as an RGB image; one with another channel count (a model whose output
/// channels are dynamic) is the model's error, not a panic.
fn rgb_of(channels: usize, w: u32, h: u32, data: &[f32]) -> Result<RgbImage, AiError> {
    match channels {
        3 => Ok(rgb_from_planar(w, h, data)),
        c => Err(AiError::Inference(format!("the upscale model answered {c} channels, not 3"))),
    }
}

/// The integer factor between a tile and the model's answer to it.
fn scale_of((w, h): (u32, u32), (ow, oh): (u32, u32)) -> Result<u32, AiError> {
    if ow % w != 0 || oh % h != 0 || ow / w != oh / h || ow < w {
        return Err(AiError::Inference(format!("the model turned {w}×{h} into {ow}×{oh}, not an integer upscale")));
    }
    Ok(ow / w)
}

/// `piece` padded to `w` × `h` by repeating its last column and row.
fn pad_edge(piece: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (pw, ph) = piece.dimensions();
    RgbImage::from_fn(w, h, |x, y| *piece.get_pixel(x.min(pw - 1), y.min(ph - 1)))
}

/// `v` in 0..1 to 0..255, halves rounded up: `(v.clamp(0.0, 1.0) * 255.0).round() as u8` (equal
/// for every f32, NaN included: checked exhaustively), without `f32::round`, which is a libm call
/// on baseline x86-64 (turning a 1024 × 1024 output into pixels took three times as long with
/// it): adding 0.5 in f64 is exact for these values, and `as` truncates.
fn to_u8(v: f32) -> u8 {
    ((v.clamp(0.0, 1.0) * 255.0) as f64 + 0.5) as u8
}

/// The model's input: `rgb` as planar floats in 0..1.
fn planar_from_rgb(rgb: &RgbImage) -> Vec<f32> {
    let plane = rgb.width() as usize * rgb.height() as usize;
    let mut data = vec![0f32; 3 * plane];
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((p, r), g), b) in rgb.as_raw().chunks_exact(3).zip(r).zip(g).zip(b) {
        (*r, *g, *b) = (p[0] as f32 / 255.0, p[1] as f32 / 255.0, p[2] as f32 / 255.0);
    }
    data
}

/// An RGB image from planar floats in 0..1 (`data` holds three planes of `w` × `h`).
fn rgb_from_planar(w: u32, h: u32, data: &[f32]) -> RgbImage {
    let plane = w as usize * h as usize;
    let (r, rest) = data.split_at(plane);
    let (g, b) = rest.split_at(plane);
    let mut out = vec![0u8; 3 * plane];
    for (((p, r), g), b) in out.chunks_exact_mut(3).zip(r).zip(g).zip(&b[..plane]) {
        (p[0], p[1], p[2]) = (to_u8(*r), to_u8(*g), to_u8(*b));
    }
    RgbImage::from_raw(w, h, out).expect("three bytes a pixel")
}

/// A grey image from one plane of floats of any range, stretched to 0..255.
fn grey_stretched(w: u32, h: u32, data: &[f32]) -> GrayImage {
    let (lo, hi) = data.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    GrayImage::from_fn(w, h, |x, y| image::Luma([to_u8((data[(y * w + x) as usize] - lo) / span)]))
}

/// Decode an uploaded image (PNG or JPEG) to RGB; an image that does not decode or is larger
/// than [`MAX_INPUT_PIXELS`] is the client's error, with the reason.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, AiError> {
    let (w, h) = dimensions(bytes)?;
    // The pixels (16-bit RGBA at most) and what the header may take again.
    let reader = reader(bytes, u64::from(w) * u64::from(h) * 8 + HEADER_ALLOC)?;
    let image = reader.decode().map_err(|e| AiError::InvalidInput(format!("the image does not decode: {e}")))?;
    debug_assert_eq!((image.width(), image.height()), (w, h));
    Ok(image.into_rgb8())
}

/// What reading an image's header may allocate: a header's own chunks (a PNG's compressed ICC
/// profile, a few KiB in practice) are decompressed to read it, and a 1 MB PNG whose profile
/// inflates to 1 GiB took half a gigabyte and seconds under the `image` crate's default limit.
const HEADER_ALLOC: u64 = 16 << 20;

/// A reader of `bytes` in the format they look like, allowed `max_alloc` bytes (which bounds
/// what a header's chunks inflate to as well).
fn reader(bytes: &[u8], max_alloc: u64) -> Result<ImageReader<Cursor<&[u8]>>, AiError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| AiError::InvalidInput(format!("cannot read the image: {e}")))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    Ok(reader)
}

/// An uploaded image's (width, height), read from its header, refusing one over
/// [`MAX_INPUT_PIXELS`] or of no size: what a request is priced on. [`decode`] reads the header
/// this way first, so what the header holds is bounded there too.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), AiError> {
    let reader = reader(bytes, HEADER_ALLOC)?;
    if reader.format().is_none() {
        return Err(AiError::InvalidInput("the image is neither PNG nor JPEG".into()));
    }
    let (w, h) =
        reader.into_dimensions().map_err(|e| AiError::InvalidInput(format!("the image does not decode: {e}")))?;
    if w == 0 || h == 0 || w as u64 * h as u64 > MAX_INPUT_PIXELS {
        return Err(AiError::InvalidInput(format!(
            "the image is {w}×{h}; images of 1 to {MAX_INPUT_PIXELS} pixels are taken"
        )));
    }
    Ok((w, h))
}

/// `image` as PNG bytes.
pub fn encode_png(image: &DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("PNG encoding into memory does not fail");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_rounds_like_f32_round() {
        // Every f32 agrees (checked once exhaustively); here the values around each half step,
        // the ends and a spread of others.
        let round = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let mut values = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1.0, -1.0, 2.0, f32::MIN_POSITIVE];
        for k in 0..=255u32 {
            let half = (k as f32 + 0.5) / 255.0;
            values.extend((0..=128u32).map(|d| f32::from_bits(half.to_bits() - 64 + d)));
        }
        values.extend((0..=1_000_000u32).map(|i| i as f32 / 800_000.0 - 0.1));
        for v in values {
            assert_eq!(to_u8(v), round(v), "{v:e}");
        }
    }

    #[test]
    fn planar_conversions_keep_the_pixels() {
        let rgb = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(x * 37) as u8, (y * 51) as u8, (x * y * 9) as u8]));
        let planar = planar_from_rgb(&rgb);
        assert_eq!(planar.len(), 3 * 35);
        assert_eq!((planar[8], planar[35 + 8], planar[70 + 8]), (37.0 / 255.0, 51.0 / 255.0, 9.0 / 255.0));
        assert_eq!(rgb_from_planar(7, 5, &planar), rgb);
    }
}
