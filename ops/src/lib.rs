//! wisp's vocabulary of computation: element types and their block layouts,
//! the op set with its shape rules, and the scalar reference kernels.
//!
//! The reference kernels are the oracle: plain, obviously-correct loops
//! (f64 accumulation where sums are long) that every backend — the SIMD CPU
//! backend and each NPU backend — is tested against.

pub mod dtype;
pub mod op;
pub mod quant;
pub mod reference;
pub mod tensor;

pub use dtype::DType;
pub use op::{Op, OpError, RopeMode};
pub use tensor::{TensorType, TensorView, TensorViewMut};
