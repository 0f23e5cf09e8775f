//! The image-folder and manifest readers on the fixture Pillow wrote (`fixtures/make_folder_fixture.py`), and their errors.

use std::path::{Path, PathBuf};

use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/folder")
}

#[test]
fn the_folder_and_the_manifest_list_the_same_images() {
    let folder = read_image_folder(&fixture().join("images")).unwrap();
    let manifest = read_manifest(&fixture().join("manifest.csv"), None).unwrap();
    assert_eq!(folder.class_names, ["cat", "dog"]);
    assert_eq!(manifest.class_names, folder.class_names);
    let paths: Vec<String> = folder.entries.iter().map(|e| e.path.display().to_string()).collect();
    // Sorted, and notes.txt left out.
    assert_eq!(
        paths,
        [
            "cat/a_rgb.png",
            "cat/b_gray.png",
            "cat/c_rgba.png",
            "cat/d_palette.png",
            "dog/e_16bit.png",
            "dog/f_lossless.webp",
            "dog/g_photo.jpg",
            "dog/h_rotated.jpg"
        ]
    );
    assert_eq!(folder.labels(), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(manifest.labels(), folder.labels());
    for i in 0..folder.entries.len() {
        assert_eq!(manifest.path(i), folder.path(i), "entry {i}");
    }
    assert!(!folder.has_split() && !manifest.has_split());
    assert_eq!(manifest.entries[1].group.as_deref(), Some("gray"));
    assert_eq!(manifest.entries[7].metadata, BTreeMap::from([("source".to_string(), "pillow".to_string())]));
    assert_eq!(folder.entries[7].group, None);
}

#[derive(Deserialize)]
struct Expected {
    height: usize,
    width: usize,
    tolerance: i32,
    pixels: Vec<u8>,
}

#[test]
fn every_mode_decodes_as_pillow_does() {
    let expected: BTreeMap<String, Expected> =
        serde_json::from_slice(&std::fs::read(fixture().join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 8);
    for (rel, e) in &expected {
        let image = decode_image(&fixture().join("images").join(rel)).unwrap();
        assert_eq!((image.height, image.width), (e.height, e.width), "{rel}");
        let worst = image.data.iter().zip(&e.pixels).map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs()).max().unwrap();
        assert!(worst <= e.tolerance, "{rel}: differs from Pillow by {worst}");
    }
    // EXIF orientation 6: the stored 20x10 image, red left and blue right, shows 10 wide and 20 high, red on top.
    let rotated = decode_image(&fixture().join("images/dog/h_rotated.jpg")).unwrap();
    assert_eq!((rotated.height, rotated.width), (20, 10));
    let (top, bottom) = (rotated.pixel(2, 5), rotated.pixel(17, 5));
    assert!(top[0] > 180 && top[2] < 60 && bottom[2] > 180 && bottom[0] < 60, "{top:?} {bottom:?}");
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture().join("images").join(from), to).unwrap();
}

#[test]
fn a_folder_of_splits_and_streaming_with_unreadable_files() {
    let tmp = tempfile::tempdir().unwrap();
    copy("cat/a_rgb.png", &tmp.path().join("train/cat/1.png"));
    copy("dog/g_photo.jpg", &tmp.path().join("train/dog/2.jpg"));
    copy("cat/b_gray.png", &tmp.path().join("test/cat/3.PNG"));
    std::fs::write(tmp.path().join("test/cat/4.png"), b"\x89PNG\r\n\x1a\n cut short").unwrap();
    let listing = read_image_folder(tmp.path()).unwrap();
    assert!(listing.has_split());
    let splits: Vec<Option<SplitPart>> = listing.entries.iter().map(|e| e.split).collect();
    // Split folders in name order: test before train.
    assert_eq!(splits, [Some(SplitPart::Test), Some(SplitPart::Test), Some(SplitPart::Train), Some(SplitPart::Train)]);
    assert_eq!(listing.labels(), [0, 0, 0, 1]);
    // Decoding stops at the damaged file, naming it, unless asked to skip it.
    let all: Vec<usize> = (0..4).collect();
    let e = listing.decode_batches(&all, 3, false, |_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("4.png") && e.contains("cannot decode the image"), "{e}");
    let mut seen = Vec::new();
    let skipped = listing
        .decode_batches(&all, 3, true, |ids, images| {
            assert_eq!(ids.len(), images.len());
            seen.extend(ids.iter().zip(&images).map(|(&i, im)| (i, im.height, im.width)));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, [(0, 23, 17), (2, 30, 40), (3, 16, 16)]);
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].0.ends_with("test/cat/4.png"));
}

#[test]
fn a_bad_manifest_says_which_line_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |text: &str| {
        let path = tmp.path().join("m.csv");
        std::fs::write(&path, text).unwrap();
        path
    };
    let classes = Some(vec!["cat".to_string(), "dog".to_string()]);
    let e = read_manifest(&write("path,label\na.png,cat\nb.png,cow\n"), classes.clone()).unwrap_err().to_string();
    assert!(e.contains("m.csv: line 3: label \"cow\" is not among the classes (cat, dog)"), "{e}");
    let e = read_manifest(&write("path,label,split\na.png,cat,holdout\n"), None).unwrap_err().to_string();
    assert!(e.contains("line 2: split \"holdout\" is not one of train, val, extra, test"), "{e}");
    let e = read_manifest(&write("file,class\na.png,cat\n"), None).unwrap_err().to_string();
    assert!(e.contains("needs `path` and `label` columns"), "{e}");
    let e = read_manifest(&write("path,label\n,cat\n"), None).unwrap_err().to_string();
    assert!(e.contains("line 2: the path is empty"), "{e}");
    // A classes file fixes the label order, and a label need not appear.
    let m = read_manifest(&write("path,label,split\nx/a.png,dog,test\n"), classes).unwrap();
    assert_eq!((m.labels(), m.has_split(), m.root.as_path()), (vec![1], true, tmp.path()));
    std::fs::write(tmp.path().join("classes.txt"), "cat\n dog \n\n").unwrap();
    assert_eq!(read_classes_file(&tmp.path().join("classes.txt")).unwrap(), ["cat", "dog"]);
    std::fs::write(tmp.path().join("classes.txt"), "cat\ncat\n").unwrap();
    assert!(read_classes_file(&tmp.path().join("classes.txt")).is_err());
    let e = read_image_folder(&tmp.path().join("nowhere")).unwrap_err().to_string();
    assert!(e.contains("nowhere"), "{e}");
}
