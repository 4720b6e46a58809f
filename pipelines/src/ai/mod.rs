//! AI inference for livepeer-rs: ONNX Runtime (through `ort`) turned into plain, synchronous
//! functions, beside transcoding and like it free of actors and async. An inference worker
//! thread owns a [`Runtime`] device and the models loaded on it.
//!
//! * [`runtime`]: the ONNX Runtime library, found through the config or `ORT_DYLIB_PATH`, and
//!   the device (CPU, or CUDA when configured).
//! * [`image`]: `upscale` (tiled) and `image-to-image` models.
//! * [`ocr`]: `image-to-text` as OCR (PP-OCR's text detector and recogniser).
//! * [`llm`]: chat with a decoder-only language model (ChatML, a KV cache, sampling, streaming).
//! * [`models`]: the models a worker serves, warm and cold (least-recently-used past a memory
//!   budget), and [`ModelSet::infer`], which runs a request on the model it names.

pub mod error;
pub mod image;
mod io;
pub mod llm;
pub mod models;
pub mod ocr;
pub mod runtime;

pub use error::AiError;
pub use models::{Loading, ModelSet, ModelSpec};
pub use runtime::{Device, Runtime, RuntimeOptions};
