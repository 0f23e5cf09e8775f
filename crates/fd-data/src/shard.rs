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

    /// The shard a scheduler gave this process, from its environment (`var` reads a variable): a Slurm job array's
    /// `SLURM_ARRAY_TASK_ID` (less `SLURM_ARRAY_TASK_MIN`, so `--array=1-4` works too) of `SLURM_ARRAY_TASK_COUNT`, or a
    /// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` of `FD_SHARD_COUNT` (the Job's `completions`, which Kubernetes does
    /// not put in the environment). `None` outside such a job.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| v.trim().parse().map_err(|_| Error::ShardInvalid { given: format!("{name}={v}") }))
                .transpose()
        };
        if let (Some(id), Some(count)) = (number("SLURM_ARRAY_TASK_ID")?, number("SLURM_ARRAY_TASK_COUNT")?) {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id.checked_sub(min).ok_or_else(|| Error::ShardInvalid { given: format!("{id}/{count}") })?;
            return Shard::new(index, count).map(Some);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let Some(count) = number("FD_SHARD_COUNT")? else {
                return Err(Error::ShardInvalid {
                    given: format!(
                        "JOB_COMPLETION_INDEX={index} without FD_SHARD_COUNT (set it to the Job's completions)"
                    ),
                });
            };
            return Shard::new(index, count).map(Some);
        }
        Ok(None)
    }

    /// The positions of `0..total` this shard takes.
    pub fn range(&self, total: usize) -> Range<usize> {
        let at = |i: usize| (total as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
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
