//! The ONNX Runtime library, loaded once per process from a file (`ort`'s `load-dynamic`: nothing
//! is downloaded at build time), and the device sessions run on.
//!
//! The library is the one the config names (`onnxruntime_path`), else the one `ORT_DYLIB_PATH`
//! names; `make setup` installs one from the `onnxruntime` wheel on PyPI at
//! `build/onnxruntime/libonnxruntime.so`. Any ONNX Runtime from 1.24 on loads.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::AiError;

/// The environment variable naming the library when the config does not.
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";

/// Where sessions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// A CUDA GPU by index (ONNX Runtime's CUDA execution provider, from `onnxruntime-gpu`).
    Cuda(i32),
}

impl FromStr for Device {
    type Err = String;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .filter(|n: &i32| *n >= 0)
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: expected \"cpu\", \"cuda\" or \"cuda:N\"")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// How to start the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// The library file; `None` reads [`LIBRARY_ENV`].
    pub library: Option<PathBuf>,
    pub device: Device,
    /// Threads one session uses for one operator (ONNX Runtime's intra-op threads); 0 lets
    /// ONNX Runtime choose (one per core).
    pub threads: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { library: None, device: Device::Cpu, threads: 0 }
    }
}

/// The process's one ONNX Runtime environment (ONNX Runtime allows no second) and the library
/// it came from.
static ENVIRONMENT: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

/// A loaded ONNX Runtime and the device its sessions run on. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Runtime {
    env: ort::environment::Environment,
    library: PathBuf,
    device: Device,
    threads: usize,
}

impl Runtime {
    /// Load the library and check the device. Errors name what is missing and how to provide
    /// it; nothing here panics.
    pub fn start(opts: &RuntimeOptions) -> Result<Arc<Runtime>, AiError> {
        let library = find_library(opts.library.as_deref())?;
        let env = environment(&library)?;
        if let Device::Cuda(_) = opts.device
            && !ep::CUDA::is_available().unwrap_or(false)
        {
            return Err(AiError::Device(format!(
                "device {} needs ONNX Runtime's CUDA execution provider, which {} does not have \
                 (libonnxruntime_providers_cuda.so): point onnxruntime_path at the \
                 libonnxruntime.so of the onnxruntime-gpu wheel",
                opts.device,
                library.display()
            )));
        }
        Ok(Arc::new(Runtime { env, library, device: opts.device, threads: opts.threads }))
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn library(&self) -> &Path {
        &self.library
    }

    /// A session for the model at `path` on this runtime's device. On CUDA the provider must
    /// register (a missing CUDA library is an error naming it, not a silent fall-back to the
    /// CPU).
    pub fn session(&self, path: &Path) -> Result<Session, String> {
        let mut builder = Session::builder(&self.env)
            .map_err(|e| e.to_string())?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| e.to_string())?;
        if self.threads > 0 {
            builder = builder.with_intra_threads(self.threads).map_err(|e| e.to_string())?;
        }
        if let Device::Cuda(id) = self.device {
            builder = builder
                .with_execution_providers([ep::CUDA::default().with_device_id(id).build().error_on_failure()])
                .map_err(|e| format!("cannot use {}: {e}", self.device))?;
        }
        builder.commit_from_file(path).map_err(|e| e.to_string())
    }
}

/// The process's environment, loading `library` the first time; later runtimes must name the
/// same library.
fn environment(library: &Path) -> Result<ort::environment::Environment, AiError> {
    let mut global = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((loaded, env)) = global.as_ref() {
        if loaded != library {
            return Err(AiError::RuntimeLoad {
                path: library.into(),
                reason: format!("this process already runs ONNX Runtime from {}", loaded.display()),
            });
        }
        return Ok(env.clone());
    }
    let load = |e: &dyn std::fmt::Display| AiError::RuntimeLoad { path: library.into(), reason: e.to_string() };
    let env = ort::init_from(library).map_err(|e| load(&e))?.with_name("livepeer").build().map_err(|e| load(&e))?;
    *global = Some((library.to_path_buf(), env.clone()));
    Ok(env)
}

/// The library file: the configured one, else [`LIBRARY_ENV`]'s; it must exist.
fn find_library(configured: Option<&Path>) -> Result<PathBuf, AiError> {
    let (path, source) = match configured {
        Some(p) => (p.to_path_buf(), "onnxruntime_path"),
        None => match std::env::var_os(LIBRARY_ENV) {
            Some(p) if !p.is_empty() => (PathBuf::from(p), LIBRARY_ENV),
            _ => {
                return Err(AiError::RuntimeMissing(format!(
                    "set the config key onnxruntime_path or the environment variable {LIBRARY_ENV} \
                     to a libonnxruntime.so (make setup installs one at \
                     build/onnxruntime/libonnxruntime.so, from the onnxruntime wheel on PyPI)"
                )));
            }
        },
    };
    if !path.is_file() {
        return Err(AiError::RuntimeMissing(format!(
            "{} (named by {source}) is not a file; set onnxruntime_path or {LIBRARY_ENV} to a \
             libonnxruntime.so",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", ""] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_library_names_the_key_and_the_variable() {
        let err = find_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/libonnxruntime.so") && msg.contains("onnxruntime_path"), "{msg}");
        assert!(msg.contains(LIBRARY_ENV), "{msg}");
    }
}
