//! The one error type of fd-data: every variant names the file it is about and what was expected.

use std::path::PathBuf;

/// Everything that can go wrong while reading, fetching or writing data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file whose size does not match its format.
    #[error("{}: expected {expected} bytes, found {found}; the file is truncated or is not {what}", path.display())]
    Size {
        /// The file.
        path: PathBuf,
        /// What the file should be, in words.
        what: &'static str,
        /// The expected size in bytes.
        expected: u64,
        /// The size found.
        found: u64,
    },
    /// A file whose content breaks its format.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// A label outside `0..num_classes`.
    #[error("{}: label {label} at position {index} is out of range (expected 0..{num_classes})", path.display())]
    LabelRange {
        /// The file the label came from.
        path: PathBuf,
        /// The position of the label.
        index: usize,
        /// The label found.
        label: i64,
        /// The number of classes.
        num_classes: usize,
    },
    /// A downloaded or user-supplied file whose checksum is not the published one.
    #[error("{}: {algorithm} checksum mismatch: expected {expected}, found {found}; the file is corrupt or not the published one, delete it and fetch again", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// `md5` or `sha256`.
        algorithm: &'static str,
        /// The published checksum.
        expected: String,
        /// The checksum of the file.
        found: String,
    },
    /// Every way of getting a dataset failed.
    #[error("could not get {dataset}:\n{attempts}\n{manual}")]
    Fetch {
        /// The dataset.
        dataset: &'static str,
        /// One line per attempt, saying what was tried and why it failed.
        attempts: String,
        /// How to put the files in place by hand.
        manual: String,
    },
    /// A dataset, split or configuration that breaks an invariant.
    #[error("{0}")]
    Invalid(String),
    /// A shard that is not `I/N` with `I < N` ([`crate::shard`]).
    #[error("{given:?} is not a shard: expected I/N with 0 <= I < N (for example 0/4)")]
    ShardInvalid {
        /// What was given.
        given: String,
    },
    /// Work units (images, or a stage's batches) that no shard of a merge covers.
    #[error("work units {}..{} of {total} are in no shard: shard {missing} is missing; run it", gap.start, gap.end)]
    ShardMissing {
        /// The uncovered positions.
        gap: std::ops::Range<usize>,
        /// All positions.
        total: usize,
        /// The shard of the job size at hand that would cover them, as `I/N`.
        missing: String,
    },
    /// Two shards of a merge that both cover some positions.
    #[error("shards {first} and {second} overlap (work units {}..{}): shards of one job only; remove the stale one", overlap.start, overlap.end)]
    ShardDuplicated {
        /// One shard, as found.
        first: String,
        /// The other.
        second: String,
        /// The positions both cover.
        overlap: std::ops::Range<usize>,
    },
}

/// fd-data's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `std::io::Error`.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
