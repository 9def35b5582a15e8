//! How row-wise elementwise ops (activation quantization, layer norm, adds)
//! split their rows over the pool's threads.

/// Rows per parallel task for `n` rows of `len` values: an even share per
/// thread, split in two so a late thread can still take half a share, and at
/// least ~4k values a task so rayon's per-task cost stays small. (A fixed
/// 16k-value grain split MiniLM's 128 rows of 384 into tasks of 42, 42, 42
/// and 2 rows: a 3-to-1 imbalance on two threads.)
pub fn rows_per_task(n: usize, len: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let min = (4096 / len.max(1)).max(1);
    n.div_ceil(2 * threads).max(min).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_even_and_not_tiny() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            assert_eq!(rows_per_task(128, 384), 32);
            assert_eq!(rows_per_task(1, 640), 6);
            assert_eq!(rows_per_task(4, 64), 64);
            assert_eq!(rows_per_task(0, 384), 10);
        });
    }
}
