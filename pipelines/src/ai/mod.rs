//! AI inference for livepeer-rs: ONNX Runtime (through `ort`) turned into plain, synchronous
//! functions, beside transcoding and like it free of actors and async. An inference worker
//! thread owns a [`Runtime`] device and the models loaded on it.
//!
//! * [`runtime`]: the ONNX Runtime library, found through the config or `ORT_DYLIB_PATH`, and
//!   the device (CPU, or CUDA when configured).
//! * [`image`]: `upscale` (tiled) and `image-to-image` models.
//! * [`llm`]: chat with a decoder-only language model (ChatML, a KV cache, sampling, streaming).

pub mod error;
pub mod image;
mod io;
pub mod llm;
pub mod runtime;

pub use error::AiError;
pub use runtime::{Device, Runtime, RuntimeOptions};
