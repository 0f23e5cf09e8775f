//! [`Images`]: the images a split part indexes, either in memory (a [`Dataset`] of one size) or on disk ([`Files`], decoded on
//! demand at each file's own size). Consumers read them in batches ([`Images::batches`]), so a dataset on disk never sits decoded
//! in memory at once, and each resizes to what it needs: the embedder the full image through its own preprocessing, a classifier
//! trained here its input size ([`Images::dataset`]).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::folder::{Listing, decode_image};
use crate::preprocess::resize_bilinear;
use crate::{Dataset, Image};

/// Some entries of a [`Listing`], in a fixed order: image `i` of the set is entry `rows[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    listing: Arc<Listing>,
    rows: Vec<usize>,
    labels: Vec<u16>,
}

impl Files {
    /// The entries `rows` of `listing`, in that order.
    pub fn new(listing: Arc<Listing>, rows: Vec<usize>) -> Files {
        let labels = rows.iter().map(|&r| listing.entries[r].label).collect();
        Files { listing, rows, labels }
    }

    /// The listing the files come from.
    pub fn listing(&self) -> &Listing {
        &self.listing
    }

    /// The listing entry of each image, in set order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }
}

/// Labelled images, in memory or on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    /// Decoded images of one size (the built-in datasets).
    Memory(Dataset),
    /// Image files, decoded when read.
    Files(Files),
}

impl Images {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels().len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of every image.
    pub fn labels(&self) -> &[u16] {
        match self {
            Images::Memory(d) => d.labels(),
            Images::Files(f) => &f.labels,
        }
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        match self {
            Images::Memory(d) => d.class_names(),
            Images::Files(f) => &f.listing.class_names,
        }
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names().len()
    }

    /// The file image `i` comes from, for images on disk.
    pub fn path(&self, i: usize) -> Option<PathBuf> {
        match self {
            Images::Memory(_) => None,
            Images::Files(f) => Some(f.listing.path(f.rows[i])),
        }
    }

    /// Image `i` at its own size.
    pub fn image(&self, i: usize) -> Result<Image> {
        match self {
            Images::Memory(d) => Ok(d.image(i)),
            Images::Files(f) => decode_image(&f.listing.path(f.rows[i])),
        }
    }

    /// Hands the images `indices` to `f` in batches of `batch`, in order, each image at its own size; files are decoded a batch at
    /// a time, on every core. An unreadable file is an error naming it.
    pub fn batches(
        &self,
        indices: &[usize],
        batch: usize,
        mut f: impl FnMut(&[usize], Vec<Image>) -> Result<()>,
    ) -> Result<()> {
        for chunk in indices.chunks(batch.max(1)) {
            let images = match self {
                Images::Memory(d) => chunk.iter().map(|&i| d.image(i)).collect(),
                Images::Files(files) => chunk
                    .par_iter()
                    .map(|&i| decode_image(&files.listing.path(files.rows[i])))
                    .collect::<Result<Vec<Image>>>()?,
            };
            f(chunk, images)?;
        }
        Ok(())
    }

    /// The images `indices`, in that order, as a dataset of `size`×`size` images (resized bilinearly, the whole image, as the
    /// paper resizes; images already of that size are copied as they are).
    pub fn resized(&self, indices: &[usize], size: usize) -> Result<Dataset> {
        let mut pixels = Vec::with_capacity(indices.len() * size * size * 3);
        self.batches(indices, 256, |_, images| {
            for image in images {
                pixels.extend_from_slice(&resize_bilinear(&image, size, size).data);
            }
            Ok(())
        })?;
        let labels = indices.iter().map(|&i| self.labels()[i]).collect();
        Dataset::new(size, size, pixels, labels, self.class_names().to_vec())
    }

    /// Every image as one dataset a classifier trained here can read: a dataset in memory as it is, files decoded and resized to
    /// `size`×`size`.
    pub fn dataset(&self, size: usize) -> Result<Cow<'_, Dataset>> {
        match self {
            Images::Memory(d) => Ok(Cow::Borrowed(d)),
            Images::Files(_) => {
                let all: Vec<usize> = (0..self.len()).collect();
                Ok(Cow::Owned(self.resized(&all, size)?))
            }
        }
    }

    /// The dataset in memory; an error for images on disk (`what` names the consumer that needs them in memory).
    pub fn memory(&self, what: &str) -> Result<&Dataset> {
        match self {
            Images::Memory(d) => Ok(d),
            Images::Files(_) => {
                Err(Error::Invalid(format!("{what} works on a built-in dataset, not on images from disk")))
            }
        }
    }
}

impl From<Dataset> for Images {
    fn from(d: Dataset) -> Images {
        Images::Memory(d)
    }
}
