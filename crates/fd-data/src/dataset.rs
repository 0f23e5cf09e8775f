//! `Dataset`: labelled images of one size, held in memory in one contiguous buffer.

use crate::Image;
use crate::error::{Error, Result};

/// Labelled RGB images that all share one size, stored contiguously (image-major, then HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    height: usize,
    width: usize,
    pixels: Vec<u8>,
    labels: Vec<u16>,
    class_names: Vec<String>,
}

impl Dataset {
    /// Builds a dataset, checking that `pixels` holds `labels.len()` images of `height x width` and that every label names a class.
    pub fn new(
        height: usize,
        width: usize,
        pixels: Vec<u8>,
        labels: Vec<u16>,
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        let per_image = height * width * 3;
        if pixels.len() != labels.len() * per_image {
            return Err(Error::Invalid(format!(
                "{} labels need {} pixel bytes for {height}x{width} images, got {}",
                labels.len(),
                labels.len() * per_image,
                pixels.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= class_names.len()) {
            return Err(Error::Invalid(format!(
                "label {l} of image {i} is out of range (expected 0..{})",
                class_names.len()
            )));
        }
        Ok(Dataset { height, width, pixels, labels, class_names })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows per image.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Pixels per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The label of every image.
    pub fn labels(&self) -> &[u16] {
        &self.labels
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The HWC bytes of image `i`.
    pub fn image_bytes(&self, i: usize) -> &[u8] {
        let n = self.height * self.width * 3;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// A copy of image `i`.
    pub fn image(&self, i: usize) -> Image {
        Image::new(self.height, self.width, self.image_bytes(i).to_vec())
    }

    /// Replaces image `i`, which must keep the dataset's size.
    pub fn set_image(&mut self, i: usize, image: &Image) {
        assert!(
            image.height == self.height && image.width == self.width,
            "image is {}x{}, the dataset holds {}x{}",
            image.height,
            image.width,
            self.height,
            self.width
        );
        let n = self.height * self.width * 3;
        self.pixels[i * n..(i + 1) * n].copy_from_slice(&image.data);
    }

    /// The number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        count_labels(&self.labels, self.class_names.len())
    }

    /// The same images with new labels and class names (for superclass tasks).
    pub fn relabel(&self, labels: Vec<u16>, class_names: Vec<String>) -> Result<Dataset> {
        Dataset::new(self.height, self.width, self.pixels.clone(), labels, class_names)
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let n = self.height * self.width * 3;
        let mut pixels = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            pixels.extend_from_slice(self.image_bytes(i));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Dataset { height: self.height, width: self.width, pixels, labels, class_names: self.class_names.clone() }
    }
}

/// Counts how often each of `0..num_classes` occurs in `labels`.
pub fn count_labels(labels: &[u16], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for &l in labels {
        counts[usize::from(l)] += 1;
    }
    counts
}
