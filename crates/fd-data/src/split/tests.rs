//! The splitter against the Python reference of failure_directions' `create_dataset_split`, on the real CIFAR-10 labels.

use std::path::Path;

use expect_test::expect;
use serde::Deserialize;

use crate::count_labels;
use crate::split::{SplitConfig, create_dataset_split, every_kth_per_class, split};

#[derive(Deserialize)]
struct PartReference {
    len: usize,
    first: Vec<usize>,
    last: Vec<usize>,
    class_counts: Vec<usize>,
    sha256_u32le: String,
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/split").join(name)).unwrap()
}

fn check(indices: &[usize], labels: &[u16], reference: &PartReference) {
    assert_eq!(indices.len(), reference.len);
    assert_eq!(&indices[..reference.first.len()], reference.first.as_slice());
    assert_eq!(&indices[indices.len() - reference.last.len()..], reference.last.as_slice());
    let part_labels: Vec<u16> = indices.iter().map(|&i| labels[i]).collect();
    assert_eq!(count_labels(&part_labels, 10), reference.class_counts);
    let bytes: Vec<u8> = indices.iter().flat_map(|&i| (i as u32).to_le_bytes()).collect();
    let digest = crate::sha256_hex(&bytes);
    assert_eq!(digest, reference.sha256_u32le, "the indices differ from the reference in order or content");
}

#[test]
fn paper_cifar10_split_matches_the_reference_index_for_index() {
    let labels: Vec<u16> = serde_json::from_slice(&fixture("cifar10_train_labels.json")).unwrap();
    let reference: std::collections::HashMap<String, PartReference> =
        serde_json::from_slice(&fixture("paper_split.json")).unwrap();
    let s = split(&labels, 10, 10_000, &SplitConfig::paper_cifar10());
    check(&s.train, &labels, &reference["train"]);
    check(&s.val, &labels, &reference["val"]);
    check(&s.extra, &labels, &reference["extra"]);
    assert_eq!(s.test, (0..10_000).collect::<Vec<_>>());
    // Pinned by hand as well, so a change of the fixture cannot pass unnoticed.
    assert_eq!(&s.train[..4], &[30, 115, 185, 223]);
    assert_eq!(&s.val[..4], &[29, 93, 179, 220]);
    assert_eq!(&s.extra[..4], &[12, 14, 15, 16]);
    assert_eq!((s.train.len(), s.val.len(), s.extra.len()), (10_000, 10_000, 30_000));
}

#[test]
fn every_kth_per_class_keeps_class_order_then_sorted_rest() {
    let labels = [1, 0, 1, 1, 0, 2, 1, 0, 0, 2, 1];
    let (a, b) = every_kth_per_class(&labels, 3, 2);
    expect![[r#"([1, 7, 0, 3, 10, 5], [2, 4, 6, 8, 9])"#]].assert_eq(&format!("{:?}", (a, b)));
    let parts = create_dataset_split(&labels, 3, Some(3), Some(2));
    expect![[r#"DatasetSplit { val: [1, 8, 0, 6, 5], unlabeled: [4, 2, 10, 9], train: [3, 7] }"#]]
        .assert_eq(&format!("{parts:?}"));
    let unswapped = split(&labels, 3, 2, &SplitConfig { val_every: 3, pool_every: 2, swap: false });
    assert_eq!((unswapped.train, unswapped.extra), (parts.train, parts.unlabeled));
}
