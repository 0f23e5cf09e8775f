//! The one error type of fd-svm: bad input, named precisely. Data conditions (a class with too few errors) are values, not errors.

/// Input that breaks the contract of an fd-svm function.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A NaN or infinite value in the input.
    #[error("{what}: row {row}, dimension {dim} is {value} (embeddings must be finite)")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// The row.
        row: usize,
        /// The dimension.
        dim: usize,
        /// The value found.
        value: f32,
    },
    /// Inputs whose lengths or values do not fit together.
    #[error("{0}")]
    Invalid(String),
}

/// fd-svm's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that every value of `rows` is finite.
pub(crate) fn check_finite(what: &'static str, rows: &[f32], dim: usize) -> Result<()> {
    match rows.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(Error::NonFinite { what, row: k / dim, dim: k % dim, value: rows[k] }),
        None => Ok(()),
    }
}
