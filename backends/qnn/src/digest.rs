//! A dependency-free 128-bit digest for cache keys and cache-file integrity.
//!
//! Two independent 64-bit lanes over little-endian words, each a multiply /
//! rotate / xor mix with a final avalanche. It is not cryptographic: it
//! detects truncation, bit flips and stale keys (accidents), which is what a
//! local cache needs; a file planted on purpose is out of scope (the cache
//! directory is the user's own).

const P1: u64 = 0x9e37_79b9_7f4a_7c15;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;

fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A streaming digest.
#[derive(Clone, Debug)]
pub struct Digest {
    a: u64,
    b: u64,
    len: u64,
    tail: Vec<u8>,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            a: P3,
            b: P1 ^ P2,
            len: 0,
            tail: Vec::new(),
        }
    }
}

impl Digest {
    /// A new digest.
    pub fn new() -> Digest {
        Digest::default()
    }

    fn word(&mut self, w: u64) {
        self.a = (self.a ^ w.wrapping_mul(P1))
            .rotate_left(31)
            .wrapping_mul(P2);
        self.b = (self.b.wrapping_add(w) ^ (self.b >> 29))
            .wrapping_mul(P3)
            .rotate_left(27);
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if !self.tail.is_empty() {
            let need = 8 - self.tail.len();
            let take = need.min(bytes.len());
            self.tail.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.tail.len() == 8 {
                let w = u64::from_le_bytes(self.tail[..].try_into().unwrap_or([0; 8]));
                self.word(w);
                self.tail.clear();
            }
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.word(w);
        }
        self.tail.extend_from_slice(chunks.remainder());
    }

    /// The 128-bit result.
    pub fn finish(&self) -> u128 {
        let mut d = self.clone();
        if !d.tail.is_empty() {
            let mut last = [0u8; 8];
            last[..d.tail.len()].copy_from_slice(&d.tail);
            d.word(u64::from_le_bytes(last) ^ 0x80);
        }
        d.word(d.len);
        let hi = avalanche(d.a ^ d.b.rotate_left(17));
        let lo = avalanche(d.b ^ d.a.rotate_left(41) ^ P2);
        ((hi as u128) << 64) | lo as u128
    }
}

/// The digest of one byte string.
pub fn digest128(bytes: &[u8]) -> u128 {
    let mut d = Digest::new();
    d.update(bytes);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_one_shot_and_flips_change_it() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut d = Digest::new();
        for c in data.chunks(13) {
            d.update(c);
        }
        assert_eq!(d.finish(), digest128(&data));
        for bit in [0usize, 7, 4000, 7999] {
            let mut flipped = data.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(digest128(&flipped), digest128(&data), "bit {bit}");
        }
        assert_ne!(digest128(&data[..999]), digest128(&data));
        assert_ne!(digest128(&[0]), digest128(&[]));
    }
}
