//! Scoring the pool as shards of a job ([`crate::stages::shard`]): each shard reads its slice of the pool's embeddings
//! and writes the slice's scores to `shards/select-I-of-N/scores.safetensors` (`positions` I64 `[n]`, the rows' positions
//! in the pool; `decisions` F64 `[n]`; `modes` F64 `[n, m]`, each row's mode decision values padded to the most modes a
//! class has, and `mode_counts` I64 `[n]`, how many of them are the row's; both empty without the modes rule). The merge
//! joins them in order for the select stage's picks.

use anyhow::{Context, Result, bail};
use fd_data::SplitPart;
use fd_data::shard::Shard;
use safetensors::Dtype;

use super::{Plan, PoolScores};
use crate::artifacts::{Embeddings, ModesFile, embeddings_file};
use crate::run::Run;

/// A shard's file in its directory.
const FILE: &str = "scores.safetensors";

/// Scores shard `shard` of the pool.
pub(super) fn score_shard(run: &Run, plan: &Plan<'_>, shard: Shard) -> Result<()> {
    plan.sharded().run_shard(run, shard, |out, dir, slices| {
        let slice = slices.first().context("a select shard slices the extra pool")?;
        let path = run.engine.dir().join(embeddings_file(SplitPart::Extra));
        let e = Embeddings::read_rows(&path, Some(slice.positions.clone())).with_context(|| {
            format!("{}: not embeddings this fd-cli wrote; run `fd-cli embed` to remake them", path.display())
        })?;
        if e.indices != slice.indices {
            bail!("{}: its rows are not the extra pool's images; run `fd-cli embed` to remake it", path.display());
        }
        let labels: Vec<u16> = slice.indices.iter().map(|&i| slice.set.labels()[i]).collect();
        let modes = if plan.with_modes { Some(run.read::<ModesFile>()?) } else { None };
        let scores = super::score(&run.directions()?, modes.as_ref(), &e.rows, &labels)?;
        println!("select: shard {shard}: scored {} pool images", labels.len());
        let name = format!("{dir}/{FILE}");
        let positions: Vec<usize> = slice.positions.clone().collect();
        fd_data::write_atomic(&out.join(&name), &to_safetensors(&positions, &scores))?;
        Ok(vec![name])
    })
}

/// The finished shards' scores, checked and joined in pool order.
pub(super) fn merge(run: &Run, plan: &Plan<'_>) -> Result<PoolScores> {
    let sharded = plan.sharded();
    let finished = sharded.finished(run)?;
    let mut all = PoolScores { decisions: Vec::new(), modes: Vec::new() };
    for &shard in &finished.shards {
        let path = run.engine.dir().join(sharded.dir(shard)).join(FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let (positions, scores) = from_safetensors(&bytes).with_context(|| {
            format!("{}: not a shard's scores this fd-cli wrote; {}", path.display(), sharded.redo(run, shard))
        })?;
        let (slices, _) = sharded.slices(run, shard)?;
        let expected: Vec<usize> = slices.iter().flat_map(|s| s.positions.clone()).collect();
        if positions != expected {
            let redo = sharded.redo(run, shard);
            bail!(
                "{}: scores {} rows, not the {} pool images of shard {shard}; {redo}",
                path.display(),
                positions.len(),
                expected.len()
            );
        }
        all.decisions.extend(scores.decisions);
        all.modes.extend(scores.modes);
    }
    println!("select: merged {} shards of {}", finished.shards.len(), finished.count);
    Ok(all)
}

/// A shard's scores as bytes.
fn to_safetensors(positions: &[usize], scores: &PoolScores) -> Vec<u8> {
    let width = scores.modes.iter().map(Vec::len).max().unwrap_or(0);
    let n = positions.len();
    let positions: Vec<u8> = positions.iter().flat_map(|&p| (p as i64).to_le_bytes()).collect();
    let decisions: Vec<u8> = scores.decisions.iter().flat_map(|v| v.to_le_bytes()).collect();
    let modes: Vec<u8> = scores
        .modes
        .iter()
        .flat_map(|row| (0..width).map(|k| row.get(k).copied().unwrap_or(0.0)))
        .flat_map(f64::to_le_bytes)
        .collect();
    let counts: Vec<u8> = scores.modes.iter().flat_map(|row| (row.len() as i64).to_le_bytes()).collect();
    let view = |dtype, shape, bytes| {
        safetensors::tensor::TensorView::new(dtype, shape, bytes).expect("the shapes match the data by construction")
    };
    let views = [
        ("positions", view(Dtype::I64, vec![n], positions.as_slice())),
        ("decisions", view(Dtype::F64, vec![n], decisions.as_slice())),
        ("modes", view(Dtype::F64, vec![scores.modes.len(), width], modes.as_slice())),
        ("mode_counts", view(Dtype::I64, vec![scores.modes.len()], counts.as_slice())),
    ];
    safetensors::serialize(views, None).expect("serializing to memory cannot fail")
}

/// What [`to_safetensors`] wrote: the positions and the scores (each row's modes without their padding).
fn from_safetensors(bytes: &[u8]) -> Result<(Vec<usize>, PoolScores)> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{e}; it may be truncated"))?;
    let (p, d, m) = (st.tensor("positions")?, st.tensor("decisions")?, st.tensor("modes")?);
    let c = st.tensor("mode_counts")?;
    let n = p.shape().first().copied().unwrap_or(0);
    let rows = m.shape().first().copied().unwrap_or(0);
    let fits = p.dtype() == Dtype::I64
        && p.shape() == [n]
        && d.dtype() == Dtype::F64
        && d.shape() == [n]
        && m.dtype() == Dtype::F64
        && m.shape().len() == 2
        && (rows == n || rows == 0)
        && c.dtype() == Dtype::I64
        && c.shape() == [rows];
    if !fits {
        bail!("expected positions I64 [n], decisions F64 [n], modes F64 [n or 0, m], mode_counts I64 [n or 0]");
    }
    let f64s = |data: &[u8]| -> Vec<f64> {
        data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
    };
    let positions = p
        .data()
        .chunks_exact(8)
        .map(|b| usize::try_from(i64::from_le_bytes(b.try_into().expect("8 bytes"))))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("a negative position"))?;
    let (values, width) = (f64s(m.data()), m.shape()[1]);
    let counts = c.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
    let modes = counts
        .enumerate()
        .map(|(r, count)| match usize::try_from(count) {
            Ok(count) if count <= width => Ok(values[r * width..r * width + count].to_vec()),
            _ => bail!("row {r}: {count} modes in rows of {width}"),
        })
        .collect::<Result<_>>()?;
    Ok((positions, PoolScores { decisions: f64s(d.data()), modes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shards_scores_come_back_as_written() {
        // Rows of a class with two modes, one with none, one with one: padded to two, cut back (a NaN is a value, not
        // the padding).
        let scores =
            PoolScores { decisions: vec![0.5, -1.25, 3.0], modes: vec![vec![-0.5, f64::NAN], vec![], vec![1.5]] };
        let bytes = to_safetensors(&[7, 8, 9], &scores);
        let (positions, back) = from_safetensors(&bytes).unwrap();
        assert_eq!(positions, [7, 8, 9]);
        assert_eq!(back.decisions, scores.decisions);
        assert_eq!(back.modes.iter().map(Vec::len).collect::<Vec<_>>(), [2, 0, 1]);
        assert!(back.modes[0][0] == -0.5 && back.modes[0][1].is_nan() && back.modes[2] == [1.5]);
        // Without the modes rule: no modes at all, not a row of none each.
        let plain = PoolScores { decisions: vec![1.0, 2.0], modes: Vec::new() };
        let (positions, back) = from_safetensors(&to_safetensors(&[0, 1], &plain)).unwrap();
        assert_eq!((positions, back.decisions, back.modes.len()), (vec![0, 1], vec![1.0, 2.0], 0));
        // The modes rule where no class has modes: a row of none each.
        let none = PoolScores { decisions: vec![1.0, 2.0], modes: vec![Vec::new(), Vec::new()] };
        assert_eq!(from_safetensors(&to_safetensors(&[0, 1], &none)).unwrap().1.modes.len(), 2);
        assert!(format!("{:#}", from_safetensors(&bytes[..bytes.len() - 3]).unwrap_err()).contains("truncated"));
    }
}
