//! Op package and op / parameter names from `QnnOpDef.h` (SDK 2.13, opset 1.24.0) for the ops a
//! llama / BERT graph is built from.
//!
//! QNN identifies op types and params by string, so a typo is only caught at `graphAddNode` time
//! on the device. Keeping the strings here, in one place and spelled as in the header, turns that
//! into a compile error. Note what the pinned opset lacks: there is no `RmsNorm` (newer SDKs add
//! it) and no RoPE op; both must be composed from the ops below.

/// The built-in op package.
pub const QNN_OP_PACKAGE_NAME_QTI_AISW: &str = "qti.aisw";
/// [`QNN_OP_PACKAGE_NAME_QTI_AISW`] as a C string, for op configs.
pub const QNN_OP_PACKAGE_NAME_QTI_AISW_C: &core::ffi::CStr = c"qti.aisw";

/// Opset version declared by the pinned `QnnOpDef.h`: major.
pub const QNN_OPSET_VERSION_MAJOR: u32 = 1;
/// Opset version declared by the pinned `QnnOpDef.h`: minor.
pub const QNN_OPSET_VERSION_MINOR: u32 = 24;
/// Opset version declared by the pinned `QnnOpDef.h`: patch.
pub const QNN_OPSET_VERSION_PATCH: u32 = 0;

/// Element-wise `a + b` with broadcasting.
pub const QNN_OP_ELEMENT_WISE_ADD: &str = "ElementWiseAdd";
/// Element-wise `a * b` with broadcasting.
pub const QNN_OP_ELEMENT_WISE_MULTIPLY: &str = "ElementWiseMultiply";
/// Element-wise `a - b` with broadcasting.
pub const QNN_OP_ELEMENT_WISE_SUBTRACT: &str = "ElementWiseSubtract";
/// Element-wise `a / b` with broadcasting.
pub const QNN_OP_ELEMENT_WISE_DIVIDE: &str = "ElementWiseDivide";
/// Element-wise `1 / sqrt(x)`.
pub const QNN_OP_ELEMENT_WISE_RSQRT: &str = "ElementWiseRsqrt";
/// Element-wise `exp(x)`.
pub const QNN_OP_ELEMENT_WISE_EXP: &str = "ElementWiseExp";

/// Activation selected by the `operation` param.
pub const QNN_OP_ELEMENT_WISE_NEURON: &str = "ElementWiseNeuron";
/// `ElementWiseNeuron` param: which activation.
pub const QNN_OP_ELEMENT_WISE_NEURON_PARAM_OPERATION: &str = "operation";
/// `ElementWiseNeuron` param: alpha (ELU, hard sigmoid).
pub const QNN_OP_ELEMENT_WISE_NEURON_PARAM_ALPHA: &str = "alpha";
/// `ElementWiseNeuron` param: beta (hard sigmoid, softplus).
pub const QNN_OP_ELEMENT_WISE_NEURON_PARAM_BETA: &str = "beta";
/// `ElementWiseNeuron` param: lower bound (RELU_MIN_MAX).
pub const QNN_OP_ELEMENT_WISE_NEURON_PARAM_MIN_VALUE: &str = "min_value";
/// `ElementWiseNeuron` param: upper bound (RELU_MIN_MAX).
pub const QNN_OP_ELEMENT_WISE_NEURON_PARAM_MAX_VALUE: &str = "max_value";
/// `ElementWiseNeuron` param: threshold (softplus).
pub const QNN_OP_ELEMENT_WISE_NEURON_PARAM_THRESHOLD: &str = "threshold";
/// `operation` value: ELU.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_ELU: u32 = 0;
/// `operation` value: GELU.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_GELU: u32 = 1;
/// `operation` value: hard sigmoid.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_HARD_SIGMOID: u32 = 2;
/// `operation` value: hard swish.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_HARD_SWISH: u32 = 3;
/// `operation` value: ReLU.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_RELU: u32 = 4;
/// `operation` value: ReLU clamped to `[min_value, max_value]`.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_RELU_MIN_MAX: u32 = 5;
/// `operation` value: sigmoid.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_SIGMOID: u32 = 6;
/// `operation` value: softplus.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_SOFTPLUS: u32 = 7;
/// `operation` value: tanh.
pub const QNN_OP_ELEMENT_WISE_NEURON_OPERATION_TANH: u32 = 8;

/// `y = x · Wᵀ + b`, weights laid out `[out, in]`.
pub const QNN_OP_FULLY_CONNECTED: &str = "FullyConnected";
/// `FullyConnected` param: keep the input's leading dimensions instead of flattening to 2-D.
pub const QNN_OP_FULLY_CONNECTED_PARAM_KEEP_DIMS: &str = "keep_dims";

/// Batched matrix product with broadcasting batch dimensions.
pub const QNN_OP_MAT_MUL: &str = "MatMul";
/// `MatMul` param: transpose the last two dims of input 0.
pub const QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN0: &str = "transpose_in0";
/// `MatMul` param: transpose the last two dims of input 1.
pub const QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN1: &str = "transpose_in1";

/// Softmax along one axis.
pub const QNN_OP_SOFTMAX: &str = "Softmax";
/// `Softmax` param: axis (default last).
pub const QNN_OP_SOFTMAX_PARAM_AXIS: &str = "axis";
/// `Softmax` param: input multiplier (default 1.0).
pub const QNN_OP_SOFTMAX_PARAM_BETA: &str = "beta";

/// Layer normalization with optional gamma (input 1) and beta (input 2).
pub const QNN_OP_LAYER_NORM: &str = "LayerNorm";
/// `LayerNorm` param: epsilon (default 0.001).
pub const QNN_OP_LAYER_NORM_PARAM_EPSILON: &str = "epsilon";
/// `LayerNorm` param: normalized axes (UINT_32 tensor).
pub const QNN_OP_LAYER_NORM_PARAM_AXES: &str = "axes";

/// Gather along an axis (embedding lookup).
pub const QNN_OP_GATHER: &str = "Gather";
/// `Gather` param: axis (default 0).
pub const QNN_OP_GATHER_PARAM_AXIS: &str = "axis";

/// Dimension permutation.
pub const QNN_OP_TRANSPOSE: &str = "Transpose";
/// `Transpose` param: permutation (UINT_32 tensor).
pub const QNN_OP_TRANSPOSE_PARAM_PERM: &str = "perm";

/// Reshape to the output tensor's dimensions.
pub const QNN_OP_RESHAPE: &str = "Reshape";
/// Float to fixed point, using the output's quantization.
pub const QNN_OP_QUANTIZE: &str = "Quantize";
/// Fixed point to float, using the input's quantization.
pub const QNN_OP_DEQUANTIZE: &str = "Dequantize";
/// Re-quantization between types, honouring both sides' quantization.
pub const QNN_OP_CONVERT: &str = "Convert";
/// GELU activation.
pub const QNN_OP_GELU: &str = "Gelu";
/// Sigmoid activation.
pub const QNN_OP_SIGMOID: &str = "Sigmoid";
/// Tanh activation.
pub const QNN_OP_TANH: &str = "Tanh";

/// Strided slice.
pub const QNN_OP_STRIDED_SLICE: &str = "StridedSlice";
/// `StridedSlice` param: `[rank, 3]` INT_32 tensor of (begin, end, stride).
pub const QNN_OP_STRIDED_SLICE_PARAM_RANGES: &str = "ranges";
/// `StridedSlice` param: bit i set = ignore begin of dim i.
pub const QNN_OP_STRIDED_SLICE_PARAM_BEGIN_MASK: &str = "begin_mask";
/// `StridedSlice` param: bit i set = ignore end of dim i.
pub const QNN_OP_STRIDED_SLICE_PARAM_END_MASK: &str = "end_mask";
/// `StridedSlice` param: bit i set = drop dim i (size 1).
pub const QNN_OP_STRIDED_SLICE_PARAM_SHRINK_AXES: &str = "shrink_axes";
/// `StridedSlice` param: bit i set = insert a new dim.
pub const QNN_OP_STRIDED_SLICE_PARAM_NEW_AXES_MASK: &str = "new_axes_mask";

/// Concatenation along an axis.
pub const QNN_OP_CONCAT: &str = "Concat";
/// `Concat` param: axis.
pub const QNN_OP_CONCAT_PARAM_AXIS: &str = "axis";
