//! `Image`, the picture type that crosses crate boundaries, and PNG writers for single images and grids.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fs::write_atomic;

/// An 8-bit RGB image, `height` rows of `width` pixels, stored row-major with interleaved channels (HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Rows.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
    /// `height * width * 3` bytes, RGB interleaved.
    pub data: Vec<u8>,
}

impl Image {
    /// Wraps `data`, which must hold `height * width * 3` bytes.
    pub fn new(height: usize, width: usize, data: Vec<u8>) -> Image {
        assert_eq!(
            data.len(),
            height * width * 3,
            "an image of {height}x{width} needs {} bytes, got {}",
            height * width * 3,
            data.len()
        );
        Image { height, width, data }
    }

    /// The RGB value at row `y`, column `x`.
    pub fn pixel(&self, y: usize, x: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Encodes `image` as an 8-bit RGB PNG.
pub fn encode_png(image: &Image) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, image.width as u32, image.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("writing a PNG header to memory cannot fail");
        writer.write_image_data(&image.data).expect("writing PNG data of the right length to memory cannot fail");
    }
    out
}

/// Decodes an 8-bit RGB or RGBA PNG (alpha is dropped); `path` only names the source in errors.
pub fn decode_png(bytes: &[u8], path: &Path) -> Result<Image> {
    let format = |message: String| Error::Format { path: path.to_path_buf(), message };
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| format(format!("not a readable PNG: {e}")))?;
    let (color, depth) = reader.output_color_type();
    if depth != png::BitDepth::Eight || !matches!(color, png::ColorType::Rgb | png::ColorType::Rgba) {
        return Err(format(format!("expected an 8-bit RGB PNG, found {color:?} at {depth:?}")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| format("the PNG is too large to decode".into()))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| format(format!("corrupt PNG data: {e}")))?;
    buf.truncate(info.buffer_size());
    let (height, width) = (info.height as usize, info.width as usize);
    if color == png::ColorType::Rgba {
        buf = buf.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    }
    Ok(Image::new(height, width, buf))
}

/// Lays `images` out in a grid of `columns` columns with `gap` pixels of `background` between them.
///
/// Every image must have the size of the first; an empty slice gives an empty image.
pub fn image_grid(images: &[Image], columns: usize, gap: usize, background: [u8; 3]) -> Image {
    assert!(columns > 0, "a grid needs at least one column");
    let Some(first) = images.first() else {
        return Image::new(0, 0, Vec::new());
    };
    let (h, w) = (first.height, first.width);
    let rows = images.len().div_ceil(columns);
    let cols = columns.min(images.len());
    let (height, width) = (rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap);
    let mut data: Vec<u8> = background.iter().copied().cycle().take(height * width * 3).collect();
    for (k, img) in images.iter().enumerate() {
        assert!(img.height == h && img.width == w, "grid image {k} is {}x{}, expected {h}x{w}", img.height, img.width);
        let (top, left) = (gap + (k / columns) * (h + gap), gap + (k % columns) * (w + gap));
        for y in 0..h {
            let dst = ((top + y) * width + left) * 3;
            data[dst..dst + w * 3].copy_from_slice(&img.data[y * w * 3..(y + 1) * w * 3]);
        }
    }
    Image::new(height, width, data)
}

/// Writes `image` to `path` as a PNG, through a temporary file so that an existing file is never left half-written.
pub fn write_png(image: &Image, path: &Path) -> Result<()> {
    write_atomic(path, &encode_png(image))
}

#[cfg(test)]
mod tests;
