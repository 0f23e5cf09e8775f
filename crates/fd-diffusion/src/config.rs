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
