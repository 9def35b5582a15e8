//! The lowered form of one partition: QNN tensors and `qti.aisw` ops, as
//! plain data. Lowering produces it without touching the library; the
//! runtime turns it into `Qnn_Tensor_t` / `Qnn_OpConfig_t` calls; the cache
//! key is a digest of its structure. Keeping this step pure is what lets the
//! capability checks, the cache and the tests reason about a graph without
//! a device.

use wisp_engine::{NodeId, ValueId};
use wisp_qnn_sys::*;

/// Who reads and writes a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Graph input written by the host (`APP_WRITE`).
    Input,
    /// Graph output read by the host (`APP_READ`).
    Output,
    /// Intermediate (`NATIVE`).
    Native,
    /// Constant data (`STATIC`).
    Static,
}

impl Kind {
    /// The QNN tensor type.
    pub fn qnn(self) -> Qnn_TensorType_t {
        match self {
            Kind::Input => QNN_TENSOR_TYPE_APP_WRITE,
            Kind::Output => QNN_TENSOR_TYPE_APP_READ,
            Kind::Native => QNN_TENSOR_TYPE_NATIVE,
            Kind::Static => QNN_TENSOR_TYPE_STATIC,
        }
    }
}

/// Element type and quantization of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Enc {
    F32,
    F16,
    I32,
    U32,
    Bool,
    /// Unsigned fixed point, `real = (q + offset) * scale` (QNN's sign: offset = −zero point).
    UFixed {
        bits: u32,
        scale: f32,
        offset: i32,
    },
    /// Symmetric int8 per output channel (axis 0), the weights of FullyConnected.
    /// Scales are filled in when the weight's data is materialized.
    I8PerChannel {
        scales: Vec<f32>,
    },
}

impl Enc {
    /// The QNN data type.
    pub fn dtype(&self) -> Qnn_DataType_t {
        match self {
            Enc::F32 => QNN_DATATYPE_FLOAT_32,
            Enc::F16 => QNN_DATATYPE_FLOAT_16,
            Enc::I32 => QNN_DATATYPE_INT_32,
            Enc::U32 => QNN_DATATYPE_UINT_32,
            Enc::Bool => QNN_DATATYPE_BOOL_8,
            Enc::UFixed { bits: 16, .. } => QNN_DATATYPE_UFIXED_POINT_16,
            Enc::UFixed { .. } => QNN_DATATYPE_UFIXED_POINT_8,
            Enc::I8PerChannel { .. } => QNN_DATATYPE_SFIXED_POINT_8,
        }
    }

    /// Bytes per element.
    pub fn size(&self) -> usize {
        data_type_size(self.dtype()).unwrap_or(4)
    }

    /// Whether the type is quantized.
    pub fn is_fixed(&self) -> bool {
        matches!(self, Enc::UFixed { .. } | Enc::I8PerChannel { .. })
    }

    /// A stable text form for digests (per-channel scales come from the data, which is hashed).
    pub fn describe(&self) -> String {
        match self {
            Enc::UFixed {
                bits,
                scale,
                offset,
            } => format!("u{bits}({:08x},{offset})", scale.to_bits()),
            Enc::I8PerChannel { .. } => "i8pc".into(),
            other => format!("{other:?}"),
        }
    }
}

/// How a static tensor's bytes are made.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// No data (non-static tensors).
    None,
    /// Bytes computed at lowering (constants, tables, params).
    Bytes(Vec<u8>),
    /// A weight of the model, converted when the partition is first run
    /// (weights are only reachable through the run's bindings).
    Weight { value: ValueId, form: Form },
}

/// The conversion of a weight into a static tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Symmetric int8 per output row (FullyConnected weights).
    PerChannelI8,
    /// fp16.
    F16,
    /// fp16, the vector written twice (`[w, w]`: the RMS-norm-as-layer-norm gamma).
    F16Twice,
    /// Unsigned fixed point of `bits`, range from the data (biases, norm weights).
    Auto { bits: u32 },
    /// Quantized with the tensor's declared encoding (embedding tables: the
    /// output's encoding, so the Gather is an exact copy).
    Declared,
}

/// One tensor of the lowered graph.
#[derive(Clone, Debug)]
pub struct QTensor {
    pub name: String,
    pub kind: Kind,
    pub enc: Enc,
    pub dims: Vec<u32>,
    pub data: Data,
}

impl QTensor {
    /// Elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// Bytes of the whole tensor.
    pub fn bytes(&self) -> usize {
        self.numel() * self.enc.size()
    }
}

/// An op param.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// A static tensor of the graph (by index).
    Tensor(usize),
}

/// One `qti.aisw` node.
#[derive(Clone, Debug)]
pub struct QOp {
    pub name: String,
    pub ty: &'static str,
    pub params: Vec<(&'static str, Param)>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// What the host writes into a graph input before each execution.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The bytes of a graph value (activation, ids, KV cache state).
    Value(ValueId),
    /// An additive causal attention mask `[n, ctx]` (0 visible, −10000 hidden)
    /// computed from the positions: query i sees keys j ≤ pos[i] (and within
    /// the sliding window).
    CausalMask {
        pos: ValueId,
        ctx: usize,
        window: Option<usize>,
    },
}

/// A graph input and where its bytes come from.
#[derive(Clone, Debug)]
pub struct InputBind {
    pub tensor: usize,
    pub source: Source,
}

/// A graph output and the value it fills.
#[derive(Clone, Debug)]
pub struct OutputBind {
    pub tensor: usize,
    pub value: ValueId,
    pub node: NodeId,
    /// Whether the rest of the graph needs it (false: exposed for `wisp diff` only).
    pub needed: bool,
}

/// A partition lowered to QNN.
#[derive(Clone, Debug, Default)]
pub struct QGraph {
    pub tensors: Vec<QTensor>,
    pub ops: Vec<QOp>,
    pub inputs: Vec<InputBind>,
    pub outputs: Vec<OutputBind>,
}

impl QGraph {
    /// A stable description of everything but the weights' bytes, for the cache key.
    pub fn structure(&self) -> String {
        let mut s = String::new();
        for (i, t) in self.tensors.iter().enumerate() {
            let data = match &t.data {
                Data::None => "-".to_string(),
                Data::Bytes(b) => format!("b{:032x}", crate::digest::digest128(b)),
                Data::Weight { value, form } => format!("w{}:{form:?}", value.0),
            };
            s.push_str(&format!(
                "t{i} {} {:?} {} {:?} {data}\n",
                t.name,
                t.kind,
                t.enc.describe(),
                t.dims
            ));
        }
        for op in &self.ops {
            s.push_str(&format!(
                "o {} {} {:?} {:?} {:?}\n",
                op.name, op.ty, op.params, op.inputs, op.outputs
            ));
        }
        for b in &self.inputs {
            s.push_str(&format!("i {} {:?}\n", b.tensor, b.source));
        }
        for b in &self.outputs {
            s.push_str(&format!("r {} {} {}\n", b.tensor, b.value.0, b.needed));
        }
        s
    }

    /// Count of ops by type, for logs.
    pub fn op_histogram(&self) -> Vec<(&'static str, usize)> {
        let mut m: std::collections::BTreeMap<&'static str, usize> = Default::default();
        for o in &self.ops {
            *m.entry(o.ty).or_default() += 1;
        }
        m.into_iter().collect()
    }
}
