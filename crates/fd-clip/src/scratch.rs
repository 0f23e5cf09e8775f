//! Buffers fd-clip's inference paths (`fused.rs`, `fused_vit.rs`) keep from batch to batch: fresh ones cost their pages'
//! zeroing on every batch (a tenth of an embedding's time, BENCHMARKS.md).

use std::sync::{Mutex, TryLockError};

/// `v`'s first `len` values, grown (with zeros) to hold them.
pub(crate) fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// `f` on the kept buffers, or on fresh ones when another thread holds them. A panic while they were held left nothing
/// a pass relies on (each writes before it reads), so a poisoned lock is taken as it is.
pub(crate) fn with_kept<T: Default, R>(kept: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match kept.try_lock() {
        Ok(mut kept) => f(&mut kept),
        Err(TryLockError::Poisoned(p)) => f(&mut p.into_inner()),
        Err(TryLockError::WouldBlock) => f(&mut T::default()),
    }
}
