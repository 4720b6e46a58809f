//! upscale and image-to-image on ONNX Runtime, with models `make setup` makes
//! (scripts/models/image.py): known pixels, tiling equal to no tiling, models refused at load.
//!
//! The binary's allocator notes the largest allocation each thread makes, so that a test can
//! show what reading an image's header costs.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;

use image::{Rgb, RgbImage};
use lp_pipelines::ai::image::{self as ai_image, ImageModel, ImageTask};
use lp_pipelines::ai::{AiError, Runtime, RuntimeOptions};

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, noting on each thread the largest block it was asked for.
struct NotesLargest;

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

// SAFETY: every call is passed on to the system allocator unchanged; `note` only writes a
// const-initialized thread-local cell (no allocation, no lazy initialization).
unsafe impl GlobalAlloc for NotesLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is System's, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: NotesLargest = NotesLargest;

/// `f`'s result and the largest allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

fn runtime() -> Arc<Runtime> {
    Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)")
}

fn model(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)")).join(name)
}

fn load(name: &str, task: ImageTask) -> ImageModel {
    ImageModel::load(&runtime(), name, &model(name), task).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An image whose every pixel differs from its neighbours.
fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7 + y * 3) as u8, ((x * 13) ^ (y * 5)) as u8, (x + y * 11) as u8]))
}

#[test]
fn nearest_x2_upscale_has_the_known_pixels() {
    let mut m = load("upscale_x2_nearest.onnx", ImageTask::Upscale);
    let src = pattern(5, 3);
    let out = m.upscale(&src, ai_image::DEFAULT_TILE).unwrap();
    assert_eq!(out.dimensions(), (10, 6));
    for (x, y, p) in out.enumerate_pixels() {
        assert_eq!(p, src.get_pixel(x / 2, y / 2), "pixel {x},{y}");
    }
}

#[test]
fn a_tiled_upscale_equals_the_untiled_one() {
    let mut m = load("upscale_x2_blur.onnx", ImageTask::Upscale);
    let src = pattern(300, 170);
    let whole = m.upscale(&src, 1024).unwrap();
    let tiled = m.upscale(&src, 64).unwrap();
    assert_eq!(whole.dimensions(), (600, 340));
    assert_eq!(tiled.dimensions(), (600, 340));
    let differing = whole.pixels().zip(tiled.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "tiles of 64 px with overlap must equal one pass");
    // The overlap is what makes them equal: without it the blur sees the tile's edge.
    let flat_blur = RgbImage::from_pixel(300, 170, Rgb([200, 100, 50]));
    let up = m.upscale(&flat_blur, 64).unwrap();
    assert_eq!(up.get_pixel(128, 128), &Rgb([200, 100, 50]), "no seam inside the image");
}

#[test]
fn an_upscale_past_the_output_limit_is_refused_before_it_is_made() {
    let mut m = load("upscale_x3_fixed.onnx", ImageTask::Upscale);
    // 3000 × 3000 × 3 = 9000 × 9000, over 8192 × 8192.
    let src = RgbImage::new(3000, 3000);
    let err = m.upscale(&src, ai_image::DEFAULT_TILE).unwrap_err();
    assert!(matches!(err, AiError::InvalidInput(_)) && err.to_string().contains("9000×9000"), "{err}");
}

#[test]
fn a_fixed_size_model_is_tiled_at_its_size() {
    let mut m = load("upscale_x3_fixed.onnx", ImageTask::Upscale);
    let src = RgbImage::from_pixel(150, 100, Rgb([10, 120, 240]));
    let out = m.upscale(&src, ai_image::DEFAULT_TILE).unwrap();
    assert_eq!(out.dimensions(), (450, 300));
    for (x, y) in [(3, 3), (100, 100), (200, 150), (300, 250), (440, 290)] {
        assert_eq!(out.get_pixel(x, y), &Rgb([10, 120, 240]), "pixel {x},{y}");
    }
}

#[test]
fn image_to_image_models_map_pixels() {
    let src = pattern(40, 30);
    let out = load("invert.onnx", ImageTask::ImageToImage).transform(&src).unwrap().into_rgb8();
    assert_eq!(out.dimensions(), (40, 30));
    for (x, y, p) in out.enumerate_pixels() {
        let s = src.get_pixel(x, y);
        assert_eq!(p, &Rgb([255 - s[0], 255 - s[1], 255 - s[2]]), "pixel {x},{y}");
    }
    // A one-channel output (a mask, a depth map) comes back grey, stretched to 0..255.
    let ramp = RgbImage::from_fn(256, 2, |x, _| Rgb([x as u8; 3]));
    let mask = load("luma_mask.onnx", ImageTask::ImageToImage).transform(&ramp).unwrap().into_luma8();
    assert_eq!(mask.get_pixel(0, 0)[0], 0);
    assert_eq!(mask.get_pixel(255, 1)[0], 255);
    assert!((mask.get_pixel(128, 0)[0] as i32 - 128).abs() <= 1);
}

#[test]
fn a_model_that_does_not_fit_is_refused_at_load_with_the_reason() {
    for task in [ImageTask::Upscale, ImageTask::ImageToImage] {
        let err = ImageModel::load(&runtime(), "bad", &model("mismatch_int_input.onnx"), task).err().unwrap();
        let AiError::ModelMismatch { ref reason, .. } = err else { panic!("{err}") };
        assert!(reason.contains("ids") && reason.contains("Int64"), "{err}");
    }
    // A 1-channel output is no upscale.
    let err = ImageModel::load(&runtime(), "mask", &model("luma_mask.onnx"), ImageTask::Upscale).err().unwrap();
    assert!(err.to_string().contains("1 channels"), "{err}");
    let err = ImageModel::load(&runtime(), "gone", &model("nothing-here.onnx"), ImageTask::Upscale).err().unwrap();
    assert!(matches!(err, AiError::ModelLoad { .. }), "{err}");
}

#[test]
fn bad_images_are_refused_with_the_reason() {
    let err = ai_image::decode(b"definitely not an image").unwrap_err();
    assert!(matches!(err, AiError::InvalidInput(_)), "{err}");
    // A PNG header that claims 100000 × 100000 pixels is refused before any allocation.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\r".to_vec();
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(b"\0\0\0\0IDAT");
    png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
    let err = ai_image::dimensions(&png).unwrap_err();
    assert!(err.to_string().contains("100000×100000"), "{err}");
    let ok = ai_image::encode_png(&::image::DynamicImage::ImageRgb8(pattern(9, 4)));
    assert_eq!(ai_image::dimensions(&ok).unwrap(), (9, 4));
    assert_eq!(ai_image::decode(&ok).unwrap(), pattern(9, 4));
}

/// A small PNG whose ICC profile inflates to 64 MiB is read inflating about 16 MiB of it at most
/// of it (the `image` crate's default limit let a 1 MiB file inflate 512 MiB, for seconds, on
/// every request; png drops a profile past its limit); its pixels decode as any PNG's.
#[test]
fn reading_an_images_header_inflates_16_mib_at_most() {
    use ::image::ImageEncoder as _;
    let png_with_profile = |profile_bytes: usize| {
        let mut out = Vec::new();
        let mut encoder = ::image::codecs::png::PngEncoder::new(&mut out);
        encoder.set_icc_profile(vec![0; profile_bytes]).unwrap();
        encoder.write_image(pattern(8, 8).as_raw(), 8, 8, ::image::ExtendedColorType::Rgb8).unwrap();
        out
    };
    let bomb = png_with_profile(64 << 20);
    assert!(bomb.len() < 256 << 10, "{} bytes", bomb.len());
    let (dims, largest) = largest_allocation(|| ai_image::dimensions(&bomb));
    assert_eq!(dims.unwrap(), (8, 8));
    assert!(largest <= 24 << 20, "reading the header allocated {largest} bytes at once");
    let (pixels, largest) = largest_allocation(|| ai_image::decode(&bomb));
    assert_eq!(pixels.unwrap(), pattern(8, 8));
    assert!(largest <= 24 << 20, "decoding allocated {largest} bytes at once");
}

/// PNG's chunk checksum (CRC-32, ISO 3309).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
