//! AI inference for livepeer-rs: ONNX Runtime (through `ort`) turned into plain, synchronous
//! functions, beside transcoding and like it free of actors and async. An inference worker
//! thread owns a [`Runtime`] device and the models loaded on it.
//!
//! * [`runtime`]: the ONNX Runtime library, found through the config or `ORT_DYLIB_PATH`, and
//!   the device (CPU, or CUDA when configured).
//! * [`image`]: `upscale` (tiled) and `image-to-image` models.
//! * [`ocr`]: `image-to-text` as OCR (PP-OCR's text detector and recogniser).
//! * [`safety`]: the safety check (NudeNet) that sets an image response's `nsfw`; without a
//!   safety model `nsfw` is always false.
//! * [`llm`]: chat with a decoder-only language model (ChatML, a KV cache, sampling, streaming).
//! * [`models`]: the models a worker serves, warm and cold (least-recently-used past a memory
//!   budget), and [`ModelSet::infer`], which runs a request on the model it names.
//!
//! `cargo bench -p lp-pipelines --bench ai` upscales a 512 × 512 image ×2 with an ESPCN-like
//! model through [`image::ImageModel::upscale`] and through onnxruntime's Python API (the same
//! library, threads and input; the same floats out). On the 2-core development VM, busy with
//! other builds, ours took 0.79–0.86 of Python's wall time at 2 threads, the bare `session.run`
//! being about equal (0.93–1.0): the difference is the conversion to and from floats, a few ms here
//! against 20–25 ms in numpy.

pub mod error;
pub mod image;
mod io;
pub mod llm;
pub mod models;
pub mod ocr;
pub mod runtime;
pub mod safety;

pub use error::AiError;
pub use models::{LOAD_RETRY_AFTER, Loading, ModelSet, ModelSpec};
pub use runtime::{Device, Runtime, RuntimeOptions};
pub use safety::SafetyModel;
