//! The one error type of fd-diffusion.

use std::path::PathBuf;

/// What can go wrong in fd-diffusion.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A weight file that is missing, unreadable or does not fit the network.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
    /// A config value out of range.
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// Inputs of the wrong size.
    #[error("{message}")]
    Shape {
        /// What is wrong.
        message: String,
    },
    /// The text tower's weights (fd-clip's error, which names the file).
    #[error(transparent)]
    Clip(#[from] fd_clip::Error),
    /// A NaN or infinity where a number was needed.
    #[error("{what} is not finite (NaN or infinity); the weights or the inputs are broken")]
    NotFinite {
        /// Which values.
        what: String,
    },
}

/// fd-diffusion's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
