//! Each attribute on synthetic images whose value is known by construction.

use super::*;
use crate::planted::{Transform, apply_transform};

fn constant(h: usize, w: usize, rgb: [u8; 3]) -> Image {
    Image::new(h, w, rgb.iter().copied().cycle().take(h * w * 3).collect())
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn a_constant_image_has_its_value_and_nothing_else() {
    let a = attributes(&constant(16, 16, [128, 128, 128]));
    assert!(close(a.measure(Measure::Brightness), 128.0 / 255.0, 1e-5));
    for m in [Measure::Contrast, Measure::Saturation, Measure::Colourfulness, Measure::Sharpness, Measure::Noise] {
        assert!(close(a.measure(m), 0.0, 1e-5), "{m:?} = {}", a.measure(m));
    }
    assert!(a.grayscale() && a.hue.is_none());
    assert_eq!(BACKGROUNDS[usize::from(a.background)], "gray");
    assert_eq!(a.measure(Measure::ObjectShare), 0.0);
    // A pure red one: saturation 1, dominant hue and background red.
    let red = attributes(&constant(8, 8, [255, 0, 0]));
    assert!(close(red.measure(Measure::Saturation), 1.0, 1e-6) && !red.grayscale());
    assert_eq!(HUES[usize::from(red.hue.unwrap())], "red");
    assert_eq!(BACKGROUNDS[usize::from(red.background)], "red");
    // Colourfulness of a constant colour is 0.3 times its opponent mean: rg = 1, yb = 0.5.
    assert!(close(red.measure(Measure::Colourfulness), 0.3 * (1.0f32 + 0.25).sqrt(), 1e-5));
}

#[test]
fn a_checkerboard_has_full_contrast_and_is_sharp() {
    let data = (0..16 * 16).flat_map(|i| if (i / 16 + i % 16) % 2 == 0 { [0u8; 3] } else { [255u8; 3] }).collect();
    let a = attributes(&Image::new(16, 16, data));
    assert!(close(a.measure(Measure::Brightness), 0.5, 1e-5));
    assert!(close(a.measure(Measure::Contrast), 0.5, 1e-5));
    // Every interior Laplacian is ±4 (a black pixel among white neighbours or the reverse): mean 0, variance 16, over the
    // variance of luma, 0.25.
    assert!(close(a.measure(Measure::Sharpness), 64.0, 1e-2), "{}", a.measure(Measure::Sharpness));
}

#[test]
fn blurring_an_edge_lowers_sharpness_and_a_grayscale_copy_is_grayscale() {
    let data: Vec<u8> = (0..32 * 32)
        .flat_map(|i| {
            let x = i % 32;
            if x < 16 { [200, 40, 30] } else { [20, 60, 220] }
        })
        .collect();
    let edge = Image::new(32, 32, data);
    let sharp = attributes(&edge);
    let blurred = attributes(&apply_transform(&edge, Transform::Blur { radius: 2 }, 0));
    assert!(blurred.measure(Measure::Sharpness) < 0.2 * sharp.measure(Measure::Sharpness));
    assert!(!sharp.grayscale());
    let gray = attributes(&apply_transform(&edge, Transform::Grayscale, 0));
    assert!(gray.grayscale() && gray.hue.is_none());
}

#[test]
fn added_noise_is_estimated_and_the_object_share_is_the_square_s_area() {
    let flat = constant(64, 64, [120, 120, 120]);
    let noisy = apply_transform(&flat, Transform::Noise { sigma: 10.0 }, 7);
    let a = attributes(&noisy);
    // The measure is relative to the contrast; times the contrast it is Immerkær's estimate of the noise itself.
    let sigma = a.measure(Measure::Noise) * a.measure(Measure::Contrast) * 255.0;
    // Independent noise of 10 on each channel is noise of 10 * |(0.299, 0.587, 0.114)| = 6.68 on luma.
    let expected = 10.0 * (0.299f32 * 0.299 + 0.587 * 0.587 + 0.114 * 0.114).sqrt();
    assert!((sigma - expected).abs() < 0.7, "estimated sigma {sigma}, expected {expected}");
    // On a flat image the noise is all the contrast there is: a ratio near 1.
    assert!(close(a.measure(Measure::Noise), 1.0, 0.12), "{}", a.measure(Measure::Noise));
    // A white 16x16 square in the middle of a black 32x32 frame: a quarter of the image.
    let data = (0..32 * 32)
        .flat_map(|i| {
            let (y, x) = (i / 32, i % 32);
            if (8..24).contains(&y) && (8..24).contains(&x) { [255u8; 3] } else { [0u8; 3] }
        })
        .collect();
    let a = attributes(&Image::new(32, 32, data));
    assert!(close(a.measure(Measure::ObjectShare), 0.25, 1e-6));
    assert_eq!(BACKGROUNDS[usize::from(a.background)], "black");
}

#[test]
fn colours_are_named_from_the_palette() {
    let name = |rgb: [f32; 3]| BACKGROUNDS[usize::from(colour_name(rgb))];
    assert_eq!(name([0.05, 0.05, 0.05]), "black");
    assert_eq!(name([0.5, 0.5, 0.52]), "gray");
    assert_eq!(name([0.95, 0.95, 0.95]), "white");
    assert_eq!(name([0.45, 0.3, 0.15]), "brown");
    assert_eq!(name([0.3, 0.5, 0.9]), "blue");
    assert_eq!(name([0.2, 0.7, 0.2]), "green");
    assert_eq!(HUES[usize::from(hue_name(350.0))], "red");
    assert_eq!(HUES[usize::from(hue_name(210.0))], "blue");
}

#[test]
fn lowering_the_contrast_leaves_sharpness_noise_object_share_and_colour_alone() {
    // A textured image: two coloured halves, a white square, and noise.
    let data: Vec<u8> = (0..48 * 48)
        .flat_map(|i| {
            let (y, x) = (i / 48, i % 48);
            if (16..32).contains(&y) && (20..36).contains(&x) {
                [230, 230, 230]
            } else if x < 24 {
                [180, 60, 40]
            } else {
                [30, 70, 200]
            }
        })
        .collect();
    let image = apply_transform(&Image::new(48, 48, data), Transform::Noise { sigma: 12.0 }, 3);
    let low = apply_transform(&image, Transform::LowContrast { factor: 0.3 }, 0);
    let (a, b) = (attributes(&image), attributes(&low));
    let ratio = |m: Measure| b.measure(m) / a.measure(m);
    assert!(close(ratio(Measure::Contrast), 0.3, 0.02), "contrast ratio {}", ratio(Measure::Contrast));
    // Rounding to 8 bits after the change adds a little detail of its own.
    for m in [Measure::Sharpness, Measure::Noise, Measure::Saturation, Measure::Colourfulness] {
        assert!(close(ratio(m), 1.0, 0.15), "{m:?}: {} then {}", a.measure(m), b.measure(m));
    }
    assert!(close(b.measure(Measure::ObjectShare), a.measure(Measure::ObjectShare), 0.05));
    // Blur still lowers sharpness and noise, and noise still raises noise.
    let blurred = attributes(&apply_transform(&image, Transform::Blur { radius: 2 }, 0));
    assert!(blurred.measure(Measure::Sharpness) < 0.3 * a.measure(Measure::Sharpness));
    assert!(blurred.measure(Measure::Noise) < 0.5 * a.measure(Measure::Noise));
    let noisier = attributes(&apply_transform(&image, Transform::Noise { sigma: 40.0 }, 5));
    assert!(noisier.measure(Measure::Noise) > 1.5 * a.measure(Measure::Noise));
    // Taking colour away still lowers both colour measures: each pixel halfway to its own grey, which keeps the contrast.
    let half_grey: Vec<u8> = image
        .data
        .chunks(3)
        .flat_map(|p| {
            let y = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
            p.iter().map(move |&v| (0.5 * (f32::from(v) + y)).round() as u8).collect::<Vec<_>>()
        })
        .collect();
    let duller = attributes(&Image::new(48, 48, half_grey));
    assert!(close(duller.measure(Measure::Contrast), a.measure(Measure::Contrast), 0.01));
    for m in [Measure::Saturation, Measure::Colourfulness] {
        assert!(duller.measure(m) < 0.8 * a.measure(m), "{m:?}: {} then {}", a.measure(m), duller.measure(m));
    }
}
