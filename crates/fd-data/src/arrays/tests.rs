//! `.npy` and safetensors arrays, against files written byte for byte as NumPy's format describes them.

use super::*;

/// A `.npy` file (format 1.0) with `descr`, `shape` and the raw little-endian `data`.
fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn npy_files_of_every_numeric_type_read_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let f4: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let a = read_npy(&write("f4.npy", npy("<f4", "(2, 3)", false, &f4))).unwrap();
    assert_eq!(a.shape, [2, 3]);
    assert_eq!(a.values, Values::F32(vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.5]));
    let f8: Vec<u8> = [0.25f64, 1e-3].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(read_npy(&write("f8.npy", npy("<f8", "(2,)", false, &f8))).unwrap().to_f32(), [0.25, 1e-3]);
    let i8s: Vec<u8> = [3i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(read_npy(&write("i8.npy", npy("<i8", "(2,)", false, &i8s))).unwrap().integers(), Some(&[3i64, -1][..]));
    let u1 = read_npy(&write("u1.npy", npy("|u1", "(3,)", false, &[0, 9, 255]))).unwrap();
    assert_eq!(u1.integers(), Some(&[0i64, 9, 255][..]));
    // Errors name the file.
    let e = read_npy(&write("short.npy", npy("<f4", "(4,)", false, &f4[..8]))).unwrap_err().to_string();
    assert!(e.contains("short.npy"), "{e}");
    let e = read_npy(&write("fortran.npy", npy("<f4", "(2, 3)", true, &f4))).unwrap_err().to_string();
    assert!(e.contains("fortran.npy") && e.contains("Fortran order"), "{e}");
    let e = read_npy(&write("text.npy", b"hello".to_vec())).unwrap_err().to_string();
    assert!(e.contains("text.npy") && e.contains("not a NumPy"), "{e}");
}

#[test]
fn safetensors_tensors_read_by_name() {
    use safetensors::{Dtype, tensor::TensorView};
    let dir = tempfile::tempdir().unwrap();
    let f: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let i: Vec<u8> = [5i64, 6].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [
        ("embeddings", TensorView::new(Dtype::F32, vec![2, 2], &f).unwrap()),
        ("index", TensorView::new(Dtype::I64, vec![2], &i).unwrap()),
    ];
    let path = dir.path().join("e.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let a = read_array(&path, "embeddings").unwrap();
    assert_eq!((a.shape.clone(), a.to_f32()), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    assert_eq!(read_safetensors(&path).unwrap()["index"].integers(), Some(&[5i64, 6][..]));
    let e = read_array(&path, "logits").unwrap_err().to_string();
    assert!(e.contains("e.safetensors") && e.contains("no tensor named \"logits\""), "{e}");
}

#[test]
fn the_npy_writers_round_trip_through_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let (f, i) = (dir.path().join("f.npy"), dir.path().join("i.npy"));
    std::fs::write(&f, npy_f32(&[2, 2], &[0.5, -1.0, 3.0, 1e-7])).unwrap();
    std::fs::write(&i, npy_i64(&[3], &[7, -2, 0])).unwrap();
    let a = read_npy(&f).unwrap();
    assert_eq!((a.shape.clone(), a.values.clone()), (vec![2, 2], Values::F32(vec![0.5, -1.0, 3.0, 1e-7])));
    assert_eq!(read_npy(&i).unwrap().integers(), Some(&[7i64, -2, 0][..]));
}
