//! Tensor types and borrowed views handed to kernels.

use crate::dtype::DType;

/// Element type and shape of a value. Shapes are outermost-first (row-major):
/// a weight stored in GGUF with ne = [576, 1536] has shape [1536, 576].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    /// A type from dtype and shape.
    pub fn new(dtype: DType, shape: &[usize]) -> TensorType {
        TensorType {
            dtype,
            shape: shape.to_vec(),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Length of the innermost dimension (1 for scalars).
    pub fn row_len(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Number of rows (product of all but the innermost dimension).
    pub fn rows(&self) -> usize {
        let n = self.shape.len();
        if n == 0 {
            1
        } else {
            self.shape[..n - 1].iter().product()
        }
    }

    /// Bytes of the whole tensor, or `None` if rows are not whole blocks.
    pub fn bytes(&self) -> Option<usize> {
        self.dtype
            .bytes_for(self.row_len())?
            .checked_mul(self.rows())
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape)
    }
}

/// A read-only tensor: its type and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub ty: &'a TensorType,
    pub data: &'a [u8],
}

/// A writable tensor: its type and its bytes.
#[derive(Debug)]
pub struct TensorViewMut<'a> {
    pub ty: &'a TensorType,
    pub data: &'a mut [u8],
}

impl<'a> TensorView<'a> {
    /// The data as f32 (the arena and the file keep f32 data 4-byte aligned).
    pub fn f32(&self) -> &'a [f32] {
        bytemuck::cast_slice(self.data)
    }

    /// The data as i32.
    pub fn i32(&self) -> &'a [i32] {
        bytemuck::cast_slice(self.data)
    }
}

impl TensorViewMut<'_> {
    /// The data as f32.
    pub fn f32(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(self.data)
    }
}
