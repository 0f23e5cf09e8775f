//! The decoded-dataset cache round-trips and refuses damaged files.

use crate::cache::{encode_dataset, read_dataset, write_dataset};
use crate::test_util::sample;

#[test]
fn round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.fdds");
    let data = sample();
    write_dataset(&data, &path).unwrap();
    assert_eq!(read_dataset(&path).unwrap(), data);
}

#[test]
fn truncated_or_foreign_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.fdds");
    let bytes = encode_dataset(&sample());
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let e = read_dataset(&path).unwrap_err().to_string();
    assert!(e.contains("d.fdds") && e.contains("expected 73921 bytes, found 73920"), "{e}");
    std::fs::write(&path, b"PNG....").unwrap();
    let e = read_dataset(&path).unwrap_err().to_string();
    assert!(e.contains("truncated dataset cache"), "{e}");
    std::fs::write(&path, [b"FDDATA02".as_slice(), &bytes[8..]].concat()).unwrap();
    assert!(read_dataset(&path).unwrap_err().to_string().contains("bad magic"));
}
