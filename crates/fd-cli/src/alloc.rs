//! The binary's global allocator: mimalloc, told to keep the memory it frees.
//!
//! burn flex allocates a fresh buffer for every tensor operation. glibc's malloc hands buffers over 32 MB straight
//! back to the kernel, and mimalloc by default purges freed memory after a second, so each training step paid page
//! faults, page zeroing and TLB shootdowns for every activation. With purging off, the process keeps its peak
//! footprint and reuses it: `fd-cli bench model --architecture resnet10-small --batch 512` trains 2.0-2.2 times faster
//! than with glibc's malloc (1,273-1,462 against 632-655 images/s, three runs each).
#![allow(unsafe_code)]

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// mimalloc's `mi_option_purge_delay` (milliseconds; -1 never purges). libmimalloc-sys names its neighbours but not
/// it: it sits just before `mi_option_use_numa_nodes` in `mimalloc.h`'s `mi_option_e`.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Turns mimalloc's purging off, unless `MIMALLOC_PURGE_DELAY` in the environment already chose a delay.
pub(crate) fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set takes an option index and a value and only stores the value; the index is a valid
        // option (see PURGE_DELAY and the test below).
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    /// The index names the purge delay: the one option whose default is 1000 ms (its neighbours default to 0).
    #[test]
    fn the_option_index_is_the_purge_delay() {
        // SAFETY: mi_option_get reads an option by a valid index.
        let value = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert!(value == 1000 || value == -1, "option {} is {value}, not the purge delay", super::PURGE_DELAY);
    }
}
