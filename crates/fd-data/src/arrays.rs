//! Numeric arrays from the files people save them in: NumPy's `.npy` (through `npyz`) and safetensors. A user's predictions and
//! embeddings come in these; every error names the file and says what was expected.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result, io};

/// An array's values: floats as f32 (f64 files are narrowed), integers as i64.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Floating-point values.
    F32(Vec<f32>),
    /// Integer (or boolean) values.
    I64(Vec<i64>),
}

/// A dense array in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, `shape.iter().product()` of them.
    pub values: Values,
}

impl Array {
    /// The values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.values {
            Values::F32(v) => v.clone(),
            Values::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers, or `None` for a float array.
    pub fn integers(&self) -> Option<&[i64]> {
        match &self.values {
            Values::I64(v) => Some(v),
            Values::F32(_) => None,
        }
    }
}

/// Reads a `.npy` file of numbers (any integer, unsigned, boolean or float type, C order).
pub fn read_npy(path: &Path) -> Result<Array> {
    use npyz::TypeChar;
    let bad = |message: String| Error::Format { path: path.to_path_buf(), message };
    let bytes = std::fs::read(path).map_err(io(path))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("not a NumPy .npy file ({e})")))?;
    if npy.order() != npyz::Order::C {
        return Err(bad("the array is in Fortran order; save it with np.ascontiguousarray".into()));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let npyz::DType::Plain(ty) = npy.dtype() else {
        return Err(bad("expected a plain numeric array, found a structured one".into()));
    };
    let read = |e: std::io::Error| bad(format!("cannot read the values ({e}); the file is truncated or damaged"));
    let values = match (ty.type_char(), ty.num_bytes()) {
        (TypeChar::Float, Some(4)) => Values::F32(npy.into_vec::<f32>().map_err(read)?),
        (TypeChar::Float, Some(8)) => {
            Values::F32(npy.into_vec::<f64>().map_err(read)?.into_iter().map(|v| v as f32).collect())
        }
        (TypeChar::Int, Some(8)) => Values::I64(npy.into_vec::<i64>().map_err(read)?),
        (TypeChar::Int, Some(4)) => {
            Values::I64(npy.into_vec::<i32>().map_err(read)?.into_iter().map(i64::from).collect())
        }
        (TypeChar::Int, Some(2)) => {
            Values::I64(npy.into_vec::<i16>().map_err(read)?.into_iter().map(i64::from).collect())
        }
        (TypeChar::Int, Some(1)) => {
            Values::I64(npy.into_vec::<i8>().map_err(read)?.into_iter().map(i64::from).collect())
        }
        (TypeChar::Uint, Some(8)) => Values::I64(
            npy.into_vec::<u64>().map_err(read)?.into_iter().map(|v| v.min(i64::MAX as u64) as i64).collect(),
        ),
        (TypeChar::Uint, Some(4)) => {
            Values::I64(npy.into_vec::<u32>().map_err(read)?.into_iter().map(i64::from).collect())
        }
        (TypeChar::Uint, Some(2)) => {
            Values::I64(npy.into_vec::<u16>().map_err(read)?.into_iter().map(i64::from).collect())
        }
        (TypeChar::Uint | TypeChar::Bool, Some(1)) => {
            Values::I64(npy.into_vec::<u8>().map_err(read)?.into_iter().map(i64::from).collect())
        }
        (c, n) => return Err(bad(format!("values of type {c:?} ({n:?} bytes) are not numbers this reader takes"))),
    };
    check_len(path, &shape, &values)?;
    Ok(Array { shape, values })
}

/// Reads every tensor of a safetensors file (F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL), by name.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Array>> {
    use safetensors::Dtype;
    let bad = |message: String| Error::Format { path: path.to_path_buf(), message };
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let f = |n: usize, conv: &dyn Fn(&[u8]) -> f32| Values::F32(data.chunks_exact(n).map(conv).collect());
        let i = |n: usize, conv: &dyn Fn(&[u8]) -> i64| Values::I64(data.chunks_exact(n).map(conv).collect());
        let values = match view.dtype() {
            Dtype::F64 => f(8, &|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32),
            Dtype::F32 => f(4, &|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
            Dtype::F16 => f(2, &|b| half::f16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32()),
            Dtype::BF16 => f(2, &|b| half::bf16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32()),
            Dtype::I64 => i(8, &|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))),
            Dtype::I32 => i(4, &|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes")))),
            Dtype::I16 => i(2, &|b| i64::from(i16::from_le_bytes(b.try_into().expect("2 bytes")))),
            Dtype::I8 => i(1, &|b| i64::from(b[0] as i8)),
            Dtype::U8 | Dtype::BOOL => i(1, &|b| i64::from(b[0])),
            other => {
                return Err(bad(format!(
                    "tensor {name:?} has dtype {other:?}, which is not a number this reader takes"
                )));
            }
        };
        let shape = view.shape().to_vec();
        check_len(path, &shape, &values)?;
        out.insert(name, Array { shape, values });
    }
    Ok(out)
}

/// Reads a `.npy` file, or the tensor named `name` of a safetensors file, by the file's extension.
pub fn read_array(path: &Path, name: &str) -> Result<Array> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        return read_npy(path);
    }
    let mut tensors = read_safetensors(path)?;
    let names: Vec<String> = tensors.keys().cloned().collect();
    tensors.remove(name).ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        message: format!("no tensor named {name:?} (the file has {names:?})"),
    })
}

/// A `.npy` file's bytes holding `values` (f32) in C order with `shape`, through `npyz`.
pub fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    npy_bytes(shape, values)
}

/// A `.npy` file's bytes holding `values` (i64) in C order with `shape`, through `npyz`.
pub fn npy_i64(shape: &[usize], values: &[i64]) -> Vec<u8> {
    npy_bytes(shape, values)
}

fn npy_bytes<T: npyz::AutoSerialize + npyz::Serialize>(shape: &[usize], values: &[T]) -> Vec<u8> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()
        .expect("writing a .npy header to memory cannot fail");
    writer.extend(values.iter()).expect("writing .npy values to memory cannot fail");
    writer.finish().expect("finishing a .npy in memory cannot fail");
    out
}

fn check_len(path: &Path, shape: &[usize], values: &Values) -> Result<()> {
    let len = match values {
        Values::F32(v) => v.len(),
        Values::I64(v) => v.len(),
    };
    let wanted = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if wanted != Some(len) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!("shape {shape:?} does not match the {len} values the file holds"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
