//! The per-image embedding cache of datasets held in memory (CIFAR-10 and its planted variants).
//!
//! One directory per embed config and weights; each file holds rows keyed by the SHA-256 of their image (its size and
//! pixels). A run embeds only the images no earlier run did, so planted settings that transform a few images of a dataset
//! share the embeddings of all the others. Files are only ever added (atomically), never rewritten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// An image's key: SHA-256 of its height, width and pixels.
pub(crate) fn image_key(d: &fd_data::Dataset, i: usize) -> [u8; 32] {
    let image = d.image_bytes(i);
    let mut h = Sha256::new();
    h.update((d.height() as u64).to_le_bytes());
    h.update((d.width() as u64).to_le_bytes());
    h.update(image);
    h.finalize().into()
}

/// The rows of one embed config, by image key.
pub(crate) struct Store {
    dir: PathBuf,
    dim: Option<usize>,
    rows: HashMap<[u8; 32], Vec<f32>>,
}

impl Store {
    /// Reads every file of `dir` (none when it does not exist yet).
    pub(crate) fn open(dir: &Path) -> Result<Store> {
        let mut store = Store { dir: dir.to_path_buf(), dim: None, rows: HashMap::new() };
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(store) };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (keys, rows, dim) = decode(&bytes).with_context(|| {
                format!(
                    "{}: not an embedding cache file; delete it and the rows will be embedded again",
                    file.display()
                )
            })?;
            store.check_dim(dim, &file)?;
            for (k, row) in keys.into_iter().zip(rows.chunks_exact(dim)) {
                store.rows.entry(k).or_insert_with(|| row.to_vec());
            }
        }
        Ok(store)
    }

    fn check_dim(&mut self, dim: usize, file: &Path) -> Result<()> {
        match self.dim {
            Some(d) if d != dim => bail!("{}: rows of {dim} values in a cache of {d}", file.display()),
            _ => {
                self.dim = Some(dim);
                Ok(())
            }
        }
    }

    /// The row of an image, if cached.
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<&[f32]> {
        self.rows.get(key).map(Vec::as_slice)
    }

    /// Adds rows (`dim` each, one per key) and writes them as a new file.
    pub(crate) fn add(&mut self, keys: &[[u8; 32]], rows: &[f32], dim: usize) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        assert_eq!(rows.len(), keys.len() * dim, "one row per key");
        let mut name = Sha256::new();
        keys.iter().for_each(|k| name.update(k));
        let file = self.dir.join(format!("{}.safetensors", fd_data::to_hex(&name.finalize())));
        self.check_dim(dim, &file)?;
        let flat: Vec<u8> = keys.iter().flatten().copied().collect();
        let data: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = |dtype, shape, bytes| {
            safetensors::tensor::TensorView::new(dtype, shape, bytes)
                .expect("the shapes match the data by construction")
        };
        let views = [
            ("keys", view(safetensors::Dtype::U8, vec![keys.len(), 32], flat.as_slice())),
            ("embeddings", view(safetensors::Dtype::F32, vec![keys.len(), dim], data.as_slice())),
        ];
        let bytes = safetensors::serialize(views, None).expect("serializing to memory cannot fail");
        fd_data::write_atomic(&file, &bytes)?;
        for (k, row) in keys.iter().zip(rows.chunks_exact(dim)) {
            self.rows.entry(*k).or_insert_with(|| row.to_vec());
        }
        Ok(())
    }
}

type Decoded = (Vec<[u8; 32]>, Vec<f32>, usize);

fn decode(bytes: &[u8]) -> Result<Decoded> {
    let st = safetensors::SafeTensors::deserialize(bytes)?;
    let (keys, rows) = (st.tensor("keys")?, st.tensor("embeddings")?);
    let n = keys.shape().first().copied().unwrap_or(0);
    if keys.shape() != [n, 32] || rows.shape().len() != 2 || rows.shape()[0] != n {
        bail!("expected keys [n, 32] and embeddings [n, dim], found {:?} and {:?}", keys.shape(), rows.shape());
    }
    let keys = keys.data().chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
    let data = rows.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((keys, data, rows.shape()[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_by_image_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let d = fd_data::synthetic::make_synthetic(&fd_data::synthetic::SyntheticConfig {
            classes: 2,
            train_per_class: 3,
            test_per_class: 1,
            size: 4,
            seed: 1,
        })
        .0;
        let keys: Vec<[u8; 32]> = (0..d.len()).map(|i| image_key(&d, i)).collect();
        assert_ne!(keys[0], keys[1]);
        let mut store = Store::open(dir.path()).unwrap();
        assert!(store.get(&keys[0]).is_none());
        store.add(&keys[..2], &[1.0, 2.0, 3.0, 4.0], 2).unwrap();
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.get(&keys[1]), Some(&[3.0, 4.0][..]));
        assert!(again.get(&keys[2]).is_none());
        let mut again = again;
        assert!(again.add(&keys[2..3], &[1.0, 2.0, 3.0], 3).unwrap_err().to_string().contains("a cache of 2"));
        std::fs::write(dir.path().join("junk.safetensors"), b"junk").unwrap();
        assert!(format!("{:#}", Store::open(dir.path()).err().unwrap()).contains("delete it"));
    }
}
