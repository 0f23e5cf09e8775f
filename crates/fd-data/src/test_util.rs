//! Helpers shared by the unit tests: the committed CIFAR-10 sample and the real-data switch.

use std::path::{Path, PathBuf};

use crate::cifar10::{self, CLASS_NAMES};
use crate::{Dataset, fetch};

/// The committed sample: the first 24 CIFAR-10 test images, cut by `fixtures/cifar10-sample/make_sample.py`.
pub(crate) fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cifar10-sample")
}

/// The sample as a dataset, read through the PNG layout reader.
pub(crate) fn sample() -> Dataset {
    let dir = sample_dir();
    let labels = cifar10::read_labels_json(&dir.join("test_lables.json"), 24).unwrap();
    let pixels = cifar10::read_png_batch(&dir.join("test_batch.png"), 24).unwrap();
    Dataset::new(32, 32, pixels, labels, CLASS_NAMES.iter().map(|s| s.to_string()).collect()).unwrap()
}

/// The cache directory holding real CIFAR-10, when `FD_TEST_CIFAR10=1` asks for the real-data checks.
pub(crate) fn real_data_dir() -> Option<PathBuf> {
    if std::env::var("FD_TEST_CIFAR10").ok().as_deref() != Some("1") {
        return None;
    }
    let dir = fetch::default_data_dir();
    assert!(
        fetch::cifar10_cache_files(&dir).iter().all(|f| f.is_file()),
        "FD_TEST_CIFAR10=1 but {} holds no decoded CIFAR-10; run `cargo xtask fetch cifar10` first",
        dir.display()
    );
    Some(dir)
}

/// A dataset of `n` images made by cycling the sample.
pub(crate) fn cycled_sample(n: usize) -> Dataset {
    let s = sample();
    let idx: Vec<usize> = (0..n).map(|i| i % s.len()).collect();
    s.subset(&idx)
}
