//! Sharded jobs: shard `I` of `N` takes a deterministic, contiguous slice of a dataset's positions, so that `N` jobs on a
//! scheduler (a Slurm job array, a Kubernetes Indexed Job) cover every position exactly once, and a merge can check that
//! the shards it was given do.
//!
//! The slice of shard `i` of `n` over `total` positions is `total·i/n .. total·(i+1)/n`: sizes differ by at most one, and
//! shards of the same `n` never overlap and leave no gap. [`check_cover`] checks a set of shards found on disk before a merge.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: usize,
    /// How many shards the job has.
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`.
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::ShardInvalid { given: format!("{index}/{count}") });
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let invalid = || Error::ShardInvalid { given: text.to_string() };
        let (i, n) = text.trim().split_once('/').ok_or_else(invalid)?;
        let (i, n) = (i.trim().parse().map_err(|_| invalid())?, n.trim().parse().map_err(|_| invalid())?);
        Shard::new(i, n).map_err(|_| invalid())
    }

    /// The shard a scheduler gave this process, from its environment (`var` reads a variable): a Slurm job array task's
    /// `SLURM_ARRAY_TASK_ID`, or a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`, of `FD_SHARD_COUNT` (which
    /// `jobs/slurm/submit.sh` and the Job's manifest set). Without `FD_SHARD_COUNT`, a Slurm array's own size
    /// (`SLURM_ARRAY_TASK_COUNT`, its first index `SLURM_ARRAY_TASK_MIN` taken as shard 0), which only an array of
    /// consecutive indices covering the whole job gives: a resubmitted task (`--array=3`) or a stepped array needs
    /// `FD_SHARD_COUNT`. `None` outside such a job.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| v.trim().parse().map_err(|_| Error::ShardInvalid { given: format!("{name}={v}") }))
                .transpose()
        };
        let index = match (number("SLURM_ARRAY_TASK_ID")?, number("JOB_COMPLETION_INDEX")?) {
            (Some(id), _) => Some((id, true)),
            (None, Some(index)) => Some((index, false)),
            (None, None) => None,
        };
        let Some((index, slurm)) = index else { return Ok(None) };
        if let Some(count) = number("FD_SHARD_COUNT")? {
            return Shard::new(index, count).map(Some);
        }
        let invalid = |why: &str| Error::ShardInvalid {
            given: format!("shard {index} of {why}: set FD_SHARD_COUNT to the job's shard count"),
        };
        if !slurm {
            return Err(invalid("a Kubernetes Indexed Job without FD_SHARD_COUNT"));
        }
        if number("SLURM_ARRAY_TASK_STEP")?.is_some_and(|s| s != 1) {
            return Err(invalid("a stepped Slurm array"));
        }
        let Some(count) = number("SLURM_ARRAY_TASK_COUNT")? else {
            return Err(invalid("a Slurm array of unknown size"));
        };
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = index.checked_sub(min).ok_or_else(|| invalid("an array that starts after it"))?;
        Shard::new(index, count).map(Some)
    }

    /// The positions of `0..total` this shard takes.
    pub fn range(&self, total: usize) -> Range<usize> {
        let at = |i: usize| (total as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }

    /// The images of each part (of `lens` images, in order) that this shard takes, cut in units of `align` images within
    /// each part (a part's last unit may be shorter), so that a shard runs the same batches of `align` as a run over the
    /// whole part; and the job's units in all.
    pub fn part_ranges(&self, lens: &[usize], align: usize) -> (Vec<Range<usize>>, usize) {
        let align = align.max(1);
        let total = lens.iter().map(|l| l.div_ceil(align)).sum();
        let range = self.range(total);
        let mut unit = 0;
        let ranges = lens
            .iter()
            .map(|&len| {
                let (first, units) = (unit, len.div_ceil(align));
                unit += units;
                let local = |u: usize| ((u.clamp(first, first + units) - first) * align).min(len);
                local(range.start)..local(range.end)
            })
            .collect();
        (ranges, total)
    }

    /// `I-of-N`, for file and stage names.
    pub fn slug(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }

    /// Every shard of a job of `count`.
    pub fn all(count: usize) -> impl DoubleEndedIterator<Item = Shard> {
        (0..count).map(move |index| Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Checks that `found` (each shard's name, as the error should give it, and the positions it holds) covers `0..total`
/// exactly once, and returns the order to read them in (by first position). The first gap or overlap is the error.
pub fn check_cover(total: usize, found: &[(String, Range<usize>)], count: usize) -> Result<Vec<usize>> {
    let mut order: Vec<usize> = (0..found.len()).filter(|&k| !found[k].1.is_empty()).collect();
    order.sort_by_key(|&k| (found[k].1.start, found[k].1.end));
    let mut covered = 0;
    let mut last: Option<usize> = None;
    for &k in &order {
        let (name, range) = &found[k];
        if range.start < covered {
            let first = last.map_or_else(String::new, |l| found[l].0.clone());
            return Err(Error::ShardDuplicated {
                first,
                second: name.clone(),
                overlap: range.start..covered.min(range.end),
            });
        }
        if range.start > covered {
            return Err(missing(covered..range.start, total, count));
        }
        covered = range.end;
        last = Some(k);
    }
    if covered < total {
        return Err(missing(covered..total, total, count));
    }
    Ok(order)
}

/// The error for uncovered positions `gap`, naming the shard of a job of `count` that starts in it.
fn missing(gap: Range<usize>, total: usize, count: usize) -> Error {
    let shard = Shard::all(count.max(1)).find(|s| s.range(total).contains(&gap.start));
    Error::ShardMissing { gap, total, missing: shard.map_or_else(|| "?".to_string(), |s| s.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_position_is_in_exactly_one_shard_for_any_count() {
        for total in [0, 1, 2, 7, 10, 97, 1000] {
            for count in 1..=23 {
                let mut seen = vec![0u8; total];
                let mut sizes = Vec::new();
                for shard in Shard::all(count) {
                    let r = shard.range(total);
                    sizes.push(r.len());
                    r.for_each(|p| seen[p] += 1);
                }
                assert!(seen.iter().all(|&s| s == 1), "total {total}, {count} shards: {seen:?}");
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "total {total}, {count} shards: sizes {sizes:?}");
                let found: Vec<(String, Range<usize>)> =
                    Shard::all(count).rev().map(|s| (s.to_string(), s.range(total))).collect();
                assert!(check_cover(total, &found, count).is_ok(), "total {total}, {count} shards");
            }
        }
        // Positions past u32 do not overflow.
        let big = Shard::new(3, 4).unwrap().range(usize::MAX / 2);
        assert_eq!(big.end, usize::MAX / 2);
    }

    #[test]
    fn parts_are_cut_at_batch_boundaries_and_covered_once() {
        // Parts of 48, 48, 64 and 80 images in batches of 32: units of 2, 2, 2 and 3.
        let lens = [48, 48, 64, 80];
        let ranges = |i| Shard::new(i, 3).unwrap().part_ranges(&lens, 32);
        assert_eq!(ranges(0), (vec![0..48, 0..32, 0..0, 0..0], 9));
        assert_eq!(ranges(1).0, vec![48..48, 32..48, 0..64, 0..0]);
        assert_eq!(ranges(2).0, vec![48..48, 48..48, 64..64, 0..80]);
        for lens in [vec![0, 5, 1000, 37], vec![1], vec![513, 0, 0, 512], vec![0, 0]] {
            for align in [1, 7, 32, 512] {
                for count in 1..=9 {
                    let mut seen: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0; l]).collect();
                    for shard in Shard::all(count) {
                        for (part, r) in shard.part_ranges(&lens, align).0.into_iter().enumerate() {
                            assert!(r.start % align == 0 || r.start == lens[part], "{lens:?} {align} {count}: {r:?}");
                            r.for_each(|i| seen[part][i] += 1);
                        }
                    }
                    assert!(seen.iter().flatten().all(|&s| s == 1), "{lens:?}, align {align}, {count} shards");
                }
            }
        }
    }

    #[test]
    fn shards_parse_from_text_and_from_a_scheduler() {
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
        assert_eq!(Shard::parse(" 0 / 1 ").unwrap(), Shard { index: 0, count: 1 });
        for bad in ["5/5", "1/0", "x/2", "3", "-1/4", ""] {
            assert!(matches!(Shard::parse(bad), Err(Error::ShardInvalid { .. })), "{bad:?}");
        }
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        }
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        let slurm = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(Shard::from_env(env(&slurm)).unwrap(), Some(Shard { index: 3, count: 4 }));
        let from_one = [("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "1")];
        assert_eq!(Shard::from_env(env(&from_one)).unwrap(), Some(Shard { index: 3, count: 4 }));
        let k8s = [("JOB_COMPLETION_INDEX", "0"), ("FD_SHARD_COUNT", "2")];
        assert_eq!(Shard::from_env(env(&k8s)).unwrap(), Some(Shard { index: 0, count: 2 }));
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err(), "no count");
        assert!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_COUNT", "4")])).is_err());
        // A task resubmitted alone (`sbatch --array=3`): its array is one task, FD_SHARD_COUNT says the job's size.
        let again = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "1"), ("SLURM_ARRAY_TASK_MIN", "3")];
        assert_eq!(Shard::from_env(env(&again)).unwrap(), Some(Shard { index: 0, count: 1 }), "without the count");
        let again = [again.as_slice(), &[("FD_SHARD_COUNT", "8")]].concat();
        assert_eq!(Shard::from_env(env(&again)).unwrap(), Some(Shard { index: 3, count: 8 }));
        let stepped = [("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_STEP", "2")];
        assert!(Shard::from_env(env(&stepped)).is_err(), "a stepped array needs the count");
        assert!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "2")])).is_err(), "an array of unknown size");
    }

    #[test]
    fn a_missing_or_duplicated_shard_is_named() {
        let total = 10;
        let named = |shards: &[Shard]| -> Vec<(String, Range<usize>)> {
            shards.iter().map(|s| (format!("shard {s}"), s.range(total))).collect()
        };
        let s = |i, n| Shard::new(i, n).unwrap();
        // 0/4 .. 3/4 are 0..2, 2..5, 5..7, 7..10.
        match check_cover(total, &named(&[s(0, 4), s(1, 4), s(3, 4)]), 4) {
            Err(Error::ShardMissing { gap, missing, .. }) => assert_eq!((gap, missing.as_str()), (5..7, "2/4")),
            other => panic!("{other:?}"),
        }
        match check_cover(total, &named(&[s(0, 4), s(1, 4), s(2, 4)]), 4) {
            Err(Error::ShardMissing { gap, missing, .. }) => assert_eq!((gap, missing.as_str()), (7..10, "3/4")),
            other => panic!("{other:?}"),
        }
        // A stale shard of another job size overlaps.
        match check_cover(total, &named(&[s(0, 2), s(0, 4), s(1, 4), s(2, 4), s(3, 4)]), 4) {
            Err(Error::ShardDuplicated { first, second, overlap }) => {
                assert_eq!((first.as_str(), second.as_str(), overlap), ("shard 0/4", "shard 0/2", 0..2));
            }
            other => panic!("{other:?}"),
        }
        // The same shard twice.
        let twice = [named(&[s(1, 2)]), named(&[s(0, 2), s(1, 2)])].concat();
        assert!(matches!(check_cover(total, &twice, 2), Err(Error::ShardDuplicated { .. })));
        let text = check_cover(total, &named(&[s(1, 2)]), 2).unwrap_err().to_string();
        assert!(text.contains("shard 0/2 is missing"), "{text}");
    }
}
