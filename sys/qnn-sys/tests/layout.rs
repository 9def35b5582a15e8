//! Every size, offset and constant of the hand-written bindings, checked against the values of
//! the pinned SDK 2.13 / API 2.7.2 headers on 64-bit targets. A failure here means the Rust layout
//! no longer matches the C ABI, which would corrupt memory at the first call.
#![cfg(target_pointer_width = "64")]

use std::mem::{align_of, offset_of, size_of};

use wisp_qnn_sys::*;

#[test]
fn version_struct_layouts() {
    assert_eq!(size_of::<Qnn_Version_t>(), 12);
    assert_eq!(offset_of!(Qnn_Version_t, major), 0);
    assert_eq!(offset_of!(Qnn_Version_t, minor), 4);
    assert_eq!(offset_of!(Qnn_Version_t, patch), 8);
    assert_eq!(size_of::<Qnn_ApiVersion_t>(), 24);
    assert_eq!(offset_of!(Qnn_ApiVersion_t, coreApiVersion), 0);
    assert_eq!(offset_of!(Qnn_ApiVersion_t, backendApiVersion), 12);
}

#[test]
fn interface_struct_layout() {
    assert_eq!(offset_of!(QnnInterface_t, backendId), 0);
    assert_eq!(offset_of!(QnnInterface_t, providerName), 8);
    assert_eq!(offset_of!(QnnInterface_t, apiVersion), 16);
    assert_eq!(offset_of!(QnnInterface_t, u), 40);
    assert_eq!(
        size_of::<QnnInterface_ImplementationV2_7_t>(),
        QNN_INTERFACE_TABLE_LEN * 8
    );
    assert_eq!(QNN_INTERFACE_TABLE_LEN, 44);
    assert_eq!(size_of::<QnnInterface_t>(), 40 + 44 * 8);
    assert_eq!(align_of::<QnnInterface_t>(), 8);
}

#[test]
fn function_table_order_matches_the_2_13_header() {
    type T = QnnInterface_ImplementationV2_7_t;
    let offsets = [
        offset_of!(T, propertyHasCapability),
        offset_of!(T, backendCreate),
        offset_of!(T, backendGetApiVersion),
        offset_of!(T, backendGetBuildId),
        offset_of!(T, backendRegisterOpPackage),
        offset_of!(T, backendGetSupportedOperations),
        offset_of!(T, backendValidateOpConfig),
        offset_of!(T, backendFree),
        offset_of!(T, contextCreate),
        offset_of!(T, contextSetConfig),
        offset_of!(T, contextGetBinarySize),
        offset_of!(T, contextGetBinary),
        offset_of!(T, contextCreateFromBinary),
        offset_of!(T, contextFree),
        offset_of!(T, graphCreate),
        offset_of!(T, graphSetConfig),
        offset_of!(T, graphAddNode),
        offset_of!(T, graphFinalize),
        offset_of!(T, graphRetrieve),
        offset_of!(T, graphExecute),
        offset_of!(T, graphExecuteAsync),
        offset_of!(T, tensorCreateContextTensor),
        offset_of!(T, tensorCreateGraphTensor),
        offset_of!(T, logCreate),
        offset_of!(T, logSetLogLevel),
        offset_of!(T, logFree),
        offset_of!(T, profileCreate),
        offset_of!(T, profileGetEvents),
        offset_of!(T, profileGetSubEvents),
        offset_of!(T, profileGetEventData),
        offset_of!(T, profileFree),
        offset_of!(T, memRegister),
        offset_of!(T, memDeRegister),
        offset_of!(T, deviceGetPlatformInfo),
        offset_of!(T, deviceFreePlatformInfo),
        offset_of!(T, deviceGetInfrastructure),
        offset_of!(T, deviceCreate),
        offset_of!(T, deviceSetConfig),
        offset_of!(T, deviceGetInfo),
        offset_of!(T, deviceFree),
        offset_of!(T, signalCreate),
        offset_of!(T, signalSetConfig),
        offset_of!(T, signalTrigger),
        offset_of!(T, signalFree),
    ];
    assert_eq!(offsets.len(), QNN_INTERFACE_TABLE_LEN);
    for (index, offset) in offsets.into_iter().enumerate() {
        assert_eq!(offset, index * 8, "table entry {index}");
    }
    // The entries wisp's backend relies on, by index (generation A numbering).
    assert_eq!(offset_of!(T, graphExecute) / 8, 19);
    assert_eq!(offset_of!(T, tensorCreateGraphTensor) / 8, 22);
    assert_eq!(offset_of!(T, logCreate) / 8, 23);
    // Entries are nullable function pointers: `None` must be the all-zero pointer.
    assert_eq!(size_of::<QnnGraph_ExecuteFn_t>(), 8);
    assert!(T::default().graphExecute.is_none());
}

#[test]
fn quantize_params_layout() {
    assert_eq!(size_of::<Qnn_ScaleOffset_t>(), 8);
    assert_eq!(offset_of!(Qnn_ScaleOffset_t, scale), 0);
    assert_eq!(offset_of!(Qnn_ScaleOffset_t, offset), 4);
    assert_eq!(size_of::<Qnn_BwScaleOffset_t>(), 12);
    assert_eq!(offset_of!(Qnn_BwScaleOffset_t, bitwidth), 0);
    assert_eq!(offset_of!(Qnn_BwScaleOffset_t, scale), 4);
    assert_eq!(offset_of!(Qnn_BwScaleOffset_t, offset), 8);
    assert_eq!(size_of::<Qnn_AxisScaleOffset_t>(), 16);
    assert_eq!(offset_of!(Qnn_AxisScaleOffset_t, axis), 0);
    assert_eq!(offset_of!(Qnn_AxisScaleOffset_t, numScaleOffsets), 4);
    assert_eq!(offset_of!(Qnn_AxisScaleOffset_t, scaleOffset), 8);
    assert_eq!(size_of::<Qnn_BwAxisScaleOffset_t>(), 32);
    assert_eq!(offset_of!(Qnn_BwAxisScaleOffset_t, bitwidth), 0);
    assert_eq!(offset_of!(Qnn_BwAxisScaleOffset_t, axis), 4);
    assert_eq!(offset_of!(Qnn_BwAxisScaleOffset_t, numElements), 8);
    assert_eq!(offset_of!(Qnn_BwAxisScaleOffset_t, scales), 16);
    assert_eq!(offset_of!(Qnn_BwAxisScaleOffset_t, offsets), 24);
    assert_eq!(size_of::<Qnn_QuantizeParams_Encoding_t>(), 32);
    assert_eq!(size_of::<Qnn_QuantizeParams_t>(), 40);
    assert_eq!(align_of::<Qnn_QuantizeParams_t>(), 8);
    assert_eq!(offset_of!(Qnn_QuantizeParams_t, encodingDefinition), 0);
    assert_eq!(offset_of!(Qnn_QuantizeParams_t, quantizationEncoding), 4);
    assert_eq!(offset_of!(Qnn_QuantizeParams_t, encoding), 8);
}

#[test]
fn tensor_layouts() {
    assert_eq!(size_of::<Qnn_ClientBuffer_t>(), 16);
    assert_eq!(offset_of!(Qnn_ClientBuffer_t, data), 0);
    assert_eq!(offset_of!(Qnn_ClientBuffer_t, dataSize), 8);
    assert_eq!(size_of::<Qnn_TensorV1_Data_t>(), 16);

    assert_eq!(size_of::<Qnn_TensorV1_t>(), 112);
    assert_eq!(offset_of!(Qnn_TensorV1_t, id), 0);
    assert_eq!(offset_of!(Qnn_TensorV1_t, name), 8);
    assert_eq!(offset_of!(Qnn_TensorV1_t, type_), 16);
    assert_eq!(offset_of!(Qnn_TensorV1_t, dataFormat), 20);
    assert_eq!(offset_of!(Qnn_TensorV1_t, dataType), 24);
    assert_eq!(offset_of!(Qnn_TensorV1_t, quantizeParams), 32);
    assert_eq!(offset_of!(Qnn_TensorV1_t, rank), 72);
    assert_eq!(offset_of!(Qnn_TensorV1_t, dimensions), 80);
    assert_eq!(offset_of!(Qnn_TensorV1_t, memType), 88);
    assert_eq!(offset_of!(Qnn_TensorV1_t, data), 96);

    // v1 only in this generation: 8 + 112 (newer headers with v2 make it 144).
    assert_eq!(size_of::<Qnn_Tensor_t>(), 120);
    assert_eq!(offset_of!(Qnn_Tensor_t, version), 0);
    assert_eq!(offset_of!(Qnn_Tensor_t, u), 8);
}

#[test]
fn scalar_param_and_op_config_layouts() {
    // Only 4-byte-or-smaller members in this generation (no double / int64 / string).
    assert_eq!(size_of::<Qnn_Scalar_Value_t>(), 4);
    assert_eq!(size_of::<Qnn_Scalar_t>(), 8);
    assert_eq!(offset_of!(Qnn_Scalar_t, dataType), 0);
    assert_eq!(offset_of!(Qnn_Scalar_t, value), 4);

    assert_eq!(size_of::<Qnn_Param_t>(), 136);
    assert_eq!(offset_of!(Qnn_Param_t, paramType), 0);
    assert_eq!(offset_of!(Qnn_Param_t, name), 8);
    assert_eq!(offset_of!(Qnn_Param_t, value), 16);

    assert_eq!(size_of::<Qnn_OpConfigV1_t>(), 72);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, name), 0);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, packageName), 8);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, typeName), 16);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, numOfParams), 24);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, params), 32);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, numOfInputs), 40);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, inputTensors), 48);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, numOfOutputs), 56);
    assert_eq!(offset_of!(Qnn_OpConfigV1_t, outputTensors), 64);
    assert_eq!(size_of::<Qnn_OpConfig_t>(), 80);
    assert_eq!(offset_of!(Qnn_OpConfig_t, version), 0);
    assert_eq!(offset_of!(Qnn_OpConfig_t, u), 8);

    assert_eq!(size_of::<QnnBackend_OperationName_t>(), 24);
    assert_eq!(size_of::<Qnn_NotifyStatus_t>(), 8);
    assert_eq!(
        size_of::<QnnGraph_Config_t>(),
        0,
        "opaque configs are zero-sized markers"
    );
}

#[test]
fn data_type_constants() {
    let expected: [(Qnn_DataType_t, u32, Option<usize>); 19] = [
        (QNN_DATATYPE_INT_8, 0x0008, Some(1)),
        (QNN_DATATYPE_INT_16, 0x0016, Some(2)),
        (QNN_DATATYPE_INT_32, 0x0032, Some(4)),
        (QNN_DATATYPE_INT_64, 0x0064, Some(8)),
        (QNN_DATATYPE_UINT_8, 0x0108, Some(1)),
        (QNN_DATATYPE_UINT_16, 0x0116, Some(2)),
        (QNN_DATATYPE_UINT_32, 0x0132, Some(4)),
        (QNN_DATATYPE_UINT_64, 0x0164, Some(8)),
        (QNN_DATATYPE_FLOAT_16, 0x0216, Some(2)),
        (QNN_DATATYPE_FLOAT_32, 0x0232, Some(4)),
        (QNN_DATATYPE_SFIXED_POINT_8, 0x0308, Some(1)),
        (QNN_DATATYPE_SFIXED_POINT_16, 0x0316, Some(2)),
        (QNN_DATATYPE_SFIXED_POINT_32, 0x0332, Some(4)),
        (QNN_DATATYPE_UFIXED_POINT_8, 0x0408, Some(1)),
        (QNN_DATATYPE_UFIXED_POINT_16, 0x0416, Some(2)),
        (QNN_DATATYPE_UFIXED_POINT_32, 0x0432, Some(4)),
        (QNN_DATATYPE_BOOL_8, 0x0508, Some(1)),
        (QNN_DATATYPE_UNDEFINED, 0x7FFF_FFFF, None),
        (0x0264, 0x0264, None), // FLOAT_64 only exists in newer headers
    ];
    for (constant, value, size) in expected {
        assert_eq!(constant, value);
        assert_eq!(data_type_size(constant), size, "size of {value:#x}");
    }
    assert!(is_fixed_point(QNN_DATATYPE_UFIXED_POINT_8));
    assert!(is_fixed_point(QNN_DATATYPE_SFIXED_POINT_32));
    assert!(!is_fixed_point(QNN_DATATYPE_FLOAT_32));
    assert!(!is_fixed_point(QNN_DATATYPE_UINT_8));
    assert!(!is_fixed_point(QNN_DATATYPE_UNDEFINED));
}

#[test]
fn enum_constants() {
    assert_eq!(
        [
            QNN_TENSOR_TYPE_APP_WRITE,
            QNN_TENSOR_TYPE_APP_READ,
            QNN_TENSOR_TYPE_APP_READWRITE,
            QNN_TENSOR_TYPE_NATIVE,
            QNN_TENSOR_TYPE_STATIC,
            QNN_TENSOR_TYPE_NULL,
            QNN_TENSOR_TYPE_UNDEFINED
        ],
        [0, 1, 2, 3, 4, 5, 0x7FFF_FFFF]
    );
    assert_eq!(
        [
            QNN_PARAMTYPE_SCALAR,
            QNN_PARAMTYPE_TENSOR,
            QNN_PARAMTYPE_UNDEFINED
        ],
        [0, 1, 0xFFFF_FFFF]
    );
    assert_eq!(
        [
            QNN_DEFINITION_IMPL_GENERATED,
            QNN_DEFINITION_DEFINED,
            QNN_DEFINITION_UNDEFINED
        ],
        [0, 1, 0x7FFF_FFFF]
    );
    assert_eq!(
        [
            QNN_QUANTIZATION_ENCODING_SCALE_OFFSET,
            QNN_QUANTIZATION_ENCODING_AXIS_SCALE_OFFSET,
            QNN_QUANTIZATION_ENCODING_BW_SCALE_OFFSET,
            QNN_QUANTIZATION_ENCODING_BW_AXIS_SCALE_OFFSET,
            QNN_QUANTIZATION_ENCODING_UNDEFINED
        ],
        [0, 1, 2, 3, 0x7FFF_FFFF]
    );
    assert_eq!(
        [
            QNN_TENSORMEMTYPE_RAW,
            QNN_TENSORMEMTYPE_MEMHANDLE,
            QNN_TENSORMEMTYPE_UNDEFINED
        ],
        [0, 1, 0x7FFF_FFFF]
    );
    assert_eq!(QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER, 0);
    assert_eq!(
        [QNN_TENSOR_VERSION_1, QNN_TENSOR_VERSION_UNDEFINED],
        [1, 0x7FFF_FFFF]
    );
    assert_eq!(
        [QNN_OPCONFIG_VERSION_1, QNN_OPCONFIG_VERSION_UNDEFINED],
        [1, 0x7FFF_FFFF]
    );
    assert_eq!([QNN_PRECISION_FLOAT32, QNN_PRECISION_FLOAT16], [0, 1]);
    assert_eq!(
        [
            QNN_PRIORITY_LOW,
            QNN_PRIORITY_NORMAL,
            QNN_PRIORITY_NORMAL_HIGH,
            QNN_PRIORITY_HIGH
        ],
        [0, 100, 150, 200]
    );
    assert_eq!(
        [
            QNN_LOG_LEVEL_ERROR,
            QNN_LOG_LEVEL_WARN,
            QNN_LOG_LEVEL_INFO,
            QNN_LOG_LEVEL_VERBOSE,
            QNN_LOG_LEVEL_DEBUG
        ],
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        [
            QNN_BACKEND_ID_NULL,
            QNN_BACKEND_ID_REFERENCE,
            QNN_BACKEND_ID_SAVER,
            QNN_BACKEND_ID_CPU,
            QNN_BACKEND_ID_GPU,
            QNN_BACKEND_ID_DSP,
            QNN_BACKEND_ID_HTP
        ],
        [0, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        (
            QNN_API_VERSION_MAJOR,
            QNN_API_VERSION_MINOR,
            QNN_API_VERSION_PATCH
        ),
        (2, 7, 2)
    );
    assert_eq!(wisp_qnn_sys::ops::QNN_OP_PACKAGE_NAME_QTI_AISW, "qti.aisw");
    assert_eq!(
        wisp_qnn_sys::ops::QNN_OP_PACKAGE_NAME_QTI_AISW_C
            .to_str()
            .unwrap(),
        "qti.aisw"
    );
}

#[test]
fn error_code_constants() {
    let ranges = [
        (QNN_MIN_ERROR_COMMON, QNN_MAX_ERROR_COMMON, 1000, 1999),
        (QNN_MIN_ERROR_PROPERTY, QNN_MAX_ERROR_PROPERTY, 2000, 2999),
        (
            QNN_MIN_ERROR_OP_PACKAGE,
            QNN_MAX_ERROR_OP_PACKAGE,
            3000,
            3999,
        ),
        (QNN_MIN_ERROR_BACKEND, QNN_MAX_ERROR_BACKEND, 4000, 4999),
        (
            QNN_MIN_ERROR_BACKEND_SAVER,
            QNN_MAX_ERROR_BACKEND_SAVER,
            4950,
            4998,
        ),
        (QNN_MIN_ERROR_CONTEXT, QNN_MAX_ERROR_CONTEXT, 5000, 5999),
        (QNN_MIN_ERROR_GRAPH, QNN_MAX_ERROR_GRAPH, 6000, 6999),
        (QNN_MIN_ERROR_TENSOR, QNN_MAX_ERROR_TENSOR, 7000, 7999),
        (QNN_MIN_ERROR_MEM, QNN_MAX_ERROR_MEM, 8000, 8999),
        (QNN_MIN_ERROR_SIGNAL, QNN_MAX_ERROR_SIGNAL, 9000, 9999),
        (QNN_MIN_ERROR_ERROR, QNN_MAX_ERROR_ERROR, 10000, 10999),
        (QNN_MIN_ERROR_LOG, QNN_MAX_ERROR_LOG, 11000, 11999),
        (QNN_MIN_ERROR_PROFILE, QNN_MAX_ERROR_PROFILE, 12000, 12999),
        (
            QNN_MIN_ERROR_PERF_INFRASTRUCTURE,
            QNN_MAX_ERROR_PERF_INFRASTRUCTURE,
            13000,
            13999,
        ),
        (QNN_MIN_ERROR_DEVICE, QNN_MAX_ERROR_DEVICE, 14000, 14999),
        (QNN_MIN_ERROR_SYSTEM, QNN_MAX_ERROR_SYSTEM, 30000, 49999),
        (
            QNN_MIN_ERROR_INTERFACE,
            QNN_MAX_ERROR_INTERFACE,
            60000,
            60999,
        ),
    ];
    for (min, max, want_min, want_max) in ranges {
        assert_eq!((min, max), (want_min, want_max));
    }
    assert_eq!(QNN_SUCCESS, 0);
    assert_eq!(
        [
            QNN_COMMON_ERROR_NOT_SUPPORTED,
            QNN_COMMON_ERROR_MEM_ALLOC,
            QNN_COMMON_ERROR_SYSTEM,
            QNN_COMMON_ERROR_INVALID_ARGUMENT,
            QNN_COMMON_ERROR_OPERATION_NOT_PERMITTED,
            QNN_COMMON_ERROR_PLATFORM_NOT_SUPPORTED,
            QNN_COMMON_ERROR_SYSTEM_COMMUNICATION,
            QNN_COMMON_ERROR_INCOMPATIBLE_BINARIES,
            QNN_COMMON_ERROR_LOADING_BINARIES,
            QNN_COMMON_ERROR_RESOURCE_UNAVAILABLE,
            QNN_COMMON_ERROR_GENERAL
        ],
        [1000, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1100]
    );
    assert_eq!(QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE, 3110);
    assert_eq!(
        [
            QNN_BACKEND_ERROR_CANNOT_INITIALIZE,
            QNN_BACKEND_ERROR_TERMINATE_FAILED,
            QNN_BACKEND_ERROR_NOT_SUPPORTED,
            QNN_BACKEND_ERROR_INVALID_ARGUMENT,
            QNN_BACKEND_ERROR_OP_PACKAGE_NOT_FOUND,
            QNN_BACKEND_ERROR_OP_PACKAGE_IF_PROVIDER_NOT_FOUND,
            QNN_BACKEND_ERROR_OP_PACKAGE_REGISTRATION_FAILED,
            QNN_BACKEND_ERROR_OP_PACKAGE_UNSUPPORTED_VERSION,
            QNN_BACKEND_ERROR_OP_PACKAGE_DUPLICATE,
            QNN_BACKEND_ERROR_INCONSISTENT_CONFIG,
            QNN_BACKEND_ERROR_INVALID_HANDLE,
            QNN_BACKEND_ERROR_INVALID_CONFIG
        ],
        [4000, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009, 4010, 4011, 4012]
    );
    assert_eq!(
        [
            QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
            QNN_CONTEXT_ERROR_CTX_DOES_NOT_EXIST,
            QNN_CONTEXT_ERROR_INVALID_HANDLE,
            QNN_CONTEXT_ERROR_NOT_FINALIZED,
            QNN_CONTEXT_ERROR_BINARY_VERSION,
            QNN_CONTEXT_ERROR_CREATE_FROM_BINARY,
            QNN_CONTEXT_ERROR_GET_BINARY_SIZE_FAILED,
            QNN_CONTEXT_ERROR_GET_BINARY_FAILED,
            QNN_CONTEXT_ERROR_BINARY_CONFIGURATION,
            QNN_CONTEXT_ERROR_SET_PROFILE,
            QNN_CONTEXT_ERROR_INVALID_CONFIG
        ],
        [5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009, 5010]
    );
    assert_eq!(
        [
            QNN_GRAPH_ERROR_INVALID_ARGUMENT,
            QNN_GRAPH_ERROR_INVALID_HANDLE,
            QNN_GRAPH_ERROR_GRAPH_DOES_NOT_EXIST,
            QNN_GRAPH_ERROR_INVALID_NAME,
            QNN_GRAPH_ERROR_INVALID_TENSOR,
            QNN_GRAPH_ERROR_INVALID_OP_CONFIG,
            QNN_GRAPH_ERROR_SET_PROFILE,
            QNN_GRAPH_ERROR_UNCONNECTED_NODE,
            QNN_GRAPH_ERROR_CREATE_FAILED,
            QNN_GRAPH_ERROR_OPTIMIZATION_FAILED,
            QNN_GRAPH_ERROR_FINALIZE_FAILED,
            QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED,
            QNN_GRAPH_ERROR_GRAPH_FINALIZED,
            QNN_GRAPH_ERROR_EXECUTION_ASYNC_FIFO_FULL,
            QNN_GRAPH_ERROR_SIGNAL_IN_USE,
            QNN_GRAPH_ERROR_ABORTED,
            QNN_GRAPH_ERROR_PROFILE_IN_USE,
            QNN_GRAPH_ERROR_TIMED_OUT
        ],
        [
            6000, 6001, 6002, 6003, 6004, 6005, 6006, 6007, 6020, 6021, 6022, 6023, 6024, 6025,
            6030, 6031, 6032, 6033
        ]
    );
    assert_eq!(
        [
            QNN_GRAPH_ERROR_UNSUPPORTED_FEATURE,
            QNN_GRAPH_ERROR_MEM_ALLOC,
            QNN_GRAPH_ERROR_GENERAL
        ],
        [1000, 1002, 1100]
    );
    assert_eq!(
        [
            QNN_TENSOR_ERROR_INVALID_HANDLE,
            QNN_TENSOR_ERROR_DOES_NOT_EXIST,
            QNN_TENSOR_ERROR_ALREADY_EXISTS,
            QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM,
            QNN_TENSOR_ERROR_UNSUPPORTED_TENSOR_PARAM,
            QNN_TENSOR_ERROR_NAME_HASH_COLLISION
        ],
        [7001, 7002, 7003, 7004, 7005, 7006]
    );
    assert_eq!(
        [
            QNN_INTERFACE_ERROR_NOT_SUPPORTED,
            QNN_INTERFACE_ERROR_INVALID_PARAMETER
        ],
        [1000, 1004]
    );
}

#[test]
fn error_codes_use_only_the_low_16_bits() {
    let with_tracking_bits: Qnn_ErrorHandle_t =
        0xABCD_0000_0000_0000 | QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED;
    assert_eq!(error_code(with_tracking_bits), 6023);
    assert_eq!(
        error_name(with_tracking_bits),
        Some("QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED")
    );
    assert_eq!(
        error_name(QNN_COMMON_ERROR_MEM_ALLOC),
        Some("QNN_COMMON_ERROR_MEM_ALLOC")
    );
    assert_eq!(error_name(12345), None);
}

#[test]
fn initializers_match_the_header_macros() {
    let t = Qnn_Tensor_t::INIT;
    assert_eq!(t.version, QNN_TENSOR_VERSION_1);
    // SAFETY: INIT selects v1.
    let v1 = unsafe { t.u.v1 };
    assert_eq!(v1.id, 0);
    assert!(v1.name.is_null());
    assert_eq!(v1.type_, QNN_TENSOR_TYPE_UNDEFINED);
    assert_eq!(v1.dataFormat, QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER);
    assert_eq!(v1.dataType, QNN_DATATYPE_UNDEFINED);
    assert_eq!(
        v1.quantizeParams.encodingDefinition,
        QNN_DEFINITION_UNDEFINED
    );
    assert_eq!(
        v1.quantizeParams.quantizationEncoding,
        QNN_QUANTIZATION_ENCODING_UNDEFINED
    );
    assert_eq!(v1.memType, QNN_TENSORMEMTYPE_UNDEFINED);
    assert_eq!(Qnn_OpConfig_t::INIT.version, QNN_OPCONFIG_VERSION_1);
    assert_eq!(Qnn_Param_t::INIT.paramType, QNN_PARAMTYPE_UNDEFINED);
    assert_eq!(Qnn_Scalar_t::INIT.dataType, QNN_DATATYPE_UNDEFINED);
    let q = Qnn_QuantizeParams_t::scale_offset(0.5, -128);
    assert_eq!(q.encodingDefinition, QNN_DEFINITION_DEFINED);
    // SAFETY: scale_offset selects the scale/offset member.
    let so = unsafe { q.encoding.scaleOffsetEncoding };
    assert_eq!((so.scale, so.offset), (0.5, -128));
}

#[test]
fn version_rule() {
    let v = |major, minor, patch| Qnn_Version_t {
        major,
        minor,
        patch,
    };
    assert_eq!(check_core_api_version(v(2, 7, 2)), Ok(()));
    assert_eq!(
        check_core_api_version(v(2, 7, 0)),
        Ok(()),
        "patch is ignored"
    );
    assert_eq!(
        check_core_api_version(v(2, 6, 9)),
        Err(VersionMismatch::MinorTooOld)
    );
    assert_eq!(
        check_core_api_version(v(1, 7, 2)),
        Err(VersionMismatch::Major)
    );
    assert_eq!(
        check_core_api_version(v(3, 0, 0)),
        Err(VersionMismatch::Major)
    );
    assert_eq!(
        check_core_api_version(v(2, 20, 0)),
        Err(VersionMismatch::TableUnverified)
    );
    assert_eq!(PINNED_API_VERSION, v(2, 7, 2));
}
