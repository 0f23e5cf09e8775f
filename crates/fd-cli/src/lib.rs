//! fd-cli: the command-line front end of the failure-directions toolkit.
//!
//! It owns what the libraries must not do: parsing arguments, loading and validating TOML configs, the run directory and its artifact formats, the tracing subscriber, progress bars and printing.
//! It holds no ML math: every computation is a call into an `fd-*` crate.
//!
//! The binary is `fd-cli` (not `fd`, which a popular file finder owns).

pub mod captions;
pub mod config;
pub mod fetch;
pub mod pipeline;
pub mod progress;
pub mod report;
