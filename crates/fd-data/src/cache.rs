//! The decoded-dataset cache: one file per dataset that loads in a fraction of a second.
//!
//! Layout: the 8-byte magic `FDDATA01`, a little-endian `u64` header length, a JSON header (`height`, `width`, `len`, `class_names`), the labels as little-endian `u16`, then the pixels exactly as [`Dataset::pixels`] holds them.

use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Dataset;
use crate::error::{Error, Result, io};

const MAGIC: &[u8; 8] = b"FDDATA01";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    height: usize,
    width: usize,
    len: usize,
    class_names: Vec<String>,
}

/// The bytes of `dataset` in the cache format.
pub fn encode_dataset(dataset: &Dataset) -> Vec<u8> {
    let header = Header {
        height: dataset.height(),
        width: dataset.width(),
        len: dataset.len(),
        class_names: dataset.class_names().to_vec(),
    };
    let header = serde_json::to_vec(&header).expect("a header of plain fields always serializes");
    let mut out = Vec::with_capacity(16 + header.len() + 2 * dataset.len() + dataset.pixels().len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for &l in dataset.labels() {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out.extend_from_slice(dataset.pixels());
    out
}

/// Writes `dataset` to `path` in the cache format, atomically.
pub fn write_dataset(dataset: &Dataset, path: &Path) -> Result<()> {
    crate::fs::write_atomic(path, &encode_dataset(dataset))
}

/// Reads a dataset written by [`write_dataset`].
pub fn read_dataset(path: &Path) -> Result<Dataset> {
    let _s = tracing::debug_span!("read_dataset", path = %path.display()).entered();
    let file = std::fs::File::open(path).map_err(io(path))?;
    let size = file.metadata().map_err(io(path))?.len();
    let format = |message: String| Error::Format { path: path.to_path_buf(), message };
    let truncated =
        |e: std::io::Error| format(format!("truncated dataset cache ({e}); delete it and run `fd-cli fetch` again"));
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(truncated)?;
    if &magic != MAGIC {
        return Err(format("not a fd-data dataset cache (bad magic)".into()));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(truncated)?;
    let header_len = u64::from_le_bytes(len);
    if header_len > size {
        return Err(format(format!("header length {header_len} exceeds the file size {size}")));
    }
    let mut header = vec![0u8; header_len as usize];
    r.read_exact(&mut header).map_err(truncated)?;
    let header: Header = serde_json::from_slice(&header).map_err(|e| format(format!("bad header: {e}")))?;
    let pixel_bytes = header.len * header.height * header.width * 3;
    let expected = 16 + header_len + 2 * header.len as u64 + pixel_bytes as u64;
    if size != expected {
        return Err(Error::Size { path: path.to_path_buf(), what: "a complete dataset cache", expected, found: size });
    }
    let mut raw = vec![0u8; 2 * header.len];
    r.read_exact(&mut raw).map_err(truncated)?;
    let labels = raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let mut pixels = vec![0u8; pixel_bytes];
    r.read_exact(&mut pixels).map_err(truncated)?;
    Dataset::new(header.height, header.width, pixels, labels, header.class_names)
        .map_err(|e| format(format!("inconsistent dataset cache: {e}")))
}

#[cfg(test)]
mod tests;
