//! The FFI layer: a loaded library with its logger and backend handle
//! ([`Runtime`]), and one context holding one finalized graph ([`Context`]):
//! built from a [`QGraph`], or restored from a context binary.
//!
//! Every `unsafe` block here is a call through the pinned function table of
//! `wisp-qnn-sys`; each states which pointers it passes and why they are
//! valid for the call. Handles are opaque to wisp and freed on drop.

use std::collections::HashSet;
use std::ffi::{c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::{Arc, Mutex};

use wisp_qnn_sys::*;

use crate::error::QnnError;
use crate::ir::{Data, Enc, Param, QGraph, QTensor};

static LAST_LOG: Mutex<Option<String>> = Mutex::new(None);

/// The library's last error/warning log line (taken: the next call starts fresh).
pub fn take_last_log() -> Option<String> {
    LAST_LOG.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn install_log_handler() {
    set_log_handler(Some(Arc::new(|level, _ts, msg: &str| {
        let msg = msg.trim_end();
        if level <= QNN_LOG_LEVEL_WARN {
            *LAST_LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.to_string());
            tracing::debug!(target: "wisp_qnn", "{msg}");
        } else {
            tracing::trace!(target: "wisp_qnn", "{msg}");
        }
    })));
}

/// An opened QNN library with a logger and a backend handle.
pub struct Runtime {
    lib: QnnLibrary,
    log: Qnn_LogHandle_t,
    backend: Qnn_BackendHandle_t,
    /// `backendGetBuildId`, e.g. the emulator's "wisp-qnn-emulator (test double …)".
    pub build_id: String,
    /// Ops the library lists as supported (`backendGetSupportedOperations`), if it answers.
    pub supported: Option<HashSet<String>>,
}

// SAFETY: the handles are opaque tokens owned by this struct; QNN allows its
// entry points to be called from any thread, and every graph-level call on a
// context is serialized by the executable's mutex.
unsafe impl Send for Runtime {}
// SAFETY: as above; `&Runtime` only passes the handles to thread-safe entry points.
unsafe impl Sync for Runtime {}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.lib.path())
            .field("build_id", &self.build_id)
            .finish()
    }
}

fn ok(entry: &'static str, code: Qnn_ErrorHandle_t) -> Result<(), QnnError> {
    if error_code(code) == QNN_SUCCESS {
        Ok(())
    } else {
        Err(QnnError::call(entry, code))
    }
}

macro_rules! entry {
    ($rt:expr, $name:ident) => {
        $rt.lib
            .functions()
            .$name
            .ok_or(QnnError::MissingEntry(stringify!($name)))?
    };
}

impl Runtime {
    /// Opens the library at `path`, creates a logger and a backend.
    pub fn open(path: &std::path::Path) -> Result<Runtime, QnnError> {
        let lib = QnnLibrary::load(path).map_err(|e| QnnError::Unavailable(e.to_string()))?;
        install_log_handler();
        let mut rt = Runtime {
            lib,
            log: null_mut(),
            backend: null_mut(),
            build_id: String::new(),
            supported: None,
        };
        let log_create = entry!(rt, logCreate);
        let mut log = null_mut();
        // SAFETY: a valid `extern "C"` callback and a writable out-pointer.
        ok("logCreate", unsafe {
            log_create(log_callback(), QNN_LOG_LEVEL_WARN, &mut log)
        })?;
        rt.log = log;
        let backend_create = entry!(rt, backendCreate);
        let mut backend = null_mut();
        // SAFETY: the logger was just created; NULL config means defaults; valid out-pointer.
        ok("backendCreate", unsafe {
            backend_create(rt.log, null_mut(), &mut backend)
        })?;
        rt.backend = backend;
        if let Some(get) = rt.lib.functions().backendGetBuildId {
            let mut id: *const std::ffi::c_char = null();
            // SAFETY: valid out-pointer; the string is owned by the library.
            if error_code(unsafe { get(&mut id) }) == QNN_SUCCESS && !id.is_null() {
                // SAFETY: a non-null build id is a NUL-terminated string that lives with the library.
                rt.build_id = unsafe { CStr::from_ptr(id) }.to_string_lossy().into_owned();
            }
        }
        if let Some(get) = rt.lib.functions().backendGetSupportedOperations {
            let mut n = 0u32;
            let mut ops: *const QnnBackend_OperationName_t = null();
            // SAFETY: valid backend handle and out-pointers; the array is owned by the backend.
            if error_code(unsafe { get(rt.backend, &mut n, &mut ops) }) == QNN_SUCCESS
                && !ops.is_null()
            {
                let mut set = HashSet::new();
                for i in 0..n as usize {
                    // SAFETY: the backend returned an array of `n` entries.
                    let name = unsafe { (*ops.add(i)).name };
                    if !name.is_null() {
                        // SAFETY: op names are NUL-terminated strings owned by the backend.
                        set.insert(
                            unsafe { CStr::from_ptr(name) }
                                .to_string_lossy()
                                .into_owned(),
                        );
                    }
                }
                rt.supported = Some(set);
            }
        }
        Ok(rt)
    }

    /// The library file.
    pub fn path(&self) -> &std::path::Path {
        self.lib.path()
    }

    /// Whether the library is wisp's emulator (a test double, not a device).
    pub fn is_emulator(&self) -> bool {
        self.build_id.contains("wisp-qnn-emulator")
    }

    /// Identity for cache keys: build id, API version, backend id.
    pub fn identity(&self) -> String {
        let v = self.lib.api_version();
        format!(
            "{} | core {}.{}.{} backend {}.{}.{} | id {}",
            self.build_id,
            v.coreApiVersion.major,
            v.coreApiVersion.minor,
            v.coreApiVersion.patch,
            v.backendApiVersion.major,
            v.backendApiVersion.minor,
            v.backendApiVersion.patch,
            self.lib.backend_id()
        )
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let f = self.lib.functions();
        // SAFETY: handles created by `open` (or NULL, which the calls reject); freed once.
        unsafe {
            if let (Some(free), false) = (f.backendFree, self.backend.is_null()) {
                free(self.backend);
            }
            if let (Some(free), false) = (f.logFree, self.log.is_null()) {
                free(self.log);
            }
        }
    }
}

/// Everything a `Qnn_Tensor_t` points at, kept alive while the struct is used.
struct TensorStruct {
    raw: Qnn_Tensor_t,
    _name: CString,
    _dims: Box<[u32]>,
    _channels: Box<[Qnn_ScaleOffset_t]>,
}

fn tensor_struct(t: &QTensor, id: u32, data: Option<&[u8]>) -> Result<TensorStruct, QnnError> {
    let name = CString::new(t.name.clone())
        .map_err(|_| QnnError::Lowering(format!("tensor name {:?} has a NUL", t.name)))?;
    let mut dims: Box<[u32]> = t.dims.clone().into_boxed_slice();
    let mut channels: Box<[Qnn_ScaleOffset_t]> = Box::new([]);
    let quant = match &t.enc {
        Enc::UFixed { scale, offset, .. } => Qnn_QuantizeParams_t::scale_offset(*scale, *offset),
        Enc::I8PerChannel { scales } => {
            channels = scales
                .iter()
                .map(|&scale| Qnn_ScaleOffset_t { scale, offset: 0 })
                .collect();
            Qnn_QuantizeParams_t {
                encodingDefinition: QNN_DEFINITION_DEFINED,
                quantizationEncoding: QNN_QUANTIZATION_ENCODING_AXIS_SCALE_OFFSET,
                encoding: Qnn_QuantizeParams_Encoding_t {
                    axisScaleOffsetEncoding: Qnn_AxisScaleOffset_t {
                        axis: 0,
                        numScaleOffsets: channels.len() as u32,
                        scaleOffset: channels.as_mut_ptr(),
                    },
                },
            }
        }
        _ => Qnn_QuantizeParams_t::INIT,
    };
    let (ptr, size) = match data {
        Some(d) => (d.as_ptr() as *mut c_void, d.len() as u32),
        None => (null_mut(), 0),
    };
    let v1 = Qnn_TensorV1_t {
        id,
        name: name.as_ptr(),
        type_: t.kind.qnn(),
        dataFormat: QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER,
        dataType: t.enc.dtype(),
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
                data: ptr,
                dataSize: size,
            },
        },
    };
    Ok(TensorStruct {
        raw: Qnn_Tensor_t::v1(v1),
        _name: name,
        _dims: dims,
        _channels: channels,
    })
}

/// One context with one finalized graph, ready to execute.
pub struct Context {
    rt: Arc<Runtime>,
    handle: Qnn_ContextHandle_t,
    graph: Qnn_GraphHandle_t,
    /// Graph input tensors (templates for `graphExecute`), in `QGraph::inputs` order.
    inputs: Vec<TensorStruct>,
    /// Graph output tensors, in `QGraph::outputs` order.
    outputs: Vec<TensorStruct>,
}

// SAFETY: the handles are opaque and the structs only point into data this
// value owns; the executable serializes use behind a mutex.
unsafe impl Send for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        if let Some(free) = self.rt.lib.functions().contextFree {
            // SAFETY: the context was created by this value and is freed once (with its graph).
            unsafe { free(self.handle, null_mut()) };
        }
    }
}

fn io_templates(
    q: &QGraph,
    ids: &[u32],
) -> Result<(Vec<TensorStruct>, Vec<TensorStruct>), QnnError> {
    let ins = q
        .inputs
        .iter()
        .map(|b| tensor_struct(&q.tensors[b.tensor], ids[b.tensor], None))
        .collect::<Result<_, _>>()?;
    let outs = q
        .outputs
        .iter()
        .map(|b| tensor_struct(&q.tensors[b.tensor], ids[b.tensor], None))
        .collect::<Result<_, _>>()?;
    Ok((ins, outs))
}

impl Context {
    fn create(rt: &Arc<Runtime>) -> Result<Qnn_ContextHandle_t, QnnError> {
        let create = entry!(rt, contextCreate);
        let mut ctx = null_mut();
        // SAFETY: valid backend handle, NULL device and config, valid out-pointer.
        ok("contextCreate", unsafe {
            create(rt.backend, null_mut(), null_mut(), &mut ctx)
        })?;
        Ok(ctx)
    }

    /// Builds and finalizes `q` (static data must be materialized) as graph
    /// `name` in a new context. Returns the context and every tensor's id.
    pub fn build(
        rt: &Arc<Runtime>,
        name: &str,
        q: &QGraph,
    ) -> Result<(Context, Vec<u32>), QnnError> {
        let handle = Context::create(rt)?;
        // From here on the context is freed by `Context`'s drop, even on error.
        let mut ctx = Context {
            rt: rt.clone(),
            handle,
            graph: null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let graph_create = entry!(rt, graphCreate);
        let cname = CString::new(name).map_err(|_| QnnError::Lowering("graph name".into()))?;
        // SAFETY: valid context, NUL-terminated name, NULL config, valid out-pointer.
        ok("graphCreate", unsafe {
            graph_create(ctx.handle, cname.as_ptr(), null_mut(), &mut ctx.graph)
        })?;
        let create_tensor = entry!(rt, tensorCreateGraphTensor);
        let mut structs = Vec::with_capacity(q.tensors.len());
        let mut ids = Vec::with_capacity(q.tensors.len());
        for t in &q.tensors {
            let data = match &t.data {
                Data::Bytes(b) => Some(b.as_slice()),
                Data::None => None,
                Data::Weight { .. } => {
                    return Err(QnnError::Lowering(format!(
                        "weight {} was not converted before the build",
                        t.name
                    )))
                }
            };
            let mut s = tensor_struct(t, 0, data)?;
            // SAFETY: valid graph; the struct's pointers (name, dims, per-channel
            // encodings, static data) are owned by `s` / `q` and outlive the call.
            ok("tensorCreateGraphTensor", unsafe {
                create_tensor(ctx.graph, &mut s.raw)
            })?;
            // SAFETY: v1 is the member this crate writes; the library wrote back the id.
            ids.push(unsafe { s.raw.u.v1.id });
            structs.push(s);
        }
        let add_node = entry!(rt, graphAddNode);
        let package = wisp_qnn_sys::ops::QNN_OP_PACKAGE_NAME_QTI_AISW_C;
        for op in &q.ops {
            let mut names: Vec<CString> = Vec::new();
            let mut params: Vec<Qnn_Param_t> = Vec::new();
            for (pname, p) in &op.params {
                let n =
                    CString::new(*pname).map_err(|_| QnnError::Lowering("param name".into()))?;
                let (kind, value) = match p {
                    Param::Tensor(i) => (
                        QNN_PARAMTYPE_TENSOR,
                        Qnn_Param_Value_t {
                            tensorParam: structs[*i].raw,
                        },
                    ),
                    scalar => {
                        let (data_type, value) = match scalar {
                            Param::U32(v) => {
                                (QNN_DATATYPE_UINT_32, Qnn_Scalar_Value_t { uint32Value: *v })
                            }
                            Param::I32(v) => {
                                (QNN_DATATYPE_INT_32, Qnn_Scalar_Value_t { int32Value: *v })
                            }
                            Param::F32(v) => {
                                (QNN_DATATYPE_FLOAT_32, Qnn_Scalar_Value_t { floatValue: *v })
                            }
                            _ => (
                                QNN_DATATYPE_BOOL_8,
                                Qnn_Scalar_Value_t {
                                    bool8Value: matches!(scalar, Param::Bool(true)) as u8,
                                },
                            ),
                        };
                        (
                            QNN_PARAMTYPE_SCALAR,
                            Qnn_Param_Value_t {
                                scalarParam: Qnn_Scalar_t {
                                    dataType: data_type,
                                    value,
                                },
                            },
                        )
                    }
                };
                params.push(Qnn_Param_t {
                    paramType: kind,
                    name: n.as_ptr(),
                    value,
                });
                names.push(n);
            }
            let mut ins: Vec<Qnn_Tensor_t> = op.inputs.iter().map(|&i| structs[i].raw).collect();
            let mut outs: Vec<Qnn_Tensor_t> = op.outputs.iter().map(|&i| structs[i].raw).collect();
            let oname =
                CString::new(op.name.clone()).map_err(|_| QnnError::Lowering("op name".into()))?;
            let ty = CString::new(op.ty).map_err(|_| QnnError::Lowering("op type".into()))?;
            let cfg = Qnn_OpConfig_t::v1(Qnn_OpConfigV1_t {
                name: oname.as_ptr(),
                packageName: package.as_ptr(),
                typeName: ty.as_ptr(),
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
            // SAFETY: every pointer in `cfg` (names, params, tensor arrays and what
            // the tensor structs point at) is alive until the call returns.
            ok("graphAddNode", unsafe { add_node(ctx.graph, cfg) })?;
        }
        let finalize = entry!(rt, graphFinalize);
        // SAFETY: valid graph handle; NULL profile and signal.
        ok("graphFinalize", unsafe {
            finalize(ctx.graph, null_mut(), null_mut())
        })?;
        let (i, o) = io_templates(q, &ids)?;
        ctx.inputs = i;
        ctx.outputs = o;
        Ok((ctx, ids))
    }

    /// Restores graph `name` from a context binary; `ids` are the tensor ids
    /// recorded when it was built.
    pub fn from_binary(
        rt: &Arc<Runtime>,
        name: &str,
        q: &QGraph,
        ids: &[u32],
        binary: &[u8],
    ) -> Result<Context, QnnError> {
        let create = entry!(rt, contextCreateFromBinary);
        let mut handle = null_mut();
        // SAFETY: valid backend; `binary` holds `len` readable bytes; valid out-pointer.
        ok("contextCreateFromBinary", unsafe {
            create(
                rt.backend,
                null_mut(),
                null_mut(),
                binary.as_ptr() as *const c_void,
                binary.len() as u64,
                &mut handle,
                null_mut(),
            )
        })?;
        let mut ctx = Context {
            rt: rt.clone(),
            handle,
            graph: null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let retrieve = entry!(rt, graphRetrieve);
        let cname = CString::new(name).map_err(|_| QnnError::Lowering("graph name".into()))?;
        // SAFETY: valid context, NUL-terminated name, valid out-pointer.
        ok("graphRetrieve", unsafe {
            retrieve(ctx.handle, cname.as_ptr(), &mut ctx.graph)
        })?;
        if ids.len() != q.tensors.len() {
            return Err(QnnError::Cache(
                "tensor id table does not match the graph".into(),
            ));
        }
        let (i, o) = io_templates(q, ids)?;
        ctx.inputs = i;
        ctx.outputs = o;
        Ok(ctx)
    }

    /// The serialized context (`contextGetBinary`).
    pub fn binary(&self) -> Result<Vec<u8>, QnnError> {
        let size_fn = entry!(self.rt, contextGetBinarySize);
        let get = entry!(self.rt, contextGetBinary);
        let mut size = 0u64;
        // SAFETY: valid context and out-pointer.
        ok("contextGetBinarySize", unsafe {
            size_fn(self.handle, &mut size)
        })?;
        let mut buf = vec![0u8; size as usize];
        let mut written = 0u64;
        // SAFETY: `buf` holds `size` writable bytes; valid out-pointer.
        ok("contextGetBinary", unsafe {
            get(
                self.handle,
                buf.as_mut_ptr() as *mut c_void,
                size,
                &mut written,
            )
        })?;
        buf.truncate(written as usize);
        Ok(buf)
    }

    /// Executes the graph: `inputs[i]` / `outputs[i]` are the bytes of
    /// `QGraph::inputs[i]` / `outputs[i]`, sized by the caller.
    pub fn execute(&self, inputs: &[Vec<u8>], outputs: &mut [Vec<u8>]) -> Result<(), QnnError> {
        let exec = entry!(self.rt, graphExecute);
        let bind = |s: &TensorStruct, buf: *mut u8, len: usize| {
            let mut t = s.raw;
            // SAFETY: the templates are v1 tensors (built by this crate).
            let mut v1 = unsafe { t.u.v1 };
            v1.memType = QNN_TENSORMEMTYPE_RAW;
            v1.data.clientBuf = Qnn_ClientBuffer_t {
                data: buf as *mut c_void,
                dataSize: len as u32,
            };
            t.u.v1 = v1;
            t
        };
        let ins: Vec<Qnn_Tensor_t> = self
            .inputs
            .iter()
            .zip(inputs)
            // QNN reads graph inputs only; the `*mut` is what the struct's field type says.
            .map(|(s, b)| bind(s, b.as_ptr() as *mut u8, b.len()))
            .collect();
        let mut outs: Vec<Qnn_Tensor_t> = self
            .outputs
            .iter()
            .zip(outputs.iter_mut())
            .map(|(s, b)| bind(s, b.as_mut_ptr(), b.len()))
            .collect();
        // SAFETY: valid graph; both arrays hold their counts of tensor structs whose
        // names, dims and client buffers are alive (and sized per tensor) for the call.
        ok("graphExecute", unsafe {
            exec(
                self.graph,
                ins.as_ptr(),
                ins.len() as u32,
                outs.as_mut_ptr(),
                outs.len() as u32,
                null_mut(),
                null_mut(),
            )
        })
    }
}
