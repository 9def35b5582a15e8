//! The bytes behind a model file: a read-only memory map, or an owned buffer
//! (tests and in-memory conversions).

use std::fs::File;
use std::path::Path;

/// Read-only bytes of a model file. Cloned cheaply behind an `Arc` by its
/// owners; views into it live as long as the file object.
pub enum Storage {
    /// The file mapped read-only; pages are loaded on first touch.
    Mapped(memmap2::Mmap),
    /// Bytes held in memory (tests, files built in memory).
    Owned(Vec<u8>),
}

impl Storage {
    /// Maps `path` read-only.
    pub fn map(path: &Path) -> std::io::Result<Storage> {
        let file = File::open(path)?;
        // SAFETY: the map is read-only and private to this process. Another
        // process truncating the file while it is mapped would be a SIGBUS,
        // the same contract every mmap-based model loader (llama.cpp,
        // safetensors) accepts; model files are not modified in place.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Storage::Mapped(map))
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }

    /// True when the bytes are a memory map (weights are read in place).
    pub fn is_mapped(&self) -> bool {
        matches!(self, Storage::Mapped(_))
    }
}
