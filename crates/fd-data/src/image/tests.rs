//! PNG round trips and grid layout.

use std::path::Path;

use crate::{Image, decode_png, encode_png, image_grid, write_png};

fn solid(h: usize, w: usize, rgb: [u8; 3]) -> Image {
    Image::new(h, w, rgb.iter().copied().cycle().take(h * w * 3).collect())
}

#[test]
fn png_round_trip_keeps_every_byte() {
    let img = Image::new(3, 5, (0..45).map(|v| (v * 7) as u8).collect());
    let back = decode_png(&encode_png(&img), Path::new("x.png")).unwrap();
    assert_eq!(back, img);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sub/dir/img.png");
    write_png(&img, &path).unwrap();
    assert_eq!(decode_png(&std::fs::read(&path).unwrap(), &path).unwrap(), img);
}

#[test]
fn grid_places_images_in_rows_with_gaps() {
    let images = [solid(2, 3, [10, 0, 0]), solid(2, 3, [20, 0, 0]), solid(2, 3, [30, 0, 0])];
    let grid = image_grid(&images, 2, 1, [255, 255, 255]);
    // Two columns, two rows: width 1 + 3 + 1 + 3 + 1, height 1 + 2 + 1 + 2 + 1.
    assert_eq!((grid.height, grid.width), (7, 9));
    assert_eq!(grid.pixel(0, 0), [255, 255, 255]);
    assert_eq!(grid.pixel(1, 1), [10, 0, 0]);
    assert_eq!(grid.pixel(2, 3), [10, 0, 0]);
    assert_eq!(grid.pixel(1, 4), [255, 255, 255]);
    assert_eq!(grid.pixel(1, 5), [20, 0, 0]);
    assert_eq!(grid.pixel(4, 1), [30, 0, 0]);
    assert_eq!(grid.pixel(4, 5), [255, 255, 255]);
}

#[test]
fn garbage_is_a_format_error_naming_the_file() {
    let e = decode_png(b"\x89PNG but not really", Path::new("bad.png")).unwrap_err().to_string();
    assert!(e.starts_with("bad.png: not a readable PNG"), "{e}");
}
