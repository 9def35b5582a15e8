//! Where a model builder finds its tensors: any file format that can name a
//! tensor, give its type, and serve its bytes in place.

use wisp_ops::TensorType;

use super::weights::{GgufWeights, WeightInfo};
use crate::backend::WeightStore;
use crate::EngineError;

/// Named, typed tensors served in place (GGUF, safetensors).
pub trait WeightSource: WeightStore {
    /// The tensor called `name` (in GGUF naming), if the file has it.
    fn info(&self, name: &str) -> Option<WeightInfo>;

    /// A tensor the model needs: present, of a dtype wisp computes with, of the expected shape.
    fn require(&self, name: &str, shape: &[usize]) -> Result<(usize, TensorType), EngineError> {
        let w = self.info(name).ok_or_else(|| EngineError::Tensor {
            name: name.into(),
            why: "missing from the model file".into(),
        })?;
        let ty = w.ty.clone().ok_or_else(|| EngineError::Tensor {
            name: name.into(),
            why: format!("dtype {} is not supported yet", w.file_dtype),
        })?;
        if ty.shape != shape {
            return Err(EngineError::Tensor {
                name: name.into(),
                why: format!("shape {:?}, expected {:?}", ty.shape, shape),
            });
        }
        Ok((w.id, ty))
    }
}

impl WeightSource for GgufWeights {
    fn info(&self, name: &str) -> Option<WeightInfo> {
        self.get(name).cloned()
    }
}
