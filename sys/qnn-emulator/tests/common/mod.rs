//! Shared helpers for the emulator tests: load the built cdylib through `QnnLibrary::load` (the
//! production loading path) and build graphs through the raw function table.

#![allow(dead_code)]

use std::ffi::{c_void, CString};
use std::ptr::null_mut;
use std::sync::{Mutex, MutexGuard, OnceLock};

use wisp_qnn_sys::*;

/// Tests share process-wide state (environment variables, the emulator's fault counters), so they
/// run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The emulator, loaded once per test process.
pub fn lib() -> &'static QnnLibrary {
    static LIB: OnceLock<QnnLibrary> = OnceLock::new();
    LIB.get_or_init(|| {
        let path = wisp_qnn_emulator::locate_cdylib()
            .expect("built emulator cdylib not found next to the test binary");
        QnnLibrary::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The function table.
pub fn f() -> &'static QnnInterface_ImplementationV2_7_t {
    lib().functions()
}

/// Description of a tensor to create.
pub struct Spec {
    pub name: &'static str,
    pub ty: Qnn_TensorType_t,
    pub dtype: Qnn_DataType_t,
    pub dims: Vec<u32>,
    pub quant: Qnn_QuantizeParams_t,
    /// Per-channel encodings, when `quant` is axis-scale-offset (kept alive here).
    pub per_channel: Vec<Qnn_ScaleOffset_t>,
    /// Channel axis of `per_channel`.
    pub axis: Option<i32>,
    pub data: Vec<u8>,
}

impl Spec {
    pub fn new(
        name: &'static str,
        ty: Qnn_TensorType_t,
        dtype: Qnn_DataType_t,
        dims: &[u32],
    ) -> Spec {
        Spec {
            name,
            ty,
            dtype,
            dims: dims.to_vec(),
            quant: Qnn_QuantizeParams_t::INIT,
            per_channel: Vec::new(),
            axis: None,
            data: Vec::new(),
        }
    }
    pub fn quant(mut self, scale: f32, offset: i32) -> Spec {
        self.quant = Qnn_QuantizeParams_t::scale_offset(scale, offset);
        self
    }
    pub fn per_channel(mut self, axis: i32, params: &[(f32, i32)]) -> Spec {
        self.per_channel = params
            .iter()
            .map(|&(scale, offset)| Qnn_ScaleOffset_t { scale, offset })
            .collect();
        self.axis = Some(axis);
        self.quant = Qnn_QuantizeParams_t {
            encodingDefinition: QNN_DEFINITION_DEFINED,
            quantizationEncoding: QNN_QUANTIZATION_ENCODING_AXIS_SCALE_OFFSET,
            encoding: Qnn_QuantizeParams_Encoding_t {
                axisScaleOffsetEncoding: Qnn_AxisScaleOffset_t {
                    axis,
                    numScaleOffsets: 0,
                    scaleOffset: null_mut(),
                },
            },
        };
        self
    }
    pub fn data(mut self, bytes: Vec<u8>) -> Spec {
        self.data = bytes;
        self
    }
    pub fn f32_data(self, values: &[f32]) -> Spec {
        self.data(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

/// A created tensor: owns everything its `Qnn_Tensor_t` points at.
pub struct Tensor {
    pub raw: Qnn_Tensor_t,
    _name: CString,
    _dims: Box<[u32]>,
    _per_channel: Box<[Qnn_ScaleOffset_t]>,
    _data: Box<[u8]>,
}

impl Tensor {
    pub fn id(&self) -> u32 {
        // SAFETY: the tests only build v1 tensors.
        unsafe { self.raw.u.v1.id }
    }
    /// A copy of the struct for node / execute arguments, with `buffer` as its client data.
    pub fn with_buffer(&self, buffer: &mut [u8]) -> Qnn_Tensor_t {
        let mut t = self.raw;
        // SAFETY: the tests only build v1 tensors, so `v1` is the initialised member.
        let mut v1 = unsafe { t.u.v1 };
        v1.memType = QNN_TENSORMEMTYPE_RAW;
        v1.data.clientBuf = Qnn_ClientBuffer_t {
            data: buffer.as_mut_ptr().cast(),
            dataSize: buffer.len() as u32,
        };
        t.u.v1 = v1;
        t
    }
}

/// Builds the `Qnn_Tensor_t` for `spec` (not yet registered).
pub fn tensor_struct(spec: Spec) -> Tensor {
    let name = CString::new(spec.name).unwrap();
    let mut dims = spec.dims.into_boxed_slice();
    let mut per_channel = spec.per_channel.into_boxed_slice();
    let mut data = spec.data.into_boxed_slice();
    let mut quant = spec.quant;
    if quant.quantizationEncoding == QNN_QUANTIZATION_ENCODING_AXIS_SCALE_OFFSET {
        // Writing a union field is safe; this selects the axis member set in `per_channel()`.
        quant.encoding.axisScaleOffsetEncoding = Qnn_AxisScaleOffset_t {
            axis: 0,
            numScaleOffsets: per_channel.len() as u32,
            scaleOffset: per_channel.as_mut_ptr(),
        };
        if let Some(axis) = spec.axis {
            quant.encoding.axisScaleOffsetEncoding.axis = axis;
        }
    }
    let v1 = Qnn_TensorV1_t {
        id: 0,
        name: name.as_ptr(),
        type_: spec.ty,
        dataFormat: QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER,
        dataType: spec.dtype,
        quantizeParams: quant,
        rank: dims.len() as u32,
        dimensions: if dims.is_empty() {
            null_mut()
        } else {
            dims.as_mut_ptr()
        },
        memType: QNN_TENSORMEMTYPE_RAW,
        data: Qnn_TensorV1_Data_t {
            clientBuf: Qnn_ClientBuffer_t {
                data: if data.is_empty() {
                    null_mut()
                } else {
                    data.as_mut_ptr().cast::<c_void>()
                },
                dataSize: data.len() as u32,
            },
        },
    };
    Tensor {
        raw: Qnn_Tensor_t::v1(v1),
        _name: name,
        _dims: dims,
        _per_channel: per_channel,
        _data: data,
    }
}

/// A backend + context + graph, freed on drop.
pub struct Session {
    pub backend: Qnn_BackendHandle_t,
    pub context: Qnn_ContextHandle_t,
    pub graph: Qnn_GraphHandle_t,
    pub log: Qnn_LogHandle_t,
    names: Vec<CString>,
}

pub fn code(e: Qnn_ErrorHandle_t) -> u64 {
    error_code(e)
}

impl Session {
    /// A session whose errors go to the Rust log handler (through the C va_list shim).
    pub fn new(graph_name: &str) -> Session {
        let f = f();
        let mut log = null_mut();
        // SAFETY: valid callback and out-pointer.
        assert_eq!(
            unsafe { f.logCreate.unwrap()(log_callback(), QNN_LOG_LEVEL_WARN, &mut log) },
            0
        );
        let mut backend = null_mut();
        // SAFETY: valid logger and out-pointer; NULL config means defaults.
        assert_eq!(
            unsafe { f.backendCreate.unwrap()(log, null_mut(), &mut backend) },
            0
        );
        let mut context = null_mut();
        // SAFETY: valid backend, NULL device and config.
        assert_eq!(
            unsafe { f.contextCreate.unwrap()(backend, null_mut(), null_mut(), &mut context) },
            0
        );
        let mut s = Session {
            backend,
            context,
            graph: null_mut(),
            log,
            names: Vec::new(),
        };
        let name = CString::new(graph_name).unwrap();
        // SAFETY: valid context and name.
        assert_eq!(
            unsafe { f.graphCreate.unwrap()(context, name.as_ptr(), null_mut(), &mut s.graph) },
            0
        );
        s.names.push(name);
        s
    }

    /// Creates a graph tensor; returns the raw result code and the tensor (id written back).
    pub fn try_tensor(&mut self, spec: Spec) -> (u64, Tensor) {
        let mut t = tensor_struct(spec);
        // SAFETY: valid graph; the tensor's pointers are owned by `t`.
        let c = unsafe { f().tensorCreateGraphTensor.unwrap()(self.graph, &mut t.raw) };
        (code(c), t)
    }

    pub fn tensor(&mut self, spec: Spec) -> Tensor {
        let name = spec.name;
        let (c, t) = self.try_tensor(spec);
        assert_eq!(c, 0, "creating {name}");
        t
    }

    /// Adds a node; returns the result code.
    pub fn node(
        &mut self,
        op: &str,
        params: &mut [Qnn_Param_t],
        inputs: &[&Tensor],
        outputs: &[&Tensor],
    ) -> u64 {
        let name = CString::new(format!("{op}_{}", self.names.len())).unwrap();
        let op_c = CString::new(op).unwrap();
        let mut ins: Vec<Qnn_Tensor_t> = inputs.iter().map(|t| t.raw).collect();
        let mut outs: Vec<Qnn_Tensor_t> = outputs.iter().map(|t| t.raw).collect();
        let cfg = Qnn_OpConfig_t::v1(Qnn_OpConfigV1_t {
            name: name.as_ptr(),
            packageName: ops::QNN_OP_PACKAGE_NAME_QTI_AISW_C.as_ptr(),
            typeName: op_c.as_ptr(),
            numOfParams: params.len() as u32,
            params: if params.is_empty() {
                null_mut()
            } else {
                params.as_mut_ptr()
            },
            numOfInputs: ins.len() as u32,
            inputTensors: ins.as_mut_ptr(),
            numOfOutputs: outs.len() as u32,
            outputTensors: outs.as_mut_ptr(),
        });
        // SAFETY: every pointer in `cfg` is alive for the call.
        let c = unsafe { f().graphAddNode.unwrap()(self.graph, cfg) };
        self.names.push(name);
        code(c)
    }

    pub fn finalize(&self) -> u64 {
        // SAFETY: valid graph; NULL profile and signal.
        code(unsafe { f().graphFinalize.unwrap()(self.graph, null_mut(), null_mut()) })
    }

    /// Executes `graph` with one buffer per input and output tensor.
    pub fn execute_graph(
        graph: Qnn_GraphHandle_t,
        inputs: &[(&Tensor, &mut [u8])],
        outputs: &mut [(&Tensor, &mut [u8])],
    ) -> u64 {
        let ins: Vec<Qnn_Tensor_t> = inputs
            .iter()
            .map(|(t, b)| t.with_buffer(unsafe_slice(b)))
            .collect();
        let mut outs: Vec<Qnn_Tensor_t> =
            outputs.iter_mut().map(|(t, b)| t.with_buffer(b)).collect();
        // SAFETY: the tensor arrays and their buffers are alive for the call.
        code(unsafe {
            f().graphExecute.unwrap()(
                graph,
                ins.as_ptr(),
                ins.len() as u32,
                outs.as_mut_ptr(),
                outs.len() as u32,
                null_mut(),
                null_mut(),
            )
        })
    }

    pub fn execute(
        &self,
        inputs: &[(&Tensor, &mut [u8])],
        outputs: &mut [(&Tensor, &mut [u8])],
    ) -> u64 {
        Session::execute_graph(self.graph, inputs, outputs)
    }
}

/// Input buffers are only read by the emulator; this gives the `*mut` the struct wants.
fn unsafe_slice(b: &&mut [u8]) -> &'static mut [u8] {
    // SAFETY: test-only: the emulator never writes input buffers, and the buffer outlives the call.
    unsafe { std::slice::from_raw_parts_mut(b.as_ptr() as *mut u8, b.len()) }
}

impl Drop for Session {
    fn drop(&mut self) {
        let f = f();
        // SAFETY: handles created by this session; freeing twice is reported, not UB, in the emulator.
        unsafe {
            f.contextFree.unwrap()(self.context, null_mut());
            f.backendFree.unwrap()(self.backend);
            f.logFree.unwrap()(self.log);
        }
    }
}

/// A scalar param.
pub fn scalar(
    name: &'static std::ffi::CStr,
    dtype: Qnn_DataType_t,
    value: Qnn_Scalar_Value_t,
) -> Qnn_Param_t {
    Qnn_Param_t {
        paramType: QNN_PARAMTYPE_SCALAR,
        name: name.as_ptr(),
        value: Qnn_Param_Value_t {
            scalarParam: Qnn_Scalar_t {
                dataType: dtype,
                value,
            },
        },
    }
}

/// A tensor param referring to a created STATIC tensor.
pub fn tensor_param(name: &'static std::ffi::CStr, t: &Tensor) -> Qnn_Param_t {
    Qnn_Param_t {
        paramType: QNN_PARAMTYPE_TENSOR,
        name: name.as_ptr(),
        value: Qnn_Param_Value_t { tensorParam: t.raw },
    }
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn bytes_of(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
