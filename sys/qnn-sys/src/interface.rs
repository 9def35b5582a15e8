//! `QnnInterface_t` and its function table, in the exact order of the SDK 2.13 (API 2.7.2)
//! `QnnInterface.h`.
//!
//! A backend library exports one symbol, `QnnInterface_getProviders`, which returns an array of
//! provider structs; each carries an API version and a table of function pointers. Callers reach
//! every other QNN function through that table, so the table's field order *is* the ABI. Any entry
//! may be NULL when the backend does not implement it, hence every entry is an
//! `Option<unsafe extern "C" fn ...>`.
//!
//! The table of this generation has 44 entries. Newer generations insert `backendSetConfig`,
//! `graphCreateSubgraph`, `profileSetConfig` and `profileGetExtendedEventData` mid-table, which is
//! why [`crate::version`] refuses providers newer than the last verified minor.

use core::ffi::{c_char, c_void};

use crate::common::*;
use crate::config::*;
use crate::log::{QnnLog_Callback_t, QnnLog_Level_t};
use crate::types::*;

/// Number of entries in the pinned function table.
pub const QNN_INTERFACE_TABLE_LEN: usize = 44;

/// The name of the exported provider-query symbol.
pub const QNN_INTERFACE_GET_PROVIDERS_SYMBOL: &str = "QnnInterface_getProviders";

/// `QnnInterface_getProviders(const QnnInterface_t*** providerList, uint32_t* numProviders)`: the
/// one symbol resolved with `dlsym`. The returned array lives as long as the library is loaded.
pub type QnnInterface_getProvidersFn_t = unsafe extern "C" fn(
    providerList: *mut *mut *const QnnInterface_t,
    numProviders: *mut u32,
) -> Qnn_ErrorHandle_t;

// ---- Function pointer types, one per table entry (header names) ----

/// `propertyHasCapability(key)`.
pub type QnnProperty_HasCapabilityFn_t =
    Option<unsafe extern "C" fn(key: QnnProperty_Key_t) -> Qnn_ErrorHandle_t>;
/// `backendCreate(logger, config, &backend)`; `config` is a NULL-terminated array or NULL.
pub type QnnBackend_CreateFn_t = Option<
    unsafe extern "C" fn(
        logger: Qnn_LogHandle_t,
        config: *mut *const QnnBackend_Config_t,
        backend: *mut Qnn_BackendHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `backendGetApiVersion(&version)`.
pub type QnnBackend_GetApiVersionFn_t =
    Option<unsafe extern "C" fn(pVersion: *mut Qnn_ApiVersion_t) -> Qnn_ErrorHandle_t>;
/// `backendGetBuildId(&id)`; the string is owned by the library.
pub type QnnBackend_GetBuildIdFn_t =
    Option<unsafe extern "C" fn(id: *mut *const c_char) -> Qnn_ErrorHandle_t>;
/// `backendRegisterOpPackage(backend, path, interfaceProvider, target)`.
pub type QnnBackend_RegisterOpPackageFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        packagePath: *const c_char,
        interfaceProvider: *const c_char,
        target: *const c_char,
    ) -> Qnn_ErrorHandle_t,
>;
/// `backendGetSupportedOperations(backend, &n, &ops)`; the array is owned by the backend.
pub type QnnBackend_GetSupportedOperationsFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        numOperations: *mut u32,
        operations: *mut *const QnnBackend_OperationName_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `backendValidateOpConfig(backend, opConfig)`; the op config is passed by value.
pub type QnnBackend_ValidateOpConfigFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        opConfig: Qnn_OpConfig_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `backendFree(backend)`.
pub type QnnBackend_FreeFn_t =
    Option<unsafe extern "C" fn(backend: Qnn_BackendHandle_t) -> Qnn_ErrorHandle_t>;

/// `contextCreate(backend, device, config, &context)`; `device` may be NULL.
pub type QnnContext_CreateFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        device: Qnn_DeviceHandle_t,
        config: *mut *const QnnContext_Config_t,
        context: *mut Qnn_ContextHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `contextSetConfig(context, config)`.
pub type QnnContext_SetConfigFn_t = Option<
    unsafe extern "C" fn(
        context: Qnn_ContextHandle_t,
        config: *mut *const QnnContext_Config_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `contextGetBinarySize(context, &size)`: the buffer size `contextGetBinary` needs.
pub type QnnContext_GetBinarySizeFn_t = Option<
    unsafe extern "C" fn(
        context: Qnn_ContextHandle_t,
        binaryBufferSize: *mut Qnn_ContextBinarySize_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `contextGetBinary(context, buf, bufSize, &written)`: serialise all (finalized) graphs.
pub type QnnContext_GetBinaryFn_t = Option<
    unsafe extern "C" fn(
        context: Qnn_ContextHandle_t,
        binaryBuffer: *mut c_void,
        binaryBufferSize: Qnn_ContextBinarySize_t,
        writtenBufferSize: *mut Qnn_ContextBinarySize_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `contextCreateFromBinary(backend, device, config, bin, size, &context, profile)`.
pub type QnnContext_CreateFromBinaryFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        device: Qnn_DeviceHandle_t,
        config: *mut *const QnnContext_Config_t,
        binaryBuffer: *const c_void,
        binaryBufferSize: Qnn_ContextBinarySize_t,
        context: *mut Qnn_ContextHandle_t,
        profile: Qnn_ProfileHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `contextFree(context, profile)`: also frees the context's graphs.
pub type QnnContext_FreeFn_t = Option<
    unsafe extern "C" fn(
        context: Qnn_ContextHandle_t,
        profile: Qnn_ProfileHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;

/// `graphCreate(context, name, config, &graph)`.
pub type QnnGraph_CreateFn_t = Option<
    unsafe extern "C" fn(
        contextHandle: Qnn_ContextHandle_t,
        graphName: *const c_char,
        config: *mut *const QnnGraph_Config_t,
        graphHandle: *mut Qnn_GraphHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `graphSetConfig(graph, config)`.
pub type QnnGraph_SetConfigFn_t = Option<
    unsafe extern "C" fn(
        graphHandle: Qnn_GraphHandle_t,
        config: *mut *const QnnGraph_Config_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `graphAddNode(graph, opConfig)`; the op config is passed by value.
pub type QnnGraph_AddNodeFn_t = Option<
    unsafe extern "C" fn(
        graphHandle: Qnn_GraphHandle_t,
        opConfig: Qnn_OpConfig_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `graphFinalize(graph, profile, signal)`: mandatory before execute; both handles may be NULL.
pub type QnnGraph_FinalizeFn_t = Option<
    unsafe extern "C" fn(
        graphHandle: Qnn_GraphHandle_t,
        profileHandle: Qnn_ProfileHandle_t,
        signalHandle: Qnn_SignalHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `graphRetrieve(context, name, &graph)`: find a graph in a context made from a binary.
pub type QnnGraph_RetrieveFn_t = Option<
    unsafe extern "C" fn(
        contextHandle: Qnn_ContextHandle_t,
        graphName: *const c_char,
        graphHandle: *mut Qnn_GraphHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `graphExecute(graph, inputs, nIn, outputs, nOut, profile, signal)`.
pub type QnnGraph_ExecuteFn_t = Option<
    unsafe extern "C" fn(
        graphHandle: Qnn_GraphHandle_t,
        inputs: *const Qnn_Tensor_t,
        numInputs: u32,
        outputs: *mut Qnn_Tensor_t,
        numOutputs: u32,
        profileHandle: Qnn_ProfileHandle_t,
        signalHandle: Qnn_SignalHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `graphExecuteAsync(..., notifyFn, notifyParam)`.
pub type QnnGraph_ExecuteAsyncFn_t = Option<
    unsafe extern "C" fn(
        graphHandle: Qnn_GraphHandle_t,
        inputs: *const Qnn_Tensor_t,
        numInputs: u32,
        outputs: *mut Qnn_Tensor_t,
        numOutputs: u32,
        profileHandle: Qnn_ProfileHandle_t,
        signalHandle: Qnn_SignalHandle_t,
        notifyFn: Qnn_NotifyFn_t,
        notifyParam: *mut c_void,
    ) -> Qnn_ErrorHandle_t,
>;

/// `tensorCreateContextTensor(context, &tensor)`; writes the id back.
pub type QnnTensor_CreateContextTensorFn_t = Option<
    unsafe extern "C" fn(
        context: Qnn_ContextHandle_t,
        tensor: *mut Qnn_Tensor_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `tensorCreateGraphTensor(graph, &tensor)`; writes the id back.
pub type QnnTensor_CreateGraphTensorFn_t = Option<
    unsafe extern "C" fn(graph: Qnn_GraphHandle_t, tensor: *mut Qnn_Tensor_t) -> Qnn_ErrorHandle_t,
>;

/// `logCreate(callback, maxLevel, &logger)`.
pub type QnnLog_CreateFn_t = Option<
    unsafe extern "C" fn(
        callback: QnnLog_Callback_t,
        maxLogLevel: QnnLog_Level_t,
        logger: *mut Qnn_LogHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `logSetLogLevel(logger, maxLevel)`.
pub type QnnLog_SetLogLevelFn_t = Option<
    unsafe extern "C" fn(logger: Qnn_LogHandle_t, maxLogLevel: QnnLog_Level_t) -> Qnn_ErrorHandle_t,
>;
/// `logFree(logger)`.
pub type QnnLog_FreeFn_t =
    Option<unsafe extern "C" fn(logger: Qnn_LogHandle_t) -> Qnn_ErrorHandle_t>;

/// `profileCreate(backend, level, &profile)`.
pub type QnnProfile_CreateFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        level: QnnProfile_Level_t,
        profile: *mut Qnn_ProfileHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `profileGetEvents(profile, &ids, &n)`.
pub type QnnProfile_GetEventsFn_t = Option<
    unsafe extern "C" fn(
        profile: Qnn_ProfileHandle_t,
        profileEventIds: *mut *const QnnProfile_EventId_t,
        numEvents: *mut u32,
    ) -> Qnn_ErrorHandle_t,
>;
/// `profileGetSubEvents(event, &ids, &n)`.
pub type QnnProfile_GetSubEventsFn_t = Option<
    unsafe extern "C" fn(
        eventId: QnnProfile_EventId_t,
        subEventIds: *mut *const QnnProfile_EventId_t,
        numSubEvents: *mut u32,
    ) -> Qnn_ErrorHandle_t,
>;
/// `profileGetEventData(event, &data)`.
pub type QnnProfile_GetEventDataFn_t = Option<
    unsafe extern "C" fn(
        eventId: QnnProfile_EventId_t,
        eventData: *mut QnnProfile_EventData_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `profileFree(profile)`.
pub type QnnProfile_FreeFn_t =
    Option<unsafe extern "C" fn(profile: Qnn_ProfileHandle_t) -> Qnn_ErrorHandle_t>;

/// `memRegister(context, descriptors, n, handles)`: share ION / dmabuf buffers with the NPU.
pub type QnnMem_RegisterFn_t = Option<
    unsafe extern "C" fn(
        context: Qnn_ContextHandle_t,
        memDescriptors: *const Qnn_MemDescriptor_t,
        numDescriptors: u32,
        memHandles: *mut Qnn_MemHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `memDeRegister(handles, n)`.
pub type QnnMem_DeRegisterFn_t = Option<
    unsafe extern "C" fn(memHandles: *const Qnn_MemHandle_t, numHandles: u32) -> Qnn_ErrorHandle_t,
>;

/// `deviceGetPlatformInfo(logger, &info)`.
pub type QnnDevice_GetPlatformInfoFn_t = Option<
    unsafe extern "C" fn(
        logger: Qnn_LogHandle_t,
        platformInfo: *mut *const QnnDevice_PlatformInfo_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `deviceFreePlatformInfo(logger, info)`.
pub type QnnDevice_FreePlatformInfoFn_t = Option<
    unsafe extern "C" fn(
        logger: Qnn_LogHandle_t,
        platformInfo: *const QnnDevice_PlatformInfo_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `deviceGetInfrastructure(&infra)`.
pub type QnnDevice_GetInfrastructureFn_t = Option<
    unsafe extern "C" fn(deviceInfra: *const QnnDevice_Infrastructure_t) -> Qnn_ErrorHandle_t,
>;
/// `deviceCreate(logger, config, &device)`.
pub type QnnDevice_CreateFn_t = Option<
    unsafe extern "C" fn(
        logger: Qnn_LogHandle_t,
        config: *mut *const QnnDevice_Config_t,
        device: *mut Qnn_DeviceHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `deviceSetConfig(device, config)`.
pub type QnnDevice_SetConfigFn_t = Option<
    unsafe extern "C" fn(
        device: Qnn_DeviceHandle_t,
        config: *mut *const QnnDevice_Config_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `deviceGetInfo(device, &info)`.
pub type QnnDevice_GetInfoFn_t = Option<
    unsafe extern "C" fn(
        device: Qnn_DeviceHandle_t,
        platformInfo: *mut *const QnnDevice_PlatformInfo_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `deviceFree(device)`.
pub type QnnDevice_FreeFn_t =
    Option<unsafe extern "C" fn(device: Qnn_DeviceHandle_t) -> Qnn_ErrorHandle_t>;

/// `signalCreate(backend, config, &signal)`.
pub type QnnSignal_CreateFn_t = Option<
    unsafe extern "C" fn(
        backend: Qnn_BackendHandle_t,
        config: *mut *const QnnSignal_Config_t,
        signal: *mut Qnn_SignalHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `signalSetConfig(signal, config)`.
pub type QnnSignal_SetConfigFn_t = Option<
    unsafe extern "C" fn(
        signal: Qnn_SignalHandle_t,
        config: *mut *const QnnSignal_Config_t,
    ) -> Qnn_ErrorHandle_t,
>;
/// `signalTrigger(signal)`: abort the call observing it.
pub type QnnSignal_TriggerFn_t =
    Option<unsafe extern "C" fn(signal: Qnn_SignalHandle_t) -> Qnn_ErrorHandle_t>;
/// `signalFree(signal)`.
pub type QnnSignal_FreeFn_t =
    Option<unsafe extern "C" fn(signal: Qnn_SignalHandle_t) -> Qnn_ErrorHandle_t>;

/// The API 2.7 function table (`QNN_INTERFACE_VER_TYPE` = `QnnInterface_ImplementationV2_7_t`),
/// 44 entries in header order. Grouping comments follow the header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct QnnInterface_ImplementationV2_7_t {
    /// 0
    pub propertyHasCapability: QnnProperty_HasCapabilityFn_t,
    // -- backend --
    /// 1
    pub backendCreate: QnnBackend_CreateFn_t,
    /// 2
    pub backendGetApiVersion: QnnBackend_GetApiVersionFn_t,
    /// 3
    pub backendGetBuildId: QnnBackend_GetBuildIdFn_t,
    /// 4
    pub backendRegisterOpPackage: QnnBackend_RegisterOpPackageFn_t,
    /// 5
    pub backendGetSupportedOperations: QnnBackend_GetSupportedOperationsFn_t,
    /// 6
    pub backendValidateOpConfig: QnnBackend_ValidateOpConfigFn_t,
    /// 7
    pub backendFree: QnnBackend_FreeFn_t,
    // -- context --
    /// 8
    pub contextCreate: QnnContext_CreateFn_t,
    /// 9
    pub contextSetConfig: QnnContext_SetConfigFn_t,
    /// 10
    pub contextGetBinarySize: QnnContext_GetBinarySizeFn_t,
    /// 11
    pub contextGetBinary: QnnContext_GetBinaryFn_t,
    /// 12
    pub contextCreateFromBinary: QnnContext_CreateFromBinaryFn_t,
    /// 13
    pub contextFree: QnnContext_FreeFn_t,
    // -- graph --
    /// 14
    pub graphCreate: QnnGraph_CreateFn_t,
    /// 15
    pub graphSetConfig: QnnGraph_SetConfigFn_t,
    /// 16
    pub graphAddNode: QnnGraph_AddNodeFn_t,
    /// 17
    pub graphFinalize: QnnGraph_FinalizeFn_t,
    /// 18
    pub graphRetrieve: QnnGraph_RetrieveFn_t,
    /// 19
    pub graphExecute: QnnGraph_ExecuteFn_t,
    /// 20
    pub graphExecuteAsync: QnnGraph_ExecuteAsyncFn_t,
    // -- tensor --
    /// 21
    pub tensorCreateContextTensor: QnnTensor_CreateContextTensorFn_t,
    /// 22
    pub tensorCreateGraphTensor: QnnTensor_CreateGraphTensorFn_t,
    // -- log --
    /// 23
    pub logCreate: QnnLog_CreateFn_t,
    /// 24
    pub logSetLogLevel: QnnLog_SetLogLevelFn_t,
    /// 25
    pub logFree: QnnLog_FreeFn_t,
    // -- profile --
    /// 26
    pub profileCreate: QnnProfile_CreateFn_t,
    /// 27
    pub profileGetEvents: QnnProfile_GetEventsFn_t,
    /// 28
    pub profileGetSubEvents: QnnProfile_GetSubEventsFn_t,
    /// 29
    pub profileGetEventData: QnnProfile_GetEventDataFn_t,
    /// 30
    pub profileFree: QnnProfile_FreeFn_t,
    // -- mem --
    /// 31
    pub memRegister: QnnMem_RegisterFn_t,
    /// 32
    pub memDeRegister: QnnMem_DeRegisterFn_t,
    // -- device --
    /// 33
    pub deviceGetPlatformInfo: QnnDevice_GetPlatformInfoFn_t,
    /// 34
    pub deviceFreePlatformInfo: QnnDevice_FreePlatformInfoFn_t,
    /// 35
    pub deviceGetInfrastructure: QnnDevice_GetInfrastructureFn_t,
    /// 36
    pub deviceCreate: QnnDevice_CreateFn_t,
    /// 37
    pub deviceSetConfig: QnnDevice_SetConfigFn_t,
    /// 38
    pub deviceGetInfo: QnnDevice_GetInfoFn_t,
    /// 39
    pub deviceFree: QnnDevice_FreeFn_t,
    // -- signal --
    /// 40
    pub signalCreate: QnnSignal_CreateFn_t,
    /// 41
    pub signalSetConfig: QnnSignal_SetConfigFn_t,
    /// 42
    pub signalTrigger: QnnSignal_TriggerFn_t,
    /// 43
    pub signalFree: QnnSignal_FreeFn_t,
}

/// The pinned generation's table type under a version-neutral name, for code that should not
/// spell the version.
pub type QNN_INTERFACE_VER_TYPE = QnnInterface_ImplementationV2_7_t;

/// The anonymous union around the table in `QnnInterface_t`; its single member is named after
/// the API version (`v2_7`), as `QNN_INTERFACE_VER_NAME` does.
#[repr(C)]
#[derive(Clone, Copy)]
pub union QnnInterface_Versions_t {
    /// The API 2.7 table.
    pub v2_7: QnnInterface_ImplementationV2_7_t,
}

/// One interface provider exported by a backend library.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnInterface_t {
    /// Which backend (e.g. [`QNN_BACKEND_ID_HTP`]); may be `QNN_BACKEND_ID_NULL`.
    pub backendId: u32,
    /// Provider name; may be NULL.
    pub providerName: *const c_char,
    /// API versions of this provider; checked before touching the table.
    pub apiVersion: Qnn_ApiVersion_t,
    /// The function table.
    pub u: QnnInterface_Versions_t,
}
