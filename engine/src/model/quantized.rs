//! Weights quantized in memory: the same conversion `wisp quantize` writes to
//! a file, served without the round trip through disk. Used to measure a
//! quantization's accuracy before writing it, and to check that the file
//! gives the same numbers.

use std::collections::HashMap;
use std::sync::Arc;

use wisp_ops::quant::{dequantize_row, quantize_row};
use wisp_ops::{DType, TensorType};

use super::source::WeightSource;
use super::weights::WeightInfo;
use crate::backend::{WeightStore, WeightsIdentity};
use crate::EngineError;

/// Whether a tensor of this name and shape is quantized to `target`: 2-D
/// `.weight` tensors with whole blocks per row, except position and
/// token-type embeddings (llama.cpp keeps those f32).
pub fn quantizes(name: &str, shape: &[usize], target: DType) -> bool {
    let keep_f32 = name.starts_with("position_embd") || name.starts_with("token_types");
    name.ends_with(".weight")
        && shape.len() == 2
        && !keep_f32
        && target.bytes_for(shape[1]).is_some()
}

/// The bytes of a tensor converted to `to`, row by row through f32 with the
/// reference quantizers (byte-exact with llama.cpp's).
pub fn convert(from: DType, data: &[u8], shape: &[usize], to: DType) -> Vec<u8> {
    if from == to {
        return data.to_vec();
    }
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let rows = shape.iter().product::<usize>() / cols;
    let (ib, ob) = (
        from.bytes_for(cols).unwrap_or(0),
        to.bytes_for(cols).unwrap_or(0),
    );
    let mut out = vec![0u8; rows * ob];
    let mut row = vec![0f32; cols];
    for r in 0..rows {
        dequantize_row(from, &data[r * ib..(r + 1) * ib], &mut row);
        quantize_row(to, &row, &mut out[r * ob..(r + 1) * ob]);
    }
    out
}

/// A model's tensors converted to a target type, held in memory.
pub struct QuantizedWeights {
    tensors: Vec<(String, TensorType, Vec<u8>)>,
    by_name: HashMap<String, usize>,
    identity: Arc<WeightsIdentity>,
}

impl QuantizedWeights {
    /// Converts `names` (with their shapes) of `src`: eligible weights to
    /// `target`, everything else to f32.
    pub fn new(
        src: &dyn WeightSource,
        names: &[(String, Vec<usize>)],
        target: DType,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<QuantizedWeights, EngineError> {
        let mut tensors = Vec::with_capacity(names.len());
        let mut by_name = HashMap::new();
        for (i, (name, shape)) in names.iter().enumerate() {
            let (id, ty) = src.require(name, shape)?;
            let to = if quantizes(name, shape, target) {
                target
            } else {
                DType::F32
            };
            let bytes = convert(ty.dtype, src.data(id), shape, to);
            by_name.insert(name.clone(), tensors.len());
            tensors.push((name.clone(), TensorType::new(to, shape), bytes));
            progress(i + 1, names.len());
        }
        Ok(QuantizedWeights {
            tensors,
            by_name,
            identity: WeightsIdentity::new(),
        })
    }

    /// (name, type, bytes) of every tensor, in the order given.
    pub fn tensors(&self) -> &[(String, TensorType, Vec<u8>)] {
        &self.tensors
    }
}

impl WeightStore for QuantizedWeights {
    fn data(&self, id: usize) -> &[u8] {
        &self.tensors[id].2
    }

    fn identity(&self) -> Option<&Arc<WeightsIdentity>> {
        Some(&self.identity)
    }
}

impl WeightSource for QuantizedWeights {
    fn info(&self, name: &str) -> Option<WeightInfo> {
        let id = *self.by_name.get(name)?;
        let (_, ty, _) = &self.tensors[id];
        // Owned Vec<u8> data: f32 views need 4-byte alignment, which the
        // global allocator gives for these sizes; check rather than assume.
        let misaligned =
            ty.dtype == DType::F32 && !(self.tensors[id].2.as_ptr() as usize).is_multiple_of(4);
        Some(WeightInfo {
            id,
            ty: (!misaligned).then(|| ty.clone()),
            file_dtype: ty.dtype.name(),
        })
    }
}
