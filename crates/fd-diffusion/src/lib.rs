//! fd-diffusion: Stable Diffusion v1 in burn, for the paper's generative intervention (method spec §4.2): images of a
//! failure's caption, to retrain the classifier on.
//!
//! - [`unet`]: diffusers' `UNet2DConditionModel` of v1.4/v1.5 (and a tiny preset with every code path);
//! - [`vae`]: its `AutoencoderKL`, encoder and decoder (scaling factor 0.18215);
//! - [`scheduler`]: DDIM and PNDM (PLMS) with v1's scaled-linear betas, timesteps as diffusers' `set_timesteps` gives them;
//! - [`text`]: prompts to the UNet's conditioning through fd-clip's tokenizer and ViT-L/14 text tower;
//! - [`pipeline`]: seeded latents, classifier-free guidance, decoding to [`fd_data::Image`];
//! - [`load`]: diffusers' safetensors files (fp16 or fp32), every tensor checked by name and shape.
//!
//! Each piece is checked against diffusers on random weights of the tiny shapes (`fixtures/make_sd_fixtures.py`). The
//! pipeline takes the text conditioning as plain data, so any text encoder can give it.
//! It never knows about SVMs or captions.

pub mod blocks;
pub mod config;
pub mod error;
pub mod load;
pub mod pipeline;
pub mod scheduler;
pub mod text;
pub mod unet;
pub mod vae;

pub use config::{GenerateConfig, Preset, UNetConfig, VaeConfig};
pub use error::{Error, Result};
pub use pipeline::{Generated, Pipeline, Settings, gaussian_noise};
pub use scheduler::{Ddim, Pndm, ScheduleConfig, Scheduler, SchedulerKind};
pub use text::{Conditioning, PromptEncoder};
pub use unet::UNet;
pub use vae::Vae;

#[cfg(test)]
mod tests;
