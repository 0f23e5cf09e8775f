//! A plain progress sink, so long work in fd-data can drive the progress bars that fd-cli draws.
//!
//! Libraries never draw: they report counts through this trait, and the binary decides how to show them.

/// Receives progress of one long piece of work.
pub trait Progress: Sync {
    /// Starts a piece of work of `total` units (bytes or images), named `what`.
    fn start(&self, what: &str, total: u64);
    /// Records `n` more units done.
    fn advance(&self, n: u64);
    /// Ends the current piece of work.
    fn finish(&self);
}

/// A sink that ignores everything: what tests and quiet callers pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
