//! The shapes of Stable Diffusion v1's networks, as diffusers' configs give them, and a tiny preset with every code path.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The UNet's shape (`UNet2DConditionModel`'s config, the fields Stable Diffusion v1 sets).
///
/// Down blocks are `CrossAttnDownBlock2D` where `cross_attention` says so and `DownBlock2D` elsewhere; the up blocks mirror
/// them (v1's `UpBlock2D, CrossAttnUpBlock2D ×3` for `CrossAttnDownBlock2D ×3, DownBlock2D`). Every block but the last
/// down block downsamples (a stride-2 convolution) and every up block but the last upsamples (nearest, then a convolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Latent channels in (4).
    pub in_channels: usize,
    /// Channels out (4: the predicted noise).
    pub out_channels: usize,
    /// Channels of each resolution (320, 640, 1280, 1280).
    pub block_out_channels: Vec<usize>,
    /// Whether each down block (and its mirror up block) has cross-attention transformers.
    pub cross_attention: Vec<bool>,
    /// ResNet blocks per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// Attention heads in every transformer (8; diffusers' v1 config calls it `attention_head_dim`).
    pub heads: usize,
    /// The conditioning's width (768, CLIP ViT-L/14's text width).
    pub cross_attention_dim: usize,
    /// GroupNorm groups (32).
    pub norm_groups: usize,
}

impl UNetConfig {
    /// Stable Diffusion v1.4 and v1.5 (identical shapes).
    pub fn sd_v1() -> UNetConfig {
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![320, 640, 1280, 1280],
            cross_attention: vec![true, true, true, false],
            layers_per_block: 2,
            heads: 8,
            cross_attention_dim: 768,
            norm_groups: 32,
        }
    }

    /// A tiny UNet with every code path (`fixtures/make_sd_fixtures.py` builds the same one in diffusers).
    pub fn tiny() -> UNetConfig {
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![16, 32],
            cross_attention: vec![true, false],
            layers_per_block: 2,
            heads: 2,
            cross_attention_dim: 32,
            norm_groups: 4,
        }
    }

    /// The time embedding's width (4 × the first block's channels).
    pub fn time_embed_dim(&self) -> usize {
        4 * self.block_out_channels[0]
    }

    /// Checks the shape once, so the modules can index freely.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message: format!("UNet: {message}") });
        if self.block_out_channels.is_empty() || self.block_out_channels.len() != self.cross_attention.len() {
            return bad(format!(
                "block_out_channels ({}) and cross_attention ({}) must be as long as each other and not empty",
                self.block_out_channels.len(),
                self.cross_attention.len()
            ));
        }
        for &c in &self.block_out_channels {
            if c == 0 || c % self.norm_groups != 0 || c % self.heads != 0 {
                return bad(format!(
                    "{c} channels must be a positive multiple of norm_groups ({}) and heads ({})",
                    self.norm_groups, self.heads
                ));
            }
        }
        if self.layers_per_block == 0 || self.in_channels == 0 || self.out_channels == 0 {
            return bad("layers_per_block, in_channels and out_channels must be positive".into());
        }
        Ok(())
    }
}

/// The VAE's shape (`AutoencoderKL`'s config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Image channels (3).
    pub in_channels: usize,
    /// Latent channels (4).
    pub latent_channels: usize,
    /// Channels of each resolution (128, 256, 512, 512).
    pub block_out_channels: Vec<usize>,
    /// ResNet blocks per encoder block (decoder blocks have one more).
    pub layers_per_block: usize,
    /// GroupNorm groups (32).
    pub norm_groups: usize,
    /// Latents are multiplied by this after encoding and divided by it before decoding (0.18215).
    pub scaling_factor: f32,
}

impl VaeConfig {
    /// Stable Diffusion v1's VAE.
    pub fn sd_v1() -> VaeConfig {
        VaeConfig {
            in_channels: 3,
            latent_channels: 4,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_groups: 32,
            scaling_factor: 0.18215,
        }
    }

    /// A tiny VAE with every code path.
    pub fn tiny() -> VaeConfig {
        VaeConfig {
            in_channels: 3,
            latent_channels: 4,
            block_out_channels: vec![8, 16],
            layers_per_block: 1,
            norm_groups: 4,
            scaling_factor: 0.18215,
        }
    }

    /// How much smaller the latent is than the image on each side.
    pub fn downscale(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }

    /// Checks the shape once.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message: format!("VAE: {message}") });
        if self.block_out_channels.is_empty() || self.layers_per_block == 0 {
            return bad("block_out_channels must not be empty and layers_per_block must be positive".into());
        }
        if let Some(c) = self.block_out_channels.iter().find(|&&c| c == 0 || c % self.norm_groups != 0) {
            return bad(format!("{c} channels must be a positive multiple of norm_groups ({})", self.norm_groups));
        }
        if !(self.scaling_factor.is_finite() && self.scaling_factor > 0.0) {
            return bad(format!("scaling_factor must be positive, got {}", self.scaling_factor));
        }
        Ok(())
    }
}

/// Which networks generate: Stable Diffusion v1.5 (v1.4's shapes too) or the tiny test networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// v1.5 (`sd-v1-5`): UNet and VAE of v1's shapes, CLIP ViT-L/14's text tower.
    #[serde(rename = "sd-v1-5")]
    SdV15,
    /// The tiny networks of `fixtures/make_sd_fixtures.py` (16×16 images), for tests.
    Tiny,
}

/// The `[generate]` section: images of each class's failure captions, for the paper's generative intervention (§4.2:
/// DDIM, 50 steps, guidance 7.5, 512 × 512, 100 images per class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// The networks' shapes.
    pub preset: Preset,
    /// The UNet's diffusers safetensors file (default: the cache's, from `fd-cli fetch stable-diffusion`).
    #[serde(default)]
    pub unet: Option<std::path::PathBuf>,
    /// The VAE's file (same default).
    #[serde(default)]
    pub vae: Option<std::path::PathBuf>,
    /// The text tower's file (same default).
    #[serde(default)]
    pub text_encoder: Option<std::path::PathBuf>,
    /// Images of each caption.
    pub images_per_caption: usize,
    /// How many of each class's hardest (and easiest) captions to draw; the class's reference caption is drawn too.
    #[serde(default = "one")]
    pub captions: usize,
    /// The scheduler.
    pub scheduler: crate::scheduler::SchedulerKind,
    /// Inference steps.
    pub steps: usize,
    /// Classifier-free guidance scale.
    pub guidance: f32,
    /// Image height and width in pixels.
    pub size: usize,
    /// The seed every image's noise derives from.
    pub seed: u64,
}

fn one() -> usize {
    1
}

impl GenerateConfig {
    /// Checks the values once.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message: format!("[generate]: {message}") });
        let f = match self.preset {
            Preset::SdV15 => VaeConfig::sd_v1().downscale() * 8,
            Preset::Tiny => VaeConfig::tiny().downscale() * 2,
        };
        if self.images_per_caption == 0 || self.captions == 0 || self.steps == 0 {
            return bad("images_per_caption, captions and steps must be positive".into());
        }
        if self.size == 0 || !self.size.is_multiple_of(f) {
            return bad(format!("size {} must be a positive multiple of {f}", self.size));
        }
        if !(self.guidance.is_finite() && self.guidance >= 0.0) {
            return bad(format!("guidance must be a non-negative number, got {}", self.guidance));
        }
        crate::scheduler::ScheduleConfig::sd_v1().validate(self.steps)
    }

    /// The UNet, VAE and text tower shapes of the preset.
    pub fn shapes(&self) -> (UNetConfig, VaeConfig) {
        match self.preset {
            Preset::SdV15 => (UNetConfig::sd_v1(), VaeConfig::sd_v1()),
            Preset::Tiny => (UNetConfig::tiny(), VaeConfig::tiny()),
        }
    }

    /// One image's seed: the config's, the class, the caption's place and the image's number mixed (SplitMix64), so
    /// that adding images or captions leaves the others' noise alone.
    pub fn image_seed(&self, class: usize, caption: usize, image: usize) -> u64 {
        let mut z = self.seed ^ ((class as u64) << 40) ^ ((caption as u64) << 20) ^ image as u64;
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
