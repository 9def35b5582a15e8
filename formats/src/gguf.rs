//! GGUF v2/v3 reader: header, typed metadata, tensor infos and zero-copy
//! tensor data.
//!
//! Layout (little-endian): magic `GGUF`, version u32, tensor count u64,
//! metadata count u64, the metadata key/value pairs, the tensor infos, then
//! padding to `general.alignment` (default 32) and the tensor data section.
//! Every count is checked against the bytes left in the file before anything
//! is allocated for it, and every tensor's bytes are checked to lie inside the
//! data section, aligned, and apart from every other tensor's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::ggml_type::GgmlType;
use crate::storage::Storage;

/// The default alignment of the data section and of each tensor.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's limit on tensor rank.
pub const MAX_DIMS: usize = 4;
const MAGIC: &[u8; 4] = b"GGUF";

/// Why a GGUF file could not be read. Each names the key, tensor or offset at fault.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a GGUF file: magic is {0:02x?}, expected \"GGUF\"")]
    BadMagic([u8; 4]),
    #[error("unsupported GGUF version {0} (wisp reads versions 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("file truncated: {what} needs {need} bytes at offset {offset}, file has {len}")]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        len: u64,
    },
    #[error("{what}: count {count} cannot fit in the {left} bytes left in the file")]
    CountTooLarge { what: String, count: u64, left: u64 },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: String },
    #[error("metadata key {key:?} has unknown value type {ty}")]
    UnknownValueType { key: String, ty: u32 },
    #[error("metadata key {0:?} appears twice")]
    DuplicateKey(String),
    #[error("metadata arrays nested deeper than {0} levels (key {1:?})")]
    NestingTooDeep(usize, String),
    #[error("general.alignment {0} is not a power of two between 1 and 2^24")]
    BadAlignment(u64),
    #[error("tensor {tensor:?} has unknown dtype id {id}")]
    UnknownDtype { tensor: String, id: u32 },
    #[error("tensor {tensor:?} has {n_dims} dimensions (at most {MAX_DIMS} allowed)")]
    TooManyDims { tensor: String, n_dims: u32 },
    #[error("tensor {tensor:?} has invalid shape {dims:?}: {why}")]
    BadShape {
        tensor: String,
        dims: Vec<u64>,
        why: &'static str,
    },
    #[error("tensor {0:?} appears twice")]
    DuplicateTensor(String),
    #[error("tensor {tensor:?} offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor {tensor:?} data [{start}, {end}) lies past the end of the data section ({len} bytes)")]
    DataOutOfBounds {
        tensor: String,
        start: u64,
        end: u64,
        len: u64,
    },
    #[error("tensors {a:?} and {b:?} overlap in the data section")]
    Overlap { a: String, b: String },
    #[error("metadata key {key:?} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("tensor {0:?} is missing")]
    MissingTensor(String),
}

/// A metadata value. Arrays of strings (vocabularies, merges) are kept as
/// vectors: their counts were checked against the file before allocation.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// GGUF's name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "u8",
            MetaValue::I8(_) => "i8",
            MetaValue::U16(_) => "u16",
            MetaValue::I16(_) => "i16",
            MetaValue::U32(_) => "u32",
            MetaValue::I32(_) => "i32",
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F32(_) => "f32",
            MetaValue::F64(_) => "f64",
            MetaValue::Bool(_) => "bool",
            MetaValue::String(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v as i64),
            MetaValue::I16(v) => Some(v as i64),
            MetaValue::I32(v) => Some(v as i64),
            MetaValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// Renders the value briefly for `wisp inspect` (long arrays are summarised).
    pub fn summary(&self, max_chars: usize) -> String {
        let s = match self {
            MetaValue::String(s) => format!("{s:?}"),
            MetaValue::Array(a) => {
                let first: Vec<String> = a.iter().take(4).map(|v| v.summary(24)).collect();
                format!(
                    "[{}{}] ({} items)",
                    first.join(", "),
                    if a.len() > 4 { ", …" } else { "" },
                    a.len()
                )
            }
            MetaValue::Bool(b) => b.to_string(),
            MetaValue::F32(v) => v.to_string(),
            MetaValue::F64(v) => v.to_string(),
            other => other
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_else(|| format!("{other:?}")),
        };
        if s.chars().count() > max_chars {
            let cut: String = s.chars().take(max_chars).collect();
            format!("{cut}…")
        } else {
            s
        }
    }
}

/// One tensor's description; its bytes are in [`GgufFile::tensor_data`].
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (innermost) dimension.
    pub dims: Vec<u64>,
    pub dtype: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
    /// Bytes of data, computed from dims and dtype.
    pub bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A GGUF file: validated metadata and tensor infos over the mapped bytes.
pub struct GgufFile {
    storage: Arc<Storage>,
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_start: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Bounds-checked little-endian cursor over the file bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.left() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                need: n,
                len: self.buf.len() as u64,
            });
        }
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what: what() })
    }
}

/// Minimum bytes one array element of GGUF value type `ty` occupies, so a
/// count can be checked before allocating for it.
fn min_elem_bytes(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

const MAX_NESTING: usize = 4;

fn read_value(c: &mut Cursor, ty: u32, key: &str, depth: usize) -> Result<MetaValue, GgufError> {
    let what = || format!("value of metadata key {key:?}");
    Ok(match ty {
        0 => MetaValue::U8(c.array::<1>(&what)?[0]),
        1 => MetaValue::I8(c.array::<1>(&what)?[0] as i8),
        2 => MetaValue::U16(u16::from_le_bytes(c.array(&what)?)),
        3 => MetaValue::I16(i16::from_le_bytes(c.array(&what)?)),
        4 => MetaValue::U32(c.u32(&what)?),
        5 => MetaValue::I32(i32::from_le_bytes(c.array(&what)?)),
        6 => MetaValue::F32(f32::from_le_bytes(c.array(&what)?)),
        7 => MetaValue::Bool(c.array::<1>(&what)?[0] != 0),
        8 => MetaValue::String(c.string(&what)?),
        9 => {
            if depth >= MAX_NESTING {
                return Err(GgufError::NestingTooDeep(MAX_NESTING, key.to_string()));
            }
            let elem_ty = c.u32(&what)?;
            let count = c.u64(&what)?;
            let min = min_elem_bytes(elem_ty).ok_or_else(|| GgufError::UnknownValueType {
                key: key.to_string(),
                ty: elem_ty,
            })?;
            if count.checked_mul(min).is_none_or(|need| need > c.left()) {
                return Err(GgufError::CountTooLarge {
                    what: format!("array of metadata key {key:?}"),
                    count,
                    left: c.left(),
                });
            }
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                items.push(read_value(c, elem_ty, key, depth + 1)?);
            }
            MetaValue::Array(items)
        }
        10 => MetaValue::U64(c.u64(&what)?),
        11 => MetaValue::I64(i64::from_le_bytes(c.array(&what)?)),
        12 => MetaValue::F64(f64::from_le_bytes(c.array(&what)?)),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_string(),
                ty,
            })
        }
    })
}

impl GgufFile {
    /// Maps and validates the file at `path`.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let storage = Storage::map(path).map_err(|source| GgufError::Io {
            path: path.display().to_string(),
            source,
        })?;
        GgufFile::from_storage(Arc::new(storage))
    }

    /// Validates GGUF bytes already in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::from_storage(Arc::new(Storage::Owned(bytes)))
    }

    /// Validates the GGUF bytes of `storage` and keeps it alive for the views.
    pub fn from_storage(storage: Arc<Storage>) -> Result<GgufFile, GgufError> {
        let buf = storage.bytes();
        let mut c = Cursor { buf, pos: 0 };
        let magic: [u8; 4] = c.array(&|| "magic".to_string())?;
        if &magic != MAGIC {
            return Err(GgufError::BadMagic(magic));
        }
        let version = c.u32(&|| "version".to_string())?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion(version));
        }
        let n_tensors = c.u64(&|| "tensor count".to_string())?;
        let n_kv = c.u64(&|| "metadata count".to_string())?;
        // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes.
        if n_kv.checked_mul(13).is_none_or(|n| n > c.left()) {
            return Err(GgufError::CountTooLarge {
                what: "metadata count".into(),
                count: n_kv,
                left: c.left(),
            });
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut meta_index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = c.string(&|| format!("key of metadata entry {i}"))?;
            let ty = c.u32(&|| format!("type of metadata key {key:?}"))?;
            let value = read_value(&mut c, ty, &key, 0)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey(key));
            }
            metadata.push((key, value));
        }

        let alignment = match meta_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => {
                let v = &metadata[i].1;
                let a = v.as_u64().ok_or(GgufError::WrongType {
                    key: "general.alignment".into(),
                    found: v.type_name(),
                    expected: "unsigned integer",
                })?;
                if a == 0 || !a.is_power_of_two() || a > (1 << 24) {
                    return Err(GgufError::BadAlignment(a));
                }
                a
            }
        };

        // A tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset).
        if n_tensors.checked_mul(24).is_none_or(|n| n > c.left()) {
            return Err(GgufError::CountTooLarge {
                what: "tensor count".into(),
                count: n_tensors,
                left: c.left(),
            });
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = c.string(&|| format!("name of tensor {i}"))?;
            let what = || format!("info of tensor {name:?}");
            let n_dims = c.u32(&what)?;
            if n_dims as usize > MAX_DIMS {
                return Err(GgufError::TooManyDims {
                    tensor: name,
                    n_dims,
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&what)?);
            }
            let type_id = c.u32(&what)?;
            let offset = c.u64(&what)?;
            let dtype = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownDtype {
                tensor: name.clone(),
                id: type_id,
            })?;
            let bad = |why| GgufError::BadShape {
                tensor: name.clone(),
                dims: dims.clone(),
                why,
            };
            if dims.contains(&0) {
                return Err(bad("a dimension is zero"));
            }
            let mut n: u64 = 1;
            for &d in &dims {
                n = n
                    .checked_mul(d)
                    .filter(|&n| n < (1u64 << 60))
                    .ok_or_else(|| bad("element count overflows"))?;
            }
            let row = dims.first().copied().unwrap_or(1);
            let row_bytes = dtype
                .row_bytes(row)
                .ok_or_else(|| bad("first dimension is not a whole number of blocks"))?;
            let bytes = row_bytes
                .checked_mul(n / row)
                .ok_or_else(|| bad("byte size overflows"))?;
            if offset % alignment != 0 {
                return Err(GgufError::Misaligned {
                    tensor: name,
                    offset,
                    alignment,
                });
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor(name));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                dtype,
                offset,
                bytes,
            });
        }

        let pos = c.pos as u64;
        let data_start = pos.div_ceil(alignment) * alignment;
        let file_len = buf.len() as u64;
        let data_len = file_len.saturating_sub(data_start);
        for t in &tensors {
            let end = t.offset.saturating_add(t.bytes);
            if end > data_len {
                return Err(GgufError::DataOutOfBounds {
                    tensor: t.name.clone(),
                    start: t.offset,
                    end,
                    len: data_len,
                });
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors[i].offset);
        for w in order.windows(2) {
            let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
            if a.offset + a.bytes > b.offset {
                return Err(GgufError::Overlap {
                    a: a.name.clone(),
                    b: b.name.clone(),
                });
            }
        }

        Ok(GgufFile {
            storage,
            version,
            metadata,
            meta_index,
            tensors,
            tensor_index,
            alignment,
            data_start,
        })
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section and of each tensor.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset where tensor data begins.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Total size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// The bytes behind the file (shared with every view).
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// One metadata value.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn wrong(key: &str, v: &MetaValue, expected: &'static str) -> GgufError {
        GgufError::WrongType {
            key: key.to_string(),
            found: v.type_name(),
            expected,
        }
    }

    /// A required non-negative integer (any integer type).
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| Self::wrong(key, v, "non-negative integer"))
    }

    /// A required float (integers convert).
    pub fn get_f64(&self, key: &str) -> Result<f64, GgufError> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| Self::wrong(key, v, "number"))
    }

    /// A required string.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            MetaValue::String(s) => Ok(s),
            v => Err(Self::wrong(key, v, "string")),
        }
    }

    /// A required boolean.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            MetaValue::Bool(b) => Ok(*b),
            v => Err(Self::wrong(key, v, "bool")),
        }
    }

    /// A required array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<String>, GgufError> {
        match self.require(key)? {
            MetaValue::Array(items) => items
                .iter()
                .map(|v| match v {
                    MetaValue::String(s) => Ok(s.clone()),
                    v => Err(Self::wrong(key, v, "array of strings")),
                })
                .collect(),
            v => Err(Self::wrong(key, v, "array of strings")),
        }
    }

    /// A required array of integers, as i64.
    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>, GgufError> {
        match self.require(key)? {
            MetaValue::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_i64()
                        .ok_or_else(|| Self::wrong(key, v, "array of integers"))
                })
                .collect(),
            v => Err(Self::wrong(key, v, "array of integers")),
        }
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// A tensor's info by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Index of a tensor by name.
    pub fn tensor_id(&self, name: &str) -> Option<usize> {
        self.tensor_index.get(name).copied()
    }

    /// The tensor's bytes, borrowed from the map (never copied). Bounds were
    /// checked when the file was opened.
    pub fn tensor_data(&self, id: usize) -> &[u8] {
        let t = &self.tensors[id];
        let start = (self.data_start + t.offset) as usize;
        &self.storage.bytes()[start..start + t.bytes as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a small valid GGUF in memory: two F32 tensors and some metadata.
    fn tiny() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        let s = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        s(&mut b, "general.architecture");
        b.extend_from_slice(&8u32.to_le_bytes());
        s(&mut b, "llama");
        s(&mut b, "tokenizer.ggml.tokens");
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        s(&mut b, "a");
        s(&mut b, "b");
        for (name, off) in [("t0", 0u64), ("t1", 32u64)] {
            s(&mut b, name);
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(&4u64.to_le_bytes());
            b.extend_from_slice(&2u64.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&off.to_le_bytes());
        }
        while b.len() % 32 != 0 {
            b.push(0);
        }
        for i in 0..16 {
            b.extend_from_slice(&(i as f32).to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_a_valid_file() {
        let f = GgufFile::from_bytes(tiny()).expect("valid");
        assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
        assert_eq!(
            f.get_str_array("tokenizer.ggml.tokens").unwrap(),
            ["a", "b"]
        );
        assert_eq!(f.tensors().len(), 2);
        let t1 = f.tensor_id("t1").unwrap();
        let d = f.tensor_data(t1);
        assert_eq!(d.len(), 32);
        assert_eq!(f32::from_le_bytes(d[0..4].try_into().unwrap()), 8.0);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = tiny();
        for n in 0..b.len() {
            assert!(GgufFile::from_bytes(b[..n].to_vec()).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn hostile_counts_are_rejected_before_allocation() {
        let mut b = tiny();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            GgufFile::from_bytes(b),
            Err(GgufError::CountTooLarge { .. })
        ));
        let mut b = tiny();
        b[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            GgufFile::from_bytes(b),
            Err(GgufError::CountTooLarge { .. })
        ));
    }

    #[test]
    fn bad_magic_and_version() {
        let mut b = tiny();
        b[0] = b'X';
        assert!(matches!(
            GgufFile::from_bytes(b),
            Err(GgufError::BadMagic(_))
        ));
        let mut b = tiny();
        b[4] = 1;
        assert!(matches!(
            GgufFile::from_bytes(b),
            Err(GgufError::UnsupportedVersion(1))
        ));
    }

    #[test]
    fn overlapping_tensors_are_rejected() {
        let b = tiny();
        // Find t1's offset field (last 8 bytes of the second tensor info) and point it at t0.
        let needle = {
            let mut n = Vec::new();
            n.extend_from_slice(&2u32.to_le_bytes());
            n.extend_from_slice(&4u64.to_le_bytes());
            n.extend_from_slice(&2u64.to_le_bytes());
            n.extend_from_slice(&0u32.to_le_bytes());
            n.extend_from_slice(&32u64.to_le_bytes());
            n
        };
        let at = b.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut b2 = b.clone();
        b2[at + needle.len() - 8..at + needle.len()].copy_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            GgufFile::from_bytes(b2),
            Err(GgufError::Overlap { .. })
        ));
        let mut b3 = b;
        b3[at + needle.len() - 8..at + needle.len()].copy_from_slice(&4u64.to_le_bytes());
        assert!(matches!(
            GgufFile::from_bytes(b3),
            Err(GgufError::Misaligned { .. })
        ));
    }
}
