//! The paper's CIFAR training augmentation (method spec §1.2, FFCV's pipeline): random horizontal flip, random translation by up to 2 pixels filled with the mean, and a 4×4 cutout filled with the mean.

use rand::Rng;

/// Augments one HWC RGB image in place, drawing from `rng`.
pub fn augment(image: &mut [u8], height: usize, width: usize, fill: [u8; 3], rng: &mut impl Rng) {
    // RandomHorizontalFlip(p = 0.5).
    if rng.random_bool(0.5) {
        for y in 0..height {
            let row = &mut image[y * width * 3..(y + 1) * width * 3];
            for x in 0..width / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (width - 1 - x) * 3 + c);
                }
            }
        }
    }
    // RandomTranslate(padding = 2, fill = mean): pad by 2, crop at a random offset.
    let (dy, dx) = (rng.random_range(0..=4) as isize - 2, rng.random_range(0..=4) as isize - 2);
    translate(image, height, width, dy, dx, fill);
    // Cutout(4, fill = mean): a 4×4 square at a random place inside the image.
    let size = 4.min(height).min(width);
    let (top, left) = (rng.random_range(0..=height - size), rng.random_range(0..=width - size));
    for y in top..top + size {
        for x in left..left + size {
            image[(y * width + x) * 3..(y * width + x) * 3 + 3].copy_from_slice(&fill);
        }
    }
}

/// Shifts the image by `(dy, dx)`: pixel `(y, x)` of the result is `(y + dy, x + dx)` of the source, `fill` outside it.
pub fn translate(image: &mut [u8], height: usize, width: usize, dy: isize, dx: isize, fill: [u8; 3]) {
    if dy == 0 && dx == 0 {
        return;
    }
    let source = image.to_vec();
    for y in 0..height {
        for x in 0..width {
            let (sy, sx) = (y as isize + dy, x as isize + dx);
            let dst = (y * width + x) * 3;
            if (0..height as isize).contains(&sy) && (0..width as isize).contains(&sx) {
                let src = (sy as usize * width + sx as usize) * 3;
                image[dst..dst + 3].copy_from_slice(&source[src..src + 3]);
            } else {
                image[dst..dst + 3].copy_from_slice(&fill);
            }
        }
    }
}
