//! With `--features bindgen` and `QNN_SDK_ROOT` set at build time, compares the hand-written
//! layouts against bindgen's output for the real SDK headers. Compiled out otherwise.
#![cfg(qnn_sdk_bindings)]

use std::mem::{offset_of, size_of};

use wisp_qnn_sys as ours;
use wisp_qnn_sys::sdk_bindings as sdk;

#[test]
fn sdk_is_the_pinned_generation() {
    assert_eq!(
        sdk::SDK_API_VERSION,
        (ours::QNN_API_VERSION_MAJOR, ours::QNN_API_VERSION_MINOR),
        "QNN_SDK_ROOT holds a different API version than the one wisp-qnn-sys pins; the \
         comparison below is only meaningful for the pinned generation"
    );
}

#[test]
fn sizes_match_the_sdk() {
    assert_eq!(
        size_of::<ours::QnnInterface_ImplementationV2_7_t>(),
        size_of::<sdk::SdkInterfaceTable>()
    );
    assert_eq!(
        size_of::<ours::QnnInterface_t>(),
        size_of::<sdk::QnnInterface_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_Tensor_t>(),
        size_of::<sdk::Qnn_Tensor_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_TensorV1_t>(),
        size_of::<sdk::Qnn_TensorV1_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_QuantizeParams_t>(),
        size_of::<sdk::Qnn_QuantizeParams_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_Scalar_t>(),
        size_of::<sdk::Qnn_Scalar_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_Param_t>(),
        size_of::<sdk::Qnn_Param_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_OpConfigV1_t>(),
        size_of::<sdk::Qnn_OpConfigV1_t>()
    );
    assert_eq!(
        size_of::<ours::Qnn_OpConfig_t>(),
        size_of::<sdk::Qnn_OpConfig_t>()
    );
}

#[test]
fn offsets_match_the_sdk() {
    assert_eq!(
        offset_of!(ours::Qnn_TensorV1_t, dataType),
        offset_of!(sdk::Qnn_TensorV1_t, dataType)
    );
    assert_eq!(
        offset_of!(ours::Qnn_TensorV1_t, quantizeParams),
        offset_of!(sdk::Qnn_TensorV1_t, quantizeParams)
    );
    assert_eq!(
        offset_of!(ours::Qnn_TensorV1_t, rank),
        offset_of!(sdk::Qnn_TensorV1_t, rank)
    );
    assert_eq!(
        offset_of!(ours::Qnn_TensorV1_t, dimensions),
        offset_of!(sdk::Qnn_TensorV1_t, dimensions)
    );
    assert_eq!(
        offset_of!(ours::Qnn_TensorV1_t, memType),
        offset_of!(sdk::Qnn_TensorV1_t, memType)
    );
    assert_eq!(
        offset_of!(ours::Qnn_OpConfigV1_t, outputTensors),
        offset_of!(sdk::Qnn_OpConfigV1_t, outputTensors)
    );
    type O = ours::QnnInterface_ImplementationV2_7_t;
    type S = sdk::SdkInterfaceTable;
    assert_eq!(offset_of!(O, backendCreate), offset_of!(S, backendCreate));
    assert_eq!(
        offset_of!(O, contextGetBinary),
        offset_of!(S, contextGetBinary)
    );
    assert_eq!(offset_of!(O, graphAddNode), offset_of!(S, graphAddNode));
    assert_eq!(offset_of!(O, graphExecute), offset_of!(S, graphExecute));
    assert_eq!(
        offset_of!(O, tensorCreateGraphTensor),
        offset_of!(S, tensorCreateGraphTensor)
    );
    assert_eq!(offset_of!(O, logCreate), offset_of!(S, logCreate));
    assert_eq!(offset_of!(O, signalFree), offset_of!(S, signalFree));
}

#[test]
fn constants_match_the_sdk() {
    assert_eq!(
        ours::QNN_DATATYPE_UFIXED_POINT_8,
        sdk::Qnn_DataType_t_QNN_DATATYPE_UFIXED_POINT_8 as u32
    );
    assert_eq!(
        ours::QNN_DATATYPE_FLOAT_16,
        sdk::Qnn_DataType_t_QNN_DATATYPE_FLOAT_16 as u32
    );
    assert_eq!(
        ours::QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED,
        sdk::QnnGraph_Error_t_QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED as u64
    );
    assert_eq!(
        ours::QNN_CONTEXT_ERROR_BINARY_VERSION,
        sdk::QnnContext_Error_t_QNN_CONTEXT_ERROR_BINARY_VERSION as u64
    );
}
