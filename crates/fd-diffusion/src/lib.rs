//! fd-diffusion: Stable Diffusion v1 in burn, for the paper's generative intervention (method spec §4.2): images of a
//! failure's caption, to retrain the classifier on.
//!
//! - [`unet`]: diffusers' `UNet2DConditionModel` of v1.4/v1.5 (and a tiny preset with every code path);
//! - [`vae`]: its `AutoencoderKL`, encoder and decoder (scaling factor 0.18215);
//! - [`scheduler`]: DDIM and PNDM (PLMS) with v1's scaled-linear betas, timesteps as diffusers' `set_timesteps` gives them;
//! - [`pipeline`]: seeded latents, classifier-free guidance, decoding to [`fd_data::Image`];
//! - [`load`]: diffusers' safetensors files (fp16 or fp32), every tensor checked by name and shape.
//!
//! Each piece is checked against diffusers on random weights of the tiny shapes (`fixtures/make_sd_fixtures.py`). The text
//! context is plain data: fd-clip's ViT-L/14 text tower (`hidden_states`) gives it in Stable Diffusion.
//! It never knows about SVMs or captions.

pub mod blocks;
pub mod config;
pub mod error;
pub mod load;
pub mod pipeline;
pub mod scheduler;
pub mod unet;
pub mod vae;

pub use config::{UNetConfig, VaeConfig};
pub use error::{Error, Result};
pub use pipeline::{Generated, Pipeline, Settings, gaussian_noise};
pub use scheduler::{Ddim, Pndm, ScheduleConfig, Scheduler, SchedulerKind};
pub use unet::UNet;
pub use vae::Vae;

#[cfg(test)]
mod tests;
