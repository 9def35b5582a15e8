//! The emulator's context binary: what `contextGetBinary` writes and `contextCreateFromBinary`
//! reads back.
//!
//! Layout (little endian):
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `b"WQNNEMU\0"` |
//! | 8 | binary format version (`u32`, [`FORMAT_VERSION`]) |
//! | 12 | QNN core API version the binary was made for (`u32` major, minor, patch) |
//! | 24 | emulator crate version (`u32` major, minor, patch), informational |
//! | 36 | reserved `u32` (0) |
//! | 40 | payload length (`u64`) |
//! | 48 | FNV-1a 64 checksum of the payload (`u64`) |
//! | 56 | payload: the graphs |
//!
//! A wrong magic, a length mismatch, a bad checksum or an undecodable payload is corruption
//! (`QNN_CONTEXT_ERROR_CREATE_FROM_BINARY`, 5005); a different format version or API major.minor is
//! a version mismatch (`QNN_CONTEXT_ERROR_BINARY_VERSION`, 5004), the code the real HTP returns for
//! a binary from another SDK, which is what wisp's cache invalidation must react to.

use std::collections::{HashMap, HashSet};

use wisp_qnn_sys::*;

use crate::model::{fail, Graph, Node, ParamValue, Res, TensorDesc};
use crate::numeric::{Encoding, Quant};

/// First 8 bytes of every emulator context binary.
pub const MAGIC: [u8; 8] = *b"WQNNEMU\0";
/// Version of the payload encoding; bump on any change to it.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 56;

/// FNV-1a, 64-bit: tiny, dependency-free, and enough to catch accidental corruption (this is a
/// test double; integrity against tampering is the caller's job).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn crate_version() -> [u32; 3] {
    let part = |s: &str| s.parse().unwrap_or(0);
    [
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    ]
}

/// Little-endian writer.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn tensor(&mut self, t: &TensorDesc) {
        self.u32(t.id);
        self.str(&t.name);
        self.u32(t.ty);
        self.u32(t.enc.dtype);
        match &t.enc.quant {
            Quant::None => self.u8(0),
            Quant::PerTensor {
                scale,
                offset,
                bits,
            } => {
                self.u8(1);
                self.f32(*scale);
                self.i32(*offset);
                self.u32(*bits);
            }
            Quant::PerAxis { axis, params, bits } => {
                self.u8(2);
                self.u32(*axis as u32);
                self.u32(*bits);
                self.u32(params.len() as u32);
                for (s, o) in params {
                    self.f32(*s);
                    self.i32(*o);
                }
            }
        }
        self.u32(t.dims.len() as u32);
        t.dims.iter().for_each(|&d| self.u32(d));
        self.bytes(&t.data);
    }
}

/// Little-endian reader; every failure is corruption.
struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Res<&[u8]> {
        if self.0.len() < n {
            return fail(
                QNN_CONTEXT_ERROR_CREATE_FROM_BINARY,
                "context binary is truncated",
            );
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Res<i32> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn f32(&mut self) -> Res<f32> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Res<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> Res<String> {
        String::from_utf8(self.bytes()?).or_else(|_| {
            fail(
                QNN_CONTEXT_ERROR_CREATE_FROM_BINARY,
                "context binary holds invalid UTF-8",
            )
        })
    }
    fn tensor(&mut self) -> Res<TensorDesc> {
        let id = self.u32()?;
        let name = self.str()?;
        let ty = self.u32()?;
        let dtype = self.u32()?;
        let quant = match self.u8()? {
            0 => Quant::None,
            1 => Quant::PerTensor {
                scale: self.f32()?,
                offset: self.i32()?,
                bits: self.u32()?,
            },
            2 => {
                let axis = self.u32()? as usize;
                let bits = self.u32()?;
                let n = self.u32()? as usize;
                let params = (0..n)
                    .map(|_| Ok((self.f32()?, self.i32()?)))
                    .collect::<Res<_>>()?;
                Quant::PerAxis { axis, params, bits }
            }
            tag => {
                return fail(
                    QNN_CONTEXT_ERROR_CREATE_FROM_BINARY,
                    format!("unknown quantization tag {tag}"),
                )
            }
        };
        let rank = self.u32()? as usize;
        let dims = (0..rank).map(|_| self.u32()).collect::<Res<_>>()?;
        let data = self.bytes()?;
        Ok(TensorDesc {
            id,
            name,
            ty,
            enc: Encoding { dtype, quant },
            dims,
            data,
        })
    }
}

/// Serializes finalized graphs into a complete binary (header + payload).
pub fn serialize(graphs: &[Graph]) -> Vec<u8> {
    let mut p = W::default();
    p.u32(graphs.len() as u32);
    for g in graphs {
        p.str(&g.name);
        let mut tensors: Vec<&TensorDesc> = g.tensors.values().collect();
        tensors.sort_by_key(|t| t.id);
        p.u32(tensors.len() as u32);
        tensors.into_iter().for_each(|t| p.tensor(t));
        p.u32(g.nodes.len() as u32);
        for n in &g.nodes {
            p.str(&n.name);
            p.str(&n.op);
            p.u32(n.params.len() as u32);
            for (name, value) in &n.params {
                p.str(name);
                match value {
                    ParamValue::Scalar { dtype, bits } => {
                        p.u8(0);
                        p.u32(*dtype);
                        p.u32(*bits);
                    }
                    ParamValue::Tensor(t) => {
                        p.u8(1);
                        p.tensor(t);
                    }
                }
            }
            for list in [&n.inputs, &n.outputs] {
                p.u32(list.len() as u32);
                list.iter().for_each(|&id| p.u32(id));
            }
        }
    }
    let payload = p.0;
    let mut h = W::default();
    h.0.extend_from_slice(&MAGIC);
    h.u32(FORMAT_VERSION);
    for v in [
        QNN_API_VERSION_MAJOR,
        QNN_API_VERSION_MINOR,
        QNN_API_VERSION_PATCH,
    ] {
        h.u32(v);
    }
    crate_version().into_iter().for_each(|v| h.u32(v));
    h.u32(0);
    h.0.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    h.0.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
    debug_assert_eq!(h.0.len(), HEADER_LEN);
    h.0.extend_from_slice(&payload);
    h.0
}

/// Validates and decodes a binary into finalized graphs.
pub fn deserialize(bin: &[u8]) -> Res<Vec<Graph>> {
    const CORRUPT: u64 = QNN_CONTEXT_ERROR_CREATE_FROM_BINARY;
    if bin.len() < HEADER_LEN {
        return fail(
            CORRUPT,
            format!(
                "context binary of {} bytes is shorter than its header",
                bin.len()
            ),
        );
    }
    if bin[..8] != MAGIC {
        return fail(CORRUPT, "not an emulator context binary (bad magic)");
    }
    let u32_at = |o: usize| u32::from_le_bytes(bin[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bin[o..o + 8].try_into().unwrap());
    let format = u32_at(8);
    let (major, minor, patch) = (u32_at(12), u32_at(16), u32_at(20));
    if format != FORMAT_VERSION {
        return fail(
            QNN_CONTEXT_ERROR_BINARY_VERSION,
            format!("context binary format {format}, this emulator reads {FORMAT_VERSION}; regenerate the cache"),
        );
    }
    if (major, minor) != (QNN_API_VERSION_MAJOR, QNN_API_VERSION_MINOR) {
        return fail(
            QNN_CONTEXT_ERROR_BINARY_VERSION,
            format!(
                "context binary made for QNN API {major}.{minor}.{patch}, backend is {QNN_API_VERSION_MAJOR}.{QNN_API_VERSION_MINOR}; regenerate the cache"
            ),
        );
    }
    let payload = &bin[HEADER_LEN..];
    if u64_at(40) != payload.len() as u64 {
        return fail(
            CORRUPT,
            format!(
                "context binary payload is {} bytes, header says {}",
                payload.len(),
                u64_at(40)
            ),
        );
    }
    if u64_at(48) != fnv1a64(payload) {
        return fail(CORRUPT, "context binary checksum mismatch (corrupted)");
    }
    let mut r = R(payload);
    let count = r.u32()?;
    let mut graphs = Vec::new();
    for _ in 0..count {
        let name = r.str()?;
        let mut tensors = HashMap::new();
        for _ in 0..r.u32()? {
            let t = r.tensor()?;
            tensors.insert(t.id, t);
        }
        let mut nodes = Vec::new();
        let mut produced = HashSet::new();
        for _ in 0..r.u32()? {
            let name = r.str()?;
            let op = r.str()?;
            let mut params = Vec::new();
            for _ in 0..r.u32()? {
                let pname = r.str()?;
                let value = match r.u8()? {
                    0 => ParamValue::Scalar {
                        dtype: r.u32()?,
                        bits: r.u32()?,
                    },
                    1 => ParamValue::Tensor(r.tensor()?),
                    tag => return fail(CORRUPT, format!("unknown param tag {tag}")),
                };
                params.push((pname, value));
            }
            let mut ids = || -> Res<Vec<u32>> { (0..r.u32()?).map(|_| r.u32()).collect() };
            let inputs = ids()?;
            let outputs = ids()?;
            if inputs
                .iter()
                .chain(&outputs)
                .any(|id| !tensors.contains_key(id))
                || outputs.is_empty()
            {
                return fail(CORRUPT, format!("node {name} refers to unknown tensors"));
            }
            produced.extend(outputs.iter().copied());
            nodes.push(Node {
                name,
                op,
                params,
                inputs,
                outputs,
            });
        }
        graphs.push(Graph {
            name,
            tensors,
            nodes,
            produced,
            finalized: true,
        });
    }
    if !r.0.is_empty() {
        return fail(CORRUPT, "trailing bytes after the last graph");
    }
    Ok(graphs)
}
