//! The `extern "C"` entry points placed in the function table.
//!
//! Each one goes through `call`, which applies fault injection, runs the body under the registry
//! lock with panics caught (a panic must never unwind into the client), sends failures to the
//! client's log callback, and writes the trace line. Error codes are the ones the SDK 2.13 headers
//! document for each situation.
//!
//! Safety contract of every entry point: the one the QNN C API states for the function — pointer
//! arguments are NULL (checked, reported as an invalid-argument code) or valid for their documented
//! counts. Handles need no such trust: they are looked up in [`crate::state`], never dereferenced.

use core::ffi::{c_char, c_void};
use std::collections::HashMap;
use std::ffi::CString;

use wisp_qnn_sys::ops;
use wisp_qnn_sys::*;

use crate::faults;
use crate::ffi_read::{read_param, read_str, read_tensor, TensorView};
use crate::interp;
use crate::model::{fail, Context, EmuError, Graph, Node, Res, TensorDesc};
use crate::state::{self, Logger, Object, State};
use crate::validate::{self, ALLOWED_OPS};

/// Per-call facts for the trace.
#[derive(Default)]
struct Call {
    detail: String,
    created: Option<usize>,
}

/// Runs one entry point: fault injection, locked body, logging, trace.
fn call(
    entry: &'static str,
    handles: &[(&'static str, usize)],
    body: impl FnOnce(&mut State, &mut Call) -> Res<()>,
) -> Qnn_ErrorHandle_t {
    let scope = handles.first().map_or(0, |h| h.1);
    let mut info = Call::default();
    let (result, logger, injected) = if let Some(code) = faults::injected(entry) {
        let logger = state::lock().logger_of(scope);
        (
            Err(EmuError {
                code,
                why: format!("injected by {}", faults::FAIL_ENV),
            }),
            logger,
            true,
        )
    } else {
        let mut st = state::lock();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut st, &mut info)))
                .unwrap_or_else(|_| {
                    fail(
                        QNN_COMMON_ERROR_GENERAL,
                        "emulator panicked (bug in the test double)",
                    )
                });
        let logger = st
            .logger_of(scope)
            .or_else(|| info.created.and_then(|h| st.logger_of(h)));
        (result, logger, false)
    };
    let code = match &result {
        Ok(()) => QNN_SUCCESS,
        Err(e) => {
            log(
                logger,
                QNN_LOG_LEVEL_ERROR,
                &format!(
                    "wisp-qnn-emulator: {entry} failed with {}: {}",
                    e.code, e.why
                ),
            );
            e.code
        }
    };
    let mut all: Vec<(&str, usize)> = handles.to_vec();
    if let Some(h) = info.created {
        all.push(("out", h));
    }
    crate::trace::record(entry, &all, &info.detail, code, injected);
    code
}

/// Sends one message to a client log callback, as a `%`-free format string so the callback's
/// `va_list` is never read (it points at a zeroed stand-in).
pub fn log(logger: Option<Logger>, level: u32, message: &str) {
    let Some(Logger {
        callback: Some(cb),
        max_level,
    }) = logger
    else {
        return;
    };
    if level > max_level {
        return;
    }
    let Ok(text) = CString::new(message.replace('%', "%%")) else {
        return;
    };
    let mut no_args = [0u64; 4];
    // SAFETY: calling the client's registered callback with a valid C string; the format has no
    // conversions, so the (zeroed, 32-byte, pointer-passed) `va_list` stand-in is never consumed.
    unsafe { cb(text.as_ptr(), level, 0, no_args.as_mut_ptr().cast()) };
}

fn h(p: *mut c_void) -> usize {
    p as usize
}

/// Writes a created handle to a client out-pointer.
///
/// # Safety
/// `out` must be NULL (checked) or valid for writes.
unsafe fn put_handle(out: *mut *mut c_void, handle: usize) {
    // SAFETY: caller guarantees validity; NULL was rejected before.
    unsafe { *out = handle as *mut c_void };
}

// ---------------------------------------------------------------- log

/// `logCreate`.
pub(crate) unsafe extern "C" fn log_create(
    cb: QnnLog_Callback_t,
    max: QnnLog_Level_t,
    out: *mut Qnn_LogHandle_t,
) -> Qnn_ErrorHandle_t {
    call("logCreate", &[], |st, info| {
        if out.is_null() {
            return fail(
                QNN_COMMON_ERROR_INVALID_ARGUMENT,
                "logger out-pointer is NULL",
            );
        }
        let handle = st.insert(Object::Log(Logger {
            callback: cb,
            max_level: max,
        }));
        info.created = Some(handle);
        // SAFETY: checked non-null; the client provides a writable handle slot.
        unsafe { put_handle(out, handle) };
        Ok(())
    })
}

/// `logSetLogLevel`.
pub(crate) unsafe extern "C" fn log_set_log_level(
    logger: Qnn_LogHandle_t,
    max: QnnLog_Level_t,
) -> Qnn_ErrorHandle_t {
    call("logSetLogLevel", &[("log", h(logger))], |st, _| {
        match st.get_mut(h(logger)) {
            Some(Object::Log(l)) => {
                l.max_level = max;
                Ok(())
            }
            _ => fail(QNN_COMMON_ERROR_INVALID_ARGUMENT, "unknown log handle"),
        }
    })
}

/// `logFree`.
pub(crate) unsafe extern "C" fn log_free(logger: Qnn_LogHandle_t) -> Qnn_ErrorHandle_t {
    call("logFree", &[("log", h(logger))], |st, _| {
        if !st.is_logger(h(logger)) {
            return fail(QNN_COMMON_ERROR_INVALID_ARGUMENT, "unknown log handle");
        }
        st.remove(h(logger));
        Ok(())
    })
}

// ---------------------------------------------------------------- backend

/// `backendCreate`: config is ignored (NULL or any array is accepted).
pub(crate) unsafe extern "C" fn backend_create(
    logger: Qnn_LogHandle_t,
    _config: *mut *const QnnBackend_Config_t,
    out: *mut Qnn_BackendHandle_t,
) -> Qnn_ErrorHandle_t {
    let code = call("backendCreate", &[("log", h(logger))], |st, info| {
        if out.is_null() {
            return fail(
                QNN_BACKEND_ERROR_INVALID_ARGUMENT,
                "backend out-pointer is NULL",
            );
        }
        if !logger.is_null() && !st.is_logger(h(logger)) {
            return fail(
                QNN_BACKEND_ERROR_INVALID_HANDLE,
                "logger is not a valid log handle",
            );
        }
        let handle = st.insert(Object::Backend { logger: h(logger) });
        info.created = Some(handle);
        // SAFETY: checked non-null.
        unsafe { put_handle(out, handle) };
        Ok(())
    });
    if code == QNN_SUCCESS {
        let logger = state::lock().logger_of(h(logger));
        log(
            logger,
            QNN_LOG_LEVEL_INFO,
            "wisp-qnn-emulator: TEST DOUBLE of libQnnHtp.so (QNN API 2.7.2), not real hardware",
        );
    }
    code
}

/// `backendFree`: also frees the backend's contexts.
pub(crate) unsafe extern "C" fn backend_free(backend: Qnn_BackendHandle_t) -> Qnn_ErrorHandle_t {
    call("backendFree", &[("backend", h(backend))], |st, _| {
        if !st.is_backend(h(backend)) {
            return fail(QNN_BACKEND_ERROR_INVALID_HANDLE, "unknown backend handle");
        }
        for c in st.contexts_of(h(backend)) {
            st.remove_context(c);
        }
        st.remove(h(backend));
        Ok(())
    })
}

/// `backendGetApiVersion`.
pub(crate) unsafe extern "C" fn backend_get_api_version(
    out: *mut Qnn_ApiVersion_t,
) -> Qnn_ErrorHandle_t {
    call("backendGetApiVersion", &[], |_, _| {
        if out.is_null() {
            return fail(
                QNN_BACKEND_ERROR_INVALID_ARGUMENT,
                "version out-pointer is NULL",
            );
        }
        // SAFETY: checked non-null.
        unsafe { *out = crate::provider::reported_api_version() };
        Ok(())
    })
}

/// `backendGetBuildId`.
pub(crate) unsafe extern "C" fn backend_get_build_id(out: *mut *const c_char) -> Qnn_ErrorHandle_t {
    call("backendGetBuildId", &[], |_, _| {
        if out.is_null() {
            return fail(
                QNN_BACKEND_ERROR_INVALID_ARGUMENT,
                "build id out-pointer is NULL",
            );
        }
        // SAFETY: checked non-null; the string is static.
        unsafe { *out = crate::BUILD_ID.as_ptr() };
        Ok(())
    })
}

struct OpNames(Vec<QnnBackend_OperationName_t>);
// SAFETY: the names point at leaked, immutable C strings; sharing them across threads is sound.
unsafe impl Sync for OpNames {}
// SAFETY: as above.
unsafe impl Send for OpNames {}

/// `backendGetSupportedOperations`: the allow-list.
pub(crate) unsafe extern "C" fn backend_get_supported_operations(
    backend: Qnn_BackendHandle_t,
    num: *mut u32,
    ops: *mut *const QnnBackend_OperationName_t,
) -> Qnn_ErrorHandle_t {
    static NAMES: std::sync::OnceLock<OpNames> = std::sync::OnceLock::new();
    call(
        "backendGetSupportedOperations",
        &[("backend", h(backend))],
        |st, _| {
            if num.is_null() || ops.is_null() {
                return fail(QNN_BACKEND_ERROR_INVALID_ARGUMENT, "out-pointer is NULL");
            }
            if !backend.is_null() && !st.is_backend(h(backend)) {
                return fail(QNN_BACKEND_ERROR_INVALID_HANDLE, "unknown backend handle");
            }
            let names = NAMES.get_or_init(|| {
                let leak = |s: &str| CString::new(s).unwrap().into_raw() as *const c_char;
                OpNames(
                    ALLOWED_OPS
                        .iter()
                        .map(|op| QnnBackend_OperationName_t {
                            packageName: ops::QNN_OP_PACKAGE_NAME_QTI_AISW_C.as_ptr(),
                            name: leak(op),
                            target: core::ptr::null(),
                        })
                        .collect(),
                )
            });
            // SAFETY: both checked non-null; the array is static.
            unsafe {
                *num = names.0.len() as u32;
                *ops = names.0.as_ptr();
            }
            Ok(())
        },
    )
}

/// `backendValidateOpConfig`: the `graphAddNode` checks on a self-contained op config.
pub(crate) unsafe extern "C" fn backend_validate_op_config(
    backend: Qnn_BackendHandle_t,
    op: Qnn_OpConfig_t,
) -> Qnn_ErrorHandle_t {
    call(
        "backendValidateOpConfig",
        &[("backend", h(backend))],
        |st, info| {
            if !st.is_backend(h(backend)) {
                return fail(QNN_BACKEND_ERROR_INVALID_HANDLE, "unknown backend handle");
            }
            let standalone = |v: &TensorView| -> Res<TensorDesc> {
                let mut t = desc_from_view(v, 0, String::new());
                if v.ty == QNN_TENSOR_TYPE_STATIC && !v.data.is_null() {
                    // SAFETY: a STATIC tensor's client buffer holds `dataSize` bytes.
                    t.data = unsafe {
                        core::slice::from_raw_parts(v.data as *const u8, v.data_size as usize)
                    }
                    .to_vec();
                }
                Ok(t)
            };
            // SAFETY: the op config follows the QNN contract (pointers valid for their counts).
            let parsed = unsafe { parse_op_config(&op, &standalone) };
            let (node_op, params, ins, outs) = parsed.map_err(|e| EmuError {
                code: QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE,
                why: e.why,
            })?;
            info.detail = node_op.clone();
            let ins: Vec<TensorDesc> = ins.iter().map(&standalone).collect::<Res<_>>()?;
            let outs: Vec<TensorDesc> = outs.iter().map(&standalone).collect::<Res<_>>()?;
            validate::validate(
                &node_op,
                &params,
                &ins.iter().collect::<Vec<_>>(),
                &outs.iter().collect::<Vec<_>>(),
            )
            .map_err(|e| EmuError {
                code: QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE,
                why: e.why,
            })
        },
    )
}

// ---------------------------------------------------------------- context

/// `contextCreate`: device may be NULL; config is ignored.
pub(crate) unsafe extern "C" fn context_create(
    backend: Qnn_BackendHandle_t,
    device: Qnn_DeviceHandle_t,
    _config: *mut *const QnnContext_Config_t,
    out: *mut Qnn_ContextHandle_t,
) -> Qnn_ErrorHandle_t {
    call(
        "contextCreate",
        &[("backend", h(backend)), ("device", h(device))],
        |st, info| {
            if out.is_null() {
                return fail(
                    QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
                    "context out-pointer is NULL",
                );
            }
            if !st.is_backend(h(backend)) {
                return fail(
                    QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
                    "backend is not a valid backend handle",
                );
            }
            let handle = st.insert(Object::Context(Context {
                backend: h(backend),
                next_tensor_id: 1,
                ..Context::default()
            }));
            info.created = Some(handle);
            // SAFETY: checked non-null.
            unsafe { put_handle(out, handle) };
            Ok(())
        },
    )
}

/// `contextFree`: frees the context's graphs too.
pub(crate) unsafe extern "C" fn context_free(
    context: Qnn_ContextHandle_t,
    _profile: Qnn_ProfileHandle_t,
) -> Qnn_ErrorHandle_t {
    call("contextFree", &[("context", h(context))], |st, _| {
        if !st.remove_context(h(context)) {
            return fail(QNN_CONTEXT_ERROR_INVALID_HANDLE, "unknown context handle");
        }
        Ok(())
    })
}

fn serialized(st: &State, context: usize) -> Res<Vec<u8>> {
    let Some(ctx) = st.context(context) else {
        return fail(QNN_CONTEXT_ERROR_INVALID_HANDLE, "unknown context handle");
    };
    if let Some(g) = ctx.graphs.iter().find(|g| !g.finalized) {
        return fail(
            QNN_CONTEXT_ERROR_NOT_FINALIZED,
            format!("graph {:?} is not finalized", g.name),
        );
    }
    Ok(crate::binary::serialize(&ctx.graphs))
}

/// `contextGetBinarySize`.
pub(crate) unsafe extern "C" fn context_get_binary_size(
    context: Qnn_ContextHandle_t,
    size: *mut Qnn_ContextBinarySize_t,
) -> Qnn_ErrorHandle_t {
    call(
        "contextGetBinarySize",
        &[("context", h(context))],
        |st, _| {
            if size.is_null() {
                return fail(
                    QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
                    "size out-pointer is NULL",
                );
            }
            let n = serialized(st, h(context))?.len();
            // SAFETY: checked non-null.
            unsafe { *size = n as u64 };
            Ok(())
        },
    )
}

/// `contextGetBinary`.
pub(crate) unsafe extern "C" fn context_get_binary(
    context: Qnn_ContextHandle_t,
    buffer: *mut c_void,
    buffer_size: Qnn_ContextBinarySize_t,
    written: *mut Qnn_ContextBinarySize_t,
) -> Qnn_ErrorHandle_t {
    call(
        "contextGetBinary",
        &[("context", h(context))],
        |st, info| {
            if buffer.is_null() || written.is_null() {
                return fail(
                    QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
                    "buffer or written out-pointer is NULL",
                );
            }
            let bin = serialized(st, h(context))?;
            info.detail = format!("{} bytes", bin.len());
            if (buffer_size as usize) < bin.len() {
                return fail(
                    QNN_CONTEXT_ERROR_GET_BINARY_FAILED,
                    format!("buffer of {buffer_size} bytes, {} needed", bin.len()),
                );
            }
            // SAFETY: the client's buffer holds `buffer_size` >= bin.len() bytes; `written` is non-null.
            unsafe {
                core::ptr::copy_nonoverlapping(bin.as_ptr(), buffer.cast::<u8>(), bin.len());
                *written = bin.len() as u64;
            }
            Ok(())
        },
    )
}

/// `contextCreateFromBinary`: validates the header (version / corruption) and rebuilds the graphs.
pub(crate) unsafe extern "C" fn context_create_from_binary(
    backend: Qnn_BackendHandle_t,
    device: Qnn_DeviceHandle_t,
    _config: *mut *const QnnContext_Config_t,
    binary: *const c_void,
    size: Qnn_ContextBinarySize_t,
    out: *mut Qnn_ContextHandle_t,
    _profile: Qnn_ProfileHandle_t,
) -> Qnn_ErrorHandle_t {
    call(
        "contextCreateFromBinary",
        &[("backend", h(backend)), ("device", h(device))],
        |st, info| {
            if out.is_null() || binary.is_null() {
                return fail(
                    QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
                    "binary or context out-pointer is NULL",
                );
            }
            if !st.is_backend(h(backend)) {
                return fail(
                    QNN_CONTEXT_ERROR_INVALID_ARGUMENT,
                    "backend is not a valid backend handle",
                );
            }
            // SAFETY: the client's buffer holds `size` bytes.
            let bin = unsafe { core::slice::from_raw_parts(binary.cast::<u8>(), size as usize) };
            let graphs = crate::binary::deserialize(bin)?;
            info.detail = format!("{} graphs", graphs.len());
            let mut ctx = Context {
                backend: h(backend),
                from_binary: true,
                next_tensor_id: 1,
                ..Context::default()
            };
            for g in &graphs {
                for t in g.tensors.values() {
                    ctx.tensor_names.insert(t.name.clone());
                    ctx.next_tensor_id = ctx.next_tensor_id.max(t.id + 1);
                }
            }
            ctx.graphs = graphs;
            let handle = st.insert(Object::Context(ctx));
            info.created = Some(handle);
            // SAFETY: checked non-null.
            unsafe { put_handle(out, handle) };
            Ok(())
        },
    )
}

// ---------------------------------------------------------------- graph

/// `graphCreate`: config is ignored.
pub(crate) unsafe extern "C" fn graph_create(
    context: Qnn_ContextHandle_t,
    name: *const c_char,
    _config: *mut *const QnnGraph_Config_t,
    out: *mut Qnn_GraphHandle_t,
) -> Qnn_ErrorHandle_t {
    call("graphCreate", &[("context", h(context))], |st, info| {
        if out.is_null() {
            return fail(
                QNN_GRAPH_ERROR_INVALID_ARGUMENT,
                "graph out-pointer is NULL",
            );
        }
        // SAFETY: the name is NULL or a C string.
        let Some(name) = (unsafe { read_str(name) }) else {
            return fail(QNN_GRAPH_ERROR_INVALID_NAME, "graph name is NULL");
        };
        info.detail = name.clone();
        let Some(ctx) = st.context_mut(h(context)) else {
            return fail(QNN_GRAPH_ERROR_INVALID_HANDLE, "unknown context handle");
        };
        if ctx.from_binary {
            return fail(
                QNN_COMMON_ERROR_OPERATION_NOT_PERMITTED,
                "context was created from a binary",
            );
        }
        if ctx.graphs.iter().any(|g| g.name == name) {
            return fail(
                QNN_GRAPH_ERROR_INVALID_NAME,
                format!("graph {name:?} already exists in the context"),
            );
        }
        ctx.graphs.push(Graph {
            name,
            ..Graph::default()
        });
        let index = ctx.graphs.len() - 1;
        let handle = st.graph_handle(h(context), index);
        info.created = Some(handle);
        // SAFETY: checked non-null.
        unsafe { put_handle(out, handle) };
        Ok(())
    })
}

/// `graphRetrieve`.
pub(crate) unsafe extern "C" fn graph_retrieve(
    context: Qnn_ContextHandle_t,
    name: *const c_char,
    out: *mut Qnn_GraphHandle_t,
) -> Qnn_ErrorHandle_t {
    call("graphRetrieve", &[("context", h(context))], |st, info| {
        if out.is_null() {
            return fail(
                QNN_GRAPH_ERROR_INVALID_ARGUMENT,
                "graph out-pointer is NULL",
            );
        }
        // SAFETY: the name is NULL or a C string.
        let name = unsafe { read_str(name) }.unwrap_or_default();
        info.detail = name.clone();
        let Some(ctx) = st.context(h(context)) else {
            return fail(QNN_GRAPH_ERROR_INVALID_HANDLE, "unknown context handle");
        };
        let Some(index) = ctx.graphs.iter().position(|g| g.name == name) else {
            return fail(
                QNN_GRAPH_ERROR_GRAPH_DOES_NOT_EXIST,
                format!("no graph {name:?} in the context"),
            );
        };
        let handle = st.graph_handle(h(context), index);
        info.created = Some(handle);
        // SAFETY: checked non-null.
        unsafe { put_handle(out, handle) };
        Ok(())
    })
}

/// A graph tensor description from a view, with the given id and name.
fn desc_from_view(v: &TensorView, id: u32, name: String) -> TensorDesc {
    TensorDesc {
        id,
        name,
        ty: v.ty,
        enc: v.enc.clone(),
        dims: v.dims.clone(),
        data: Vec::new(),
    }
}

/// `tensorCreateGraphTensor`: validates, copies STATIC data, assigns and writes back the id.
pub(crate) unsafe extern "C" fn tensor_create_graph_tensor(
    graph: Qnn_GraphHandle_t,
    tensor: *mut Qnn_Tensor_t,
) -> Qnn_ErrorHandle_t {
    call(
        "tensorCreateGraphTensor",
        &[("graph", h(graph))],
        |st, info| {
            const BAD: u64 = QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM;
            // SAFETY: the client passes NULL (rejected) or a valid tensor struct.
            let v = unsafe { read_tensor(tensor, BAD)? };
            let Some(name) = v.name.clone() else {
                return fail(BAD, "tensor name is NULL");
            };
            info.detail = name.clone();
            let Some((ctx, index)) = st.graph_mut(h(graph)) else {
                return fail(QNN_TENSOR_ERROR_INVALID_HANDLE, "unknown graph handle");
            };
            if ctx.graphs[index].finalized {
                return fail(QNN_GRAPH_ERROR_GRAPH_FINALIZED, "graph is finalized");
            }
            if ctx.tensor_names.contains(&name) {
                return fail(
                    QNN_TENSOR_ERROR_ALREADY_EXISTS,
                    format!("tensor {name:?} already exists in the context"),
                );
            }
            match v.ty {
                QNN_TENSOR_TYPE_APP_WRITE
                | QNN_TENSOR_TYPE_APP_READ
                | QNN_TENSOR_TYPE_NATIVE
                | QNN_TENSOR_TYPE_STATIC
                | QNN_TENSOR_TYPE_NULL => {}
                QNN_TENSOR_TYPE_APP_READWRITE => {
                    return fail(BAD, "APP_READWRITE tensors cannot be graph tensors")
                }
                other => return fail(BAD, format!("tensor type {other} unknown")),
            }
            let mut desc = desc_from_view(&v, ctx.next_tensor_id, name.clone());
            if v.ty != QNN_TENSOR_TYPE_NULL {
                if data_type_size(v.enc.dtype).is_none() {
                    return fail(BAD, format!("data type {:#x} unknown", v.enc.dtype));
                }
                if v.data_format != QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER {
                    return fail(
                        QNN_TENSOR_ERROR_UNSUPPORTED_TENSOR_PARAM,
                        "only FLAT_BUFFER data format is supported",
                    );
                }
                if v.dims.contains(&0) {
                    return fail(
                        BAD,
                        format!(
                            "dimensions {:?}: shapes must be static and non-zero",
                            v.dims
                        ),
                    );
                }
                if v.ty == QNN_TENSOR_TYPE_STATIC {
                    if v.mem_type != QNN_TENSORMEMTYPE_RAW || v.data.is_null() {
                        return fail(BAD, "STATIC tensor needs RAW client data");
                    }
                    if v.data_size as usize != desc.byte_size() {
                        return fail(
                            BAD,
                            format!(
                                "STATIC tensor has {} bytes, {} expected",
                                v.data_size,
                                desc.byte_size()
                            ),
                        );
                    }
                    // SAFETY: the client buffer holds `dataSize` bytes (checked against the shape).
                    desc.data = unsafe {
                        core::slice::from_raw_parts(v.data as *const u8, v.data_size as usize)
                    }
                    .to_vec();
                } else if v.mem_type == QNN_TENSORMEMTYPE_RAW && !v.data.is_null() {
                    return fail(
                        BAD,
                        "non-STATIC tensors must be created with a NULL data pointer",
                    );
                }
            }
            let id = desc.id;
            ctx.next_tensor_id += 1;
            ctx.tensor_names.insert(name);
            ctx.graphs[index].tensors.insert(id, desc);
            // SAFETY: `tensor` is non-null (read_tensor checked) and version 1; write back the id.
            unsafe { (*tensor).u.v1.id = id };
            Ok(())
        },
    )
}

type ParsedOp = (
    String,
    Vec<(String, crate::model::ParamValue)>,
    Vec<TensorView>,
    Vec<TensorView>,
);

/// Reads an op config: type (package must be `qti.aisw`), params, inputs and outputs.
///
/// # Safety
/// The op config's pointers must be valid for their counts.
unsafe fn parse_op_config(
    op: &Qnn_OpConfig_t,
    lookup: &dyn Fn(&TensorView) -> Res<TensorDesc>,
) -> Res<ParsedOp> {
    const BAD: u64 = QNN_GRAPH_ERROR_INVALID_OP_CONFIG;
    if op.version != QNN_OPCONFIG_VERSION_1 {
        return fail(BAD, format!("op config version {} unsupported", op.version));
    }
    // SAFETY: version 1 selects `v1`.
    let v = unsafe { op.u.v1 };
    // SAFETY: names are NULL or C strings.
    let (package, type_name) = unsafe { (read_str(v.packageName), read_str(v.typeName)) };
    let Some(type_name) = type_name else {
        return fail(BAD, "op typeName is NULL");
    };
    if package.as_deref() != Some(ops::QNN_OP_PACKAGE_NAME_QTI_AISW) {
        return fail(
            BAD,
            format!("op package {package:?} is not registered (only qti.aisw)"),
        );
    }
    let list = |ptr: *mut Qnn_Tensor_t, n: u32| -> Res<Vec<TensorView>> {
        if n > 0 && ptr.is_null() {
            return fail(BAD, "tensor array is NULL");
        }
        // SAFETY: `ptr` holds `n` tensors per the contract.
        (0..n as usize)
            .map(|i| unsafe { read_tensor(ptr.add(i), QNN_GRAPH_ERROR_INVALID_TENSOR) })
            .collect()
    };
    let inputs = list(v.inputTensors, v.numOfInputs)?;
    let outputs = list(v.outputTensors, v.numOfOutputs)?;
    if v.numOfParams > 0 && v.params.is_null() {
        return fail(BAD, "params array is NULL");
    }
    let mut params = Vec::new();
    for i in 0..v.numOfParams as usize {
        // SAFETY: `params` holds `numOfParams` entries per the contract.
        params.push(unsafe { read_param(&*v.params.add(i), lookup)? });
    }
    Ok((type_name, params, inputs, outputs))
}

/// Finds a graph tensor by id (or by name when the id is unknown).
fn find<'a>(g: &'a Graph, v: &TensorView) -> Option<&'a TensorDesc> {
    g.tensors.get(&v.id).or_else(|| {
        v.name
            .as_ref()
            .and_then(|n| g.tensors.values().find(|t| &t.name == n))
    })
}

/// `graphAddNode`.
pub(crate) unsafe extern "C" fn graph_add_node(
    graph: Qnn_GraphHandle_t,
    op: Qnn_OpConfig_t,
) -> Qnn_ErrorHandle_t {
    call("graphAddNode", &[("graph", h(graph))], |st, info| {
        let Some(g) = st.graph(h(graph)) else {
            return fail(QNN_GRAPH_ERROR_INVALID_HANDLE, "unknown graph handle");
        };
        if g.finalized {
            return fail(QNN_GRAPH_ERROR_GRAPH_FINALIZED, "graph is finalized");
        }
        let static_param = |v: &TensorView| match find(g, v) {
            Some(t) if t.ty == QNN_TENSOR_TYPE_STATIC => Ok(t.clone()),
            Some(t) => fail(
                QNN_GRAPH_ERROR_INVALID_OP_CONFIG,
                format!("tensor param {:?} is not STATIC", t.name),
            ),
            None => fail(
                QNN_GRAPH_ERROR_INVALID_TENSOR,
                format!("tensor param {:?} was not created", v.name),
            ),
        };
        // SAFETY: the op config follows the QNN contract.
        let (op_type, params, ins, outs) = unsafe { parse_op_config(&op, &static_param)? };
        // SAFETY: the node name is NULL or a C string.
        let node_name = unsafe { read_str(op.u.v1.name) }.unwrap_or_default();
        info.detail = op_type.clone();
        let resolve = |v: &TensorView| {
            find(g, v).map_or_else(
                || {
                    fail(
                        QNN_GRAPH_ERROR_INVALID_TENSOR,
                        format!(
                            "tensor {:?} (id {}) was not created in this graph",
                            v.name, v.id
                        ),
                    )
                },
                Ok,
            )
        };
        let ins: Vec<&TensorDesc> = ins.iter().map(resolve).collect::<Res<_>>()?;
        let outs: Vec<&TensorDesc> = outs.iter().map(resolve).collect::<Res<_>>()?;
        for t in &ins {
            let available = matches!(
                t.ty,
                QNN_TENSOR_TYPE_APP_WRITE | QNN_TENSOR_TYPE_STATIC | QNN_TENSOR_TYPE_NULL
            ) || g.produced.contains(&t.id);
            if !available {
                return fail(
                    QNN_GRAPH_ERROR_UNCONNECTED_NODE,
                    format!("input {:?} is not produced by an earlier node", t.name),
                );
            }
        }
        for t in &outs {
            if !matches!(t.ty, QNN_TENSOR_TYPE_NATIVE | QNN_TENSOR_TYPE_APP_READ)
                || g.produced.contains(&t.id)
            {
                return fail(
                    QNN_GRAPH_ERROR_INVALID_OP_CONFIG,
                    format!(
                        "output {:?} must be a NATIVE or APP_READ tensor not yet produced",
                        t.name
                    ),
                );
            }
        }
        validate::validate(&op_type, &params, &ins, &outs)?;
        let node = Node {
            name: node_name,
            op: op_type,
            params,
            inputs: ins.iter().map(|t| t.id).collect(),
            outputs: outs.iter().map(|t| t.id).collect(),
        };
        let (ctx, index) = st.graph_mut(h(graph)).expect("checked above");
        let g = &mut ctx.graphs[index];
        g.produced.extend(node.outputs.iter().copied());
        g.nodes.push(node);
        Ok(())
    })
}

/// `graphFinalize`: every APP_READ output must be produced by some node.
pub(crate) unsafe extern "C" fn graph_finalize(
    graph: Qnn_GraphHandle_t,
    _profile: Qnn_ProfileHandle_t,
    _signal: Qnn_SignalHandle_t,
) -> Qnn_ErrorHandle_t {
    call("graphFinalize", &[("graph", h(graph))], |st, info| {
        let Some((ctx, index)) = st.graph_mut(h(graph)) else {
            return fail(QNN_GRAPH_ERROR_INVALID_HANDLE, "unknown graph handle");
        };
        let g = &mut ctx.graphs[index];
        info.detail = g.name.clone();
        if g.nodes.is_empty() {
            return fail(QNN_GRAPH_ERROR_FINALIZE_FAILED, "graph has no nodes");
        }
        if let Some(t) = g
            .tensors_of_type(QNN_TENSOR_TYPE_APP_READ)
            .into_iter()
            .find(|t| !g.produced.contains(&t.id))
        {
            return fail(
                QNN_GRAPH_ERROR_FINALIZE_FAILED,
                format!("output {:?} is never produced", t.name),
            );
        }
        g.finalized = true;
        Ok(())
    })
}

/// `graphExecute`: binds client buffers by tensor id, runs the interpreter, copies outputs back.
pub(crate) unsafe extern "C" fn graph_execute(
    graph: Qnn_GraphHandle_t,
    inputs: *const Qnn_Tensor_t,
    num_inputs: u32,
    outputs: *mut Qnn_Tensor_t,
    num_outputs: u32,
    _profile: Qnn_ProfileHandle_t,
    _signal: Qnn_SignalHandle_t,
) -> Qnn_ErrorHandle_t {
    call("graphExecute", &[("graph", h(graph))], |st, info| {
        let Some(g) = st.graph(h(graph)) else {
            return fail(QNN_GRAPH_ERROR_INVALID_HANDLE, "unknown graph handle");
        };
        info.detail = g.name.clone();
        if !g.finalized {
            return fail(
                QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED,
                "graphExecute before graphFinalize",
            );
        }
        // SAFETY: both arrays hold their counts of tensors per the contract.
        let ins = unsafe { bind(g, inputs, num_inputs, QNN_TENSOR_TYPE_APP_WRITE, "input")? };
        // SAFETY: as above.
        let outs = unsafe { bind(g, outputs, num_outputs, QNN_TENSOR_TYPE_APP_READ, "output")? };
        let values: HashMap<u32, Vec<u8>> = ins
            .iter()
            .map(|(v, t)| {
                // SAFETY: `bind` checked the buffer holds at least the tensor's byte size.
                (
                    t.id,
                    unsafe { core::slice::from_raw_parts(v.data as *const u8, t.byte_size()) }
                        .to_vec(),
                )
            })
            .collect();
        let mut results = interp::execute(g, values)?;
        for (v, t) in &outs {
            let bytes = results.remove(&t.id).unwrap_or_default();
            // SAFETY: `bind` checked the client buffer holds at least `byte_size` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    v.data.cast::<u8>(),
                    bytes.len().min(t.byte_size()),
                )
            };
        }
        Ok(())
    })
}

/// Matches the client's tensors for one side of `graphExecute` to the graph's tensors of type
/// `ty`: each exactly once, same static dims, RAW buffers large enough.
///
/// # Safety
/// `ptr` must hold `n` tensor structs.
unsafe fn bind(
    g: &Graph,
    ptr: *const Qnn_Tensor_t,
    n: u32,
    ty: Qnn_TensorType_t,
    what: &str,
) -> Res<Vec<(TensorView, TensorDesc)>> {
    let expected = g.tensors_of_type(ty).len();
    if n as usize != expected || (n > 0 && ptr.is_null()) {
        return fail(
            QNN_GRAPH_ERROR_INVALID_ARGUMENT,
            format!("{n} {what}s given, graph has {expected}"),
        );
    }
    let mut bound: Vec<(TensorView, TensorDesc)> = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        // SAFETY: `ptr` holds `n` tensors per the caller's contract.
        let v = unsafe { read_tensor(ptr.add(i), QNN_GRAPH_ERROR_INVALID_TENSOR)? };
        let Some(t) = find(g, &v).filter(|t| t.ty == ty) else {
            return fail(
                QNN_GRAPH_ERROR_INVALID_TENSOR,
                format!(
                    "{what} {:?} (id {}) is not an {what} tensor of the graph",
                    v.name, v.id
                ),
            );
        };
        if bound.iter().any(|(_, b)| b.id == t.id) {
            return fail(
                QNN_GRAPH_ERROR_INVALID_TENSOR,
                format!("{what} {:?} given twice", t.name),
            );
        }
        if !v.dims.is_empty() && v.dims != t.dims {
            return fail(
                QNN_GRAPH_ERROR_INVALID_TENSOR,
                format!(
                    "{what} {:?} has dims {:?}, graph has {:?} (shapes are static)",
                    t.name, v.dims, t.dims
                ),
            );
        }
        if v.mem_type != QNN_TENSORMEMTYPE_RAW
            || v.data.is_null()
            || (v.data_size as usize) < t.byte_size()
        {
            return fail(
                QNN_GRAPH_ERROR_INVALID_TENSOR,
                format!(
                    "{what} {:?} needs a RAW buffer of {} bytes",
                    t.name,
                    t.byte_size()
                ),
            );
        }
        let t = t.clone();
        bound.push((v, t));
    }
    Ok(bound)
}

/// `QnnInterface_getProviders` through the same fault-injection and trace path as the table
/// entries (entry name `getProviders`).
pub fn traced_get_providers(body: impl FnOnce() -> Result<(), u64>) -> Qnn_ErrorHandle_t {
    call("getProviders", &[], |_, _| {
        body().or_else(|code| fail(code, "NULL argument"))
    })
}
