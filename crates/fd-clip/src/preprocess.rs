//! Image preprocessing for the embedders: a plain bilinear resize of the whole image (as the paper feeds CLIP, method spec §1.4), then per-channel normalisation, into an NCHW batch.

/// CLIP's per-channel mean on the 0-1 scale.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's per-channel standard deviation on the 0-1 scale.
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
}

impl Preprocess {
    /// EfficientNet-Lite's normalisation (TF's `(x - 127.5) / 127.5`) at `size` pixels.
    pub fn efficientnet(size: usize) -> Preprocess {
        Preprocess { size, mean: [0.5; 3], std: [0.5; 3] }
    }

    /// The paper's CLIP input (method spec §1.4): the whole image resized bilinearly to `size`, then CLIP's mean and std.
    pub fn clip_paper(size: usize) -> Preprocess {
        Preprocess { size, mean: CLIP_MEAN, std: CLIP_STD }
    }
}

/// Resizes an HWC u8 image to `size`×`size` with bilinear interpolation (PyTorch's `interpolate(mode="bilinear", align_corners=False)`),
/// normalises it, and appends it in CHW order to `out`.
pub fn push_chw(image: &fd_data::Image, p: &Preprocess, out: &mut Vec<f32>) {
    let (h, w, s) = (image.height, image.width, p.size);
    let taps = |input: usize| -> Vec<(usize, usize, f32)> {
        let scale = input as f32 / s as f32;
        (0..s)
            .map(|d| {
                let src = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(input - 1);
                let i1 = (i0 + 1).min(input - 1);
                (i0, i1, src - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (taps(h), taps(w));
    for c in 0..3 {
        let px = |y: usize, x: usize| f32::from(image.data[(y * w + x) * 3 + c]) / 255.0;
        for &(y0, y1, ly) in &ys {
            for &(x0, x1, lx) in &xs {
                let top = px(y0, x0) * (1.0 - lx) + px(y0, x1) * lx;
                let bottom = px(y1, x0) * (1.0 - lx) + px(y1, x1) * lx;
                let v = top * (1.0 - ly) + bottom * ly;
                out.push((v - p.mean[c]) / p.std[c]);
            }
        }
    }
}
