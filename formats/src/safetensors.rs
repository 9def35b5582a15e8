//! safetensors reader: a JSON header describing each tensor, then one flat
//! data buffer, read in place.
//!
//! Layout: a little-endian u64 `N`, then `N` bytes of UTF-8 JSON, then the
//! data buffer. The JSON is an object mapping each tensor name to
//! `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` (offsets
//! relative to the data buffer, `end` exclusive), plus an optional
//! `"__metadata__"` object of string to string.
//!
//! Everything is checked before it is trusted: the header length against the
//! file and a 100 MB cap, the JSON's shape field by field, each dtype, each
//! shape's element count and byte size against its offsets, the offsets
//! against the data buffer, and the tensors together: they must tile the data
//! buffer exactly, with no overlap, no hole and no trailing bytes (the format
//! requires it; it keeps a file from hiding a second payload). Duplicate
//! names, which a plain JSON map would silently collapse, are rejected.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::ggml_type::GgmlType;
use crate::storage::Storage;

/// Largest header accepted. Real headers are kilobytes; the cap keeps a
/// corrupt length from making the parser chew through a huge file as JSON.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The name of the header entry that holds free-form string metadata.
pub const METADATA_KEY: &str = "__metadata__";

/// Why a safetensors file could not be read. Each names the tensor, field or
/// offset at fault.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("file is {len} bytes, too short for the 8-byte header length")]
    TooShort { len: u64 },
    #[error("header length {len} exceeds the {MAX_HEADER_LEN}-byte limit")]
    HeaderTooLarge { len: u64 },
    #[error("header length {header_len} runs past the end of the file ({file_len} bytes)")]
    HeaderPastEnd { header_len: u64, file_len: u64 },
    #[error("header is not valid UTF-8 (valid up to byte {valid_up_to})")]
    HeaderNotUtf8 { valid_up_to: usize },
    #[error("header is not valid JSON: {why}")]
    HeaderNotJson { why: String },
    #[error("header is a JSON {found}, expected an object")]
    HeaderNotObject { found: &'static str },
    #[error("tensor {tensor:?}: field {field:?} {why}")]
    BadField {
        tensor: String,
        field: String,
        why: String,
    },
    #[error("__metadata__ entry {key:?}: {why}")]
    BadMetadata { key: String, why: String },
    #[error("tensor {tensor:?} has unknown dtype {dtype:?}")]
    UnknownDtype { tensor: String, dtype: String },
    #[error("tensor {tensor:?} shape {shape:?}: byte size overflows")]
    ShapeOverflow { tensor: String, shape: Vec<u64> },
    #[error(
        "tensor {tensor:?} ({dtype} {shape:?}) needs {expected} bytes but its offsets span {found}"
    )]
    SizeMismatch {
        tensor: String,
        dtype: &'static str,
        shape: Vec<u64>,
        expected: u64,
        found: u64,
    },
    #[error("tensor {tensor:?} data_offsets [{begin}, {end}] begin after they end")]
    OffsetsReversed {
        tensor: String,
        begin: u64,
        end: u64,
    },
    #[error("tensor {tensor:?} data [{begin}, {end}) lies past the end of the data buffer ({len} bytes)")]
    DataOutOfBounds {
        tensor: String,
        begin: u64,
        end: u64,
        len: u64,
    },
    #[error("tensors {a:?} and {b:?} overlap in the data buffer")]
    Overlap { a: String, b: String },
    #[error("data buffer bytes [{begin}, {end}) belong to no tensor")]
    UncoveredBytes { begin: u64, end: u64 },
    #[error("header entry {0:?} appears twice")]
    DuplicateName(String),
}

/// A safetensors element type. The format names more (unsigned 16–64-bit,
/// 8-bit floats); a file using those is rejected as `UnknownDtype`, since
/// nothing in wisp could use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StDtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StDtype {
    /// The dtype spelled `name` in a header ("F32", "BOOL"), if known.
    pub fn from_name(name: &str) -> Option<StDtype> {
        use StDtype::*;
        Some(match name {
            "F64" => F64,
            "F32" => F32,
            "F16" => F16,
            "BF16" => BF16,
            "I64" => I64,
            "I32" => I32,
            "I16" => I16,
            "I8" => I8,
            "U8" => U8,
            "BOOL" => Bool,
            _ => return None,
        })
    }

    /// The header spelling ("F32", "BOOL"), for reports and writers.
    pub fn name(self) -> &'static str {
        use StDtype::*;
        match self {
            F64 => "F64",
            F32 => "F32",
            F16 => "F16",
            BF16 => "BF16",
            I64 => "I64",
            I32 => "I32",
            I16 => "I16",
            I8 => "I8",
            U8 => "U8",
            Bool => "BOOL",
        }
    }

    /// Bytes per element, used to check each tensor's offsets.
    pub fn size(self) -> usize {
        use StDtype::*;
        match self {
            F64 | I64 => 8,
            F32 | I32 => 4,
            F16 | BF16 | I16 => 2,
            I8 | U8 | Bool => 1,
        }
    }

    /// The GGUF type with the same element layout, for converting a
    /// safetensors model to GGUF; `None` for U8 and BOOL, which ggml lacks.
    pub fn to_ggml(self) -> Option<GgmlType> {
        use StDtype::*;
        Some(match self {
            F64 => GgmlType::F64,
            F32 => GgmlType::F32,
            F16 => GgmlType::F16,
            BF16 => GgmlType::BF16,
            I64 => GgmlType::I64,
            I32 => GgmlType::I32,
            I16 => GgmlType::I16,
            I8 => GgmlType::I8,
            U8 | Bool => return None,
        })
    }
}

impl fmt::Display for StDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor's description; its bytes are in [`SafetensorsFile::tensor_data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StTensorInfo {
    pub name: String,
    pub dtype: StDtype,
    /// Row-major (PyTorch) order: the last dimension is the contiguous one,
    /// the reverse of GGUF's `dims`. Empty for a scalar.
    pub shape: Vec<u64>,
    /// Offset from the start of the data buffer (not of the file).
    pub offset: u64,
    /// Bytes of data: the element count times the dtype's size.
    pub bytes: u64,
}

impl StTensorInfo {
    /// Number of elements (1 for a scalar; fits in u64, checked at open).
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A safetensors file: validated tensor infos and metadata over the mapped
/// bytes. Tensor data are borrowed from the map, never copied.
pub struct SafetensorsFile {
    storage: Arc<Storage>,
    data_start: u64,
    tensors: Vec<StTensorInfo>,
    tensor_index: HashMap<String, usize>,
    metadata: Vec<(String, String)>,
}

impl fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("tensors", &self.tensors.len())
            .field("metadata", &self.metadata.len())
            .field("data_start", &self.data_start)
            .finish()
    }
}

/// A JSON value parsed one level deep so that an object's entries keep their
/// order and their duplicates (a `serde_json::Map` would keep neither).
enum Node<V> {
    Object(Vec<(String, V)>),
    /// Anything but an object; the JSON type's name, for the error.
    Other(&'static str),
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Node<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor(std::marker::PhantomData))
    }
}

struct NodeVisitor<V>(std::marker::PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for NodeVisitor<V> {
    type Value = Node<V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<V>, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, V>()? {
            entries.push((k, v));
        }
        Ok(Node::Object(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<V>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Node::Other("array"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node<V>, E> {
        Ok(Node::Other("boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node<V>, E> {
        Ok(Node::Other("number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node<V>, E> {
        Ok(Node::Other("number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node<V>, E> {
        Ok(Node::Other("number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Node<V>, E> {
        Ok(Node::Other("string"))
    }

    fn visit_unit<E>(self) -> Result<Node<V>, E> {
        Ok(Node::Other("null"))
    }
}

/// The JSON type name of `v`, for errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON number that is a non-negative integer within u64 (what every
/// shape entry and offset must be).
fn as_index(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// One tensor entry of the header, fields checked; offsets not yet checked
/// against each other or the buffer.
fn parse_entry(
    name: &str,
    node: Node<Value>,
) -> Result<(StDtype, Vec<u64>, u64, u64), SafetensorsError> {
    let bad = |field: &str, why: String| SafetensorsError::BadField {
        tensor: name.to_string(),
        field: field.to_string(),
        why,
    };
    let fields = match node {
        Node::Object(f) => f,
        Node::Other(k) => return Err(bad("(entry)", format!("is a JSON {k}, expected an object"))),
    };
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    for (key, value) in fields {
        let slot = match key.as_str() {
            "dtype" => &mut dtype,
            "shape" => &mut shape,
            "data_offsets" => &mut offsets,
            // The format has no other fields; tolerate unknown ones as a
            // newer writer's additions rather than refuse the file.
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(bad(&key, "appears twice".into()));
        }
    }
    let missing = |field: &str| bad(field, "is missing".into());

    let dtype = dtype.ok_or_else(|| missing("dtype"))?;
    let dtype_name = match &dtype {
        Value::String(s) => s.as_str(),
        v => {
            return Err(bad(
                "dtype",
                format!("is a JSON {}, expected a string", kind(v)),
            ))
        }
    };
    let dtype = StDtype::from_name(dtype_name).ok_or_else(|| SafetensorsError::UnknownDtype {
        tensor: name.to_string(),
        dtype: dtype_name.to_string(),
    })?;

    let shape = match shape.ok_or_else(|| missing("shape"))? {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                as_index(v).ok_or_else(|| {
                    bad(
                        "shape",
                        format!("entry {i} is {v}, expected a non-negative integer"),
                    )
                })
            })
            .collect::<Result<Vec<u64>, _>>()?,
        v => {
            return Err(bad(
                "shape",
                format!("is a JSON {}, expected an array", kind(&v)),
            ))
        }
    };

    let (begin, end) = match offsets.ok_or_else(|| missing("data_offsets"))? {
        Value::Array(items) if items.len() == 2 => {
            let get = |i: usize| {
                as_index(&items[i]).ok_or_else(|| {
                    bad(
                        "data_offsets",
                        format!("entry {i} is {}, expected a non-negative integer", items[i]),
                    )
                })
            };
            (get(0)?, get(1)?)
        }
        Value::Array(items) => {
            return Err(bad(
                "data_offsets",
                format!("has {} entries, expected 2", items.len()),
            ))
        }
        v => {
            return Err(bad(
                "data_offsets",
                format!("is a JSON {}, expected an array", kind(&v)),
            ))
        }
    };
    Ok((dtype, shape, begin, end))
}

impl SafetensorsFile {
    /// Maps and validates the file at `path`; the usual way to load weights.
    pub fn open(path: &Path) -> Result<SafetensorsFile, SafetensorsError> {
        let storage = Storage::map(path).map_err(|source| SafetensorsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        SafetensorsFile::from_storage(Arc::new(storage))
    }

    /// Validates safetensors bytes already in memory (tests, downloads held
    /// in memory).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SafetensorsFile, SafetensorsError> {
        SafetensorsFile::from_storage(Arc::new(Storage::Owned(bytes)))
    }

    /// Validates the safetensors bytes of `storage` and keeps it alive for
    /// the views (lets a caller share one map between readers).
    pub fn from_storage(storage: Arc<Storage>) -> Result<SafetensorsFile, SafetensorsError> {
        let buf = storage.bytes();
        let file_len = buf.len() as u64;
        if buf.len() < 8 {
            return Err(SafetensorsError::TooShort { len: file_len });
        }
        let header_len = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        if header_len > MAX_HEADER_LEN {
            return Err(SafetensorsError::HeaderTooLarge { len: header_len });
        }
        if header_len > file_len - 8 {
            return Err(SafetensorsError::HeaderPastEnd {
                header_len,
                file_len,
            });
        }
        let data_start = 8 + header_len;
        let header = std::str::from_utf8(&buf[8..data_start as usize]).map_err(|e| {
            SafetensorsError::HeaderNotUtf8 {
                valid_up_to: e.valid_up_to(),
            }
        })?;
        let top: Node<Node<Value>> = serde_json::from_str(header)
            .map_err(|e| SafetensorsError::HeaderNotJson { why: e.to_string() })?;
        let entries = match top {
            Node::Object(entries) => entries,
            Node::Other(found) => return Err(SafetensorsError::HeaderNotObject { found }),
        };

        let data_len = file_len - data_start;
        let mut tensors = Vec::with_capacity(entries.len());
        let mut tensor_index = HashMap::with_capacity(entries.len());
        let mut metadata = None;
        for (name, node) in entries {
            if name == METADATA_KEY {
                if metadata.is_some() {
                    return Err(SafetensorsError::DuplicateName(name));
                }
                metadata = Some(parse_metadata(node)?);
                continue;
            }
            if tensor_index.contains_key(&name) {
                return Err(SafetensorsError::DuplicateName(name));
            }
            let (dtype, shape, begin, end) = parse_entry(&name, node)?;
            let expected = shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .and_then(|n| n.checked_mul(dtype.size() as u64))
                .ok_or_else(|| SafetensorsError::ShapeOverflow {
                    tensor: name.clone(),
                    shape: shape.clone(),
                })?;
            if begin > end {
                return Err(SafetensorsError::OffsetsReversed {
                    tensor: name,
                    begin,
                    end,
                });
            }
            if end - begin != expected {
                return Err(SafetensorsError::SizeMismatch {
                    tensor: name,
                    dtype: dtype.name(),
                    shape,
                    expected,
                    found: end - begin,
                });
            }
            if end > data_len {
                return Err(SafetensorsError::DataOutOfBounds {
                    tensor: name,
                    begin,
                    end,
                    len: data_len,
                });
            }
            tensor_index.insert(name.clone(), tensors.len());
            tensors.push(StTensorInfo {
                name,
                dtype,
                shape,
                offset: begin,
                bytes: expected,
            });
        }

        // The tensors must tile [0, data_len) exactly.
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| (tensors[i].offset, tensors[i].bytes));
        let mut covered = 0u64;
        let mut last: Option<usize> = None;
        for &i in &order {
            let t = &tensors[i];
            if t.offset < covered {
                let a = last.expect("covered > 0 implies a previous tensor");
                return Err(SafetensorsError::Overlap {
                    a: tensors[a].name.clone(),
                    b: t.name.clone(),
                });
            }
            if t.offset > covered {
                return Err(SafetensorsError::UncoveredBytes {
                    begin: covered,
                    end: t.offset,
                });
            }
            covered = t.offset + t.bytes;
            if t.bytes > 0 {
                last = Some(i);
            }
        }
        if covered != data_len {
            return Err(SafetensorsError::UncoveredBytes {
                begin: covered,
                end: data_len,
            });
        }

        Ok(SafetensorsFile {
            storage,
            data_start,
            tensors,
            tensor_index,
            metadata: metadata.unwrap_or_default(),
        })
    }

    /// All tensor infos, in the order the header lists them (the writer's
    /// order, usually the model's parameter order; not necessarily the order
    /// of their data).
    pub fn tensors(&self) -> &[StTensorInfo] {
        &self.tensors
    }

    /// A tensor's info by name; how a model loader finds each weight.
    pub fn tensor(&self, name: &str) -> Option<&StTensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Index of a tensor by name, for [`SafetensorsFile::tensor_data`].
    pub fn tensor_id(&self, name: &str) -> Option<usize> {
        self.tensor_index.get(name).copied()
    }

    /// The tensor's bytes, borrowed from the map (never copied); bounds were
    /// checked at open. safetensors does not align data: the slice may start
    /// at any address, so read elements with `from_le_bytes` or an unaligned
    /// cast, not a plain `&[f32]` reinterpretation. Panics if `id` is not
    /// below `tensors().len()`.
    pub fn tensor_data(&self, id: usize) -> &[u8] {
        let t = &self.tensors[id];
        let start = (self.data_start + t.offset) as usize;
        &self.storage.bytes()[start..start + t.bytes as usize]
    }

    /// The `__metadata__` string pairs in header order (empty if absent);
    /// e.g. `("format", "pt")`.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// File offset where the data buffer begins (8 + header length).
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The bytes behind the file (shared with every view).
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }
}

/// The `__metadata__` entry: an object of string to string, duplicates refused.
fn parse_metadata(node: Node<Value>) -> Result<Vec<(String, String)>, SafetensorsError> {
    let entries = match node {
        Node::Object(e) => e,
        Node::Other(k) => {
            return Err(SafetensorsError::BadMetadata {
                key: METADATA_KEY.into(),
                why: format!("is a JSON {k}, expected an object"),
            })
        }
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if out.iter().any(|(k, _)| *k == key) {
            return Err(SafetensorsError::BadMetadata {
                key,
                why: "appears twice".into(),
            });
        }
        match value {
            Value::String(s) => out.push((key, s)),
            v => {
                return Err(SafetensorsError::BadMetadata {
                    key,
                    why: format!("is a JSON {}, expected a string", kind(&v)),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A file from a header string and a data buffer.
    fn build(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(header.len() as u64).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    const HEADER: &str = r#"{"__metadata__":{"format":"pt","note":"x"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},"i":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"s":{"dtype":"I64","shape":[],"data_offsets":[32,40]},"e":{"dtype":"F16","shape":[0,5],"data_offsets":[40,40]}}"#;

    fn data() -> Vec<u8> {
        (0..40u8).collect()
    }

    fn valid() -> Vec<u8> {
        build(HEADER, &data())
    }

    fn err_of(header: &str, data: &[u8]) -> SafetensorsError {
        SafetensorsFile::from_bytes(build(header, data)).expect_err("must be rejected")
    }

    #[test]
    fn reads_a_valid_file() {
        let f = SafetensorsFile::from_bytes(valid()).expect("valid");
        let names: Vec<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["w", "b", "i", "s", "e"], "header order");
        assert_eq!(
            f.metadata(),
            [("format".into(), "pt".into()), ("note".into(), "x".into())]
        );
        let w = f.tensor("w").unwrap();
        assert_eq!(
            (w.dtype, w.shape.clone(), w.offset, w.bytes),
            (StDtype::F32, vec![2, 3], 8, 24)
        );
        assert_eq!(w.n_elements(), 6);
        let id = f.tensor_id("w").unwrap();
        assert_eq!(f.tensor_data(id), &data()[8..32]);
        assert_eq!(f.tensor_data(f.tensor_id("i").unwrap()), &[0, 1, 2, 3]);
        let s = f.tensor("s").unwrap();
        assert_eq!((s.n_elements(), s.bytes), (1, 8));
        assert_eq!(f.tensor_data(f.tensor_id("e").unwrap()), &[] as &[u8]);
        assert_eq!(f.data_start(), 8 + HEADER.len() as u64);
        assert!(f.tensor("missing").is_none());
    }

    #[test]
    fn header_padding_and_no_metadata_are_fine() {
        let h = r#"{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}     "#;
        let f = SafetensorsFile::from_bytes(build(h, &[7, 9])).unwrap();
        assert!(f.metadata().is_empty());
        assert_eq!(f.tensor_data(0), &[7, 9]);
        // An empty file: no tensors, empty buffer.
        let f = SafetensorsFile::from_bytes(build("{}", &[])).unwrap();
        assert!(f.tensors().is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = valid();
        for n in 0..b.len() {
            assert!(
                SafetensorsFile::from_bytes(b[..n].to_vec()).is_err(),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn dtype_names_round_trip() {
        use StDtype::*;
        for d in [F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool] {
            assert_eq!(StDtype::from_name(d.name()), Some(d));
            if let Some(g) = d.to_ggml() {
                assert_eq!((g.block_len(), g.block_bytes()), (1, d.size()));
            }
        }
        assert_eq!(StDtype::from_name("f32"), None);
    }

    #[test]
    fn header_length_errors() {
        use SafetensorsError as E;
        assert!(matches!(
            SafetensorsFile::from_bytes(vec![1, 0, 0]),
            Err(E::TooShort { len: 3 })
        ));
        let mut b = valid();
        b[..8].copy_from_slice(&(MAX_HEADER_LEN + 1).to_le_bytes());
        assert!(matches!(
            SafetensorsFile::from_bytes(b),
            Err(E::HeaderTooLarge { .. })
        ));
        let mut b = valid();
        b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            SafetensorsFile::from_bytes(b),
            Err(E::HeaderTooLarge { .. })
        ));
        let mut b = valid();
        let past = (b.len() - 7) as u64;
        b[..8].copy_from_slice(&past.to_le_bytes());
        assert!(matches!(
            SafetensorsFile::from_bytes(b),
            Err(E::HeaderPastEnd { .. })
        ));
    }

    #[test]
    fn header_encoding_and_json_shape_errors() {
        use SafetensorsError as E;
        let mut b = valid();
        b[9] = 0xff;
        assert!(matches!(
            SafetensorsFile::from_bytes(b),
            Err(E::HeaderNotUtf8 { valid_up_to: 1 })
        ));
        assert!(matches!(err_of("{\"a\":", &[]), E::HeaderNotJson { .. }));
        assert!(matches!(err_of("{} x", &[]), E::HeaderNotJson { .. }));
        assert!(matches!(
            err_of("[1,2]", &[]),
            E::HeaderNotObject { found: "array" }
        ));
        assert!(matches!(
            err_of("3", &[]),
            E::HeaderNotObject { found: "number" }
        ));

        let field = |h: &str, want: &str| match err_of(h, &[0; 4]) {
            E::BadField { tensor, field, .. } => {
                assert_eq!(tensor, "a");
                assert_eq!(field, want, "header {h}");
            }
            e => panic!("header {h}: wrong error {e}"),
        };
        field(r#"{"a":5}"#, "(entry)");
        field(r#"{"a":{"shape":[4],"data_offsets":[0,4]}}"#, "dtype");
        field(
            r#"{"a":{"dtype":1,"shape":[4],"data_offsets":[0,4]}}"#,
            "dtype",
        );
        field(r#"{"a":{"dtype":"U8","data_offsets":[0,4]}}"#, "shape");
        field(
            r#"{"a":{"dtype":"U8","shape":4,"data_offsets":[0,4]}}"#,
            "shape",
        );
        field(
            r#"{"a":{"dtype":"U8","shape":[-4],"data_offsets":[0,4]}}"#,
            "shape",
        );
        field(
            r#"{"a":{"dtype":"U8","shape":[4.0],"data_offsets":[0,4]}}"#,
            "shape",
        );
        field(r#"{"a":{"dtype":"U8","shape":[4]}}"#, "data_offsets");
        field(
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4,8]}}"#,
            "data_offsets",
        );
        field(
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,"4"]}}"#,
            "data_offsets",
        );
        field(
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,18446744073709551616]}}"#,
            "data_offsets",
        );
        field(
            r#"{"a":{"dtype":"U8","dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
            "dtype",
        );

        assert!(matches!(
            err_of(r#"{"__metadata__":{"k":1}}"#, &[]),
            E::BadMetadata { key, .. } if key == "k"
        ));
        assert!(matches!(
            err_of(r#"{"__metadata__":[]}"#, &[]),
            E::BadMetadata { .. }
        ));
        assert!(matches!(
            err_of(r#"{"__metadata__":{"k":"a","k":"b"}}"#, &[]),
            E::BadMetadata { .. }
        ));
    }

    #[test]
    fn tensor_errors_name_the_tensor() {
        use SafetensorsError as E;
        match err_of(
            r#"{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ) {
            E::UnknownDtype { tensor, dtype } => {
                assert_eq!((tensor.as_str(), dtype.as_str()), ("a", "F8_E4M3"))
            }
            e => panic!("{e}"),
        }
        assert!(matches!(
            err_of(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, &[0; 4]),
            E::ShapeOverflow { tensor, .. } if tensor == "a"
        ));
        assert!(matches!(
            err_of(
                r#"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}"#,
                &[0; 4]
            ),
            E::ShapeOverflow { .. }
        ));
        assert!(matches!(
            err_of(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, &[0; 4]),
            E::SizeMismatch { tensor, expected: 8, found: 4, .. } if tensor == "a"
        ));
        assert!(matches!(
            err_of(r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,0]}}"#, &[0; 4]),
            E::OffsetsReversed { tensor, .. } if tensor == "a"
        ));
        assert!(matches!(
            err_of(r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#, &[0; 4]),
            E::DataOutOfBounds { tensor, end: 6, len: 4, .. } if tensor == "a"
        ));
        assert!(matches!(
            err_of(r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#, &[0; 4]),
            E::Overlap { a, b } if a == "a" && b == "b"
        ));
        assert!(matches!(
            err_of(
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#,
                &[0; 4]
            ),
            E::UncoveredBytes { begin: 0, end: 2 }
        ));
        assert!(matches!(
            err_of(
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
                &[0; 4]
            ),
            E::UncoveredBytes { begin: 2, end: 4 }
        ));
        assert!(matches!(
            err_of(r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#, &[0; 4]),
            E::DuplicateName(n) if n == "a"
        ));
        assert!(matches!(
            err_of(r#"{"__metadata__":{},"__metadata__":{}}"#, &[]),
            E::DuplicateName(n) if n == "__metadata__"
        ));
        // A zero-sized tensor inside another one is an overlap, not a tile.
        assert!(matches!(
            err_of(
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#,
                &[0; 4]
            ),
            E::Overlap { .. }
        ));
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let h = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(SafetensorsFile::from_bytes(build(&h, &[])).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn header_byte_flips_never_panic(
            flips in proptest::collection::vec((0usize..8 + HEADER.len(), any::<u8>()), 1..6)
        ) {
            let mut b = valid();
            for (at, v) in flips {
                b[at] = v;
            }
            if let Ok(f) = SafetensorsFile::from_bytes(b) {
                for id in 0..f.tensors().len() {
                    let t = &f.tensors()[id];
                    prop_assert_eq!(f.tensor_data(id).len() as u64, t.bytes);
                }
            }
        }
    }

    /// The model cache, as the `wisp` crate defines it.
    fn models_dir() -> std::path::PathBuf {
        if let Some(d) = std::env::var_os("WISP_MODELS").filter(|d| !d.is_empty()) {
            return d.into();
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        std::path::PathBuf::from(home).join(".cache/wisp/models")
    }

    #[test]
    fn reads_the_real_minilm_model() {
        let path = models_dir().join("all-MiniLM-L6-v2/model.safetensors");
        assert!(
            path.exists(),
            "{} is missing: run ./scripts/fetch-models.sh first",
            path.display()
        );
        let f = SafetensorsFile::open(&path).expect("the real model is valid");
        assert!(f.storage().is_mapped());
        // 105 header entries: 104 tensors plus __metadata__.
        assert_eq!(f.tensors().len(), 104);
        assert_eq!(f.metadata(), [("format".to_string(), "pt".to_string())]);
        let t = f.tensor("embeddings.word_embeddings.weight").unwrap();
        assert_eq!(t.dtype, StDtype::F32);
        assert_eq!(t.shape, [30522, 384]);
        assert_eq!(t.bytes, 30522 * 384 * 4);
        let data = f.tensor_data(f.tensor_id(&t.name).unwrap());
        assert_eq!(data.len() as u64, t.bytes);
        let total: u64 = f.tensors().iter().map(|t| t.bytes).sum();
        assert_eq!(
            f.data_start() + total,
            std::fs::metadata(&path).unwrap().len()
        );
        let first = f32::from_le_bytes(data[..4].try_into().unwrap());
        assert!(first.is_finite());
    }
}
