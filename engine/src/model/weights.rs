//! The model file's tensors as the graph sees them: name → (store id, type).

use std::collections::HashMap;
use std::sync::Arc;

use wisp_formats::GgufFile;
use wisp_ops::{DType, TensorType};

use crate::backend::{WeightStore, WeightsIdentity};
use crate::EngineError;

/// A tensor the model file holds, typed for the graph.
#[derive(Clone, Debug)]
pub struct WeightInfo {
    pub id: usize,
    /// `None` when wisp cannot compute with the file's dtype (reported if used).
    pub ty: Option<TensorType>,
    pub file_dtype: &'static str,
}

/// The weights of a GGUF file, served in place from the map.
pub struct GgufWeights {
    file: Arc<GgufFile>,
    by_name: HashMap<String, WeightInfo>,
    identity: Arc<WeightsIdentity>,
}

impl GgufWeights {
    /// Indexes the file's tensors; checks f32 data alignment so kernels can view it as f32.
    pub fn new(file: Arc<GgufFile>) -> Result<GgufWeights, EngineError> {
        let mut by_name = HashMap::new();
        for (id, t) in file.tensors().iter().enumerate() {
            let dtype = DType::from_ggml_id(t.dtype.id());
            let shape: Vec<usize> = t.dims.iter().rev().map(|&d| d as usize).collect();
            if let Some(DType::F32 | DType::I32) = dtype {
                let addr = file.tensor_data(id).as_ptr() as usize;
                if !addr.is_multiple_of(4) {
                    return Err(EngineError::Tensor {
                        name: t.name.clone(),
                        why: "f32 data is not 4-byte aligned".into(),
                    });
                }
            }
            by_name.insert(
                t.name.clone(),
                WeightInfo {
                    id,
                    ty: dtype.map(|d| TensorType::new(d, &shape)),
                    file_dtype: t.dtype.name(),
                },
            );
        }
        Ok(GgufWeights {
            file,
            by_name,
            identity: WeightsIdentity::new(),
        })
    }

    /// The underlying file.
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// A tensor by name, if the file has it.
    pub fn get(&self, name: &str) -> Option<&WeightInfo> {
        self.by_name.get(name)
    }
}

impl WeightStore for GgufWeights {
    fn data(&self, id: usize) -> &[u8] {
        self.file.tensor_data(id)
    }

    fn identity(&self) -> Option<&Arc<WeightsIdentity>> {
        Some(&self.identity)
    }
}
