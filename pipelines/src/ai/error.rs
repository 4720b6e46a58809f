//! What can go wrong in AI inference, from a missing runtime to a request a model cannot take.

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AiError {
    /// No ONNX Runtime library was named, or the one named is not there.
    #[error("ONNX Runtime not found: {0}")]
    RuntimeMissing(String),
    /// The library is there but does not load (not ONNX Runtime, too old, a missing dependency).
    #[error("cannot load ONNX Runtime from {}: {reason}", path.display())]
    RuntimeLoad { path: PathBuf, reason: String },
    /// The configured device cannot be used (no CUDA provider library, no GPU).
    #[error("{0}")]
    Device(String),
    /// A model file is missing or ONNX Runtime refused it.
    #[error("model {model_id}: cannot load {}: {reason}", path.display())]
    ModelLoad { model_id: String, path: PathBuf, reason: String },
    /// A model's inputs or outputs are not what its pipeline feeds and reads.
    #[error("model {model_id} does not fit the {pipeline} pipeline: {reason}")]
    ModelMismatch { model_id: String, pipeline: String, reason: String },
    /// The model is not one this worker serves.
    #[error("model {0} is not served here")]
    UnknownModel(String),
    /// A cold model that does not fit in the memory budget even with every other cold model
    /// evicted.
    #[error("model {model_id} needs {needed_mb} MB, over the {budget_mb} MB left for cold models")]
    OverBudget { model_id: String, needed_mb: u64, budget_mb: u64 },
    /// The request cannot be run as sent (an image that does not decode, one too large): the
    /// client's fault, a 400.
    #[error("{0}")]
    InvalidInput(String),
    /// ONNX Runtime failed while running the model.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl AiError {
    /// Whether the request itself is at fault (a 400), not the worker.
    pub fn is_client_error(&self) -> bool {
        matches!(self, AiError::InvalidInput(_) | AiError::UnknownModel(_))
    }
}

impl From<ort::Error> for AiError {
    fn from(e: ort::Error) -> Self {
        AiError::Inference(e.to_string())
    }
}
