//! fd-diffusion: images generated from a failure caption.
//!
//! It will hold the Stable Diffusion v1 UNet, VAE decoder, scheduler and pipeline, conditioned through fd-clip's text tower, for the paper's generative intervention (§4.2 of the method spec).
//! It will depend on fd-clip and fd-data only, and never know about SVMs or captions.
//!
//! Nothing is implemented yet: this crate is a placeholder for the workspace layout, with no functions that pretend to work.
