//! Checking a model's inputs and outputs against what its pipeline feeds and reads, when it
//! loads: a model that does not fit is refused then, with the mismatch named, instead of failing
//! every request.

use ort::session::Session;
use ort::value::{Outlet, TensorElementType};

/// One tensor a pipeline needs: its element type and rank, and the dimensions that must have a
/// given size (`None`: any size; a model's dynamic dimension also fits any).
pub struct Want {
    pub ty: TensorElementType,
    pub dims: &'static [Option<i64>],
}

/// A tensor's element type and shape (-1 for a dynamic dimension), if it is a tensor.
pub fn tensor(outlet: &Outlet) -> Option<(TensorElementType, Vec<i64>)> {
    let dtype = outlet.dtype();
    Some((dtype.tensor_type()?, dtype.tensor_shape()?.to_vec()))
}

/// Why `outlet` is not what `want` says, if it is not.
pub fn mismatch(outlet: &Outlet, want: &Want) -> Option<String> {
    let name = outlet.name();
    let Some((ty, shape)) = tensor(outlet) else {
        return Some(format!("{name} is not a tensor"));
    };
    if ty != want.ty {
        return Some(format!("{name} holds {ty:?}, the pipeline needs {:?}", want.ty));
    }
    if shape.len() != want.dims.len() {
        return Some(format!(
            "{name} has shape {shape:?} (rank {}), the pipeline needs rank {}",
            shape.len(),
            want.dims.len()
        ));
    }
    for (axis, (have, need)) in shape.iter().zip(want.dims).enumerate() {
        if let Some(need) = need
            && *have >= 0
            && have != need
        {
            return Some(format!("{name} has {have} at axis {axis} (shape {shape:?}), the pipeline needs {need}"));
        }
    }
    None
}

/// A readable list of a session's inputs and outputs, for errors.
pub fn describe(session: &Session) -> String {
    let list = |outlets: &[Outlet]| {
        outlets
            .iter()
            .map(|o| match tensor(o) {
                Some((ty, shape)) => format!("{} {ty:?}{shape:?}", o.name()),
                None => format!("{} (not a tensor)", o.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("inputs [{}], outputs [{}]", list(session.inputs()), list(session.outputs()))
}
