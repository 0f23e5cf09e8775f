//! A tiny synthetic image-classification dataset, made from a seed in milliseconds, for smoke runs and tests that must not touch real data.
//!
//! Class `k` of `n` is a square of hue `k / n` at a random place on a noisy grey background.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Dataset;
use crate::error::{Error, Result};

/// The shape of a synthetic dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// The number of classes (2 to 12).
    pub classes: usize,
    /// Training images per class.
    pub train_per_class: usize,
    /// Test images per class.
    pub test_per_class: usize,
    /// Image side in pixels (8 to 64).
    pub size: usize,
    /// Seeds everything.
    pub seed: u64,
}

impl SyntheticConfig {
    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        if !(2..=12).contains(&self.classes)
            || !(8..=64).contains(&self.size)
            || self.train_per_class == 0
            || self.test_per_class == 0
        {
            return Err(Error::Invalid(format!(
                "synthetic: need 2..=12 classes, 8..=64 pixels and at least one image per class and part, got {self:?}"
            )));
        }
        Ok(())
    }
}

/// Makes the training and test sets, classes interleaved in dataset order.
pub fn make_synthetic(config: &SyntheticConfig) -> (Dataset, Dataset) {
    let names: Vec<String> = (0..config.classes).map(|k| format!("class{k}")).collect();
    let make = |per_class: usize, stream: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_mul(2).wrapping_add(stream));
        let s = config.size;
        let mut pixels = Vec::with_capacity(per_class * config.classes * s * s * 3);
        let mut labels = Vec::with_capacity(per_class * config.classes);
        for i in 0..per_class * config.classes {
            let k = i % config.classes;
            let color = hue(k as f32 / config.classes as f32);
            let side = s / 2;
            let (top, left) = (rng.random_range(0..=s - side), rng.random_range(0..=s - side));
            for y in 0..s {
                for x in 0..s {
                    let inside = (top..top + side).contains(&y) && (left..left + side).contains(&x);
                    for c in color.iter().take(3) {
                        let base = if inside { f32::from(*c) } else { 128.0 };
                        let v = base + rng.random_range(-40.0..40.0f32);
                        pixels.push(v.clamp(0.0, 255.0) as u8);
                    }
                }
            }
            labels.push(k as u16);
        }
        Dataset::new(config.size, config.size, pixels, labels, names.clone()).expect("synthetic data is consistent")
    };
    (make(config.train_per_class, 0), make(config.test_per_class, 1))
}

fn hue(h: f32) -> [u8; 3] {
    let f = |n: f32| {
        let k = (n + h * 6.0) % 6.0;
        (255.0 * (1.0 - k.min(4.0 - k).clamp(0.0, 1.0))) as u8
    };
    [f(5.0), f(3.0), f(1.0)]
}
