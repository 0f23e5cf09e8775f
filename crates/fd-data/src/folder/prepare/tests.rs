//! The split rule of a listing, its groups, and the images it hands out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::folder::Entry;

/// A listing of `per_class` entries for each of `classes` classes (interleaved), with `split` and `group` chosen per index.
fn listing(
    classes: usize,
    per_class: usize,
    split: impl Fn(usize) -> Option<SplitPart>,
    group: impl Fn(usize) -> Option<&'static str>,
) -> Arc<Listing> {
    let entries = (0..classes * per_class)
        .map(|i| Entry {
            path: PathBuf::from(format!("img{i:04}.png")),
            label: (i % classes) as u16,
            split: split(i),
            group: group(i).map(String::from),
            metadata: BTreeMap::new(),
        })
        .collect();
    Arc::new(Listing {
        root: PathBuf::from("/data"),
        class_names: (0..classes).map(|c| format!("c{c}")).collect(),
        entries,
    })
}

fn rows(images: &Images) -> Vec<usize> {
    match images {
        Images::Files(f) => f.rows().to_vec(),
        Images::Memory(_) => Vec::new(),
    }
}

#[test]
fn without_splits_every_sixth_image_per_class_is_test_and_the_rest_is_split_as_cifar10() {
    let l = listing(2, 60, |_| None, |_| None);
    let p = split_listing(l.clone(), &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap();
    // Test: every 6th of each class in listing order, sorted; 10 + 10.
    let test = rows(&p.test);
    assert_eq!(test.len(), 20);
    assert_eq!(&test[..4], [0, 1, 12, 13]);
    // The training set is the other 100, split by the paper's rule as CIFAR-10's training set would be.
    let train_rows = rows(&p.train);
    assert_eq!(train_rows.len(), 100);
    let labels: Vec<u16> = train_rows.iter().map(|&r| l.entries[r].label).collect();
    let expected = split(&labels, 2, 20, &SplitConfig::paper_cifar10());
    assert_eq!(p.split, expected);
    assert_eq!((p.split.train.len(), p.split.val.len(), p.split.extra.len()), (20, 20, 60));
    assert!(p.groups.is_none());
}

#[test]
fn marked_test_and_train_images_keep_their_part_and_train_is_split_by_the_rule() {
    // As CIFAR-10 exported with `<set>/<class>/…`: train and test marked, no val.
    let l = listing(2, 60, |i| Some(if i >= 100 { SplitPart::Test } else { SplitPart::Train }), |_| None);
    let p = split_listing(l, &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap();
    assert_eq!(rows(&p.test), (100..120).collect::<Vec<_>>());
    assert_eq!(rows(&p.train), (0..100).collect::<Vec<_>>());
    assert_eq!(p.split.val.len(), 20);
}

#[test]
fn a_full_user_split_is_taken_as_it_is_and_a_partial_one_is_an_error() {
    let part = |i: usize| match i % 5 {
        0 => SplitPart::Val,
        1 => SplitPart::Test,
        2 => SplitPart::Extra,
        _ => SplitPart::Train,
    };
    let l = listing(2, 10, |i| Some(part(i)), |_| None);
    let p = split_listing(l.clone(), &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap();
    let train_rows = rows(&p.train);
    for (name, idx) in p.split.parts() {
        let set_rows = if name.is_test() { rows(&p.test) } else { train_rows.clone() };
        assert!(idx.iter().all(|&i| l.entries[set_rows[i]].split == Some(name)), "{name}");
    }
    assert_eq!((p.split.val.len(), p.split.test.len()), (4, 4));
    let partial = listing(2, 10, |i| (i != 3).then(|| part(i)), |_| None);
    let e = split_listing(partial, &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap_err().to_string();
    assert!(e.contains("img0003.png has none"), "{e}");
}

#[test]
fn groups_come_from_the_group_column_and_the_minority_ones_are_planted() {
    // Class 0 is mostly "water" with some "land", class 1 the reverse, so neither is a minority everywhere and neither is
    // planted by the default rule; "rare" is a minority in both classes.
    let group = |i: usize| {
        let class = i % 2;
        Some(match (i / 2) % 10 {
            0 => "rare",
            1 | 2 if class == 0 => "land",
            1 | 2 => "water",
            _ if class == 0 => "water",
            _ => "land",
        })
    };
    let l = listing(2, 60, |_| None, group);
    let p = split_listing(l.clone(), &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap();
    let g = p.groups.as_ref().unwrap();
    assert_eq!(g.names, ["land", "rare", "water"]);
    assert_eq!(g.planted, [1]);
    for (i, &r) in rows(&p.test).iter().enumerate() {
        assert_eq!(g.names[usize::from(g.test[i])], group(r).unwrap());
    }
    let named = split_listing(l.clone(), &SplitConfig::paper_cifar10(), &["land".into()], &BTreeSet::new()).unwrap();
    assert_eq!(named.groups.unwrap().planted, [0]);
    let e = split_listing(l, &SplitConfig::paper_cifar10(), &["sea".into()], &BTreeSet::new()).unwrap_err().to_string();
    assert!(e.contains("\"sea\"") && e.contains("land, rare, water"), "{e}");
}

#[test]
fn too_few_images_for_val_or_test_is_an_error() {
    let l = listing(2, 1, |_| None, |_| None);
    let e = split_listing(l, &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap_err().to_string();
    assert!(e.contains("the SVMs need val and test images"), "{e}");
}

#[test]
fn left_out_files_keep_every_other_files_listing_index_and_extra_without_val_is_an_error() {
    let l = listing(2, 60, |_| None, |_| None);
    let left_out: BTreeSet<usize> = [0, 7, 64].into();
    let p = split_listing(l.clone(), &SplitConfig::paper_cifar10(), &[], &left_out).unwrap();
    let (train, test) = (rows(&p.train), rows(&p.test));
    assert_eq!(train.len() + test.len(), 117);
    assert!(train.iter().chain(&test).all(|r| !left_out.contains(r)));
    // Rows keep their listing index: entry 1's file is still entry 1.
    assert!(train.iter().chain(&test).any(|&r| r == 1));
    let marked = listing(2, 60, |i| (i % 9 == 0).then_some(SplitPart::Extra), |_| None);
    let e = split_listing(marked, &SplitConfig::paper_cifar10(), &[], &BTreeSet::new()).unwrap_err().to_string();
    assert!(e.contains("img0000.png is marked extra but no image is marked val"), "{e}");
}

#[test]
fn files_are_read_at_their_own_size_and_resized_for_a_classifier() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/folder/images");
    let config = FolderConfig {
        images: Some(fixture),
        manifest: None,
        classes: None,
        image_size: 8,
        skip_unreadable: false,
        planted_groups: Vec::new(),
    };
    let listing = Arc::new(config.listing().unwrap());
    let files = Images::Files(Files::new(listing.clone(), vec![6, 0]));
    assert_eq!(files.labels(), [1, 0]);
    let own = files.image(1).unwrap();
    assert_eq!(own, crate::folder::decode_image(&listing.path(0)).unwrap());
    let mut seen = Vec::new();
    files
        .batches(&[0, 1], 1, |idx, images| {
            seen.push((idx.to_vec(), images[0].height));
            Ok(())
        })
        .unwrap();
    let g_photo = crate::folder::decode_image(&listing.path(6)).unwrap();
    assert_eq!(seen, [(vec![0], g_photo.height), (vec![1], own.height)]);
    let small = files.resized(&[1, 0], 8).unwrap();
    assert_eq!((small.len(), small.height(), small.labels()), (2, 8, &[0u16, 1][..]));
    assert_eq!(small.image(0), crate::preprocess::resize_bilinear(&own, 8, 8));
    assert_eq!(files.path(0).unwrap(), listing.path(6));
}
