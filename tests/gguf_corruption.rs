//! A real GGUF corrupted in many ways: every case is a typed error, never a
//! panic, an out-of-bounds read or a huge allocation.

mod common;

use wisp::formats::GgufFile;

/// A small deterministic generator (the test must be reproducible).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn original() -> Vec<u8> {
    std::fs::read(common::model_path()).unwrap()
}

/// Offset just past the string `name` as stored (u64 length + bytes) in the tensor infos.
fn after_tensor_name(b: &[u8], name: &str) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    b.windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("tensor name")
        + needle.len()
}

#[test]
fn truncations_at_200_offsets_are_errors() {
    let b = original();
    let header_end = GgufFile::from_bytes(b.clone()).unwrap().data_start() as usize;
    let mut rng = Lcg(7);
    for i in 0..200 {
        // Half inside the header and metadata (where parsing happens), half anywhere.
        let cut = if i % 2 == 0 {
            (rng.next() as usize) % header_end
        } else {
            (rng.next() as usize) % b.len()
        };
        let r = GgufFile::from_bytes(b[..cut].to_vec());
        assert!(r.is_err(), "truncation at {cut} was accepted");
    }
}

#[test]
fn header_fields_flipped_or_inflated_are_errors() {
    let b = original();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut m = b.clone();
    m[0..4].copy_from_slice(b"GGUX");
    cases.push(("magic", m));
    for v in [0u32, 1, 4, 0xffff_ffff] {
        let mut m = b.clone();
        m[4..8].copy_from_slice(&v.to_le_bytes());
        cases.push(("version", m));
    }
    for v in [u64::MAX, 1 << 40, 100_000] {
        let mut m = b.clone();
        m[8..16].copy_from_slice(&v.to_le_bytes());
        cases.push(("tensor count", m));
        let mut m = b.clone();
        m[16..24].copy_from_slice(&v.to_le_bytes());
        cases.push(("metadata count", m));
    }
    // The first key's length.
    let mut m = b.clone();
    m[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("key length", m));
    // A tensor info: dims, n_dims, dtype and offset of blk.0.ffn_down.weight.
    let at = after_tensor_name(&b, "blk.0.ffn_down.weight");
    for (what, off, bytes) in [
        ("n_dims 5", at, 5u32.to_le_bytes().to_vec()),
        ("n_dims huge", at, u32::MAX.to_le_bytes().to_vec()),
        ("dim0 huge", at + 4, u64::MAX.to_le_bytes().to_vec()),
        ("dim1 huge", at + 12, (1u64 << 40).to_le_bytes().to_vec()),
        ("dim0 not blocks", at + 4, 1537u64.to_le_bytes().to_vec()),
        ("dim zero", at + 12, 0u64.to_le_bytes().to_vec()),
        ("dtype unknown", at + 20, 99u32.to_le_bytes().to_vec()),
        ("offset misaligned", at + 24, 1u64.to_le_bytes().to_vec()),
        (
            "offset past end",
            at + 24,
            (1u64 << 40).to_le_bytes().to_vec(),
        ),
        ("offset overlapping", at + 24, 0u64.to_le_bytes().to_vec()),
    ] {
        let mut m = b.clone();
        m[off..off + bytes.len()].copy_from_slice(&bytes);
        cases.push((what, m));
    }
    // The vocabulary array count inflated.
    let key = b"tokenizer.ggml.tokens";
    let k = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let mut m = b.clone();
    m[k + 8..k + 16].copy_from_slice(&(1u64 << 50).to_le_bytes());
    cases.push(("vocab count", m));
    for (what, m) in cases {
        let r = GgufFile::from_bytes(m);
        let e = r.expect_err(what);
        eprintln!("{what}: {e}");
    }
}

#[test]
fn random_byte_flips_in_the_header_never_panic() {
    let b = original();
    let header_end = GgufFile::from_bytes(b.clone()).unwrap().data_start() as usize;
    let mut head = b[..header_end].to_vec();
    // Keep the tail small: a copy of the header plus a short data section.
    head.extend_from_slice(&b[header_end..header_end + 4096]);
    let mut rng = Lcg(11);
    let mut errors = 0;
    for _ in 0..300 {
        let mut m = head.clone();
        for _ in 0..4 {
            let at = (rng.next() as usize) % header_end;
            m[at] ^= 1 << (rng.next() % 8);
        }
        // The tensors' data lies past the short tail, so every mutation must still fail cleanly.
        if GgufFile::from_bytes(m).is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 300);
}

#[test]
fn bad_hyperparameters_are_errors_not_allocations() {
    use wisp::formats::MetaValue;
    let f = GgufFile::open(&common::model_path()).unwrap();
    // Rewrite one metadata value by patching the u32 after its key.
    let b = original();
    for (key, v) in [
        ("llama.block_count", 0u32),
        ("llama.block_count", u32::MAX),
        ("llama.attention.head_count", 7),
        ("llama.embedding_length", 0),
        ("llama.attention.head_count_kv", 0),
    ] {
        assert!(matches!(f.get(key), Some(MetaValue::U32(_))));
        let mut needle = (key.len() as u64).to_le_bytes().to_vec();
        needle.extend_from_slice(key.as_bytes());
        let at = b
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
            .unwrap()
            + needle.len();
        let mut m = b.clone();
        m[at + 4..at + 8].copy_from_slice(&v.to_le_bytes());
        let g = std::sync::Arc::new(GgufFile::from_bytes(m).unwrap());
        let backends = wisp::backends(&wisp::LoadOptions {
            backend: wisp::BackendChoice::Reference,
            ..Default::default()
        })
        .unwrap();
        let r = wisp::Model::from_gguf(g, backends, Default::default());
        let e = r.expect_err(key);
        eprintln!("{key}={v}: {e}");
    }
}
