//! The emulator, loaded as a shared library through `wisp_qnn_sys::QnnLibrary::load` (the same
//! path the backend uses for `libQnnHtp.so`) and driven through the raw function table.
//!
//! The cdylib is found next to this test binary (`target/<profile>/deps/`) or one directory up;
//! see `wisp_qnn_emulator::locate_cdylib`. Tests run one at a time (`common::serial`) because they
//! share environment variables and the emulator's process-wide fault counters.

mod common;

use std::ffi::CString;
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};

use common::*;
use wisp_qnn_sys::*;

/// x [2,3] → FullyConnected(W [4,3], b [4]) → + c [4] (broadcast) → Softmax → y [2,4].
/// x = [[1,2,3],[0,-1,1]], W = [[1,0,0],[0,1,0],[0,0,1],[1,1,1]], b = [0,0,0,-6],
/// c = [0,1,-1,0]; so the pre-softmax rows are [1,3,2,0] and [0,0,0,-6].
const X: [f32; 6] = [1.0, 2.0, 3.0, 0.0, -1.0, 1.0];
const W: [f32; 12] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
const B: [f32; 4] = [0.0, 0.0, 0.0, -6.0];
const C: [f32; 4] = [0.0, 1.0, -1.0, 0.0];
/// softmax([1,3,2,0]) and softmax([0,0,0,-6]), computed by hand (e^1, e^3, e^2, e^0 over their sum).
const Y: [f32; 8] = [
    0.087_144_32,
    0.643_914_3,
    0.236_882_82,
    0.032_058_6, //
    0.333_058_14,
    0.333_058_14,
    0.333_058_14,
    0.000_825_568_6,
];

struct Built {
    session: Session,
    x: Tensor,
    y: Tensor,
}

/// The float graph.
fn build_float(name: &str) -> Built {
    let mut s = Session::new(name);
    let x = s.tensor(Spec::new(
        "x",
        QNN_TENSOR_TYPE_APP_WRITE,
        QNN_DATATYPE_FLOAT_32,
        &[2, 3],
    ));
    let w = s.tensor(
        Spec::new("w", QNN_TENSOR_TYPE_STATIC, QNN_DATATYPE_FLOAT_32, &[4, 3]).f32_data(&W),
    );
    let b =
        s.tensor(Spec::new("b", QNN_TENSOR_TYPE_STATIC, QNN_DATATYPE_FLOAT_32, &[4]).f32_data(&B));
    let fc = s.tensor(Spec::new(
        "fc",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_FLOAT_32,
        &[2, 4],
    ));
    let c =
        s.tensor(Spec::new("c", QNN_TENSOR_TYPE_STATIC, QNN_DATATYPE_FLOAT_32, &[4]).f32_data(&C));
    let sum = s.tensor(Spec::new(
        "sum",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_FLOAT_32,
        &[2, 4],
    ));
    let y = s.tensor(Spec::new(
        "y",
        QNN_TENSOR_TYPE_APP_READ,
        QNN_DATATYPE_FLOAT_32,
        &[2, 4],
    ));
    assert_eq!(
        s.node(ops::QNN_OP_FULLY_CONNECTED, &mut [], &[&x, &w, &b], &[&fc]),
        0
    );
    assert_eq!(
        s.node(ops::QNN_OP_ELEMENT_WISE_ADD, &mut [], &[&fc, &c], &[&sum]),
        0
    );
    let mut softmax = [scalar(
        c"beta",
        QNN_DATATYPE_FLOAT_32,
        Qnn_Scalar_Value_t { floatValue: 1.0 },
    )];
    assert_eq!(s.node(ops::QNN_OP_SOFTMAX, &mut softmax, &[&sum], &[&y]), 0);
    Built { session: s, x, y }
}

fn run_float(graph: Qnn_GraphHandle_t, built: &Built) -> Vec<f32> {
    let mut xin = bytes_of(&X);
    let mut yout = vec![0u8; 32];
    assert_eq!(
        Session::execute_graph(graph, &[(&built.x, &mut xin)], &mut [(&built.y, &mut yout)]),
        0
    );
    f32s(&yout)
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "element {i}: got {g}, want {w} (±{tol}); all: {got:?}"
        );
    }
}

#[test]
fn loads_through_the_production_loader_as_an_htp_provider() {
    let _g = serial();
    let lib = lib();
    assert_eq!(lib.backend_id(), QNN_BACKEND_ID_HTP);
    assert_eq!(lib.api_version().coreApiVersion, PINNED_API_VERSION);
    assert!(lib.provider_name().unwrap().contains("TEST DOUBLE"));
    let f = lib.functions();
    assert!(f.graphExecute.is_some() && f.contextCreateFromBinary.is_some());
    assert!(
        f.deviceCreate.is_none() && f.memRegister.is_none(),
        "unimplemented entries are NULL"
    );
    let mut id = std::ptr::null();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { f.backendGetBuildId.unwrap()(&mut id) }, 0);
    // SAFETY: the emulator returns a static C string.
    assert!(unsafe { std::ffi::CStr::from_ptr(id) }
        .to_str()
        .unwrap()
        .contains("test double"));
}

#[test]
fn float_fully_connected_add_softmax_matches_hand_computed_values() {
    let _g = serial();
    let built = build_float("float_graph");
    assert_eq!(built.session.finalize(), 0);
    let y = run_float(built.session.graph, &built);
    assert_close(&y, &Y, 1e-6);
}

#[test]
fn uint8_graph_with_per_channel_int8_weights_matches_hand_computed_bytes() {
    let _g = serial();
    let mut s = Session::new("uint8_graph");
    // Activations: UFIXED_POINT_8, scale 0.05, QNN offset -128 (zero point 128).
    let act = |spec: Spec| spec.quant(0.05, -128);
    let x = s.tensor(act(Spec::new(
        "qx",
        QNN_TENSOR_TYPE_APP_WRITE,
        QNN_DATATYPE_UFIXED_POINT_8,
        &[2, 3],
    )));
    // Weights: SFIXED_POINT_8, per output channel (axis 0) scales 1/64, 1/32, 1/64, 1/16: every
    // 1.0 weight is exactly 64, 32, 64, 16.
    let wq: Vec<u8> = [64i8, 0, 0, 0, 32, 0, 0, 0, 64, 16, 16, 16]
        .iter()
        .map(|&v| v as u8)
        .collect();
    let w = s.tensor(
        Spec::new(
            "qw",
            QNN_TENSOR_TYPE_STATIC,
            QNN_DATATYPE_SFIXED_POINT_8,
            &[4, 3],
        )
        .per_channel(
            0,
            &[
                (1.0 / 64.0, 0),
                (1.0 / 32.0, 0),
                (1.0 / 64.0, 0),
                (1.0 / 16.0, 0),
            ],
        )
        .data(wq),
    );
    // Bias: SFIXED_POINT_32, scale 1/1024: -6.0 is -6144.
    let bq: Vec<u8> = [0i32, 0, 0, -6144]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let b = s.tensor(
        Spec::new(
            "qb",
            QNN_TENSOR_TYPE_STATIC,
            QNN_DATATYPE_SFIXED_POINT_32,
            &[4],
        )
        .quant(1.0 / 1024.0, 0)
        .data(bq),
    );
    let fc = s.tensor(act(Spec::new(
        "qfc",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_UFIXED_POINT_8,
        &[2, 4],
    )));
    // c = [0, 1, -1, 0] → q = round(c / 0.05) + 128 = [128, 148, 108, 128].
    let c = s.tensor(
        act(Spec::new(
            "qc",
            QNN_TENSOR_TYPE_STATIC,
            QNN_DATATYPE_UFIXED_POINT_8,
            &[4],
        ))
        .data(vec![128, 148, 108, 128]),
    );
    let sum = s.tensor(act(Spec::new(
        "qsum",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_UFIXED_POINT_8,
        &[2, 4],
    )));
    // Softmax output: the usual fixed encoding scale 1/256, offset 0.
    let y = s.tensor(
        Spec::new(
            "qy",
            QNN_TENSOR_TYPE_APP_READ,
            QNN_DATATYPE_UFIXED_POINT_8,
            &[2, 4],
        )
        .quant(1.0 / 256.0, 0),
    );
    assert_eq!(
        s.node(ops::QNN_OP_FULLY_CONNECTED, &mut [], &[&x, &w, &b], &[&fc]),
        0
    );
    assert_eq!(
        s.node(ops::QNN_OP_ELEMENT_WISE_ADD, &mut [], &[&fc, &c], &[&sum]),
        0
    );
    assert_eq!(s.node(ops::QNN_OP_SOFTMAX, &mut [], &[&sum], &[&y]), 0);
    assert_eq!(s.finalize(), 0);

    // x = [1,2,3,0,-1,1] → q = round(x / 0.05) + 128.
    let mut xin = vec![148u8, 168, 188, 128, 108, 148];
    let mut yout = vec![0u8; 8];
    assert_eq!(s.execute(&[(&x, &mut xin)], &mut [(&y, &mut yout)]), 0);
    // Hand-computed: the pre-softmax values are exactly representable, so the output is
    // round(softmax * 256): [22,165,61,8] and [85,85,85,0].
    assert_eq!(yout, vec![22, 165, 61, 8, 85, 85, 85, 0]);
    let dequantized: Vec<f32> = yout.iter().map(|&q| q as f32 / 256.0).collect();
    assert_close(&dequantized, &Y, 1.0 / 256.0);
}

#[test]
fn execute_before_finalize_is_graph_not_finalized() {
    let _g = serial();
    let built = build_float("unfinalized");
    let mut xin = bytes_of(&X);
    let mut yout = vec![0u8; 32];
    let c = built
        .session
        .execute(&[(&built.x, &mut xin)], &mut [(&built.y, &mut yout)]);
    assert_eq!(c, QNN_GRAPH_ERROR_GRAPH_NOT_FINALIZED);
    assert_eq!(built.session.finalize(), 0);
    assert_eq!(
        built
            .session
            .execute(&[(&built.x, &mut xin)], &mut [(&built.y, &mut yout)]),
        0
    );
    // Finalized graphs are immutable.
    let mut s = built.session;
    let (c, _) = s.try_tensor(Spec::new(
        "late",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_FLOAT_32,
        &[1],
    ));
    assert_eq!(c, QNN_GRAPH_ERROR_GRAPH_FINALIZED);
}

#[test]
fn unknown_ops_and_bad_configs_are_rejected() {
    let _g = serial();
    let mut s = Session::new("rejects");
    let x = s.tensor(Spec::new(
        "x",
        QNN_TENSOR_TYPE_APP_WRITE,
        QNN_DATATYPE_FLOAT_32,
        &[2, 4],
    ));
    let y = s.tensor(Spec::new(
        "y",
        QNN_TENSOR_TYPE_APP_READ,
        QNN_DATATYPE_FLOAT_32,
        &[2, 4],
    ));
    assert_eq!(
        s.node("NoSuchOp", &mut [], &[&x], &[&y]),
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG
    );
    // Not in the pinned SDK 2.13 opset.
    assert_eq!(
        s.node("RmsNorm", &mut [], &[&x], &[&y]),
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG
    );
    // Wrong arity, wrong output shape, unknown param.
    assert_eq!(
        s.node(ops::QNN_OP_ELEMENT_WISE_ADD, &mut [], &[&x], &[&y]),
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG
    );
    let z = s.tensor(Spec::new(
        "z",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_FLOAT_32,
        &[4, 2],
    ));
    assert_eq!(
        s.node(ops::QNN_OP_SIGMOID, &mut [], &[&x], &[&z]),
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG
    );
    let mut bogus = [scalar(
        c"bogus",
        QNN_DATATYPE_UINT_32,
        Qnn_Scalar_Value_t { uint32Value: 1 },
    )];
    assert_eq!(
        s.node(ops::QNN_OP_SIGMOID, &mut bogus, &[&x], &[&y]),
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG
    );
    // Mixing float and fixed point in one op.
    let q = s.tensor(
        Spec::new(
            "q",
            QNN_TENSOR_TYPE_NATIVE,
            QNN_DATATYPE_UFIXED_POINT_8,
            &[2, 4],
        )
        .quant(0.1, 0),
    );
    assert_eq!(
        s.node(ops::QNN_OP_SIGMOID, &mut [], &[&x], &[&q]),
        QNN_GRAPH_ERROR_INVALID_OP_CONFIG
    );
    // Input not produced yet.
    assert_eq!(
        s.node(ops::QNN_OP_SIGMOID, &mut [], &[&z], &[&y]),
        QNN_GRAPH_ERROR_UNCONNECTED_NODE
    );
    // A valid node still works after the rejections, and validateOpConfig says why.
    assert_eq!(s.node(ops::QNN_OP_SIGMOID, &mut [], &[&x], &[&y]), 0);
    let op = CString::new("NoSuchOp").unwrap();
    let mut ins = [x.raw];
    let mut outs = [y.raw];
    let cfg = Qnn_OpConfig_t::v1(Qnn_OpConfigV1_t {
        name: c"n".as_ptr(),
        packageName: ops::QNN_OP_PACKAGE_NAME_QTI_AISW_C.as_ptr(),
        typeName: op.as_ptr(),
        numOfInputs: 1,
        inputTensors: ins.as_mut_ptr(),
        numOfOutputs: 1,
        outputTensors: outs.as_mut_ptr(),
        ..Qnn_OpConfigV1_t::INIT
    });
    // SAFETY: valid backend; the config's pointers are alive.
    let c = unsafe { f().backendValidateOpConfig.unwrap()(s.backend, cfg) };
    assert_eq!(code(c), QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE);
}

#[test]
fn tensor_ids_are_written_back_and_names_are_unique_per_context() {
    let _g = serial();
    let mut s = Session::new("ids");
    let a = s.tensor(Spec::new(
        "a",
        QNN_TENSOR_TYPE_APP_WRITE,
        QNN_DATATYPE_FLOAT_32,
        &[2],
    ));
    let b = s.tensor(Spec::new(
        "b",
        QNN_TENSOR_TYPE_APP_READ,
        QNN_DATATYPE_FLOAT_32,
        &[2],
    ));
    assert!(a.id() != 0 && b.id() != 0 && a.id() != b.id());
    let (c, _) = s.try_tensor(Spec::new(
        "a",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_FLOAT_32,
        &[2],
    ));
    assert_eq!(c, QNN_TENSOR_ERROR_ALREADY_EXISTS);
    // Dynamic (zero) dimensions and STATIC tensors without data are invalid.
    let (c, _) = s.try_tensor(Spec::new(
        "dyn",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_FLOAT_32,
        &[0, 2],
    ));
    assert_eq!(c, QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM);
    let (c, _) = s.try_tensor(Spec::new(
        "w",
        QNN_TENSOR_TYPE_STATIC,
        QNN_DATATYPE_FLOAT_32,
        &[2],
    ));
    assert_eq!(c, QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM);
    // Quantized tensors need quantization parameters.
    let (c, _) = s.try_tensor(Spec::new(
        "q",
        QNN_TENSOR_TYPE_NATIVE,
        QNN_DATATYPE_UFIXED_POINT_8,
        &[2],
    ));
    assert_eq!(c, QNN_TENSOR_ERROR_INVALID_TENSOR_PARAM);
}

fn context_binary(context: Qnn_ContextHandle_t) -> Result<Vec<u8>, u64> {
    let f = f();
    let mut size = 0u64;
    // SAFETY: valid out-pointer.
    let c = code(unsafe { f.contextGetBinarySize.unwrap()(context, &mut size) });
    if c != 0 {
        return Err(c);
    }
    let mut buf = vec![0u8; size as usize];
    let mut written = 0u64;
    // SAFETY: the buffer holds `size` bytes.
    let c = code(unsafe {
        f.contextGetBinary.unwrap()(context, buf.as_mut_ptr().cast(), size, &mut written)
    });
    if c != 0 {
        return Err(c);
    }
    assert_eq!(written, size);
    Ok(buf)
}

fn from_binary(backend: Qnn_BackendHandle_t, bin: &[u8]) -> (u64, Qnn_ContextHandle_t) {
    let mut ctx = null_mut();
    // SAFETY: the binary buffer holds `len` bytes; valid out-pointer.
    let c = unsafe {
        f().contextCreateFromBinary.unwrap()(
            backend,
            null_mut(),
            null_mut(),
            bin.as_ptr().cast(),
            bin.len() as u64,
            &mut ctx,
            null_mut(),
        )
    };
    (code(c), ctx)
}

#[test]
fn context_binary_round_trip_gives_the_same_results() {
    let _g = serial();
    let built = build_float("cached_graph");
    // Serialising needs every graph finalized.
    assert_eq!(
        context_binary(built.session.context),
        Err(QNN_CONTEXT_ERROR_NOT_FINALIZED)
    );
    assert_eq!(built.session.finalize(), 0);
    let bin = context_binary(built.session.context).unwrap();
    assert_eq!(&bin[..8], b"WQNNEMU\0");

    let (c, ctx) = from_binary(built.session.backend, &bin);
    assert_eq!(c, 0);
    let f = f();
    let mut graph = null_mut();
    // SAFETY: valid context, name and out-pointer.
    assert_eq!(
        unsafe { f.graphRetrieve.unwrap()(ctx, c"cached_graph".as_ptr(), &mut graph) },
        0
    );
    assert_close(&run_float(graph, &built), &Y, 1e-6);
    let mut missing = null_mut();
    // SAFETY: as above.
    let c = unsafe { f.graphRetrieve.unwrap()(ctx, c"other".as_ptr(), &mut missing) };
    assert_eq!(code(c), QNN_GRAPH_ERROR_GRAPH_DOES_NOT_EXIST);
    // Graphs cannot be added to a context made from a binary.
    let mut g2 = null_mut();
    // SAFETY: as above.
    let c = unsafe { f.graphCreate.unwrap()(ctx, c"new".as_ptr(), null_mut(), &mut g2) };
    assert_eq!(code(c), QNN_COMMON_ERROR_OPERATION_NOT_PERMITTED);
    // The reloaded context serialises to the same bytes.
    assert_eq!(context_binary(ctx).unwrap(), bin);
    // SAFETY: valid context.
    assert_eq!(unsafe { f.contextFree.unwrap()(ctx, null_mut()) }, 0);
    // SAFETY: a freed handle is reported, not dereferenced.
    assert_eq!(
        code(unsafe { f.contextFree.unwrap()(ctx, null_mut()) }),
        QNN_CONTEXT_ERROR_INVALID_HANDLE
    );
}

#[test]
fn corrupted_or_foreign_binaries_are_rejected_with_the_real_codes() {
    let _g = serial();
    let built = build_float("to_corrupt");
    assert_eq!(built.session.finalize(), 0);
    let bin = context_binary(built.session.context).unwrap();
    let backend = built.session.backend;

    let mut flipped = bin.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55; // payload byte: checksum mismatch
    assert_eq!(
        from_binary(backend, &flipped).0,
        QNN_CONTEXT_ERROR_CREATE_FROM_BINARY
    );
    assert_eq!(
        from_binary(backend, &bin[..bin.len() - 3]).0,
        QNN_CONTEXT_ERROR_CREATE_FROM_BINARY
    );
    assert_eq!(
        from_binary(backend, &bin[..20]).0,
        QNN_CONTEXT_ERROR_CREATE_FROM_BINARY
    );
    let mut magic = bin.clone();
    magic[0] = b'X';
    assert_eq!(
        from_binary(backend, &magic).0,
        QNN_CONTEXT_ERROR_CREATE_FROM_BINARY
    );
    // A binary from another format / API version must be rebuilt: BINARY_VERSION.
    let mut format = bin.clone();
    format[8] = 99;
    assert_eq!(
        from_binary(backend, &format).0,
        QNN_CONTEXT_ERROR_BINARY_VERSION
    );
    let mut api = bin.clone();
    api[16] = 6; // API minor 6
    assert_eq!(
        from_binary(backend, &api).0,
        QNN_CONTEXT_ERROR_BINARY_VERSION
    );
    assert_eq!(from_binary(backend, &bin).0, 0);
}

/// Sets an environment variable for the duration of a test (tests are serialised).
struct EnvVar(&'static str);
impl EnvVar {
    fn set(name: &'static str, value: &str) -> EnvVar {
        // Tests hold `serial()`, so no other test thread reads or writes the environment now.
        std::env::set_var(name, value);
        EnvVar(name)
    }
}
impl Drop for EnvVar {
    fn drop(&mut self) {
        std::env::remove_var(self.0);
    }
}

#[test]
fn fault_injection_returns_the_configured_code_on_the_configured_call() {
    let _g = serial();
    let built = build_float("faulty");
    {
        let _env = EnvVar::set("WISP_QNN_EMU_FAIL", "graphFinalize:1:1002");
        assert_eq!(
            built.session.finalize(),
            QNN_COMMON_ERROR_MEM_ALLOC,
            "first call fails"
        );
        assert_eq!(built.session.finalize(), 0, "second call is real");
    }
    {
        let _env = EnvVar::set("WISP_QNN_EMU_FAIL", "graphExecute:*:6033");
        let mut xin = bytes_of(&X);
        let mut yout = vec![0u8; 32];
        for _ in 0..2 {
            let c = built
                .session
                .execute(&[(&built.x, &mut xin)], &mut [(&built.y, &mut yout)]);
            assert_eq!(c, QNN_GRAPH_ERROR_TIMED_OUT);
        }
    }
    {
        // Failing the provider query surfaces as a typed load error.
        let _env = EnvVar::set("WISP_QNN_EMU_FAIL", "getProviders:1:1000");
        let err = QnnLibrary::load(lib().path()).unwrap_err();
        assert!(
            matches!(err, QnnLoadError::ProviderQueryFailed { code: 1000, .. }),
            "{err}"
        );
        assert!(err.to_string().starts_with("unavailable:"), "{err}");
    }
}

#[test]
fn provider_versions_outside_the_pinned_generation_are_refused_at_load() {
    let _g = serial();
    // Load (and cache) the library before overriding the version it reports.
    let path = lib().path().to_path_buf();
    for (version, why) in [
        ("2.6.0", "older than pinned"),
        ("2.20.0", "function-table order"),
        ("3.0.0", "major version differs"),
    ] {
        let _env = EnvVar::set("WISP_QNN_EMU_API_VERSION", version);
        let err = QnnLibrary::load(&path).unwrap_err();
        assert!(
            matches!(err, QnnLoadError::IncompatibleVersion { .. }),
            "{version}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with("unavailable: no provider in"), "{msg}");
        assert!(msg.contains(why), "{version}: {msg}");
    }
    // Same minor, any patch: accepted.
    let _env = EnvVar::set("WISP_QNN_EMU_API_VERSION", "2.7.9");
    assert!(QnnLibrary::load(&path).is_ok());
}

#[test]
fn trace_has_one_json_line_per_call_and_errors_reach_the_log_callback() {
    let _g = serial();
    // Load the library first so its provider query is not part of the traced sequence.
    let _ = lib();
    let dir = std::env::temp_dir().join(format!("wisp-qnn-emu-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.jsonl");
    let _ = std::fs::remove_file(&path);

    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&messages);
    set_log_handler(Some(Arc::new(move |_, _, m: &str| {
        sink.lock().unwrap().push(m.to_owned())
    })));
    {
        let _env = EnvVar::set("WISP_QNN_EMU_TRACE", path.to_str().unwrap());
        let mut s = Session::new("traced");
        let x = s.tensor(Spec::new(
            "x",
            QNN_TENSOR_TYPE_APP_WRITE,
            QNN_DATATYPE_FLOAT_32,
            &[1, 2],
        ));
        let y = s.tensor(Spec::new(
            "y",
            QNN_TENSOR_TYPE_APP_READ,
            QNN_DATATYPE_FLOAT_32,
            &[1, 2],
        ));
        assert_eq!(
            s.node("Bogus%sOp", &mut [], &[&x], &[&y]),
            QNN_GRAPH_ERROR_INVALID_OP_CONFIG
        );
        assert_eq!(s.node(ops::QNN_OP_TANH, &mut [], &[&x], &[&y]), 0);
        assert_eq!(s.finalize(), 0);
        drop(s);
    }
    set_log_handler(None);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let calls: Vec<&str> = lines.iter().map(|l| l["call"].as_str().unwrap()).collect();
    assert_eq!(
        calls,
        [
            "logCreate",
            "backendCreate",
            "contextCreate",
            "graphCreate",
            "tensorCreateGraphTensor",
            "tensorCreateGraphTensor",
            "graphAddNode",
            "graphAddNode",
            "graphFinalize",
            "contextFree",
            "backendFree",
            "logFree"
        ]
    );
    let bad = &lines[6];
    assert_eq!(bad["result"], 6005);
    assert_eq!(bad["detail"], "Bogus%sOp");
    assert!(bad["handles"]["graph"].as_u64().unwrap() > 0);
    assert_eq!(lines[7]["result"], 0);
    assert!(
        lines[3]["handles"]["out"].as_u64().is_some(),
        "created handles are recorded"
    );
    // The failure was also reported through logCreate's callback (and the `%` did not break it).
    let messages = messages.lock().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("graphAddNode failed with 6005") && m.contains("Bogus%sOp")),
        "{messages:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
