//! Both CIFAR-10 readers against each other, against the independent Python writer of the sample, and against known values.

use std::path::Path;

use crate::cifar10::*;
use crate::test_util::{cycled_sample, real_data_dir, sample, sample_dir};
use crate::{Error, NoProgress, fetch};

fn check_known_values(pixels: &[u8], labels: &[u16]) {
    assert_eq!(&labels[..10], &[3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    assert_eq!(&pixels[..12], &[158, 112, 49, 159, 111, 47, 165, 116, 51, 166, 118, 53]);
}

#[test]
fn png_and_binary_readers_agree_on_the_sample() {
    let png = sample();
    check_known_values(png.pixels(), png.labels());
    let path = sample_dir().join("test_batch.bin");
    let bytes = std::fs::read(&path).unwrap();
    let (pixels, labels) = parse_binary_batch(&bytes, &path).unwrap();
    assert_eq!(pixels, png.pixels());
    assert_eq!(labels, png.labels());
    // The Rust writer reproduces the Python writer byte for byte.
    assert_eq!(encode_binary_batch(&png), bytes);
}

fn write_layouts(dir: &Path, batch: &crate::Dataset) {
    let bin = dir.join(BINARY_DIR);
    let png = dir.join(PNG_DIR);
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&png).unwrap();
    for f in BINARY_TRAIN_FILES.iter().chain([&BINARY_TEST_FILE]) {
        std::fs::write(bin.join(f), encode_binary_batch(batch)).unwrap();
    }
    let rows = crate::Image::new(batch.len(), 1024, batch.pixels().to_vec());
    for f in PNG_TRAIN_FILES.iter().chain([&PNG_TEST_FILE]) {
        crate::write_png(&rows, &png.join(f)).unwrap();
    }
    let labels = serde_json::to_vec(batch.labels()).unwrap();
    let train: Vec<u16> = (0..5).flat_map(|_| batch.labels().iter().copied()).collect();
    std::fs::write(png.join(PNG_TRAIN_LABELS), serde_json::to_vec(&train).unwrap()).unwrap();
    std::fs::write(png.join(PNG_TEST_LABELS), labels).unwrap();
}

#[test]
fn directory_and_tarball_loaders_give_identical_arrays() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = sample();
    write_layouts(tmp.path(), &batch);
    let from_bin = load_cifar10_binary(&tmp.path().join(BINARY_DIR), &NoProgress).unwrap();
    let from_png = load_png_layout(&tmp.path().join(PNG_DIR), batch.len(), &NoProgress).unwrap();
    assert_eq!(from_bin, from_png);
    assert_eq!(from_bin.train.len(), 5 * batch.len());
    assert_eq!(from_bin.test, batch);

    let tgz = tmp.path().join("cifar-10-binary.tar.gz");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&tgz).unwrap(),
        flate2::Compression::fast(),
    ));
    builder.append_dir_all(BINARY_DIR, tmp.path().join(BINARY_DIR)).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    assert_eq!(load_cifar10_tarball(&tgz, &NoProgress).unwrap(), from_bin);
    assert_eq!(detect_layout(tmp.path()), Some(Layout::Binary));
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn truncated_batch_names_the_file_and_the_expected_size() {
    let path = Path::new("/data/data_batch_3.bin");
    let bytes = encode_binary_batch(&sample());
    let e = message(parse_binary_batch(&bytes[..bytes.len() - 100], path).unwrap_err());
    assert!(e.contains("/data/data_batch_3.bin") && e.contains("expected 70679 bytes"), "{e}");
}

#[test]
fn label_out_of_range_is_an_error_naming_the_record() {
    let mut bytes = encode_binary_batch(&sample());
    bytes[2 * RECORD_BYTES] = 10;
    let e = message(parse_binary_batch(&bytes, Path::new("b.bin")).unwrap_err());
    assert_eq!(e, "b.bin: label 10 at position 2 is out of range (expected 0..10)");

    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("test_lables.json");
    std::fs::write(&json, "[3, 8, -1]").unwrap();
    let e = message(read_labels_json(&json, 3).unwrap_err());
    assert!(e.ends_with("label -1 at position 2 is out of range (expected 0..10)"), "{e}");
}

#[test]
fn labels_file_of_the_wrong_length_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("train_lables.json");
    std::fs::write(&json, "[3, 8, 1]").unwrap();
    let e = message(read_labels_json(&json, 50_000).unwrap_err());
    assert!(e.contains("train_lables.json") && e.ends_with("expected 50000 labels, found 3"), "{e}");
    std::fs::write(&json, "{\"not\": \"an array\"}").unwrap();
    assert!(message(read_labels_json(&json, 3).unwrap_err()).contains("expected a JSON array"));
}

#[test]
fn png_of_the_wrong_size_is_an_error() {
    let path = sample_dir().join("test_batch.png");
    let e = message(read_png_batch(&path, BATCH_LEN).unwrap_err());
    assert!(
        e.contains("test_batch.png") && e.contains("expected a PNG of 1024x10000") && e.contains("found 1024x24"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("data_batch_1.png");
    std::fs::write(&garbage, b"not a png at all").unwrap();
    assert!(message(read_png_batch(&garbage, BATCH_LEN).unwrap_err()).contains("not a readable PNG"));
}

#[test]
fn binary_writer_round_trips_a_full_size_batch() {
    let batch = cycled_sample(BATCH_LEN);
    let bytes = encode_binary_batch(&batch);
    assert_eq!(bytes.len(), BATCH_LEN * RECORD_BYTES);
    let (pixels, labels) = parse_binary_batch(&bytes, Path::new("x")).unwrap();
    assert_eq!((pixels.as_slice(), labels.as_slice()), (batch.pixels(), batch.labels()));
}

/// Real data (`FD_TEST_CIFAR10=1`): known values, class counts, and the PNG layout against the binary layout written from it.
#[test]
fn real_cifar10_known_values_and_both_layouts() {
    let Some(dir) = real_data_dir() else { return };
    let data = fetch::load_cached_cifar10(&dir).unwrap();
    check_known_values(data.test.pixels(), data.test.labels());
    assert_eq!(&data.train.labels()[..10], &[6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
    assert_eq!(data.train.class_counts(), vec![5000; 10]);
    assert_eq!(data.test.class_counts(), vec![1000; 10]);
    let png_dir = fetch::cifar10_dir(&dir).join(PNG_DIR);
    if png_dir.is_dir() {
        let from_png = load_cifar10_png(&png_dir, &NoProgress).unwrap();
        assert_eq!(from_png, data);
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join(BINARY_DIR);
        std::fs::create_dir_all(&bin).unwrap();
        for (k, f) in BINARY_TRAIN_FILES.iter().enumerate() {
            let idx: Vec<usize> = (k * BATCH_LEN..(k + 1) * BATCH_LEN).collect();
            std::fs::write(bin.join(f), encode_binary_batch(&data.train.subset(&idx))).unwrap();
        }
        std::fs::write(bin.join(BINARY_TEST_FILE), encode_binary_batch(&data.test)).unwrap();
        assert_eq!(load_cifar10_binary(&bin, &NoProgress).unwrap(), data);
    }
}
