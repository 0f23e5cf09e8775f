//! The one error type of fd-clip.

use std::path::PathBuf;

/// What can go wrong in fd-clip.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A weight file that is missing, unreadable or does not fit the model.
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
    /// A caption outside a closed vocabulary.
    #[error(
        "caption {caption:?} is not in the {vocabulary} vocabulary (its captions are ImageNet class names, for example \"tabby\")"
    )]
    UnknownCaption {
        /// The caption.
        caption: String,
        /// The vocabulary's name.
        vocabulary: &'static str,
    },
}

/// fd-clip's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
