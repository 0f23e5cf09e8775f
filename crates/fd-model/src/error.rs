//! The one error type of fd-model.

use std::path::PathBuf;

/// What can go wrong in fd-model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device that this build does not include, or that finds no driver.
    #[error("device {name:?} is not available: {reason}")]
    Device {
        /// The device asked for.
        name: String,
        /// Why not, and what to do.
        reason: String,
    },
    /// A weight file that cannot be read or does not fit the model.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong: a missing or mis-shaped tensor names the key and both shapes.
        message: String,
    },
    /// Inputs that do not fit together.
    #[error("{0}")]
    Invalid(String),
}

/// fd-model's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
