//! The core value types of `QnnTypes.h` (SDK 2.13): data types, quantization parameters,
//! tensors, scalars, params and op configs, with the header's exact field order.
//!
//! C enums are bound as `u32` type aliases plus constants, not Rust enums: every QNN enum is forced
//! to 32 bits (`..._UNDEFINED = 0x7FFFFFFF`), and a backend may hand back values newer than these
//! headers, which a Rust enum could not represent soundly. C unnamed unions become named Rust
//! unions (`Qnn_TensorV1_Data_t`, ...) with the header's member names. Each `*_INIT` constant
//! mirrors the header's initializer macro, so code built on these types starts from the same
//! defaults as C code does.
//!
//! Sizes on 64-bit targets (asserted in `tests/layout.rs`): `Qnn_QuantizeParams_t` 40,
//! `Qnn_TensorV1_t` 112, `Qnn_Tensor_t` 120 (v1 only in this generation — there is no
//! `Qnn_TensorV2_t` in SDK 2.13), `Qnn_Scalar_t` 8, `Qnn_Param_t` 136, `Qnn_OpConfigV1_t` 72,
//! `Qnn_OpConfig_t` 80.

use core::ffi::{c_char, c_void};
use core::ptr;

use crate::common::Qnn_MemHandle_t;

// ---- Qnn_DataType_t ----

/// Element type of a tensor or scalar. The high byte is the kind (0 signed int, 1 unsigned int,
/// 2 float, 3 signed fixed point, 4 unsigned fixed point, 5 bool), the low byte the bit width in
/// hex-looking decimal (0x08, 0x16, 0x32, 0x64). "Fixed point" means quantized.
pub type Qnn_DataType_t = u32;
/// 8-bit signed integer.
pub const QNN_DATATYPE_INT_8: Qnn_DataType_t = 0x0008;
/// 16-bit signed integer.
pub const QNN_DATATYPE_INT_16: Qnn_DataType_t = 0x0016;
/// 32-bit signed integer.
pub const QNN_DATATYPE_INT_32: Qnn_DataType_t = 0x0032;
/// 64-bit signed integer.
pub const QNN_DATATYPE_INT_64: Qnn_DataType_t = 0x0064;
/// 8-bit unsigned integer.
pub const QNN_DATATYPE_UINT_8: Qnn_DataType_t = 0x0108;
/// 16-bit unsigned integer.
pub const QNN_DATATYPE_UINT_16: Qnn_DataType_t = 0x0116;
/// 32-bit unsigned integer.
pub const QNN_DATATYPE_UINT_32: Qnn_DataType_t = 0x0132;
/// 64-bit unsigned integer.
pub const QNN_DATATYPE_UINT_64: Qnn_DataType_t = 0x0164;
/// IEEE half precision.
pub const QNN_DATATYPE_FLOAT_16: Qnn_DataType_t = 0x0216;
/// IEEE single precision.
pub const QNN_DATATYPE_FLOAT_32: Qnn_DataType_t = 0x0232;
/// Signed 8-bit quantized.
pub const QNN_DATATYPE_SFIXED_POINT_8: Qnn_DataType_t = 0x0308;
/// Signed 16-bit quantized.
pub const QNN_DATATYPE_SFIXED_POINT_16: Qnn_DataType_t = 0x0316;
/// Signed 32-bit quantized (typically biases).
pub const QNN_DATATYPE_SFIXED_POINT_32: Qnn_DataType_t = 0x0332;
/// Unsigned 8-bit quantized (the usual HTP activation type).
pub const QNN_DATATYPE_UFIXED_POINT_8: Qnn_DataType_t = 0x0408;
/// Unsigned 16-bit quantized.
pub const QNN_DATATYPE_UFIXED_POINT_16: Qnn_DataType_t = 0x0416;
/// Unsigned 32-bit quantized.
pub const QNN_DATATYPE_UFIXED_POINT_32: Qnn_DataType_t = 0x0432;
/// 8-bit boolean: 0 is false, anything else true.
pub const QNN_DATATYPE_BOOL_8: Qnn_DataType_t = 0x0508;
/// Unset / unknown.
pub const QNN_DATATYPE_UNDEFINED: Qnn_DataType_t = 0x7FFF_FFFF;

/// Size in bytes of one element of `data_type`, or `None` for an unknown type.
pub const fn data_type_size(data_type: Qnn_DataType_t) -> Option<usize> {
    Some(match data_type {
        QNN_DATATYPE_INT_8
        | QNN_DATATYPE_UINT_8
        | QNN_DATATYPE_SFIXED_POINT_8
        | QNN_DATATYPE_UFIXED_POINT_8
        | QNN_DATATYPE_BOOL_8 => 1,
        QNN_DATATYPE_INT_16
        | QNN_DATATYPE_UINT_16
        | QNN_DATATYPE_FLOAT_16
        | QNN_DATATYPE_SFIXED_POINT_16
        | QNN_DATATYPE_UFIXED_POINT_16 => 2,
        QNN_DATATYPE_INT_32
        | QNN_DATATYPE_UINT_32
        | QNN_DATATYPE_FLOAT_32
        | QNN_DATATYPE_SFIXED_POINT_32
        | QNN_DATATYPE_UFIXED_POINT_32 => 4,
        QNN_DATATYPE_INT_64 | QNN_DATATYPE_UINT_64 => 8,
        _ => return None,
    })
}

/// Whether `data_type` is one of the quantized ("fixed point") types that need quantize params.
pub const fn is_fixed_point(data_type: Qnn_DataType_t) -> bool {
    matches!(data_type >> 8, 0x03 | 0x04) && data_type != QNN_DATATYPE_UNDEFINED
}

// ---- Qnn_Precision_t ----

/// Math precision a backend may be asked to use (HTP graph config `PRECISION`).
pub type Qnn_Precision_t = u32;
/// 32-bit float math.
pub const QNN_PRECISION_FLOAT32: Qnn_Precision_t = 0;
/// 16-bit float math (what HTP runs float graphs with).
pub const QNN_PRECISION_FLOAT16: Qnn_Precision_t = 1;
/// Unset.
pub const QNN_PRECISION_UNDEFINED: Qnn_Precision_t = 0x7FFF_FFFF;

// ---- Qnn_TensorType_t ----

/// Who reads and writes a tensor.
pub type Qnn_TensorType_t = u32;
/// Graph input written by the application.
pub const QNN_TENSOR_TYPE_APP_WRITE: Qnn_TensorType_t = 0;
/// Graph output read by the application.
pub const QNN_TENSOR_TYPE_APP_READ: Qnn_TensorType_t = 1;
/// Read and written by the application (connects graphs; not allowed as a graph tensor).
pub const QNN_TENSOR_TYPE_APP_READWRITE: Qnn_TensorType_t = 2;
/// Intermediate value, private to the graph.
pub const QNN_TENSOR_TYPE_NATIVE: Qnn_TensorType_t = 3;
/// Constant data (weights), copied at creation.
pub const QNN_TENSOR_TYPE_STATIC: Qnn_TensorType_t = 4;
/// Placeholder for an omitted optional input.
pub const QNN_TENSOR_TYPE_NULL: Qnn_TensorType_t = 5;
/// Unset.
pub const QNN_TENSOR_TYPE_UNDEFINED: Qnn_TensorType_t = 0x7FFF_FFFF;

// ---- Qnn_ParamType_t ----

/// Whether a `Qnn_Param_t` carries a scalar or a tensor.
pub type Qnn_ParamType_t = u32;
/// `scalarParam` is valid.
pub const QNN_PARAMTYPE_SCALAR: Qnn_ParamType_t = 0;
/// `tensorParam` is valid (a STATIC tensor already created in the graph).
pub const QNN_PARAMTYPE_TENSOR: Qnn_ParamType_t = 1;
/// Unset (note: 0xFFFFFFFF here, unlike the other enums).
pub const QNN_PARAMTYPE_UNDEFINED: Qnn_ParamType_t = 0xFFFF_FFFF;

// ---- Qnn_Definition_t ----

/// Where a definition (here: quantization encoding) comes from.
pub type Qnn_Definition_t = u32;
/// The backend decides.
pub const QNN_DEFINITION_IMPL_GENERATED: Qnn_Definition_t = 0;
/// The client's values are to be used (set for quantized tensors).
pub const QNN_DEFINITION_DEFINED: Qnn_Definition_t = 1;
/// Not set (use for float tensors).
pub const QNN_DEFINITION_UNDEFINED: Qnn_Definition_t = 0x7FFF_FFFF;

// ---- Qnn_Priority_t ----

/// Scheduling priority of a context or graph.
pub type Qnn_Priority_t = u32;
/// Low priority.
pub const QNN_PRIORITY_LOW: Qnn_Priority_t = 0;
/// Normal priority (the default).
pub const QNN_PRIORITY_NORMAL: Qnn_Priority_t = 100;
/// The default priority, equal to [`QNN_PRIORITY_NORMAL`].
pub const QNN_PRIORITY_DEFAULT: Qnn_Priority_t = QNN_PRIORITY_NORMAL;
/// Above normal; may be silently treated as normal by the platform.
pub const QNN_PRIORITY_NORMAL_HIGH: Qnn_Priority_t = 150;
/// High; may be silently treated as normal by the platform.
pub const QNN_PRIORITY_HIGH: Qnn_Priority_t = 200;
/// Unset.
pub const QNN_PRIORITY_UNDEFINED: Qnn_Priority_t = 0x7FFF_FFFF;

/// Size of a serialized context binary, in bytes.
pub type Qnn_ContextBinarySize_t = u64;

// ---- Versions ----

/// A three-part version number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qnn_Version_t {
    /// Incompatible API changes.
    pub major: u32,
    /// Backwards-compatible additions (but see [`crate::version`] on table layout).
    pub minor: u32,
    /// Fixes only.
    pub patch: u32,
}

/// The core API version plus the backend-specific API version, as reported per provider.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Qnn_ApiVersion_t {
    /// Version of the core API shared by all backends; the one checked at load.
    pub coreApiVersion: Qnn_Version_t,
    /// Version of the backend-specific API (e.g. the HTP extensions).
    pub backendApiVersion: Qnn_Version_t,
}

// ---- Scalars ----

/// The value member of [`Qnn_Scalar_t`]; which member is valid follows `dataType`. In this
/// generation every member is at most 4 bytes (no 64-bit or string scalars).
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_Scalar_Value_t {
    /// For `FLOAT_32`.
    pub floatValue: f32,
    /// For `UINT_32`.
    pub uint32Value: u32,
    /// For `INT_32`.
    pub int32Value: i32,
    /// For `UINT_16`.
    pub uint16Value: u16,
    /// For `INT_16`.
    pub int16Value: i16,
    /// For `UINT_8`.
    pub uint8Value: u8,
    /// For `INT_8`.
    pub int8Value: i8,
    /// For `BOOL_8`.
    pub bool8Value: u8,
}

/// An immutable scalar configuring a node (e.g. Softmax `beta`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_Scalar_t {
    /// Which union member is valid.
    pub dataType: Qnn_DataType_t,
    /// The value.
    pub value: Qnn_Scalar_Value_t,
}

impl Qnn_Scalar_t {
    /// Mirrors `QNN_SCALAR_INIT`.
    pub const INIT: Self = Self {
        dataType: QNN_DATATYPE_UNDEFINED,
        value: Qnn_Scalar_Value_t { floatValue: 0.0 },
    };
}

// ---- Quantization ----

/// Which member of [`Qnn_QuantizeParams_Encoding_t`] is valid.
pub type Qnn_QuantizationEncoding_t = u32;
/// Per-tensor `{scale, offset}`.
pub const QNN_QUANTIZATION_ENCODING_SCALE_OFFSET: Qnn_QuantizationEncoding_t = 0;
/// Per-channel `{scale, offset}` along one axis.
pub const QNN_QUANTIZATION_ENCODING_AXIS_SCALE_OFFSET: Qnn_QuantizationEncoding_t = 1;
/// Per-tensor with an explicit bit width (e.g. 4-bit values in an 8-bit container).
pub const QNN_QUANTIZATION_ENCODING_BW_SCALE_OFFSET: Qnn_QuantizationEncoding_t = 2;
/// Per-channel with an explicit bit width.
pub const QNN_QUANTIZATION_ENCODING_BW_AXIS_SCALE_OFFSET: Qnn_QuantizationEncoding_t = 3;
/// Unset.
pub const QNN_QUANTIZATION_ENCODING_UNDEFINED: Qnn_QuantizationEncoding_t = 0x7FFF_FFFF;

/// Per-tensor quantization: `real = (quantized + offset) * scale`. Note the sign: QNN's `offset`
/// is the *negative* of the ONNX / NNAPI zero point.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Qnn_ScaleOffset_t {
    /// Strictly positive step size.
    pub scale: f32,
    /// Added to the quantized value before scaling (= −zero point).
    pub offset: i32,
}

/// Per-tensor quantization with an explicit bit width no larger than the data type's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Qnn_BwScaleOffset_t {
    /// Bits actually used, in the low bits of each element.
    pub bitwidth: u32,
    /// Strictly positive step size.
    pub scale: f32,
    /// As in [`Qnn_ScaleOffset_t`].
    pub offset: i32,
}

/// Per-channel quantization: one [`Qnn_ScaleOffset_t`] per index along `axis`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Qnn_AxisScaleOffset_t {
    /// The channel axis.
    pub axis: i32,
    /// Length of `scaleOffset` (= the size of `axis`).
    pub numScaleOffsets: u32,
    /// Client-owned array of per-channel encodings.
    pub scaleOffset: *mut Qnn_ScaleOffset_t,
}

/// Per-channel quantization with a bit width and separate scale / offset arrays.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Qnn_BwAxisScaleOffset_t {
    /// Bits actually used, common to all channels.
    pub bitwidth: u32,
    /// The channel axis.
    pub axis: i32,
    /// Length of `scales` and `offsets`.
    pub numElements: u32,
    /// Strictly positive per-channel scales.
    pub scales: *mut f32,
    /// Per-channel offsets, or NULL for symmetric quantization (all offsets 0).
    pub offsets: *mut i32,
}

/// The encoding member of [`Qnn_QuantizeParams_t`], selected by `quantizationEncoding`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_QuantizeParams_Encoding_t {
    /// For `SCALE_OFFSET`.
    pub scaleOffsetEncoding: Qnn_ScaleOffset_t,
    /// For `AXIS_SCALE_OFFSET`.
    pub axisScaleOffsetEncoding: Qnn_AxisScaleOffset_t,
    /// For `BW_SCALE_OFFSET`.
    pub bwScaleOffsetEncoding: Qnn_BwScaleOffset_t,
    /// For `BW_AXIS_SCALE_OFFSET`.
    pub bwAxisScaleOffsetEncoding: Qnn_BwAxisScaleOffset_t,
}

/// Quantization parameters of a tensor. For float tensors leave `encodingDefinition` UNDEFINED.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_QuantizeParams_t {
    /// `DEFINED` for quantized tensors.
    pub encodingDefinition: Qnn_Definition_t,
    /// Which member of `encoding` is valid.
    pub quantizationEncoding: Qnn_QuantizationEncoding_t,
    /// The encoding.
    pub encoding: Qnn_QuantizeParams_Encoding_t,
}

impl Qnn_QuantizeParams_t {
    /// Mirrors `QNN_QUANTIZE_PARAMS_INIT`: no quantization.
    pub const INIT: Self = Self {
        encodingDefinition: QNN_DEFINITION_UNDEFINED,
        quantizationEncoding: QNN_QUANTIZATION_ENCODING_UNDEFINED,
        encoding: Qnn_QuantizeParams_Encoding_t {
            scaleOffsetEncoding: Qnn_ScaleOffset_t {
                scale: 0.0,
                offset: 0,
            },
        },
    };

    /// Per-tensor scale/offset quantization (`DEFINED`, `SCALE_OFFSET`).
    pub const fn scale_offset(scale: f32, offset: i32) -> Self {
        Self {
            encodingDefinition: QNN_DEFINITION_DEFINED,
            quantizationEncoding: QNN_QUANTIZATION_ENCODING_SCALE_OFFSET,
            encoding: Qnn_QuantizeParams_Encoding_t {
                scaleOffsetEncoding: Qnn_ScaleOffset_t { scale, offset },
            },
        }
    }
}

// ---- Tensors ----

/// Memory layout of a tensor's data; only [`QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER`] is universal.
pub type Qnn_TensorDataFormat_t = u32;
/// Dense row-major buffer, last dimension fastest.
pub const QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER: Qnn_TensorDataFormat_t = 0;

/// Where a tensor's data lives.
pub type Qnn_TensorMemType_t = u32;
/// A client pointer (`clientBuf`).
pub const QNN_TENSORMEMTYPE_RAW: Qnn_TensorMemType_t = 0;
/// A registered shared buffer (`memHandle` from `memRegister`).
pub const QNN_TENSORMEMTYPE_MEMHANDLE: Qnn_TensorMemType_t = 1;
/// Unset.
pub const QNN_TENSORMEMTYPE_UNDEFINED: Qnn_TensorMemType_t = 0x7FFF_FFFF;

/// A client-owned buffer. `dataSize` is a 32-bit byte count, so one tensor's data is < 4 GiB.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Qnn_ClientBuffer_t {
    /// The bytes.
    pub data: *mut c_void,
    /// Their length in bytes.
    pub dataSize: u32,
}

/// The data member of [`Qnn_TensorV1_t`], selected by `memType`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_TensorV1_Data_t {
    /// For `QNN_TENSORMEMTYPE_RAW`.
    pub clientBuf: Qnn_ClientBuffer_t,
    /// For `QNN_TENSORMEMTYPE_MEMHANDLE`.
    pub memHandle: Qnn_MemHandle_t,
}

/// A version-1 tensor description. The backend writes `id` at creation; later calls
/// (`graphAddNode`, `graphExecute`) refer to the tensor by that id.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_TensorV1_t {
    /// Backend-generated identifier (written by `tensorCreate*Tensor`).
    pub id: u32,
    /// Name, unique within the context.
    pub name: *const c_char,
    /// Who reads / writes it.
    pub type_: Qnn_TensorType_t,
    /// Memory layout; use [`QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER`].
    pub dataFormat: Qnn_TensorDataFormat_t,
    /// Element type.
    pub dataType: Qnn_DataType_t,
    /// Quantization (for fixed-point types).
    pub quantizeParams: Qnn_QuantizeParams_t,
    /// Number of dimensions.
    pub rank: u32,
    /// `rank` dimensions; NULL when `rank` is 0.
    pub dimensions: *mut u32,
    /// Which member of `data` is valid.
    pub memType: Qnn_TensorMemType_t,
    /// The data.
    pub data: Qnn_TensorV1_Data_t,
}

impl Qnn_TensorV1_t {
    /// Mirrors `QNN_TENSOR_V1_INIT`.
    pub const INIT: Self = Self {
        id: 0,
        name: ptr::null(),
        type_: QNN_TENSOR_TYPE_UNDEFINED,
        dataFormat: QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER,
        dataType: QNN_DATATYPE_UNDEFINED,
        quantizeParams: Qnn_QuantizeParams_t::INIT,
        rank: 0,
        dimensions: ptr::null_mut(),
        memType: QNN_TENSORMEMTYPE_UNDEFINED,
        data: Qnn_TensorV1_Data_t {
            clientBuf: Qnn_ClientBuffer_t {
                data: ptr::null_mut(),
                dataSize: 0,
            },
        },
    };
}

/// Which member of [`Qnn_Tensor_t`]'s union is valid. This generation only has version 1.
pub type Qnn_TensorVersion_t = u32;
/// `v1` is valid.
pub const QNN_TENSOR_VERSION_1: Qnn_TensorVersion_t = 1;
/// Unset.
pub const QNN_TENSOR_VERSION_UNDEFINED: Qnn_TensorVersion_t = 0x7FFF_FFFF;

/// The versioned members of [`Qnn_Tensor_t`]. SDK 2.13 has only `v1`, so the union (and the
/// 120-byte stride of tensor arrays) is exactly `Qnn_TensorV1_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_Tensor_Versions_t {
    /// Version 1.
    pub v1: Qnn_TensorV1_t,
}

/// A versioned tensor, as passed to every tensor-taking call. Arrays of it (graph inputs and
/// outputs, op config tensors) have a stride of `size_of::<Qnn_Tensor_t>()` = 120 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_Tensor_t {
    /// Which member of `u` is valid.
    pub version: Qnn_TensorVersion_t,
    /// The tensor.
    pub u: Qnn_Tensor_Versions_t,
}

impl Qnn_Tensor_t {
    /// Mirrors `QNN_TENSOR_INIT`.
    pub const INIT: Self = Self {
        version: QNN_TENSOR_VERSION_1,
        u: Qnn_Tensor_Versions_t {
            v1: Qnn_TensorV1_t::INIT,
        },
    };

    /// Wraps a version-1 tensor.
    pub const fn v1(v1: Qnn_TensorV1_t) -> Self {
        Self {
            version: QNN_TENSOR_VERSION_1,
            u: Qnn_Tensor_Versions_t { v1 },
        }
    }
}

// ---- Params and op configs ----

/// The value member of [`Qnn_Param_t`], selected by `paramType`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_Param_Value_t {
    /// For `QNN_PARAMTYPE_SCALAR`.
    pub scalarParam: Qnn_Scalar_t,
    /// For `QNN_PARAMTYPE_TENSOR`; must be a STATIC tensor already created in the graph.
    pub tensorParam: Qnn_Tensor_t,
}

/// A named op parameter (e.g. `"axis"`), scalar or tensor.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_Param_t {
    /// Which member of `value` is valid.
    pub paramType: Qnn_ParamType_t,
    /// Parameter name as defined in `QnnOpDef.h` (see [`crate::ops`]).
    pub name: *const c_char,
    /// The value.
    pub value: Qnn_Param_Value_t,
}

impl Qnn_Param_t {
    /// Mirrors `QNN_PARAM_INIT`.
    pub const INIT: Self = Self {
        paramType: QNN_PARAMTYPE_UNDEFINED,
        name: ptr::null(),
        value: Qnn_Param_Value_t {
            scalarParam: Qnn_Scalar_t::INIT,
        },
    };
}

/// One node: op type, package, params and input / output tensors (by id).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Qnn_OpConfigV1_t {
    /// Node name, for diagnostics.
    pub name: *const c_char,
    /// Op package, [`crate::ops::QNN_OP_PACKAGE_NAME_QTI_AISW`] for built-in ops.
    pub packageName: *const c_char,
    /// Op type, e.g. `"FullyConnected"`.
    pub typeName: *const c_char,
    /// Length of `params`.
    pub numOfParams: u32,
    /// The params.
    pub params: *mut Qnn_Param_t,
    /// Length of `inputTensors`.
    pub numOfInputs: u32,
    /// Inputs, in the op's documented order.
    pub inputTensors: *mut Qnn_Tensor_t,
    /// Length of `outputTensors`.
    pub numOfOutputs: u32,
    /// Outputs.
    pub outputTensors: *mut Qnn_Tensor_t,
}

impl Qnn_OpConfigV1_t {
    /// Mirrors `QNN_OPCONFIG_V1_INIT`.
    pub const INIT: Self = Self {
        name: ptr::null(),
        packageName: ptr::null(),
        typeName: ptr::null(),
        numOfParams: 0,
        params: ptr::null_mut(),
        numOfInputs: 0,
        inputTensors: ptr::null_mut(),
        numOfOutputs: 0,
        outputTensors: ptr::null_mut(),
    };
}

/// Which member of [`Qnn_OpConfig_t`]'s union is valid.
pub type Qnn_OpConfigVersion_t = u32;
/// `v1` is valid.
pub const QNN_OPCONFIG_VERSION_1: Qnn_OpConfigVersion_t = 1;
/// Unset.
pub const QNN_OPCONFIG_VERSION_UNDEFINED: Qnn_OpConfigVersion_t = 0x7FFF_FFFF;

/// The versioned members of [`Qnn_OpConfig_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_OpConfig_Versions_t {
    /// Version 1.
    pub v1: Qnn_OpConfigV1_t,
}

/// A versioned op config. Passed **by value** (80 bytes) to `graphAddNode` and
/// `backendValidateOpConfig`; `#[repr(C)]` plus `extern "C"` matches the C ABI for that.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_OpConfig_t {
    /// Which member of `u` is valid.
    pub version: Qnn_OpConfigVersion_t,
    /// The config.
    pub u: Qnn_OpConfig_Versions_t,
}

impl Qnn_OpConfig_t {
    /// Mirrors `QNN_OPCONFIG_INIT`.
    pub const INIT: Self = Self::v1(Qnn_OpConfigV1_t::INIT);

    /// Wraps a version-1 op config.
    pub const fn v1(v1: Qnn_OpConfigV1_t) -> Self {
        Self {
            version: QNN_OPCONFIG_VERSION_1,
            u: Qnn_OpConfig_Versions_t { v1 },
        }
    }
}

// ---- Async notification ----

/// Status handed to a [`Qnn_NotifyFn_t`] when an async execution completes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Qnn_NotifyStatus_t {
    /// The execution's result.
    pub error: crate::common::Qnn_ErrorHandle_t,
}

/// Completion callback of `graphExecuteAsync`.
pub type Qnn_NotifyFn_t =
    Option<unsafe extern "C" fn(notifyParam: *mut c_void, notifyStatus: Qnn_NotifyStatus_t)>;
