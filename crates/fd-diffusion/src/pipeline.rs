//! Text-to-image as diffusers' `StableDiffusionPipeline` runs it: seeded Gaussian latents, the scheduler's timesteps, at
//! each one the UNet on the unconditional and the conditional context at once, classifier-free guidance
//! (`ε = ε_u + g (ε_c - ε_u)`, skipped when `g ≤ 1`), a scheduler step; then the VAE decodes the latents and
//! `(x / 2 + 0.5)` clamped to 0-1 becomes 8-bit pixels (rounded).
//!
//! The text context is plain data (`[tokens, width]` row-major, fd-clip's ViT-L/14 `hidden_states` in Stable
//! Diffusion), so any text encoder can condition it.

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scheduler::{ScheduleConfig, Scheduler, SchedulerKind};
use crate::unet::UNet;
use crate::vae::Vae;

/// How to generate: the paper's settings are DDIM, 50 steps, guidance 7.5, 512 × 512 (method spec §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// Inference steps.
    pub steps: usize,
    /// Classifier-free guidance scale (no guidance at 1 or below).
    pub guidance: f32,
    /// Image height in pixels, a multiple of the VAE's and UNet's downscaling.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl Settings {
    /// The paper's settings.
    pub fn paper() -> Settings {
        Settings { scheduler: SchedulerKind::Ddim, steps: 50, guidance: 7.5, height: 512, width: 512 }
    }
}

/// Seeded standard Gaussian noise (ChaCha8 and Box-Muller: the same values on every machine and dependency version).
pub fn gaussian_noise(seed: u64, len: usize) -> Vec<f32> {
    use rand::RngCore;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut u = || ((rng.next_u32() >> 8) as f32 + 0.5) / (1u32 << 24) as f32;
    (0..len)
        .map(|_| {
            let (u1, u2) = (u(), u());
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

/// One generation's result.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The final latents, `[latent channels, h / f, w / f]` row-major (scaled, as the UNet sees them).
    pub latents: Vec<f32>,
    /// The decoded image before quantisation, `[3, h, w]` row-major, about -1..1.
    pub decoded: Vec<f32>,
    /// The image.
    pub image: fd_data::Image,
}

/// A UNet, a VAE and the noise schedule they were trained with.
#[derive(Debug)]
pub struct Pipeline {
    /// The denoiser.
    pub unet: UNet,
    /// The autoencoder.
    pub vae: Vae,
    /// The training noise schedule.
    pub schedule: ScheduleConfig,
    /// Latent channels.
    pub latent_channels: usize,
    /// The VAE's downscaling factor.
    pub downscale: usize,
}

impl Pipeline {
    /// Generates one image from the conditional and unconditional contexts (`[tokens, width]` each) and the initial
    /// latents (`[latent channels, h / f, w / f]`; [`gaussian_noise`] of a seed in normal use).
    pub fn generate(
        &self,
        cond: &[f32],
        uncond: &[f32],
        tokens: usize,
        initial: &[f32],
        settings: &Settings,
        device: &Device,
    ) -> Result<Generated> {
        let f = self.downscale;
        if !settings.height.is_multiple_of(f)
            || !settings.width.is_multiple_of(f)
            || settings.height == 0
            || settings.width == 0
        {
            return Err(Error::Config {
                message: format!(
                    "image size {}×{} must be a positive multiple of {f}",
                    settings.height, settings.width
                ),
            });
        }
        let (h, w, c) = (settings.height / f, settings.width / f, self.latent_channels);
        if initial.len() != c * h * w {
            return Err(Error::Shape {
                message: format!("initial latents hold {} values, expected {c}×{h}×{w}", initial.len()),
            });
        }
        if tokens == 0 || !cond.len().is_multiple_of(tokens) || cond.len() != uncond.len() {
            return Err(Error::Shape {
                message: format!(
                    "contexts of {} and {} values do not split into {tokens} tokens of one width",
                    cond.len(),
                    uncond.len()
                ),
            });
        }
        for (what, v) in [("the text context", cond), ("the empty context", uncond), ("the initial latents", initial)] {
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::NotFinite { what: what.into() });
            }
        }
        let width = cond.len() / tokens;
        let guided = settings.guidance > 1.0;
        let context: Vec<f32> = if guided { uncond.iter().chain(cond).copied().collect() } else { cond.to_vec() };
        let batch = if guided { 2 } else { 1 };
        let context = Tensor::<3>::from_data(TensorData::new(context, [batch, tokens, width]), device);
        let mut scheduler = Scheduler::new(settings.scheduler, &self.schedule, settings.steps)?;
        let mut latents = initial.to_vec();
        let n = latents.len();
        for (i, t) in scheduler.timesteps().into_iter().enumerate() {
            let x = Tensor::<1>::from_data(TensorData::new(latents.clone(), [n]), device).reshape([1, c, h, w]);
            let x = if guided { x.repeat_dim(0, 2) } else { x };
            let eps = self
                .unet
                .forward(x, t as f32, &context)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Shape { message: format!("UNet output: {e:?}") })?;
            let eps: Vec<f32> = if guided {
                let (u, t) = eps.split_at(n);
                u.iter().zip(t).map(|(u, t)| u + settings.guidance * (t - u)).collect()
            } else {
                eps
            };
            latents = scheduler.step(&eps, t, &latents)?;
            if latents.iter().any(|v| !v.is_finite()) {
                return Err(Error::NotFinite { what: format!("the latents after step {} (timestep {t})", i + 1) });
            }
            tracing::debug!(step = i + 1, timestep = t, "denoised");
        }
        let z = Tensor::<1>::from_data(TensorData::new(latents.clone(), [n]), device).reshape([1, c, h, w]);
        let decoded = self
            .vae
            .decode(z)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Shape { message: format!("VAE output: {e:?}") })?;
        if decoded.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotFinite { what: "the decoded image".into() });
        }
        let image = to_image(&decoded, settings.height, settings.width);
        Ok(Generated { latents, decoded, image })
    }
}

/// The UNet's noise prediction on plain data: latents `[batch, channels, h, w]` (`dims`) at one timestep, conditioned on
/// `context` (`[batch, tokens, width]`); the result has the latents' shape.
pub fn noise_prediction(
    unet: &UNet,
    latents: &[f32],
    dims: [usize; 4],
    timestep: f32,
    context: &[f32],
    tokens: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    let batch = dims[0];
    if latents.len() != dims.iter().product::<usize>() || tokens == 0 || !context.len().is_multiple_of(batch * tokens) {
        return Err(Error::Shape {
            message: format!(
                "{} latent values for {dims:?}, {} context values for {batch}×{tokens} tokens",
                latents.len(),
                context.len()
            ),
        });
    }
    let x = Tensor::<1>::from_data(TensorData::new(latents.to_vec(), [latents.len()]), device).reshape(dims);
    let c = Tensor::<1>::from_data(TensorData::new(context.to_vec(), [context.len()]), device).reshape([
        batch,
        tokens,
        context.len() / (batch * tokens),
    ]);
    unet.forward(x, timestep, &c)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Shape { message: format!("{e:?}") })
}

/// `[3, h, w]` in about -1..1 to 8-bit RGB: `round(clamp(x / 2 + 0.5, 0, 1) · 255)`.
pub fn to_image(chw: &[f32], height: usize, width: usize) -> fd_data::Image {
    let plane = height * width;
    let data = (0..plane)
        .flat_map(|p| (0..3).map(move |ch| (p, ch)))
        .map(|(p, ch)| ((chw[ch * plane + p] / 2.0 + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    fd_data::Image::new(height, width, data)
}
