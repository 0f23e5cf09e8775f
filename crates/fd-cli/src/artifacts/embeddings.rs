//! `embeddings_<part>.safetensors`: a part's embeddings and their dataset indices. A stage reads them from the file in
//! one pass into the rows it keeps ([`Embeddings::read_file`]), never holding the file's bytes and the rows at once: at a
//! million rows of 512 that is 2 GB, not 4.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Embeddings and their dataset indices, as `embeddings_<part>.safetensors` holds them: `embeddings` `[n, dim]` (f32) and
/// `indices` `[n]` (i64).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Rows of `dim` values.
    pub rows: Vec<f32>,
    /// The dimension.
    pub dim: usize,
    /// The dataset index of each row.
    pub indices: Vec<usize>,
}

impl Embeddings {
    /// The safetensors bytes.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let data: Vec<u8> = self.rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        let idx: Vec<u8> = self.indices.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
        let n = self.indices.len();
        let view = |dtype, shape, bytes| {
            safetensors::tensor::TensorView::new(dtype, shape, bytes)
                .expect("the shapes match the data by construction")
        };
        let views = [
            ("embeddings", view(safetensors::Dtype::F32, vec![n, self.dim], &data)),
            ("indices", view(safetensors::Dtype::I64, vec![n], &idx)),
        ];
        safetensors::serialize(views, None).expect("serializing to memory cannot fail")
    }

    /// Reads what [`Embeddings::to_safetensors`] wrote; a truncated or foreign file says what was expected.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Embeddings> {
        use safetensors::Dtype;
        let st = match safetensors::SafeTensors::deserialize(bytes) {
            Ok(st) => st,
            Err(e) => bail!("not a safetensors file ({e}); it may be truncated"),
        };
        let (Ok(e), Ok(i)) = (st.tensor("embeddings"), st.tensor("indices")) else {
            bail!("expected tensors \"embeddings\" and \"indices\"");
        };
        if e.dtype() != Dtype::F32 || e.shape().len() != 2 || i.dtype() != Dtype::I64 || i.shape() != [e.shape()[0]] {
            bail!(
                "expected embeddings F32 [n, dim] and indices I64 [n], found {:?} {:?} and {:?} {:?}",
                e.dtype(),
                e.shape(),
                i.dtype(),
                i.shape()
            );
        }
        let rows = e.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let indices = i
            .data()
            .chunks_exact(8)
            .map(|b| usize::try_from(i64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("a negative dataset index"))?;
        Ok(Embeddings { rows, dim: e.shape()[1], indices })
    }
}

/// One tensor of a safetensors header: its dtype, shape and byte range in the data section.
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    offsets: (usize, usize),
}

/// The named tensor of a safetensors header.
fn entry(header: &serde_json::Value, name: &str) -> Result<TensorEntry> {
    let t = header.get(name).with_context(|| format!("no tensor {name:?}"))?;
    let parse = || -> Option<TensorEntry> {
        let dtype = t.get("dtype")?.as_str()?.to_string();
        let shape =
            t.get("shape")?.as_array()?.iter().map(|v| v.as_u64().map(|v| v as usize)).collect::<Option<_>>()?;
        let o = t.get("data_offsets")?.as_array()?;
        Some(TensorEntry { dtype, shape, offsets: (o.first()?.as_u64()? as usize, o.get(1)?.as_u64()? as usize) })
    };
    parse().with_context(|| format!("tensor {name:?}: a malformed header entry"))
}

impl Embeddings {
    /// Reads what [`Embeddings::to_safetensors`] wrote from `path`, in one pass: the header, then each tensor's values
    /// decoded a block at a time into the rows. A truncated or foreign file says what was expected.
    pub fn read_file(path: &Path) -> Result<Embeddings> {
        Embeddings::read_rows(path, None)
    }

    /// Reads rows `wanted` (every row for `None`) of what [`Embeddings::to_safetensors`] wrote from `path`, and only
    /// those: a shard of a million-row part reads its slice. The whole file's size is checked against its header; a
    /// range past the file's rows is an error.
    pub fn read_rows(path: &Path, wanted: Option<std::ops::Range<usize>>) -> Result<Embeddings> {
        let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let length = file.metadata().with_context(|| format!("reading {}", path.display()))?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n).context("not a safetensors file (shorter than its header); it may be truncated")?;
        let n = u64::from_le_bytes(n);
        if n > 100 << 20 || 8 + n > length {
            bail!("not a safetensors file (a header of {n} bytes in a file of {length}); it may be truncated");
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)?;
        let header: serde_json::Value =
            serde_json::from_slice(&header).context("not a safetensors file (its header is not JSON)")?;
        let (e, i) = (entry(&header, "embeddings")?, entry(&header, "indices")?);
        let (&[rows, dim], &[count]) = (e.shape.as_slice(), i.shape.as_slice()) else {
            bail!("expected embeddings F32 [n, dim] and indices I64 [n], found shapes {:?} and {:?}", e.shape, i.shape);
        };
        if e.dtype != "F32" || i.dtype != "I64" || count != rows {
            bail!(
                "expected embeddings F32 [n, dim] and indices I64 [n], found {} {:?} and {} {:?}",
                e.dtype,
                e.shape,
                i.dtype,
                i.shape
            );
        }
        let data = 8 + n;
        let end = e.offsets.1.max(i.offsets.1) as u64;
        if e.offsets.1 - e.offsets.0 != rows * dim * 4 || i.offsets.1 - i.offsets.0 != rows * 8 || data + end != length
        {
            bail!(
                "not a safetensors file of its header's size ({length} bytes, the header says {}); it may be truncated",
                data + end
            );
        }
        let range = wanted.unwrap_or(0..rows);
        if range.start > range.end || range.end > rows {
            bail!("rows {}..{} asked of a file of {rows} rows", range.start, range.end);
        }
        let (first, count) = (range.start as u64, range.len());
        let mut values = Vec::with_capacity(count * dim);
        read_blocks(&mut file, data + e.offsets.0 as u64 + first * dim as u64 * 4, count * dim, 4, |b| {
            values.push(f32::from_le_bytes(b.try_into().expect("4 bytes")));
        })?;
        let mut indices = Vec::with_capacity(count);
        let mut negative = false;
        read_blocks(&mut file, data + i.offsets.0 as u64 + first * 8, count, 8, |b| {
            let v = i64::from_le_bytes(b.try_into().expect("8 bytes"));
            negative |= v < 0;
            indices.push(v.max(0) as usize);
        })?;
        if negative {
            bail!("a negative dataset index");
        }
        Ok(Embeddings { rows: values, dim, indices })
    }
}

/// Reads `count` values of `width` bytes from `offset` a block at a time, handing each value's bytes to `each`.
fn read_blocks(
    file: &mut std::fs::File,
    offset: u64,
    count: usize,
    width: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut block = vec![0u8; (1 << 20) / width * width];
    let mut left = count * width;
    while left > 0 {
        let take = left.min(block.len());
        file.read_exact(&mut block[..take]).context("the file ends early; it may be truncated")?;
        block[..take].chunks_exact(width).for_each(&mut each);
        left -= take;
    }
    Ok(())
}
