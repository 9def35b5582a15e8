//! GGUF v3 writer, used by `wisp quantize` and by tests that need a model
//! file built in memory.
//!
//! Metadata and tensors are collected first and checked as they are added
//! (duplicate names, array element types, each tensor's byte length against
//! its type and dims), so a writer that accepted everything produces a file
//! [`crate::GgufFile`] reads back unchanged. Writing lays out, little-endian:
//! magic, version 3, tensor and metadata counts, the key/value pairs, the
//! tensor infos, zero padding to the alignment, then each tensor's data
//! padded to the alignment. Tensor data may be an owned buffer or a callback
//! that streams the bytes when the file is written, so a converter need not
//! hold every converted tensor in memory at once.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ggml_type::GgmlType;
use crate::gguf::{MetaValue, DEFAULT_ALIGNMENT, MAX_DIMS};

/// The metadata key that sets the alignment of the data section and tensors.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Longest tensor name ggml accepts, in bytes (its name buffer is 64 bytes
/// with a terminating NUL); longer names would make the file unreadable to
/// llama.cpp.
pub const MAX_NAME_LEN: usize = 63;
/// Deepest nesting of arrays inside arrays that the reader accepts.
pub const MAX_ARRAY_NESTING: usize = 4;
const VERSION: u32 = 3;

/// Why a GGUF file could not be built or written. Each names the key or
/// tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum GgufWriteError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("metadata key {0:?} added twice")]
    DuplicateKey(String),
    #[error("metadata key {key:?}: array mixes element types {first} and {found}")]
    MixedArray {
        key: String,
        first: &'static str,
        found: &'static str,
    },
    #[error("metadata key {key:?}: arrays nested deeper than {MAX_ARRAY_NESTING} levels")]
    NestingTooDeep { key: String },
    #[error("general.alignment {0} is not a power of two between 1 and 2^24")]
    BadAlignment(u64),
    #[error("general.alignment has type {found}, expected an unsigned integer")]
    AlignmentType { found: &'static str },
    #[error("tensor {0:?} added twice")]
    DuplicateTensor(String),
    #[error("tensor name {name:?} is {len} bytes; ggml allows 1 to {MAX_NAME_LEN}")]
    BadName { name: String, len: usize },
    #[error("tensor {tensor:?} has invalid dims {dims:?} for {dtype}: {why}")]
    BadShape {
        tensor: String,
        dims: Vec<u64>,
        dtype: GgmlType,
        why: &'static str,
    },
    #[error("tensor {tensor:?} ({dtype} {dims:?}) needs {expected} bytes, got {found}")]
    SizeMismatch {
        tensor: String,
        dtype: GgmlType,
        dims: Vec<u64>,
        expected: u64,
        found: u64,
    },
    #[error("tensor {tensor:?}: the data callback wrote {written} bytes, expected {expected}")]
    FillSize {
        tensor: String,
        expected: u64,
        written: u64,
    },
}

/// Streams one tensor's bytes into the file when it is written.
pub type FillFn<'a> = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + 'a>;

enum TensorData<'a> {
    Owned(Vec<u8>),
    Fill(FillFn<'a>),
}

struct PendingTensor<'a> {
    name: String,
    dims: Vec<u64>,
    dtype: GgmlType,
    bytes: u64,
    data: TensorData<'a>,
}

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
/// `'a` bounds what the streaming callbacks of
/// [`GgufWriter::add_tensor_with`] may borrow (e.g. a source model's map).
#[derive(Default)]
pub struct GgufWriter<'a> {
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<PendingTensor<'a>>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufWriter")
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment())
            .finish()
    }
}

/// GGUF's id of a value's type.
fn type_id(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

/// The element type written for an empty array (GGUF needs one; readers
/// see an empty array whatever it is). String: vocabularies and merges are
/// the arrays that are sometimes empty.
const EMPTY_ARRAY_ELEM: u32 = 8;

/// Checks that every array in `v` has one element type and that arrays nest
/// no deeper than the reader accepts.
fn check_value(key: &str, v: &MetaValue, depth: usize) -> Result<(), GgufWriteError> {
    if let MetaValue::Array(items) = v {
        if depth >= MAX_ARRAY_NESTING {
            return Err(GgufWriteError::NestingTooDeep { key: key.into() });
        }
        if let Some(first) = items.first() {
            for item in items {
                if type_id(item) != type_id(first) {
                    return Err(GgufWriteError::MixedArray {
                        key: key.into(),
                        first: first.type_name(),
                        found: item.type_name(),
                    });
                }
                check_value(key, item, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// The alignment a `general.alignment` value asks for, if valid.
fn alignment_of(v: &MetaValue) -> Result<u64, GgufWriteError> {
    let a = v.as_u64().ok_or(GgufWriteError::AlignmentType {
        found: v.type_name(),
    })?;
    if a == 0 || !a.is_power_of_two() || a > (1 << 24) {
        return Err(GgufWriteError::BadAlignment(a));
    }
    Ok(a)
}

/// Bytes of a tensor of `dtype` with ggml `dims`, by the reader's rules.
fn tensor_bytes(dims: &[u64], dtype: GgmlType) -> Result<u64, &'static str> {
    if dims.is_empty() {
        return Err("no dimensions (a scalar is dims [1])");
    }
    if dims.len() > MAX_DIMS {
        return Err("more than 4 dimensions");
    }
    if dims.contains(&0) {
        return Err("a dimension is zero");
    }
    let n = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d).filter(|&n| n < (1 << 60)))
        .ok_or("element count overflows")?;
    let row_bytes = dtype
        .row_bytes(dims[0])
        .ok_or("first dimension is not a whole number of blocks")?;
    row_bytes
        .checked_mul(n / dims[0])
        .ok_or("byte size overflows")
}

/// Counts the bytes that pass through, so padding can be computed.
struct Counter<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Counter<W> {
    fn string(&mut self, s: &str) -> io::Result<()> {
        self.write_all(&(s.len() as u64).to_le_bytes())?;
        self.write_all(s.as_bytes())
    }

    fn pad_to(&mut self, alignment: u64) -> io::Result<()> {
        const ZEROS: [u8; 256] = [0; 256];
        let mut pad = self.pos.next_multiple_of(alignment) - self.pos;
        while pad > 0 {
            let n = pad.min(ZEROS.len() as u64) as usize;
            self.write_all(&ZEROS[..n])?;
            pad -= n as u64;
        }
        Ok(())
    }

    /// The payload of `v` (no type id).
    fn value(&mut self, v: &MetaValue) -> io::Result<()> {
        match v {
            MetaValue::U8(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::I8(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::U16(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::I16(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::U32(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::I32(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::U64(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::I64(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::F32(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::F64(x) => self.write_all(&x.to_le_bytes()),
            MetaValue::Bool(b) => self.write_all(&[*b as u8]),
            MetaValue::String(s) => self.string(s),
            MetaValue::Array(items) => {
                let elem = items.first().map_or(EMPTY_ARRAY_ELEM, type_id);
                self.write_all(&elem.to_le_bytes())?;
                self.write_all(&(items.len() as u64).to_le_bytes())?;
                items.iter().try_for_each(|item| self.value(item))
            }
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> GgufWriteError {
    let context = context.into();
    move |source| GgufWriteError::Io { context, source }
}

impl<'a> GgufWriter<'a> {
    /// An empty writer: no metadata, no tensors, alignment 32.
    pub fn new() -> GgufWriter<'a> {
        GgufWriter::default()
    }

    /// Appends a metadata pair; adding a key twice is an error (it would make
    /// the file unreadable). Arrays must hold one element type (GGUF stores
    /// one type per array) and nest at most 4 deep. A `general.alignment`
    /// value must be an unsigned integer power of two up to 2^24; it sets the
    /// file's alignment (see also [`GgufWriter::set_alignment`]).
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: MetaValue,
    ) -> Result<(), GgufWriteError> {
        let key = key.into();
        if self.meta_index.contains_key(&key) {
            return Err(GgufWriteError::DuplicateKey(key));
        }
        self.check_pair(&key, &value)?;
        self.meta_index.insert(key.clone(), self.metadata.len());
        self.metadata.push((key, value));
        Ok(())
    }

    /// Sets a metadata pair, replacing the value in place if the key exists
    /// (a converter copies a source's metadata, then overrides a few keys
    /// such as `general.file_type`). Same checks as `add_metadata`.
    pub fn set_metadata(
        &mut self,
        key: impl Into<String>,
        value: MetaValue,
    ) -> Result<(), GgufWriteError> {
        let key = key.into();
        self.check_pair(&key, &value)?;
        match self.meta_index.get(&key) {
            Some(&i) => self.metadata[i].1 = value,
            None => {
                self.meta_index.insert(key.clone(), self.metadata.len());
                self.metadata.push((key, value));
            }
        }
        Ok(())
    }

    fn check_pair(&self, key: &str, value: &MetaValue) -> Result<(), GgufWriteError> {
        check_value(key, value, 0)?;
        if key == ALIGNMENT_KEY {
            alignment_of(value)?;
        }
        Ok(())
    }

    /// Sets the alignment of the data section and of each tensor. A
    /// non-default alignment is recorded as `general.alignment` (u32); the
    /// default 32 is written only if the key was already set.
    pub fn set_alignment(&mut self, alignment: u64) -> Result<(), GgufWriteError> {
        let a = alignment_of(&MetaValue::U64(alignment))?;
        if a == DEFAULT_ALIGNMENT && !self.meta_index.contains_key(ALIGNMENT_KEY) {
            return Ok(());
        }
        self.set_metadata(ALIGNMENT_KEY, MetaValue::U32(a as u32))
    }

    /// The alignment the file will be written with.
    pub fn alignment(&self) -> u64 {
        self.meta_index
            .get(ALIGNMENT_KEY)
            .and_then(|&i| alignment_of(&self.metadata[i].1).ok())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The metadata added so far, in the order it will be written.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// Number of tensors added so far.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// Checks a tensor's name and shape and returns its byte size.
    fn check_tensor(
        &self,
        name: &str,
        dims: &[u64],
        dtype: GgmlType,
    ) -> Result<u64, GgufWriteError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(GgufWriteError::BadName {
                name: name.into(),
                len: name.len(),
            });
        }
        if self.tensor_index.contains_key(name) {
            return Err(GgufWriteError::DuplicateTensor(name.into()));
        }
        tensor_bytes(dims, dtype).map_err(|why| GgufWriteError::BadShape {
            tensor: name.into(),
            dims: dims.to_vec(),
            dtype,
            why,
        })
    }

    fn push(&mut self, t: PendingTensor<'a>) {
        self.tensor_index.insert(t.name.clone(), self.tensors.len());
        self.tensors.push(t);
    }

    /// Adds a tensor whose bytes are in memory. `dims` are in ggml order
    /// (`dims[0]` contiguous, a whole number of `dtype` blocks); `data` must
    /// be exactly the size the type and dims call for. Tensors are written in
    /// the order added.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        dtype: GgmlType,
        data: Vec<u8>,
    ) -> Result<(), GgufWriteError> {
        let name = name.into();
        let bytes = self.check_tensor(&name, dims, dtype)?;
        if data.len() as u64 != bytes {
            return Err(GgufWriteError::SizeMismatch {
                tensor: name,
                dtype,
                dims: dims.to_vec(),
                expected: bytes,
                found: data.len() as u64,
            });
        }
        self.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            dtype,
            bytes,
            data: TensorData::Owned(data),
        });
        Ok(())
    }

    /// Adds a tensor whose bytes `fill` streams into the file when it is
    /// written, so a converter can produce one tensor at a time. `fill` must
    /// write exactly the tensor's size (the bytes of a `dims[0]` row times
    /// the other dims; a mismatch fails the write with `FillSize`). An error
    /// it returns fails the write.
    pub fn add_tensor_with(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        dtype: GgmlType,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()> + 'a,
    ) -> Result<(), GgufWriteError> {
        let name = name.into();
        let bytes = self.check_tensor(&name, dims, dtype)?;
        self.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            dtype,
            bytes,
            data: TensorData::Fill(Box::new(fill)),
        });
        Ok(())
    }

    /// Writes the file to `out` and returns its size in bytes. Only writes
    /// sequentially (no seeking), so any `Write` works: a file, a `Vec`, a
    /// socket. Unbuffered writers should be wrapped in a `BufWriter`.
    pub fn write_to<W: Write>(self, out: W) -> Result<u64, GgufWriteError> {
        let alignment = self.alignment();
        let mut w = Counter { inner: out, pos: 0 };
        let header = io_err("writing the GGUF header");

        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut off = 0u64;
        for t in &self.tensors {
            offsets.push(off);
            off = (off + t.bytes).next_multiple_of(alignment);
        }

        (|| -> io::Result<()> {
            w.write_all(b"GGUF")?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
            w.write_all(&(self.metadata.len() as u64).to_le_bytes())?;
            for (key, value) in &self.metadata {
                w.string(key)?;
                w.write_all(&type_id(value).to_le_bytes())?;
                w.value(value)?;
            }
            for (t, &offset) in self.tensors.iter().zip(&offsets) {
                w.string(&t.name)?;
                w.write_all(&(t.dims.len() as u32).to_le_bytes())?;
                for d in &t.dims {
                    w.write_all(&d.to_le_bytes())?;
                }
                w.write_all(&t.dtype.id().to_le_bytes())?;
                w.write_all(&offset.to_le_bytes())?;
            }
            w.pad_to(alignment)
        })()
        .map_err(header)?;

        for t in self.tensors {
            let context = || format!("writing tensor {:?}", t.name);
            let start = w.pos;
            match t.data {
                TensorData::Owned(data) => w.write_all(&data).map_err(io_err(context()))?,
                TensorData::Fill(fill) => {
                    fill(&mut w).map_err(io_err(context()))?;
                    let written = w.pos - start;
                    if written != t.bytes {
                        return Err(GgufWriteError::FillSize {
                            tensor: t.name,
                            expected: t.bytes,
                            written,
                        });
                    }
                }
            }
            w.pad_to(alignment).map_err(io_err(context()))?;
        }
        w.flush().map_err(io_err("flushing the GGUF file"))?;
        Ok(w.pos)
    }

    /// Writes the file to `path` atomically: into a temporary file in the
    /// same directory, synced, then renamed over `path`. On any failure the
    /// temporary file is removed and `path` is left as it was, so an
    /// interrupted quantization never leaves a half-written model behind.
    /// Returns the file's size in bytes.
    pub fn write_to_path(self, path: &Path) -> Result<u64, GgufWriteError> {
        let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
        let file_name = path.file_name().ok_or_else(|| GgufWriteError::Io {
            context: ctx("writing", path),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(ctx("creating", &tmp)))?;
        let guard = RemoveOnDrop(Some(tmp.clone()));

        let mut buffered = BufWriter::with_capacity(1 << 20, file);
        let size = self.write_to(&mut buffered)?;
        let file: File = buffered.into_inner().map_err(|e| GgufWriteError::Io {
            context: ctx("writing", &tmp),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(ctx("syncing", &tmp)))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(ctx("renaming the temporary file to", path)))?;
        guard.disarm();
        Ok(size)
    }
}

/// Removes a temporary file unless disarmed (covers errors and panics in a
/// fill callback alike).
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    fn all_types() -> Vec<GgmlType> {
        (0..64).filter_map(GgmlType::from_id).collect()
    }

    /// Deterministic filler bytes.
    fn bytes(n: u64, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn sample_metadata() -> Vec<(String, MetaValue)> {
        use MetaValue::*;
        let s = |x: &str| String(x.to_string());
        vec![
            ("general.architecture".into(), s("llama")),
            ("u8".into(), U8(200)),
            ("i8".into(), I8(-5)),
            ("u16".into(), U16(60000)),
            ("i16".into(), I16(-30000)),
            ("u32".into(), U32(4_000_000_000)),
            ("i32".into(), I32(-2_000_000_000)),
            ("u64".into(), U64(u64::MAX)),
            ("i64".into(), I64(i64::MIN)),
            ("f32".into(), F32(1.5e-3)),
            ("f64".into(), F64(-2.25e100)),
            ("bool".into(), Bool(true)),
            ("empty string".into(), s("")),
            ("utf8".into(), s("héllo ✓")),
            (
                "tokenizer.ggml.tokens".into(),
                Array(vec![s("<s>"), s(""), s("▁the")]),
            ),
            ("ints".into(), Array(vec![I32(1), I32(-2), I32(3)])),
            ("u64s".into(), Array(vec![U64(7), U64(1 << 40)])),
            ("floats".into(), Array(vec![F32(0.5), F32(-1.0)])),
            ("f64s".into(), Array(vec![F64(0.25)])),
            ("bools".into(), Array(vec![Bool(false), Bool(true)])),
            ("empty".into(), Array(vec![])),
            (
                "nested".into(),
                Array(vec![
                    Array(vec![U8(1), U8(2)]),
                    Array(vec![s("a")]),
                    Array(vec![]),
                ]),
            ),
        ]
    }

    #[test]
    fn round_trip_every_type_and_value_at_alignments_32_and_64() {
        for alignment in [32u64, 64] {
            let mut w = GgufWriter::new();
            w.set_alignment(alignment).unwrap();
            for (k, v) in sample_metadata() {
                w.add_metadata(k, v).unwrap();
            }
            let mut expected_tensors = Vec::new();
            for (i, ty) in all_types().into_iter().enumerate() {
                let bl = ty.block_len() as u64;
                // Shapes of rank 1 to 4, odd sizes, so padding is exercised.
                let dims: Vec<u64> = match i % 4 {
                    0 => vec![bl],
                    1 => vec![bl * 2, 3],
                    2 => vec![bl, 3, 1],
                    _ => vec![bl * 3, 1, 2, 1],
                };
                let n_bytes = ty.row_bytes(dims[0]).unwrap() * dims[1..].iter().product::<u64>();
                let name = format!("blk.{i}.{}", ty.name());
                let data = bytes(n_bytes, i as u64);
                w.add_tensor(name.clone(), &dims, ty, data.clone()).unwrap();
                expected_tensors.push((name, dims, ty, data));
            }
            assert_eq!(w.alignment(), alignment);
            let mut out = io::Cursor::new(Vec::new());
            let size = w.write_to(&mut out).unwrap();
            let buf = out.into_inner();
            assert_eq!(size, buf.len() as u64);
            assert_eq!(buf.len() as u64 % alignment, 0);

            let f = GgufFile::from_bytes(buf).expect("reads back");
            assert_eq!(f.version(), 3);
            assert_eq!(f.alignment(), alignment);
            assert_eq!(f.data_start() % alignment, 0);
            let mut meta = sample_metadata();
            if alignment != DEFAULT_ALIGNMENT {
                meta.insert(0, (ALIGNMENT_KEY.into(), MetaValue::U32(alignment as u32)));
            }
            assert_eq!(f.metadata(), meta.as_slice(), "alignment {alignment}");
            assert_eq!(f.tensors().len(), expected_tensors.len());
            for (id, (name, dims, ty, data)) in expected_tensors.iter().enumerate() {
                let t = &f.tensors()[id];
                assert_eq!((&t.name, &t.dims, t.dtype), (name, dims, *ty));
                assert_eq!(t.offset % alignment, 0);
                assert_eq!(f.tensor_id(name), Some(id));
                assert_eq!(f.tensor_data(id), data.as_slice(), "tensor {name}");
            }
        }
    }

    #[test]
    fn default_alignment_writes_no_key_and_empty_file_reads() {
        let mut w = GgufWriter::new();
        w.set_alignment(32).unwrap();
        assert!(w.metadata().is_empty());
        let mut buf = Vec::new();
        w.write_to(&mut buf).unwrap();
        let f = GgufFile::from_bytes(buf).unwrap();
        assert!(f.metadata().is_empty() && f.tensors().is_empty());
        // general.alignment added as metadata sets the alignment too.
        let mut w = GgufWriter::new();
        w.add_metadata(ALIGNMENT_KEY, MetaValue::U64(128)).unwrap();
        w.add_tensor("t", &[3], GgmlType::I8, vec![1, 2, 3])
            .unwrap();
        w.add_tensor("u", &[1], GgmlType::I8, vec![4]).unwrap();
        let mut buf = Vec::new();
        w.write_to(&mut buf).unwrap();
        let f = GgufFile::from_bytes(buf).unwrap();
        assert_eq!(f.alignment(), 128);
        assert_eq!(f.tensor("u").unwrap().offset, 128);
    }

    #[test]
    fn set_metadata_replaces_in_place() {
        let mut w = GgufWriter::new();
        w.add_metadata("a", MetaValue::U32(1)).unwrap();
        w.add_metadata("b", MetaValue::U32(2)).unwrap();
        w.set_metadata("a", MetaValue::String("x".into())).unwrap();
        w.set_metadata("c", MetaValue::Bool(false)).unwrap();
        let keys: Vec<&str> = w.metadata().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(w.metadata()[0].1, MetaValue::String("x".into()));
    }

    #[test]
    fn streamed_tensors_round_trip_and_wrong_sizes_fail() {
        let source = bytes(18 * 4, 9);
        let mut w = GgufWriter::new();
        w.add_tensor_with("q", &[64, 2], GgmlType::Q4_0, |out| out.write_all(&source))
            .unwrap();
        w.add_tensor("f", &[2], GgmlType::F32, vec![0; 8]).unwrap();
        let mut buf = Vec::new();
        w.write_to(&mut buf).unwrap();
        let f = GgufFile::from_bytes(buf).unwrap();
        assert_eq!(f.tensor_data(f.tensor_id("q").unwrap()), source.as_slice());

        for n in [71usize, 73] {
            let mut w = GgufWriter::new();
            w.add_tensor_with("q", &[64, 2], GgmlType::Q4_0, move |out| {
                out.write_all(&vec![0; n])
            })
            .unwrap();
            assert!(matches!(
                w.write_to(Vec::new()),
                Err(GgufWriteError::FillSize { expected: 72, written, .. }) if written == n as u64
            ));
        }
    }

    #[test]
    fn bad_tensors_and_metadata_are_rejected() {
        use GgufWriteError as E;
        let mut w = GgufWriter::new();
        assert!(matches!(
            w.add_tensor("a", &[4], GgmlType::F32, vec![0; 15]),
            Err(E::SizeMismatch {
                expected: 16,
                found: 15,
                ..
            })
        ));
        assert!(matches!(
            w.add_tensor("a", &[33], GgmlType::Q8_0, vec![0; 34]),
            Err(E::BadShape { why, .. }) if why.contains("blocks")
        ));
        assert!(matches!(
            w.add_tensor("a", &[4, 0], GgmlType::F32, vec![]),
            Err(E::BadShape { .. })
        ));
        assert!(matches!(
            w.add_tensor("a", &[1, 1, 1, 1, 1], GgmlType::F32, vec![0; 4]),
            Err(E::BadShape { .. })
        ));
        assert!(matches!(
            w.add_tensor("a", &[], GgmlType::F32, vec![0; 4]),
            Err(E::BadShape { .. })
        ));
        assert!(matches!(
            w.add_tensor("a", &[1 << 31, 1 << 31], GgmlType::F32, vec![]),
            Err(E::BadShape { .. })
        ));
        assert!(matches!(
            w.add_tensor("x".repeat(64), &[1], GgmlType::I8, vec![0]),
            Err(E::BadName { len: 64, .. })
        ));
        w.add_tensor("x".repeat(63), &[1], GgmlType::I8, vec![0])
            .unwrap();
        w.add_tensor("a", &[1], GgmlType::I8, vec![0]).unwrap();
        assert!(matches!(
            w.add_tensor("a", &[1], GgmlType::I8, vec![0]),
            Err(E::DuplicateTensor(n)) if n == "a"
        ));
        assert!(matches!(
            w.add_tensor_with("a", &[1], GgmlType::I8, |_| Ok(())),
            Err(E::DuplicateTensor(_))
        ));

        w.add_metadata("k", MetaValue::U8(1)).unwrap();
        assert!(matches!(
            w.add_metadata("k", MetaValue::U8(1)),
            Err(E::DuplicateKey(k)) if k == "k"
        ));
        assert!(matches!(
            w.add_metadata("m", MetaValue::Array(vec![MetaValue::U8(1), MetaValue::I8(1)])),
            Err(E::MixedArray { key, first: "u8", found: "i8" }) if key == "m"
        ));
        let mut deep = MetaValue::Array(vec![MetaValue::U8(1)]);
        for _ in 0..3 {
            deep = MetaValue::Array(vec![deep]);
        }
        w.add_metadata("deep4", deep.clone()).unwrap();
        assert!(matches!(
            w.add_metadata("deep5", MetaValue::Array(vec![deep])),
            Err(E::NestingTooDeep { .. })
        ));
        for bad in [0u64, 48, 1 << 25] {
            assert!(matches!(w.set_alignment(bad), Err(E::BadAlignment(b)) if b == bad));
        }
        assert!(matches!(
            w.add_metadata(ALIGNMENT_KEY, MetaValue::String("32".into())),
            Err(E::AlignmentType { found: "string" })
        ));
        assert!(matches!(
            w.add_metadata(ALIGNMENT_KEY, MetaValue::I32(-32)),
            Err(E::AlignmentType { .. })
        ));
        // What was accepted still writes a readable file.
        let mut buf = Vec::new();
        w.write_to(&mut buf).unwrap();
        let f = GgufFile::from_bytes(buf).unwrap();
        assert_eq!(f.tensors().len(), 2);
        assert_eq!(f.metadata().len(), 2);
    }

    /// A fresh, empty directory for one test.
    fn scratch_dir(test: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("wisp-gguf-writer-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn dir_entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_to_path_is_atomic() {
        let dir = scratch_dir("atomic");
        let dest = dir.join("model.gguf");

        let mut w = GgufWriter::new();
        w.add_metadata("general.name", MetaValue::String("m".into()))
            .unwrap();
        w.add_tensor("t", &[2], GgmlType::F16, vec![1, 2, 3, 4])
            .unwrap();
        let size = w.write_to_path(&dest).unwrap();
        assert_eq!(dir_entries(&dir), ["model.gguf"]);
        assert_eq!(fs::metadata(&dest).unwrap().len(), size);
        let f = GgufFile::open(&dest).unwrap();
        assert_eq!(f.get_str("general.name").unwrap(), "m");
        assert_eq!(f.tensor_data(0), &[1, 2, 3, 4]);
        let original = fs::read(&dest).unwrap();

        // A failing callback: the existing file is untouched, no temp is left.
        let mut w = GgufWriter::new();
        w.add_tensor("a", &[4], GgmlType::I8, vec![0; 4]).unwrap();
        w.add_tensor_with("b", &[1 << 20], GgmlType::I8, |out| {
            out.write_all(&[0; 1000])?;
            Err(io::Error::other("quantization failed"))
        })
        .unwrap();
        let err = w.write_to_path(&dest).unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
        assert_eq!(fs::read(&dest).unwrap(), original);
        assert_eq!(dir_entries(&dir), ["model.gguf"]);

        // No destination before a failure: none after.
        let fresh = dir.join("fresh.gguf");
        let mut w = GgufWriter::new();
        w.add_tensor_with("b", &[8], GgmlType::I8, |_| Ok(()))
            .unwrap();
        assert!(matches!(
            w.write_to_path(&fresh),
            Err(GgufWriteError::FillSize { .. })
        ));
        assert!(!fresh.exists());
        assert_eq!(dir_entries(&dir), ["model.gguf"]);

        // A panicking callback also leaves nothing behind.
        let panicky = dir.join("panicky.gguf");
        let r = std::panic::catch_unwind(|| {
            let mut w = GgufWriter::new();
            w.add_tensor_with("b", &[8], GgmlType::I8, |_| panic!("boom"))
                .unwrap();
            let _ = w.write_to_path(&panicky);
        });
        assert!(r.is_err());
        assert_eq!(dir_entries(&dir), ["model.gguf"]);

        fs::remove_dir_all(&dir).unwrap();
    }
}
