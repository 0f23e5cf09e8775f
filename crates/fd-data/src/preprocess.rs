//! Image preprocessing for the networks (the embedders, and a user's ONNX classifier), into an NCHW batch: either the paper's plain
//! bilinear resize of the whole image (as it feeds CLIP, method spec §1.4) or CLIP's canonical one (PIL's bicubic resize of the short
//! side, centre crop, bit for bit as Pillow does it on 8-bit images), then per-channel normalisation.

/// CLIP's per-channel mean on the 0-1 scale.
#[allow(clippy::excessive_precision)] // The constants as OpenAI publishes them.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's per-channel standard deviation on the 0-1 scale.
#[allow(clippy::excessive_precision)] // The constants as OpenAI publishes them.
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// How images become an embedder's input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Output height and width.
    pub size: usize,
    /// Per-channel mean on the 0-1 scale.
    pub mean: [f32; 3],
    /// Per-channel standard deviation on the 0-1 scale.
    pub std: [f32; 3],
    /// How the image is brought to `size`.
    #[serde(default)]
    pub resize: Resize,
}

/// How an image is brought to the embedder's input size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resize {
    /// The paper's: the whole image resized bilinearly to a square (torch's `interpolate`, `align_corners=False`), aspect ratio not kept.
    #[default]
    Paper,
    /// CLIP's own: Pillow's bicubic resize of the short side to the size, then a centre crop (`clip.load`'s `preprocess`).
    Canonical,
}

impl Preprocess {
    /// EfficientNet-Lite's normalisation (TF's `(x - 127.5) / 127.5`) at `size` pixels.
    pub fn efficientnet(size: usize) -> Preprocess {
        Preprocess { size, mean: [0.5; 3], std: [0.5; 3], resize: Resize::Paper }
    }

    /// The paper's CLIP input (method spec §1.4): the whole image resized bilinearly to `size`, then CLIP's mean and std.
    pub fn clip_paper(size: usize) -> Preprocess {
        Preprocess { size, mean: CLIP_MEAN, std: CLIP_STD, resize: Resize::Paper }
    }

    /// CLIP's canonical input: bicubic short-side resize to `size`, centre crop, then CLIP's mean and std.
    pub fn clip_canonical(size: usize) -> Preprocess {
        Preprocess { size, mean: CLIP_MEAN, std: CLIP_STD, resize: Resize::Canonical }
    }
}

/// Brings an HWC u8 image to `size`×`size` as `p.resize` says, normalises it, and appends it in CHW order to `out`.
pub fn push_chw(image: &crate::Image, p: &Preprocess, out: &mut Vec<f32>) {
    match p.resize {
        Resize::Paper => push_bilinear(image, p, out),
        Resize::Canonical => {
            let (h, w, s) = (image.height, image.width, p.size);
            // torchvision's Resize(int): the short side becomes `s`, the long side `s * long / short`, truncated.
            let (nh, nw) = if h <= w { (s, s * w / h) } else { (s * h / w, s) };
            let resized = pil_bicubic(image, nh, nw);
            // CenterCrop: offsets rounded half to even, as Python's round().
            let offset = |big: usize| ((big - s) as f64 / 2.0).round_ties_even() as usize;
            let (top, left) = (offset(nh), offset(nw));
            for c in 0..3 {
                for y in top..top + s {
                    for x in left..left + s {
                        let v = f32::from(resized.data[(y * nw + x) * 3 + c]) / 255.0;
                        out.push((v - p.mean[c]) / p.std[c]);
                    }
                }
            }
        }
    }
}

/// Pillow's bicubic kernel (a = -0.5).
fn bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// Bits of Pillow's fixed-point coefficients for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's resampling coefficients from `input` to `output` samples: per output sample, the first input sample and the
/// fixed-point weights (`precompute_coeffs` and `normalize_coeffs_8bpc` of Pillow's Resample.c).
fn pil_coefficients(input: usize, output: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = input as f64 / output as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..output)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            // C's (int) truncates toward zero.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let w: Vec<f64> = (min..max).map(|j| bicubic((j as f64 - center + 0.5) / filterscale)).collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let scaled = v * f64::from(1u32 << PRECISION_BITS);
                    if v < 0.0 { (scaled - 0.5) as i64 } else { (scaled + 0.5) as i64 }
                })
                .collect();
            (min, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    let v = v >> PRECISION_BITS;
    v.clamp(0, 255) as u8
}

/// Pillow's `Image.resize((w, h), Image.BICUBIC)` of an 8-bit RGB image: a horizontal pass, then a vertical one, each rounded to 8 bits.
pub fn pil_bicubic(image: &crate::Image, height: usize, width: usize) -> crate::Image {
    let (h, w) = (image.height, image.width);
    let half = 1i64 << (PRECISION_BITS - 1);
    let horizontal = pil_coefficients(w, width);
    let mut tmp = vec![0u8; h * width * 3];
    for y in 0..h {
        for (x, (min, k)) in horizontal.iter().enumerate() {
            for c in 0..3 {
                let sum: i64 =
                    k.iter().enumerate().map(|(j, &kj)| i64::from(image.data[(y * w + min + j) * 3 + c]) * kj).sum();
                tmp[(y * width + x) * 3 + c] = clip8(sum + half);
            }
        }
    }
    let vertical = pil_coefficients(h, height);
    let mut out = vec![0u8; height * width * 3];
    for (y, (min, k)) in vertical.iter().enumerate() {
        for x in 0..width {
            for c in 0..3 {
                let sum: i64 =
                    k.iter().enumerate().map(|(j, &kj)| i64::from(tmp[((min + j) * width + x) * 3 + c]) * kj).sum();
                out[(y * width + x) * 3 + c] = clip8(sum + half);
            }
        }
    }
    crate::Image::new(height, width, out)
}

/// PyTorch's bilinear taps (`align_corners=False`) from `input` samples to `output`: per output sample, the two input samples and
/// the weight of the second.
fn bilinear_taps(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|d| {
            let src = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let i1 = (i0 + 1).min(input - 1);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// The bilinear value of channel `c` at the taps `(y0, y1, ly)` and `(x0, x1, lx)`, on the 0-1 scale.
fn bilinear_at(
    image: &crate::Image,
    c: usize,
    (y0, y1, ly): (usize, usize, f32),
    (x0, x1, lx): (usize, usize, f32),
) -> f32 {
    let px = |y: usize, x: usize| f32::from(image.data[(y * image.width + x) * 3 + c]) / 255.0;
    let top = px(y0, x0) * (1.0 - lx) + px(y0, x1) * lx;
    let bottom = px(y1, x0) * (1.0 - lx) + px(y1, x1) * lx;
    top * (1.0 - ly) + bottom * ly
}

/// The paper's resize: bilinear (PyTorch's `interpolate(mode="bilinear", align_corners=False)`) of the whole image to a square.
fn push_bilinear(image: &crate::Image, p: &Preprocess, out: &mut Vec<f32>) {
    let (ys, xs) = (bilinear_taps(image.height, p.size), bilinear_taps(image.width, p.size));
    for c in 0..3 {
        for &y in &ys {
            for &x in &xs {
                out.push((bilinear_at(image, c, y, x) - p.mean[c]) / p.std[c]);
            }
        }
    }
}

/// The whole image resized bilinearly (as [`Resize::Paper`]) to `height`×`width`, rounded to 8 bits; an image of that size
/// comes back unchanged.
pub fn resize_bilinear(image: &crate::Image, height: usize, width: usize) -> crate::Image {
    if image.height == height && image.width == width {
        return image.clone();
    }
    let (ys, xs) = (bilinear_taps(image.height, height), bilinear_taps(image.width, width));
    let mut data = Vec::with_capacity(height * width * 3);
    for &y in &ys {
        for &x in &xs {
            for c in 0..3 {
                data.push((bilinear_at(image, c, y, x) * 255.0).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    crate::Image::new(height, width, data)
}
