//! A user's images on disk: an image folder (`root/<class>/*.png|jpg|jpeg|webp`, or `root/<split>/<class>/…`) or a CSV manifest
//! (`path,label` and optional `split` and `group` columns, paths relative to the manifest, any other column kept as metadata).
//!
//! Both read into a [`Listing`]: the files with their labels, in a fixed order, and nothing decoded. [`decode_image`] decodes one
//! file of any size and mode (8- or 16-bit, grayscale, RGBA, palette; JPEG's EXIF orientation applied) to 8-bit RGB at its own
//! size, through the `image` crate; [`Listing::decode_batches`] streams a list of files in batches, decoding each batch on every
//! core, so a dataset of any length never sits decoded in memory at once. Each consumer resizes to the size it needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::error::{Error, Result, io};
use crate::split::SplitPart;

pub mod prepare;

/// The file extensions an image folder is read for (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// One image file with its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The file, relative to the listing's root.
    pub path: PathBuf,
    /// The class, an index into the listing's class names.
    pub label: u16,
    /// The part of the split the user assigned, if any.
    pub split: Option<SplitPart>,
    /// A ground-truth group (a manifest's `group` column), if any.
    pub group: Option<String>,
    /// The manifest's other columns, by name.
    pub metadata: BTreeMap<String, String>,
}

/// The files of a dataset on disk, in a fixed order, with their labels; nothing decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// The folder the entries' paths are relative to.
    pub root: PathBuf,
    /// The class names, in label order.
    pub class_names: Vec<String>,
    /// The files.
    pub entries: Vec<Entry>,
}

impl Listing {
    /// The labels, in entry order.
    pub fn labels(&self) -> Vec<u16> {
        self.entries.iter().map(|e| e.label).collect()
    }

    /// Whether every entry carries a split (then the user's split is used; otherwise the paper's rule makes one).
    pub fn has_split(&self) -> bool {
        !self.entries.is_empty() && self.entries.iter().all(|e| e.split.is_some())
    }

    /// The same listing with the classes in the order of `names` (a classes file, `path`), which must name the same classes.
    pub fn with_class_order(mut self, names: Vec<String>, path: &Path) -> Result<Listing> {
        let found: BTreeSet<&String> = self.class_names.iter().collect();
        let given: BTreeSet<&String> = names.iter().collect();
        if found != given {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: format!(
                    "the classes file names {:?}, the folder has the classes {:?}; they must be the same",
                    names, self.class_names
                ),
            });
        }
        let map: Vec<u16> =
            self.class_names.iter().map(|c| names.iter().position(|n| n == c).expect("same set") as u16).collect();
        for e in &mut self.entries {
            e.label = map[usize::from(e.label)];
        }
        self.class_names = names;
        Ok(self)
    }

    /// A sha256 over every entry (path, label, split, group) and its file's length and modification time: a change to the
    /// images on disk changes it, without reading them.
    pub fn fingerprint(&self) -> Result<String> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for (i, e) in self.entries.iter().enumerate() {
            let path = self.path(i);
            let meta = std::fs::metadata(&path).map_err(io(&path))?;
            let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            let line = format!(
                "{}\t{}\t{:?}\t{:?}\t{}\t{}\n",
                e.path.display(),
                e.label,
                e.split,
                e.group,
                meta.len(),
                modified.map_or(0, |d| d.as_nanos())
            );
            hasher.update(line.as_bytes());
        }
        hasher.update(self.class_names.join("\n").as_bytes());
        Ok(crate::to_hex(&hasher.finalize()))
    }

    /// The full path of entry `i`.
    pub fn path(&self, i: usize) -> PathBuf {
        self.root.join(&self.entries[i].path)
    }

    /// Decodes the entries `indices` in batches of `batch` (each batch on every core) and hands each batch, in order, to `f` with
    /// the entries' indices. An unreadable file is an error naming it, unless `skip_unreadable`, when it is left out of its batch
    /// and returned with the reason.
    pub fn decode_batches(
        &self,
        indices: &[usize],
        batch: usize,
        skip_unreadable: bool,
        mut f: impl FnMut(&[usize], Vec<Image>) -> Result<()>,
    ) -> Result<Vec<(PathBuf, String)>> {
        let mut skipped = Vec::new();
        for chunk in indices.chunks(batch.max(1)) {
            let decoded: Vec<Result<Image>> = chunk.par_iter().map(|&i| decode_image(&self.path(i))).collect();
            let (mut kept, mut images) = (Vec::with_capacity(chunk.len()), Vec::with_capacity(chunk.len()));
            for (&i, d) in chunk.iter().zip(decoded) {
                match d {
                    Ok(image) => {
                        kept.push(i);
                        images.push(image);
                    }
                    Err(e) if skip_unreadable => skipped.push((self.path(i), e.to_string())),
                    Err(e) => return Err(e),
                }
            }
            f(&kept, images)?;
        }
        Ok(skipped)
    }
}

/// Decodes an image file of any supported format, size and mode to 8-bit RGB at its own size, EXIF orientation applied.
/// Alpha is dropped (as Pillow's `convert("RGB")` does); 16-bit samples are scaled to 8 bits.
pub fn decode_image(path: &Path) -> Result<Image> {
    use image::ImageDecoder;
    let bad = |e: image::ImageError| Error::Format {
        path: path.to_path_buf(),
        message: format!("cannot decode the image ({e}); the file is damaged or not a PNG, JPEG or WebP image"),
    };
    let reader = image::ImageReader::open(path).map_err(io(path))?.with_guessed_format().map_err(io(path))?;
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let orientation = decoder.orientation().map_err(bad)?;
    let mut decoded = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
    decoded.apply_orientation(orientation);
    let rgb = decoded.into_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::Format { path: path.to_path_buf(), message: "the image has no pixels".into() });
    }
    Ok(Image::new(h, w, rgb.into_raw()))
}

fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// The visible subfolders and files of `dir`, sorted by name.
fn children(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() { dirs.push(path) } else { files.push(path) }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads an image folder: `root/<class>/<file>`, or `root/<split>/<class>/<file>` when every subfolder of `root` is named
/// train, val, extra or test. Classes are the class folders' names, sorted (the union over splits); files are taken in sorted
/// order, and files that are not images (by extension) are left out.
pub fn read_image_folder(root: &Path) -> Result<Listing> {
    let (top, _) = children(root)?;
    if top.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no class folders; expected root/<class>/<image> or root/<split>/<class>/<image>",
            root.display()
        )));
    }
    let split_of = |d: &PathBuf| SplitPart::from_name(&name_of(d).to_ascii_lowercase());
    let split_layout = top.iter().all(|d| split_of(d).is_some());
    let parts: Vec<(Option<SplitPart>, PathBuf)> = if split_layout {
        top.iter().map(|d| (split_of(d), d.clone())).collect()
    } else {
        vec![(None, root.to_path_buf())]
    };
    let mut class_dirs = Vec::new();
    for (split, dir) in &parts {
        for class_dir in children(dir)?.0 {
            class_dirs.push((*split, name_of(&class_dir), class_dir));
        }
    }
    let class_names: Vec<String> =
        class_dirs.iter().map(|c| c.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    if class_names.len() > usize::from(u16::MAX) {
        return Err(Error::Invalid(format!("{}: {} classes, at most {}", root.display(), class_names.len(), u16::MAX)));
    }
    let mut entries = Vec::new();
    for (split, class, dir) in class_dirs {
        let label = class_names.iter().position(|c| *c == class).expect("every class folder is in the list") as u16;
        for file in children(&dir)?.1.into_iter().filter(|f| is_image(f)) {
            let path = file.strip_prefix(root).expect("listed under the root").to_path_buf();
            entries.push(Entry { path, label, split, group: None, metadata: BTreeMap::new() });
        }
    }
    if entries.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no images (files ending in {})",
            root.display(),
            IMAGE_EXTENSIONS.join(", ")
        )));
    }
    Ok(Listing { root: root.to_path_buf(), class_names, entries })
}

/// Reads a classes file: one class name a line, in label order (blank lines and surrounding spaces ignored).
pub fn read_classes_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    if names.is_empty() || unique.len() != names.len() {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: "expected one distinct class name a line".into(),
        });
    }
    Ok(names)
}

/// Reads a CSV manifest with a header: `path` and `label` columns, optional `split` (train, val, extra or test) and `group`, any
/// other column kept as metadata. Paths are relative to the manifest's folder. Labels are class names: with `classes` (from a
/// classes file) each must be one of them; without, the classes are the labels found, sorted.
pub fn read_manifest(path: &Path, classes: Option<Vec<String>>) -> Result<Listing> {
    let format = |message: String| Error::Format { path: path.to_path_buf(), message };
    let mut reader = csv::Reader::from_path(path).map_err(|e| format(format!("cannot read the CSV ({e})")))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format(format!("cannot read the header ({e})")))?
        .iter()
        .map(String::from)
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(path_col), Some(label_col)) = (column("path"), column("label")) else {
        return Err(format(format!("the header {header:?} needs `path` and `label` columns")));
    };
    let (split_col, group_col) = (column("split"), column("group"));
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let row = n + 2; // The header is line 1.
        let record = record.map_err(|e| format(format!("line {row}: {e}")))?;
        let get = |k: usize| record.get(k).unwrap_or("").trim().to_string();
        let file = get(path_col);
        if file.is_empty() {
            return Err(format(format!("line {row}: the path is empty")));
        }
        let split = match split_col.map(get).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                SplitPart::from_name(&s.to_ascii_lowercase())
                    .ok_or_else(|| format(format!("line {row}: split {s:?} is not one of train, val, extra, test")))?,
            ),
        };
        let metadata = header
            .iter()
            .enumerate()
            .filter(|(k, _)| ![Some(path_col), Some(label_col), split_col, group_col].contains(&Some(*k)))
            .map(|(k, h)| (h.clone(), get(k)))
            .collect();
        rows.push((row, file, get(label_col), split, group_col.map(get).filter(|g| !g.is_empty()), metadata));
    }
    if rows.is_empty() {
        return Err(format("the manifest lists no images".into()));
    }
    let class_names =
        classes.unwrap_or_else(|| rows.iter().map(|r| r.2.clone()).collect::<BTreeSet<_>>().into_iter().collect());
    let mut entries = Vec::with_capacity(rows.len());
    for (row, file, label, split, group, metadata) in rows {
        let Some(k) = class_names.iter().position(|c| *c == label) else {
            return Err(format(format!(
                "line {row}: label {label:?} is not among the classes ({}); add it to the classes file or fix the row",
                class_names.join(", ")
            )));
        };
        entries.push(Entry { path: PathBuf::from(file), label: k as u16, split, group, metadata });
    }
    let root = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok(Listing { root, class_names, entries })
}

#[cfg(test)]
mod tests;
