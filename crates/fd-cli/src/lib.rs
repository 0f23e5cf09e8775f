//! fd-cli: the command-line front end of the failure-directions toolkit.
//!
//! It owns what the libraries must not do: parsing arguments, loading and validating TOML configs, the run directory and its
//! artifact formats, the tracing subscriber, progress bars and printing. It holds no ML math: every computation is a call into an
//! `fd-*` crate.
//!
//! - [`stage`] names the stages; [`stages`] holds one module per stage body and the dispatcher.
//! - [`engine`] decides whether a stage runs (stamps, keys, the `.partial/` rename); [`run`] owns the run directory and reads and
//!   writes every artifact, whose formats are in [`artifacts`].
//! - [`report`] turns typed artifacts into `summary.json` and `report.html`.
//! - [`audit`] turns `fd-cli audit`'s flags into a config, so a user's own images and classifier need no config file.
//! - [`config`], [`fetch`], [`data`], [`mod@bench`] and [`progress`] serve the binary's other commands.
//!
//! The binary is `fd-cli` (not `fd`, which a popular file finder owns).

pub mod artifacts;
pub mod audit;
pub mod bench;
pub mod config;
pub mod data;
pub mod engine;
pub mod fetch;
pub mod progress;
pub mod report;
pub mod run;
pub mod stage;
pub mod stages;
