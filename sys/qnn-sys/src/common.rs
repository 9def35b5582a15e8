//! Handles, the error-handle type and the error codes of each API component (`QnnCommon.h` and
//! the `*_Error_t` enums of the component headers, SDK 2.13).
//!
//! Every QNN call returns a `u64` [`Qnn_ErrorHandle_t`] of which only the low 16 bits are the code;
//! the upper bits are reserved for the vendor's internal tracking. Compare codes through
//! [`error_code`], never the raw value. Codes are plain `u64` constants rather than a Rust enum
//! because a backend may return codes this crate does not list, and matching an unknown value
//! against a `#[repr]` enum would be undefined behaviour.

use core::ffi::c_void;

/// Return value of every QNN API call; the code is in the low 16 bits (see [`error_code`]).
pub type Qnn_ErrorHandle_t = u64;

/// Base of all QNN handle types: an opaque pointer owned by the backend.
pub type Qnn_Handle_t = *mut c_void;
/// A created backend (`backendCreate`); parent of contexts.
pub type Qnn_BackendHandle_t = Qnn_Handle_t;
/// A context (`contextCreate` / `contextCreateFromBinary`); owns graphs and is the cache unit.
pub type Qnn_ContextHandle_t = Qnn_Handle_t;
/// A device (`deviceCreate`); optional, NULL means the default device.
pub type Qnn_DeviceHandle_t = Qnn_Handle_t;
/// A graph inside a context; freed with its context, never on its own.
pub type Qnn_GraphHandle_t = Qnn_Handle_t;
/// A logger (`logCreate`).
pub type Qnn_LogHandle_t = Qnn_Handle_t;
/// A registered shared-memory buffer (`memRegister`).
pub type Qnn_MemHandle_t = Qnn_Handle_t;
/// A profiling session (`profileCreate`); NULL disables profiling for a call.
pub type Qnn_ProfileHandle_t = Qnn_Handle_t;
/// A control signal (abort / timeout) for long calls; NULL means none.
pub type Qnn_SignalHandle_t = Qnn_Handle_t;

/// Mask selecting the error code from a [`Qnn_ErrorHandle_t`] (`QNN_GET_ERROR_CODE`).
pub const QNN_ERROR_CODE_MASK: u64 = 0xFFFF;

/// Extracts the error code (low 16 bits) from a returned handle, as `QNN_GET_ERROR_CODE` does.
#[inline]
pub const fn error_code(handle: Qnn_ErrorHandle_t) -> u64 {
    handle & QNN_ERROR_CODE_MASK
}

/// Global success value.
pub const QNN_SUCCESS: u64 = 0;

/// Backend identifier: none / single-backend library.
pub const QNN_BACKEND_ID_NULL: u32 = 0;
/// Backend identifier of the reference backend.
pub const QNN_BACKEND_ID_REFERENCE: u32 = 1;
/// Backend identifier of the Saver (record-only) backend.
pub const QNN_BACKEND_ID_SAVER: u32 = 2;
/// Backend identifier of the CPU backend.
pub const QNN_BACKEND_ID_CPU: u32 = 3;
/// Backend identifier of the GPU backend.
pub const QNN_BACKEND_ID_GPU: u32 = 4;
/// Backend identifier of the DSP backend.
pub const QNN_BACKEND_ID_DSP: u32 = 5;
/// Backend identifier of the HTP (Hexagon Tensor Processor, the NPU) backend.
pub const QNN_BACKEND_ID_HTP: u32 = 6;

// ---- Error code ranges per component (inclusive) ----

/// First code of the COMMON range.
pub const QNN_MIN_ERROR_COMMON: u64 = 1000;
/// Last code of the COMMON range.
pub const QNN_MAX_ERROR_COMMON: u64 = 1999;
/// First code of the PROPERTY range.
pub const QNN_MIN_ERROR_PROPERTY: u64 = 2000;
/// Last code of the PROPERTY range.
pub const QNN_MAX_ERROR_PROPERTY: u64 = 2999;
/// First code of the OP_PACKAGE range.
pub const QNN_MIN_ERROR_OP_PACKAGE: u64 = 3000;
/// Last code of the OP_PACKAGE range.
pub const QNN_MAX_ERROR_OP_PACKAGE: u64 = 3999;
/// First code of the BACKEND range.
pub const QNN_MIN_ERROR_BACKEND: u64 = 4000;
/// First code of the Saver backend's sub-range.
pub const QNN_MIN_ERROR_BACKEND_SAVER: u64 = 4950;
/// Last code of the Saver backend's sub-range.
pub const QNN_MAX_ERROR_BACKEND_SAVER: u64 = 4998;
/// Last code of the BACKEND range.
pub const QNN_MAX_ERROR_BACKEND: u64 = 4999;
/// First code of the CONTEXT range.
pub const QNN_MIN_ERROR_CONTEXT: u64 = 5000;
/// Last code of the CONTEXT range.
pub const QNN_MAX_ERROR_CONTEXT: u64 = 5999;
/// First code of the GRAPH range.
pub const QNN_MIN_ERROR_GRAPH: u64 = 6000;
/// Last code of the GRAPH range.
pub const QNN_MAX_ERROR_GRAPH: u64 = 6999;
/// First code of the TENSOR range.
pub const QNN_MIN_ERROR_TENSOR: u64 = 7000;
/// Last code of the TENSOR range.
pub const QNN_MAX_ERROR_TENSOR: u64 = 7999;
/// First code of the MEM range.
pub const QNN_MIN_ERROR_MEM: u64 = 8000;
/// Last code of the MEM range.
pub const QNN_MAX_ERROR_MEM: u64 = 8999;
/// First code of the SIGNAL range.
pub const QNN_MIN_ERROR_SIGNAL: u64 = 9000;
/// Last code of the SIGNAL range.
pub const QNN_MAX_ERROR_SIGNAL: u64 = 9999;
/// First code of the ERROR (error-reporting API) range.
pub const QNN_MIN_ERROR_ERROR: u64 = 10000;
/// Last code of the ERROR range.
pub const QNN_MAX_ERROR_ERROR: u64 = 10999;
/// First code of the LOG range.
pub const QNN_MIN_ERROR_LOG: u64 = 11000;
/// Last code of the LOG range.
pub const QNN_MAX_ERROR_LOG: u64 = 11999;
/// First code of the PROFILE range.
pub const QNN_MIN_ERROR_PROFILE: u64 = 12000;
/// Last code of the PROFILE range.
pub const QNN_MAX_ERROR_PROFILE: u64 = 12999;
/// First code of the PERF_INFRASTRUCTURE range.
pub const QNN_MIN_ERROR_PERF_INFRASTRUCTURE: u64 = 13000;
/// Last code of the PERF_INFRASTRUCTURE range.
pub const QNN_MAX_ERROR_PERF_INFRASTRUCTURE: u64 = 13999;
/// First code of the DEVICE range.
pub const QNN_MIN_ERROR_DEVICE: u64 = 14000;
/// Last code of the DEVICE range.
pub const QNN_MAX_ERROR_DEVICE: u64 = 14999;
/// First code of the range reserved for the QNN System API (`libQnnSystem.so`).
pub const QNN_MIN_ERROR_SYSTEM: u64 = 30000;
/// Last code of the System API range.
pub const QNN_MAX_ERROR_SYSTEM: u64 = 49999;
/// First code of the INTERFACE range.
pub const QNN_MIN_ERROR_INTERFACE: u64 = 60000;
/// Last code of the INTERFACE range.
pub const QNN_MAX_ERROR_INTERFACE: u64 = 60999;

// ---- QnnCommon_Error_t ----

/// An API or optional feature is not supported by this backend.
pub const QNN_COMMON_ERROR_NOT_SUPPORTED: u64 = 1000;
/// Memory allocation failed. Also what HTP returns from `graphFinalize` when it cannot build an op.
pub const QNN_COMMON_ERROR_MEM_ALLOC: u64 = 1002;
/// Platform / OS service error.
pub const QNN_COMMON_ERROR_SYSTEM: u64 = 1003;
/// Invalid function argument.
pub const QNN_COMMON_ERROR_INVALID_ARGUMENT: u64 = 1004;
/// Illegal operation or sequence of operations.
pub const QNN_COMMON_ERROR_OPERATION_NOT_PERMITTED: u64 = 1005;
/// QNN used on an unsupported platform.
pub const QNN_COMMON_ERROR_PLATFORM_NOT_SUPPORTED: u64 = 1006;
/// Communication error with a platform / OS service (e.g. the DSP RPC channel).
pub const QNN_COMMON_ERROR_SYSTEM_COMMUNICATION: u64 = 1007;
/// Loaded QNN libraries are of incompatible versions.
pub const QNN_COMMON_ERROR_INCOMPATIBLE_BINARIES: u64 = 1008;
/// A library was already loaded in this process (one copy per process is allowed).
pub const QNN_COMMON_ERROR_LOADING_BINARIES: u64 = 1009;
/// A resource (e.g. DSP memory) is unavailable.
pub const QNN_COMMON_ERROR_RESOURCE_UNAVAILABLE: u64 = 1010;
/// An error not identified as any other type.
pub const QNN_COMMON_ERROR_GENERAL: u64 = 1100;

// ---- QnnInterface_Error_t ----

/// `QnnInterface_getProviders` is not supported.
pub const QNN_INTERFACE_ERROR_NOT_SUPPORTED: u64 = QNN_COMMON_ERROR_NOT_SUPPORTED;
/// `QnnInterface_getProviders` was given a NULL pointer.
pub const QNN_INTERFACE_ERROR_INVALID_PARAMETER: u64 = QNN_COMMON_ERROR_INVALID_ARGUMENT;

// ---- QnnOpPackage_Error_t (only the one backendValidateOpConfig reports) ----

/// `backendValidateOpConfig`: the op config failed the op package's validation.
pub const QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE: u64 = 3110;

// ---- QnnBackend_Error_t ----

/// The backend failed to initialize.
pub const QNN_BACKEND_ERROR_CANNOT_INITIALIZE: u64 = 4000;
/// Freeing backend resources failed.
pub const QNN_BACKEND_ERROR_TERMINATE_FAILED: u64 = 4002;
/// The backend does not support the requested functionality.
pub const QNN_BACKEND_ERROR_NOT_SUPPORTED: u64 = 4003;
/// Invalid function argument.
pub const QNN_BACKEND_ERROR_INVALID_ARGUMENT: u64 = 4004;
/// Op package library not found.
pub const QNN_BACKEND_ERROR_OP_PACKAGE_NOT_FOUND: u64 = 4005;
/// Op package interface provider symbol not found.
pub const QNN_BACKEND_ERROR_OP_PACKAGE_IF_PROVIDER_NOT_FOUND: u64 = 4006;
/// Op package registration failed.
pub const QNN_BACKEND_ERROR_OP_PACKAGE_REGISTRATION_FAILED: u64 = 4007;
/// Op package interface version unsupported.
pub const QNN_BACKEND_ERROR_OP_PACKAGE_UNSUPPORTED_VERSION: u64 = 4008;
/// Same package + op name registered twice.
pub const QNN_BACKEND_ERROR_OP_PACKAGE_DUPLICATE: u64 = 4009;
/// Backend configs inconsistent between create calls.
pub const QNN_BACKEND_ERROR_INCONSISTENT_CONFIG: u64 = 4010;
/// Invalid backend (or logger) handle.
pub const QNN_BACKEND_ERROR_INVALID_HANDLE: u64 = 4011;
/// Invalid backend config.
pub const QNN_BACKEND_ERROR_INVALID_CONFIG: u64 = 4012;

// ---- QnnContext_Error_t ----

/// Invalid argument to a context call.
pub const QNN_CONTEXT_ERROR_INVALID_ARGUMENT: u64 = 5000;
/// No such context.
pub const QNN_CONTEXT_ERROR_CTX_DOES_NOT_EXIST: u64 = 5001;
/// Invalid / NULL context handle.
pub const QNN_CONTEXT_ERROR_INVALID_HANDLE: u64 = 5002;
/// Operation needs every graph of the context finalized (e.g. `contextGetBinary`).
pub const QNN_CONTEXT_ERROR_NOT_FINALIZED: u64 = 5003;
/// Context binary made by an incompatible version: rebuild the cache.
pub const QNN_CONTEXT_ERROR_BINARY_VERSION: u64 = 5004;
/// Creating a context from a binary failed (e.g. corrupt data).
pub const QNN_CONTEXT_ERROR_CREATE_FROM_BINARY: u64 = 5005;
/// Getting the serialized size failed.
pub const QNN_CONTEXT_ERROR_GET_BINARY_SIZE_FAILED: u64 = 5006;
/// Serializing the context failed.
pub const QNN_CONTEXT_ERROR_GET_BINARY_FAILED: u64 = 5007;
/// Invalid context binary configuration.
pub const QNN_CONTEXT_ERROR_BINARY_CONFIGURATION: u64 = 5008;
/// Failed to set profiling.
pub const QNN_CONTEXT_ERROR_SET_PROFILE: u64 = 5009;
/// Invalid context config.
pub const QNN_CONTEXT_ERROR_INVALID_CONFIG: u64 = 5010;

// ---- QnnGraph_Error_t ----

/// Graph feature not supported (alias of the common code).
pub const QNN_GRAPH_ERROR_UNSUPPORTED_FEATURE: u64 = QNN_COMMON_ERROR_NOT_SUPPORTED;
/// Graph memory allocation failure (alias of the common code).
pub const QNN_GRAPH_ERROR_MEM_ALLOC: u64 = QNN_COMMON_ERROR_MEM_ALLOC;
/// General graph error (alias of the common code).
pub const QNN_GRAPH_ERROR_GENERAL: u64 = QNN_COMMON_ERROR_GENERAL;
/// Invalid argument to a graph call.
pub const QNN_GRAPH_ERROR_INVALID_ARGUMENT: u64 = 6000;
/// Invalid graph (or parent context) handle.
pub const QNN_GRAPH_ERROR_INVALID_HANDLE: u64 = 6001;
/// No graph of that name (e.g. `graphRetrieve`).
pub const QNN_GRAPH_ERROR_GRAPH_DOES_NOT_EXIST: u64 = 6002;
/// Invalid or duplicate graph name.
pub const QNN_GRAPH_ERROR_INVALID_NAME: u64 = 6003;
/// Invalid or NULL tensor (also: dynamic shapes where static ones are required).
pub const QNN_GRAPH_ERROR_INVALID_TENSOR: u64 = 6004;
/// Invalid op config (unknown op, wrong counts, types or params).
pub const QNN_GRAPH_ERROR_INVALID_OP_CONFIG: u64 = 6005;
/// Failed to set profiling.
pub const QNN_GRAPH_ERROR_SET_PROFILE: u64 = 6006;
/// A node was added before the nodes producing its inputs.
pub const QNN_GRAPH_ERROR_UNCONNECTED_NODE: u64 = 6007;
/// Graph creation failed.
pub const QNN_GRAPH_ERROR_CREATE_FAILED: u64 = 6020;
/// Graph optimization failed.
pub const QNN_GRAPH_ERROR_OPTIMIZATION_FAILED: u64 = 6021;
/// `graphFinalize` failed.
pub const QNN_GRAPH_ERROR_FINALIZE_FAILED: u64 = 6022;
/// `graphExecute` before `graphFinalize`.
pub const QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED: u64 = 6023;
/// Modifying a graph after `graphFinalize`.
pub const QNN_GRAPH_ERROR_GRAPH_FINALIZED: u64 = 6024;
/// The async execution queue is full.
pub const QNN_GRAPH_ERROR_EXECUTION_ASYNC_FIFO_FULL: u64 = 6025;
/// The signal object is already in use by another call.
pub const QNN_GRAPH_ERROR_SIGNAL_IN_USE: u64 = 6030;
/// Aborted through a signal.
pub const QNN_GRAPH_ERROR_ABORTED: u64 = 6031;
/// The profile handle is already bound to another graph.
pub const QNN_GRAPH_ERROR_PROFILE_IN_USE: u64 = 6032;
/// Timed out through a signal.
pub const QNN_GRAPH_ERROR_TIMED_OUT: u64 = 6033;

// ---- QnnTensor_Error_t ----

/// Invalid context / graph handle when creating a tensor.
pub const QNN_TENSOR_ERROR_INVALID_HANDLE: u64 = 7001;
/// No such tensor registered.
pub const QNN_TENSOR_ERROR_DOES_NOT_EXIST: u64 = 7002;
/// A tensor with this name already exists in the context.
pub const QNN_TENSOR_ERROR_ALREADY_EXISTS: u64 = 7003;
/// An invalid tensor field (type, dims, data, quantization...).
pub const QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM: u64 = 7004;
/// A tensor field value this backend does not support.
pub const QNN_TENSOR_ERROR_UNSUPPORTED_TENSOR_PARAM: u64 = 7005;
/// The name's hash collides with an existing tensor's; rename it.
pub const QNN_TENSOR_ERROR_NAME_HASH_COLLISION: u64 = 7006;

/// The symbolic name of a known error code (after [`error_code`] masking), for messages.
/// Codes shared by aliases (e.g. 1002 is both common and graph MEM_ALLOC) get the common name.
pub fn error_name(handle: Qnn_ErrorHandle_t) -> Option<&'static str> {
    Some(match error_code(handle) {
        QNN_SUCCESS => "QNN_SUCCESS",
        QNN_COMMON_ERROR_NOT_SUPPORTED => "QNN_COMMON_ERROR_NOT_SUPPORTED",
        QNN_COMMON_ERROR_MEM_ALLOC => "QNN_COMMON_ERROR_MEM_ALLOC",
        QNN_COMMON_ERROR_SYSTEM => "QNN_COMMON_ERROR_SYSTEM",
        QNN_COMMON_ERROR_INVALID_ARGUMENT => "QNN_COMMON_ERROR_INVALID_ARGUMENT",
        QNN_COMMON_ERROR_OPERATION_NOT_PERMITTED => "QNN_COMMON_ERROR_OPERATION_NOT_PERMITTED",
        QNN_COMMON_ERROR_PLATFORM_NOT_SUPPORTED => "QNN_COMMON_ERROR_PLATFORM_NOT_SUPPORTED",
        QNN_COMMON_ERROR_SYSTEM_COMMUNICATION => "QNN_COMMON_ERROR_SYSTEM_COMMUNICATION",
        QNN_COMMON_ERROR_INCOMPATIBLE_BINARIES => "QNN_COMMON_ERROR_INCOMPATIBLE_BINARIES",
        QNN_COMMON_ERROR_LOADING_BINARIES => "QNN_COMMON_ERROR_LOADING_BINARIES",
        QNN_COMMON_ERROR_RESOURCE_UNAVAILABLE => "QNN_COMMON_ERROR_RESOURCE_UNAVAILABLE",
        QNN_COMMON_ERROR_GENERAL => "QNN_COMMON_ERROR_GENERAL",
        QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE => "QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE",
        QNN_BACKEND_ERROR_CANNOT_INITIALIZE => "QNN_BACKEND_ERROR_CANNOT_INITIALIZE",
        QNN_BACKEND_ERROR_TERMINATE_FAILED => "QNN_BACKEND_ERROR_TERMINATE_FAILED",
        QNN_BACKEND_ERROR_NOT_SUPPORTED => "QNN_BACKEND_ERROR_NOT_SUPPORTED",
        QNN_BACKEND_ERROR_INVALID_ARGUMENT => "QNN_BACKEND_ERROR_INVALID_ARGUMENT",
        QNN_BACKEND_ERROR_OP_PACKAGE_NOT_FOUND => "QNN_BACKEND_ERROR_OP_PACKAGE_NOT_FOUND",
        QNN_BACKEND_ERROR_OP_PACKAGE_IF_PROVIDER_NOT_FOUND => {
            "QNN_BACKEND_ERROR_OP_PACKAGE_IF_PROVIDER_NOT_FOUND"
        }
        QNN_BACKEND_ERROR_OP_PACKAGE_REGISTRATION_FAILED => {
            "QNN_BACKEND_ERROR_OP_PACKAGE_REGISTRATION_FAILED"
        }
        QNN_BACKEND_ERROR_OP_PACKAGE_UNSUPPORTED_VERSION => {
            "QNN_BACKEND_ERROR_OP_PACKAGE_UNSUPPORTED_VERSION"
        }
        QNN_BACKEND_ERROR_OP_PACKAGE_DUPLICATE => "QNN_BACKEND_ERROR_OP_PACKAGE_DUPLICATE",
        QNN_BACKEND_ERROR_INCONSISTENT_CONFIG => "QNN_BACKEND_ERROR_INCONSISTENT_CONFIG",
        QNN_BACKEND_ERROR_INVALID_HANDLE => "QNN_BACKEND_ERROR_INVALID_HANDLE",
        QNN_BACKEND_ERROR_INVALID_CONFIG => "QNN_BACKEND_ERROR_INVALID_CONFIG",
        QNN_CONTEXT_ERROR_INVALID_ARGUMENT => "QNN_CONTEXT_ERROR_INVALID_ARGUMENT",
        QNN_CONTEXT_ERROR_CTX_DOES_NOT_EXIST => "QNN_CONTEXT_ERROR_CTX_DOES_NOT_EXIST",
        QNN_CONTEXT_ERROR_INVALID_HANDLE => "QNN_CONTEXT_ERROR_INVALID_HANDLE",
        QNN_CONTEXT_ERROR_NOT_FINALIZED => "QNN_CONTEXT_ERROR_NOT_FINALIZED",
        QNN_CONTEXT_ERROR_BINARY_VERSION => "QNN_CONTEXT_ERROR_BINARY_VERSION",
        QNN_CONTEXT_ERROR_CREATE_FROM_BINARY => "QNN_CONTEXT_ERROR_CREATE_FROM_BINARY",
        QNN_CONTEXT_ERROR_GET_BINARY_SIZE_FAILED => "QNN_CONTEXT_ERROR_GET_BINARY_SIZE_FAILED",
        QNN_CONTEXT_ERROR_GET_BINARY_FAILED => "QNN_CONTEXT_ERROR_GET_BINARY_FAILED",
        QNN_CONTEXT_ERROR_BINARY_CONFIGURATION => "QNN_CONTEXT_ERROR_BINARY_CONFIGURATION",
        QNN_CONTEXT_ERROR_SET_PROFILE => "QNN_CONTEXT_ERROR_SET_PROFILE",
        QNN_CONTEXT_ERROR_INVALID_CONFIG => "QNN_CONTEXT_ERROR_INVALID_CONFIG",
        QNN_GRAPH_ERROR_INVALID_ARGUMENT => "QNN_GRAPH_ERROR_INVALID_ARGUMENT",
        QNN_GRAPH_ERROR_INVALID_HANDLE => "QNN_GRAPH_ERROR_INVALID_HANDLE",
        QNN_GRAPH_ERROR_GRAPH_DOES_NOT_EXIST => "QNN_GRAPH_ERROR_GRAPH_DOES_NOT_EXIST",
        QNN_GRAPH_ERROR_INVALID_NAME => "QNN_GRAPH_ERROR_INVALID_NAME",
        QNN_GRAPH_ERROR_INVALID_TENSOR => "QNN_GRAPH_ERROR_INVALID_TENSOR",
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG => "QNN_GRAPH_ERROR_INVALID_OP_CONFIG",
        QNN_GRAPH_ERROR_SET_PROFILE => "QNN_GRAPH_ERROR_SET_PROFILE",
        QNN_GRAPH_ERROR_UNCONNECTED_NODE => "QNN_GRAPH_ERROR_UNCONNECTED_NODE",
        QNN_GRAPH_ERROR_CREATE_FAILED => "QNN_GRAPH_ERROR_CREATE_FAILED",
        QNN_GRAPH_ERROR_OPTIMIZATION_FAILED => "QNN_GRAPH_ERROR_OPTIMIZATION_FAILED",
        QNN_GRAPH_ERROR_FINALIZE_FAILED => "QNN_GRAPH_ERROR_FINALIZE_FAILED",
        QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED => "QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED",
        QNN_GRAPH_ERROR_GRAPH_FINALIZED => "QNN_GRAPH_ERROR_GRAPH_FINALIZED",
        QNN_GRAPH_ERROR_EXECUTION_ASYNC_FIFO_FULL => "QNN_GRAPH_ERROR_EXECUTION_ASYNC_FIFO_FULL",
        QNN_GRAPH_ERROR_SIGNAL_IN_USE => "QNN_GRAPH_ERROR_SIGNAL_IN_USE",
        QNN_GRAPH_ERROR_ABORTED => "QNN_GRAPH_ERROR_ABORTED",
        QNN_GRAPH_ERROR_PROFILE_IN_USE => "QNN_GRAPH_ERROR_PROFILE_IN_USE",
        QNN_GRAPH_ERROR_TIMED_OUT => "QNN_GRAPH_ERROR_TIMED_OUT",
        QNN_TENSOR_ERROR_INVALID_HANDLE => "QNN_TENSOR_ERROR_INVALID_HANDLE",
        QNN_TENSOR_ERROR_DOES_NOT_EXIST => "QNN_TENSOR_ERROR_DOES_NOT_EXIST",
        QNN_TENSOR_ERROR_ALREADY_EXISTS => "QNN_TENSOR_ERROR_ALREADY_EXISTS",
        QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM => "QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM",
        QNN_TENSOR_ERROR_UNSUPPORTED_TENSOR_PARAM => "QNN_TENSOR_ERROR_UNSUPPORTED_TENSOR_PARAM",
        QNN_TENSOR_ERROR_NAME_HASH_COLLISION => "QNN_TENSOR_ERROR_NAME_HASH_COLLISION",
        _ => return None,
    })
}
