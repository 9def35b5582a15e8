//! Per-thread reusable scratch buffers, so ops do not allocate on every run
//! (a prefill matmul's transposed output is megabytes: allocating it each
//! time costs page faults).
//!
//! Buffers are taken out of the thread's free list and given back after use,
//! so nested or re-entrant use (a worker that runs another session's op while
//! waiting) simply takes another buffer. Buffers larger than
//! [`MAX_KEPT_BYTES`] are not kept.

use std::cell::RefCell;

use crate::kernels::BlockQ8;

/// Largest buffer a thread keeps for reuse.
pub const MAX_KEPT_BYTES: usize = 16 << 20;

thread_local! {
    static F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static Q8: RefCell<Vec<Vec<BlockQ8>>> = const { RefCell::new(Vec::new()) };
}

fn take<T: Clone + Default>(
    list: &'static std::thread::LocalKey<RefCell<Vec<Vec<T>>>>,
    len: usize,
) -> Vec<T> {
    let mut v = list
        .with(|l| {
            let mut l = l.borrow_mut();
            let i = l.iter().position(|b| b.capacity() >= len)?;
            Some(l.swap_remove(i))
        })
        .unwrap_or_default();
    // Contents are overwritten by every user; only new elements are initialised.
    if v.len() >= len {
        v.truncate(len);
    } else {
        v.resize(len, T::default());
    }
    v
}

fn give<T>(list: &'static std::thread::LocalKey<RefCell<Vec<Vec<T>>>>, v: Vec<T>) {
    if v.capacity() * std::mem::size_of::<T>() <= MAX_KEPT_BYTES {
        list.with(|l| {
            let mut l = l.borrow_mut();
            if l.len() < 8 {
                l.push(v);
            }
        });
    }
}

/// A buffer of `len` f32 whose contents are unspecified (the caller overwrites it).
pub fn take_f32(len: usize) -> Vec<f32> {
    take(&F32, len)
}

/// Returns a buffer from [`take_f32`].
pub fn give_f32(v: Vec<f32>) {
    give(&F32, v)
}

/// A buffer of `len` activation blocks, contents unspecified.
pub fn take_q8(len: usize) -> Vec<BlockQ8> {
    take(&Q8, len)
}

/// Returns a buffer from [`take_q8`].
pub fn give_q8(v: Vec<BlockQ8>) {
    give(&Q8, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_sized() {
        let a = take_f32(100);
        assert_eq!(a.len(), 100);
        let p = a.as_ptr();
        give_f32(a);
        let b = take_f32(50);
        assert_eq!((b.len(), b.as_ptr()), (50, p));
        let c = take_f32(10); // nested: a different buffer
        assert_ne!(c.as_ptr(), p);
        give_f32(b);
        give_f32(c);
        let big = take_f32(MAX_KEPT_BYTES / 4 + 1);
        give_f32(big);
        assert!(F32.with(|l| l
            .borrow()
            .iter()
            .all(|v| v.capacity() * 4 <= MAX_KEPT_BYTES)));
    }
}
