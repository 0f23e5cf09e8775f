//! Per-image attributes, measured on the image itself, cheap and documented, so that a failure can be named by what its images
//! look like ("dark images", "against a blue background") without any text encoder (issue 15; B2T, PRIME and HiBug name
//! failures from attributes of the images in the same spirit).
//!
//! Every measure works on 8-bit RGB scaled to 0-1, with luma `Y = 0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601):
//! - brightness: the mean of Y;
//! - contrast: the standard deviation of Y (RMS contrast);
//! - saturation: the mean HSV saturation `(max - min) / max` (0 where max is 0), on the contrast-normalised copy below;
//! - colourfulness: Hasler and Süsstrunk's M (2003): `sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²)`, with `rg = R - G` and
//!   `yb = (R + G) / 2 - B`, on the same copy;
//! - the contrast-normalised copy: every channel value `v` becomes `μ + g (v - μ)`, clamped to 0-1, with `μ` the mean of all
//!   the image's channel values and the gain `g` = [`STANDARD_CONTRAST`] over the contrast, at most [`MAX_GAIN`] (1 for a
//!   flat image): the image's colours as they would be at a standard contrast, so that lowering the contrast (which also
//!   dulls every colour by the same factor) leaves both colour measures alone;
//! - chroma: the mean of `max - min` over the pixels; an image is grayscale when it is below [`GRAYSCALE_CHROMA`];
//! - sharpness: the variance of the 4-neighbour Laplacian of Y over interior pixels, divided by the variance of Y (the
//!   contrast squared; 0 for a flat image): fine detail relative to the image's own contrast, so that low means blurred and
//!   a low-contrast copy of a sharp image is still sharp;
//! - noise: Immerkær's estimate of the standard deviation of additive Gaussian noise (1996),
//!   `σ = sqrt(π / 2) / (6 (W - 2) (H - 2)) Σ |Y ∗ N|` with `N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`, divided by the
//!   contrast (0 for a flat image): noise relative to the signal, again unmoved by a change of contrast;
//! - dominant hue: the most common of eight named hue ranges among pixels with saturation and value above 0.2, when such
//!   pixels cover at least a tenth of the image; otherwise none;
//! - background colour: the mean colour of the border (an eighth of the short side wide), named from a small palette;
//! - object share: the share of pixels farther from the border's mean colour (Euclidean, in 0-1 RGB) than [`OBJECT_DISTANCE`]
//!   times the root mean square of that distance over the image (and at least [`OBJECT_FLOOR`]); a rough estimate of how
//!   much of the frame the subject fills, not a segmentation, and, being relative, unmoved by a change of contrast.
//!
//! Sharpness, noise, object share and the two colour measures are relative to the image's contrast on purpose: otherwise a
//! low-contrast image would also read as blurred, clean, empty, dull and washed out, and a low-contrast failure would be
//! named by whichever of those six came first. The price: a nearly plain image (RMS contrast of a few levels) reads as
//! noisy and sharp, its faint texture being all the contrast it has; below a contrast of 1e-4 an image is flat, the first
//! three are 0 and its colours are measured as they are.

use serde::{Deserialize, Serialize};

use crate::Image;

/// Below this mean chroma (about 5 of 255) an image counts as grayscale.
pub const GRAYSCALE_CHROMA: f32 = 0.02;
/// The RMS contrast the colour measures normalise every image to (about a typical photograph's).
pub const STANDARD_CONTRAST: f32 = 0.2;
/// The largest gain of the contrast normalisation: a nearly plain image's colours are raised at most this much, so that
/// its faint texture is not read as vivid colour.
pub const MAX_GAIN: f32 = 10.0;
/// A pixel farther from the border's mean colour than this share of the image's root-mean-square distance from it (and
/// than [`OBJECT_FLOOR`]) counts as part of the object: a square of any colour inside a plain frame is counted whole,
/// whatever its size.
pub const OBJECT_DISTANCE: f32 = 0.5;
/// A pixel must also be this far (in 0-1 RGB) from the border's mean colour to count as part of the object, so that the
/// faint texture of a plain image is not an object.
pub const OBJECT_FLOOR: f32 = 0.02;

/// The continuous measures, in a fixed order (their names are [`Measure::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Mean luma.
    Brightness,
    /// Standard deviation of luma.
    Contrast,
    /// Mean HSV saturation, at a standard contrast.
    Saturation,
    /// Hasler and Süsstrunk's colourfulness, at a standard contrast.
    Colourfulness,
    /// Variance of the Laplacian of luma over the variance of luma.
    Sharpness,
    /// Immerkær's noise estimate over the contrast.
    Noise,
    /// Share of pixels unlike the border.
    ObjectShare,
}

impl Measure {
    /// Every measure, in order.
    pub const ALL: [Measure; 7] = [
        Measure::Brightness,
        Measure::Contrast,
        Measure::Saturation,
        Measure::Colourfulness,
        Measure::Sharpness,
        Measure::Noise,
        Measure::ObjectShare,
    ];

    /// The measure's name in artifacts.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Brightness => "brightness",
            Measure::Contrast => "contrast",
            Measure::Saturation => "saturation",
            Measure::Colourfulness => "colourfulness",
            Measure::Sharpness => "sharpness",
            Measure::Noise => "noise",
            Measure::ObjectShare => "object share",
        }
    }

    /// The phrases for images low and high on the measure.
    pub fn phrases(self) -> (&'static str, &'static str) {
        match self {
            Measure::Brightness => ("dark images", "bright images"),
            Measure::Contrast => ("low contrast", "high contrast"),
            Measure::Saturation => ("washed-out colours", "saturated colours"),
            Measure::Colourfulness => ("dull colours", "colourful images"),
            Measure::Sharpness => ("blurry images", "sharp, detailed images"),
            Measure::Noise => ("smooth images with little fine detail", "noisy images"),
            Measure::ObjectShare => ("a small object in the frame", "the object filling the frame"),
        }
    }
}

/// The eight named hue ranges, in degrees: red [345, 15), orange [15, 45), yellow [45, 70), green [70, 165), cyan [165, 195),
/// blue [195, 255), purple [255, 290), pink [290, 345).
pub const HUES: [&str; 8] = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"];

/// The palette background colours are named from.
pub const BACKGROUNDS: [&str; 11] =
    ["black", "gray", "white", "red", "orange", "yellow", "green", "cyan", "blue", "purple", "brown"];

/// One image's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    /// The continuous measures, in [`Measure::ALL`]'s order.
    pub measures: [f32; 7],
    /// Mean chroma (`max - min` of the channels).
    pub chroma: f32,
    /// The dominant hue, an index into [`HUES`], if the image has enough colour.
    pub hue: Option<u8>,
    /// The border's colour, an index into [`BACKGROUNDS`].
    pub background: u8,
}

impl Attributes {
    /// The value of one measure.
    pub fn measure(&self, m: Measure) -> f32 {
        self.measures[Measure::ALL.iter().position(|x| *x == m).expect("every measure is listed")]
    }

    /// Whether the image is grayscale.
    pub fn grayscale(&self) -> bool {
        self.chroma < GRAYSCALE_CHROMA
    }
}

/// HSV of one 0-1 RGB pixel: hue in degrees, saturation, value.
fn hsv([r, g, b]: [f32; 3]) -> (f32, f32, f32) {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    let h = if delta == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    (h, s, max)
}

/// The named hue range of a hue in degrees (an index into [`HUES`]).
pub fn hue_name(h: f32) -> u8 {
    let h = h.rem_euclid(360.0);
    match h {
        h if !(15.0..345.0).contains(&h) => 0,
        h if h < 45.0 => 1,
        h if h < 70.0 => 2,
        h if h < 165.0 => 3,
        h if h < 195.0 => 4,
        h if h < 255.0 => 5,
        h if h < 290.0 => 6,
        _ => 7,
    }
}

/// The palette name (an index into [`BACKGROUNDS`]) of a 0-1 RGB colour: black, gray or white when it has little colour
/// (saturation under 0.2 or value under 0.15), brown for a dark orange or red, else its hue's name.
pub fn colour_name(rgb: [f32; 3]) -> u8 {
    let (h, s, v) = hsv(rgb);
    if v < 0.15 {
        return 0;
    }
    if s < 0.2 {
        return if v < 0.35 {
            0
        } else if v < 0.8 {
            1
        } else {
            2
        };
    }
    let hue = hue_name(h);
    if hue <= 1 && v < 0.6 {
        return 10;
    }
    // red orange yellow green cyan blue purple, and pink is named red.
    [3, 4, 5, 6, 7, 8, 9, 3][usize::from(hue)]
}

/// Measures one image.
pub fn attributes(image: &Image) -> Attributes {
    let (h, w) = (image.height, image.width);
    let n = (h * w).max(1) as f32;
    let px = |i: usize| -> [f32; 3] {
        let d = &image.data[i * 3..i * 3 + 3];
        [f32::from(d[0]) / 255.0, f32::from(d[1]) / 255.0, f32::from(d[2]) / 255.0]
    };
    let luma: Vec<f32> = (0..h * w)
        .map(|i| {
            let [r, g, b] = px(i);
            0.299 * r + 0.587 * g + 0.114 * b
        })
        .collect();
    let mean_y = luma.iter().sum::<f32>() / n;
    let contrast = (luma.iter().map(|y| (y - mean_y).powi(2)).sum::<f32>() / n).sqrt();
    // The contrast-normalised copy the colour measures read (see the module's documentation).
    let level = image.data.iter().map(|&v| f32::from(v)).sum::<f32>() / (image.data.len().max(1) as f32 * 255.0);
    let gain = if contrast < 1e-4 { 1.0 } else { (STANDARD_CONTRAST / contrast).min(MAX_GAIN) };
    let normalised = |v: f32| (level + gain * (v - level)).clamp(0.0, 1.0);
    let (mut sat, mut chroma) = (0.0f32, 0.0f32);
    let (mut rg, mut yb, mut rg2, mut yb2) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    let mut hues = [0usize; 8];
    for i in 0..h * w {
        let [r, g, b] = px(i);
        let (hue, s, v) = hsv([r, g, b]);
        chroma += r.max(g).max(b) - r.min(g).min(b);
        let [r, g, b] = [normalised(r), normalised(g), normalised(b)];
        sat += hsv([r, g, b]).1;
        let (a, c) = (r - g, 0.5 * (r + g) - b);
        (rg, yb, rg2, yb2) = (rg + a, yb + c, rg2 + a * a, yb2 + c * c);
        if s > 0.2 && v > 0.2 {
            hues[usize::from(hue_name(hue))] += 1;
        }
    }
    let (mrg, myb) = (rg / n, yb / n);
    let (vrg, vyb) = ((rg2 / n - mrg * mrg).max(0.0), (yb2 / n - myb * myb).max(0.0));
    let colourfulness = (vrg + vyb).sqrt() + 0.3 * (mrg * mrg + myb * myb).sqrt();
    let coloured: usize = hues.iter().sum();
    let hue = (coloured as f32 >= 0.1 * n)
        .then(|| (0..8).max_by_key(|&k| (hues[k], std::cmp::Reverse(k))).map(|k| k as u8))
        .flatten();
    let (laplacian, noise_sigma) = laplacians(&luma, h, w);
    // Relative to the contrast (0 for a flat image, whose detail and noise are nothing against nothing).
    let flat = contrast < 1e-4;
    let sharpness = if flat { 0.0 } else { laplacian / (contrast * contrast) };
    let noise = if flat { 0.0 } else { noise_sigma / contrast };
    let band = (h.min(w) / 8).max(1);
    let border: Vec<usize> =
        (0..h * w).filter(|&i| i / w < band || i / w >= h - band || i % w < band || i % w >= w - band).collect();
    let mut edge = [0.0f32; 3];
    for &i in &border {
        let p = px(i);
        (0..3).for_each(|c| edge[c] += p[c] / border.len() as f32);
    }
    let distance: Vec<f32> = (0..h * w)
        .map(|i| {
            let p = px(i);
            (0..3).map(|c| (p[c] - edge[c]).powi(2)).sum::<f32>().sqrt()
        })
        .collect();
    let rms = (distance.iter().map(|d| d * d).sum::<f32>() / n).sqrt();
    let cut = (OBJECT_DISTANCE * rms).max(OBJECT_FLOOR);
    let far = distance.iter().filter(|&&d| d > cut).count();
    Attributes {
        measures: [mean_y, contrast, sat / n, colourfulness, sharpness, noise, far as f32 / n],
        chroma: chroma / n,
        hue,
        background: colour_name(edge),
    }
}

/// The variance of the 4-neighbour Laplacian and Immerkær's noise estimate, over interior pixels (0 for images under 3×3).
fn laplacians(y: &[f32], h: usize, w: usize) -> (f32, f32) {
    if h < 3 || w < 3 {
        return (0.0, 0.0);
    }
    let at = |r: usize, c: usize| y[r * w + c];
    let (mut sum, mut sum2, mut abs) = (0.0f64, 0.0f64, 0.0f64);
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let lap = at(r - 1, c) + at(r + 1, c) + at(r, c - 1) + at(r, c + 1) - 4.0 * at(r, c);
            (sum, sum2) = (sum + f64::from(lap), sum2 + f64::from(lap) * f64::from(lap));
            let corners = at(r - 1, c - 1) + at(r - 1, c + 1) + at(r + 1, c - 1) + at(r + 1, c + 1);
            let sides = at(r - 1, c) + at(r + 1, c) + at(r, c - 1) + at(r, c + 1);
            abs += f64::from((corners - 2.0 * sides + 4.0 * at(r, c)).abs());
        }
    }
    let m = ((h - 2) * (w - 2)) as f64;
    let variance = (sum2 / m - (sum / m).powi(2)).max(0.0);
    let noise = (std::f64::consts::PI / 2.0).sqrt() / (6.0 * m) * abs;
    (variance as f32, noise as f32)
}

#[cfg(test)]
mod tests;
