//! Model file formats for wisp.
//!
//! Files are memory-mapped and never copied: tensor data is handed out as
//! byte slices that borrow the map, so a 100 MB model costs page-cache, not
//! heap. Every number read from a file is checked before it sizes an
//! allocation or indexes a slice, so a corrupt or hostile file produces a
//! typed error instead of a panic or an out-of-bounds read.

pub mod ggml_type;
pub mod gguf;
pub mod gguf_writer;
pub mod safetensors;
pub mod storage;

pub use ggml_type::GgmlType;
pub use gguf::{GgufError, GgufFile, MetaValue, TensorInfo};
pub use gguf_writer::{GgufWriteError, GgufWriter};
pub use safetensors::{SafetensorsError, SafetensorsFile, StDtype, StTensorInfo};
pub use storage::Storage;
