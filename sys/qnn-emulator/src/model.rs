//! The emulator's own copy of what a client built: tensors, nodes, graphs and contexts.
//!
//! Everything is copied out of the client's C structs at the call that provides it (QNN allows
//! the client to free its structs afterwards, and STATIC data is documented as copied), so the rest
//! of the emulator is safe Rust over these types.

use std::collections::{HashMap, HashSet};

use wisp_qnn_sys::*;

use crate::numeric::{Encoding, Quant};

/// An error to return from an entry point: the QNN code plus a human-readable reason that is sent
/// to the client's log callback and the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct EmuError {
    /// QNN error code.
    pub code: u64,
    /// Why, for logs.
    pub why: String,
}

/// Result type of emulator internals.
pub type Res<T> = Result<T, EmuError>;

/// Builds an [`EmuError`].
pub fn fail<T>(code: u64, why: impl Into<String>) -> Res<T> {
    Err(EmuError {
        code,
        why: why.into(),
    })
}

/// A graph tensor as created by `tensorCreateGraphTensor`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDesc {
    /// Id assigned by the emulator and written back to the client.
    pub id: u32,
    /// Name, unique in the context.
    pub name: String,
    /// `Qnn_TensorType_t`.
    pub ty: Qnn_TensorType_t,
    /// Type and quantization.
    pub enc: Encoding,
    /// Static dimensions (all non-zero).
    pub dims: Vec<u32>,
    /// Copied data of STATIC tensors; empty otherwise.
    pub data: Vec<u8>,
}

impl TensorDesc {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// Size of the data in bytes.
    pub fn byte_size(&self) -> usize {
        self.numel() * data_type_size(self.enc.dtype).unwrap_or(0)
    }
}

/// A node parameter, copied.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A scalar: its type and its 32 value bits (every scalar of this API generation fits).
    Scalar {
        /// `Qnn_DataType_t`.
        dtype: Qnn_DataType_t,
        /// The value's bits, zero-extended.
        bits: u32,
    },
    /// A tensor parameter: a copy of the STATIC tensor it names.
    Tensor(TensorDesc),
}

impl ParamValue {
    /// The scalar as `f64`, honouring its type; `None` for tensors.
    pub fn as_number(&self) -> Option<f64> {
        let ParamValue::Scalar { dtype, bits } = *self else {
            return None;
        };
        Some(match dtype {
            QNN_DATATYPE_FLOAT_32 => f32::from_bits(bits) as f64,
            QNN_DATATYPE_INT_32 => bits as i32 as f64,
            QNN_DATATYPE_INT_16 => bits as u16 as i16 as f64,
            QNN_DATATYPE_INT_8 => bits as u8 as i8 as f64,
            QNN_DATATYPE_UINT_32 => bits as f64,
            QNN_DATATYPE_UINT_16 => (bits & 0xFFFF) as f64,
            QNN_DATATYPE_UINT_8 | QNN_DATATYPE_BOOL_8 => (bits & 0xFF) as f64,
            _ => return None,
        })
    }
}

/// One node, as added by `graphAddNode`.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Op type (package is always `qti.aisw`).
    pub op: String,
    /// Named params.
    pub params: Vec<(String, ParamValue)>,
    /// Input tensor ids, in order (an absent optional input is a NULL-type tensor).
    pub inputs: Vec<u32>,
    /// Output tensor ids.
    pub outputs: Vec<u32>,
}

impl Node {
    /// The param named `name`.
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A graph: tensors, nodes in dependency order, and whether it was finalized.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Graph name, unique in the context.
    pub name: String,
    /// Tensors by id.
    pub tensors: HashMap<u32, TensorDesc>,
    /// Nodes in the order added (QNN requires dependency order).
    pub nodes: Vec<Node>,
    /// Ids already produced by a node.
    pub produced: HashSet<u32>,
    /// `graphFinalize` succeeded.
    pub finalized: bool,
}

impl Graph {
    /// Tensors of one type, sorted by id (creation order).
    pub fn tensors_of_type(&self, ty: Qnn_TensorType_t) -> Vec<&TensorDesc> {
        let mut list: Vec<_> = self.tensors.values().filter(|t| t.ty == ty).collect();
        list.sort_by_key(|t| t.id);
        list
    }
}

/// A context: its graphs plus the context-wide tensor namespace.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Owning backend handle.
    pub backend: usize,
    /// Graphs in creation order.
    pub graphs: Vec<Graph>,
    /// Tensor names used anywhere in the context (names are unique per context).
    pub tensor_names: HashSet<String>,
    /// Next tensor id to hand out.
    pub next_tensor_id: u32,
    /// Made by `contextCreateFromBinary`: graphs cannot be added.
    pub from_binary: bool,
}

/// Quantization helper for `Quant::PerTensor` with the type's full width.
pub fn per_tensor(dtype: Qnn_DataType_t, scale: f32, offset: i32) -> Encoding {
    let bits = data_type_size(dtype).unwrap_or(4) as u32 * 8;
    Encoding {
        dtype,
        quant: Quant::PerTensor {
            scale,
            offset,
            bits,
        },
    }
}
