//! Context caching: a finalized context is saved once and reloaded on later
//! runs, so the (slow, on a device: seconds) graph build and finalize happen
//! once per model, partition, shape bucket, library and options.
//!
//! One file per partition graph, named by its key (the 128-bit digest of:
//! the library's identity, the options, the lowered graph's structure —
//! which covers the partition and the bucket shape — and the bytes of every
//! weight it reads, i.e. the model). Layout (little endian):
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `b"WISPQCTX"` |
//! | 8 | format version `u32` ([`FORMAT`]) |
//! | 12 | key `u128` |
//! | 28 | tensor count `u32` n |
//! | 32 | n tensor ids `u32` (what the library assigned at build) |
//! | 32+4n | payload length `u64` |
//! | 40+4n | digest `u128` of the ids and the payload |
//! | 56+4n | payload: the library's context binary |
//!
//! [`read`] checks everything (magic, version, key, sizes, digest) before
//! the vendor library sees a byte of the payload: a vendor parser fed a
//! truncated or flipped binary may crash rather than fail. Any mismatch is
//! an error the backend turns into a warning and a rebuild.

use std::path::{Path, PathBuf};

use crate::digest::{digest128, Digest};

/// Version of this file layout.
pub const FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"WISPQCTX";

/// The cache file of `key` in `dir`.
pub fn path(dir: &Path, key: u128) -> PathBuf {
    dir.join(format!("{key:032x}.qnnctx"))
}

/// The default cache directory: `$WISP_QNN_CACHE`, else `~/.cache/wisp/qnn`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WISP_QNN_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("wisp").join("qnn")
}

fn body_digest(ids: &[u32], payload: &[u8]) -> u128 {
    let mut d = Digest::new();
    for id in ids {
        d.update(&id.to_le_bytes());
    }
    d.update(payload);
    d.finish()
}

/// Serializes a cache file.
pub fn encode(key: u128, ids: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(56 + 4 * ids.len() + payload.len());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&FORMAT.to_le_bytes());
    b.extend_from_slice(&key.to_le_bytes());
    b.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        b.extend_from_slice(&id.to_le_bytes());
    }
    b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    b.extend_from_slice(&body_digest(ids, payload).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

/// Parses and verifies a cache file's bytes against `key` and the expected
/// tensor count; returns the tensor ids and the payload.
pub fn decode(bytes: &[u8], key: u128, n_tensors: usize) -> Result<(Vec<u32>, &[u8]), String> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = bytes
            .get(at..at + n)
            .ok_or_else(|| format!("truncated at byte {at} of {}", bytes.len()))?;
        at += n;
        Ok(s)
    };
    if take(8)? != MAGIC {
        return Err("not a wisp QNN context cache file (bad magic)".into());
    }
    let version = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default());
    if version != FORMAT {
        return Err(format!(
            "cache format {version}, this build writes {FORMAT}"
        ));
    }
    let k = u128::from_le_bytes(take(16)?.try_into().unwrap_or_default());
    if k != key {
        return Err(format!("stale: file key {k:032x}, expected {key:032x}"));
    }
    let n = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default()) as usize;
    if n != n_tensors {
        return Err(format!("{n} tensor ids, the graph has {n_tensors}"));
    }
    let ids: Vec<u32> = take(4 * n)?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    let len = u64::from_le_bytes(take(8)?.try_into().unwrap_or_default()) as usize;
    let digest = u128::from_le_bytes(take(16)?.try_into().unwrap_or_default());
    let payload = take(len)?;
    if at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - at));
    }
    if body_digest(&ids, payload) != digest {
        return Err("digest mismatch (corrupt file)".into());
    }
    Ok((ids, payload))
}

/// Writes a cache file atomically (temporary file, then rename).
pub fn write(dir: &Path, key: u128, ids: &[u32], payload: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dst = path(dir, key);
    let tmp = dir.join(format!(
        ".{key:032x}.{}.{:x}.tmp",
        std::process::id(),
        digest128(payload) as u32
    ));
    std::fs::write(&tmp, encode(key, ids, payload))?;
    std::fs::rename(&tmp, &dst)?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let ids = [3u32, 9, 11];
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let f = encode(7, &ids, &payload);
        let (i, p) = decode(&f, 7, 3).unwrap();
        assert_eq!(i, ids);
        assert_eq!(p, &payload[..]);
        assert!(decode(&f, 8, 3).unwrap_err().contains("stale"));
        assert!(decode(&f, 7, 4).is_err());
        for cut in [0, 7, 30, 60, f.len() - 1] {
            assert!(decode(&f[..cut], 7, 3).is_err(), "cut {cut}");
        }
        for byte in [0, 9, 33, 50, 70, f.len() - 1] {
            let mut g = f.clone();
            g[byte] ^= 0x10;
            assert!(decode(&g, 7, 3).is_err(), "flip at {byte}");
        }
    }
}
