//! Datasets with hidden subpopulations that we plant ourselves, with per-image ground-truth group labels, so that later stages can be scored against the truth.
//!
//! Two kinds, after method spec §1.1:
//! - a superclass task, where chosen subclasses are kept at 1/r of their images in train only (the analogue of the paper's spurious CIFAR-100);
//! - a planted attribute, a deterministic image transform applied to a fraction of each class, at one rate in train and another in val, extra and test (the ImageNet-C-style setting).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::split::{Split, SplitConfig, SplitPart, split};
use crate::{Dataset, Image, Images};

/// A planted subpopulation, chosen by `kind` in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PlantedConfig {
    /// Classes grouped into superclasses, with minority subclasses under-represented in train.
    Superclass(SuperclassConfig),
    /// A transform applied to a fraction of each class.
    Attribute(AttributeConfig),
}

/// A superclass task: the classifier predicts the superclass, and the minority subclasses are kept at one image in `minority_keep_every` in train,
/// and, with `label_noise`, have that share of their train labels replaced by another superclass (label noise confined to a subgroup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperclassConfig {
    /// The superclasses, in label order.
    pub superclasses: Vec<SuperclassSpec>,
    /// Train keeps every `minority_keep_every`-th image of a minority subclass (the paper: 4; 1 keeps them all).
    pub minority_keep_every: usize,
    /// The share of the minority subclasses' train images whose label is replaced by another superclass, chosen at random.
    #[serde(default)]
    pub label_noise: f64,
    /// Seeds which minority images train keeps (the offset within each run of `minority_keep_every`) and the label noise.
    #[serde(default)]
    pub seed: u64,
}

/// One superclass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperclassSpec {
    /// Its name, which becomes a class name of the task.
    pub name: String,
    /// The base dataset's classes it is made of.
    pub members: Vec<String>,
    /// The members kept at 1/r in train.
    pub minority: Vec<String>,
}

/// A planted attribute: `transform` applied to a `train_rate` fraction of each chosen class in train and an `eval_rate` fraction in val, extra and test;
/// the other classes at `other_train_rate` and `other_eval_rate`.
///
/// A class where the attribute is common in train (rate over one half) learns it as a cue: there the planted group is the
/// class's images *without* the attribute (a spurious correlation), elsewhere the images with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// The transform that marks the planted group.
    pub transform: Transform,
    /// The fraction of each chosen class transformed in train.
    pub train_rate: f64,
    /// The fraction of each chosen class transformed in val, extra and test.
    pub eval_rate: f64,
    /// The classes that get the attribute at `train_rate` and `eval_rate` (all when empty).
    pub classes: Vec<String>,
    /// The fraction of each other class transformed in train.
    #[serde(default)]
    pub other_train_rate: f64,
    /// The fraction of each other class transformed in val, extra and test.
    #[serde(default)]
    pub other_eval_rate: f64,
    /// Seeds the choice of images and the noise.
    pub seed: u64,
}

/// A deterministic image transform.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transform {
    /// Luma (ITU-R BT.601 weights) copied to all three channels.
    Grayscale,
    /// A separable box blur over `2 * radius + 1` pixels, edges clamped.
    Blur {
        /// The half-width of the box.
        radius: usize,
    },
    /// Additive Gaussian noise of standard deviation `sigma` (on the 0-255 scale), clamped; seeded per image.
    Noise {
        /// The standard deviation.
        sigma: f32,
    },
    /// Contrast scaled by `factor` around the image's mean.
    LowContrast {
        /// The scale, in (0, 1).
        factor: f32,
    },
}

/// Ground-truth group labels of a planted dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    /// Group names, indexed by group id.
    pub names: Vec<String>,
    /// The groups that were planted (the minority subclasses, or the transformed images).
    pub planted: Vec<u16>,
    /// The group of every image of the training set.
    pub train: Vec<u16>,
    /// The group of every image of the test set.
    pub test: Vec<u16>,
}

impl Groups {
    /// Whether group `g` is one of the planted ones.
    pub fn is_planted(&self, g: u16) -> bool {
        self.planted.contains(&g)
    }
}

/// Checks a planted config against the base dataset's class names, once, at load time.
pub fn validate(config: &PlantedConfig, class_names: &[String]) -> Result<()> {
    let known = |name: &String, what: &str| {
        if class_names.contains(name) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "planted: {what} {name:?} is not a class of the dataset (classes: {})",
                class_names.join(", ")
            )))
        }
    };
    match config {
        PlantedConfig::Superclass(c) => {
            if c.superclasses.len() < 2 {
                return Err(Error::Invalid("planted: a superclass task needs at least two superclasses".into()));
            }
            if c.minority_keep_every < 1 {
                return Err(Error::Invalid("planted: minority_keep_every must be at least 1".into()));
            }
            if !(0.0..=1.0).contains(&c.label_noise) {
                return Err(Error::Invalid(format!("planted: label_noise must lie in [0, 1], got {}", c.label_noise)));
            }
            if c.minority_keep_every == 1 && c.label_noise == 0.0 {
                return Err(Error::Invalid(
                    "planted: minority_keep_every = 1 with no label_noise plants nothing; keep fewer minority images or add label noise"
                        .into(),
                ));
            }
            let mut seen: Vec<&String> = Vec::new();
            for s in &c.superclasses {
                if s.members.is_empty() {
                    return Err(Error::Invalid(format!("planted: superclass {:?} has no members", s.name)));
                }
                for m in &s.members {
                    known(m, "member")?;
                    if seen.contains(&m) {
                        return Err(Error::Invalid(format!("planted: class {m:?} is in two superclasses")));
                    }
                    seen.push(m);
                }
                for m in &s.minority {
                    if !s.members.contains(m) {
                        return Err(Error::Invalid(format!(
                            "planted: minority {m:?} is not a member of superclass {:?}",
                            s.name
                        )));
                    }
                }
            }
        }
        PlantedConfig::Attribute(c) => {
            let rates = [
                ("train_rate", c.train_rate),
                ("eval_rate", c.eval_rate),
                ("other_train_rate", c.other_train_rate),
                ("other_eval_rate", c.other_eval_rate),
            ];
            for (what, r) in rates {
                if !(0.0..=1.0).contains(&r) {
                    return Err(Error::Invalid(format!("planted: {what} must lie in [0, 1], got {r}")));
                }
            }
            for name in &c.classes {
                known(name, "class")?;
            }
            match c.transform {
                Transform::Blur { radius: 0 } => {
                    return Err(Error::Invalid("planted: blur radius must be at least 1".into()));
                }
                Transform::Noise { sigma } if !(sigma > 0.0 && sigma.is_finite()) => {
                    return Err(Error::Invalid(format!("planted: noise sigma must be positive, got {sigma}")));
                }
                Transform::LowContrast { factor } if !(factor > 0.0 && factor < 1.0) => {
                    return Err(Error::Invalid(format!(
                        "planted: low-contrast factor must lie in (0, 1), got {factor}"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A training and test set with their split and, for planted datasets, the ground-truth groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The training set that `split.train`, `split.val` and `split.extra` index.
    pub train: Images,
    /// The test set that `split.test` indexes.
    pub test: Images,
    /// The split.
    pub split: Split,
    /// Ground-truth groups, for planted datasets and manifests with a `group` column.
    pub groups: Option<Groups>,
    /// Image files left out as unreadable, with the reason (only for a folder dataset with `skip_unreadable`).
    pub skipped: Vec<(std::path::PathBuf, String)>,
}

impl Prepared {
    /// The dataset a part indexes (the test set for test, the training set otherwise) and the part's indices into it.
    pub fn images(&self, part: SplitPart) -> (&Images, &[usize]) {
        (if part.is_test() { &self.test } else { &self.train }, self.split.indices(part))
    }

    /// The ground-truth group of each image of a part, for planted datasets.
    pub fn part_groups(&self, part: SplitPart) -> Option<Vec<u16>> {
        let groups = self.groups.as_ref()?;
        let source = if part.is_test() { &groups.test } else { &groups.train };
        Some(self.split.indices(part).iter().map(|&i| source[i]).collect())
    }
}

/// Splits `train` and `test` as `split_config` says and plants `planted`, if any (validate it first with [`validate`]).
pub fn prepare(
    train: Dataset,
    test: Dataset,
    split_config: &SplitConfig,
    planted: Option<&PlantedConfig>,
) -> Result<Prepared> {
    let _s = tracing::info_span!("prepare_data").entered();
    match planted {
        None => {
            let split = split(train.labels(), train.num_classes(), test.len(), split_config);
            Ok(Prepared { train: train.into(), test: test.into(), split, groups: None, skipped: Vec::new() })
        }
        Some(PlantedConfig::Superclass(c)) => plant_superclasses(&train, &test, split_config, c),
        Some(PlantedConfig::Attribute(c)) => plant_attribute(train, test, split_config, c),
    }
}

fn plant_superclasses(
    train: &Dataset,
    test: &Dataset,
    split_config: &SplitConfig,
    c: &SuperclassConfig,
) -> Result<Prepared> {
    let names = train.class_names();
    let id = |n: &String| names.iter().position(|x| x == n).expect("validated: every member is a class") as u16;
    let mut superclass_of: Vec<Option<u16>> = vec![None; names.len()];
    let mut minority = Vec::new();
    for (s, spec) in c.superclasses.iter().enumerate() {
        for m in &spec.members {
            superclass_of[usize::from(id(m))] = Some(s as u16);
        }
        minority.extend(spec.minority.iter().map(id));
    }
    minority.sort_unstable();
    let super_names: Vec<String> = c.superclasses.iter().map(|s| s.name.clone()).collect();
    // Keep only images of mapped classes; their fine label becomes the group.
    let relabel = |d: &Dataset| -> Result<(Dataset, Vec<u16>)> {
        let keep: Vec<usize> = (0..d.len()).filter(|&i| superclass_of[usize::from(d.labels()[i])].is_some()).collect();
        let sub = d.subset(&keep);
        let fine = sub.labels().to_vec();
        let coarse = fine.iter().map(|&l| superclass_of[usize::from(l)].expect("kept images are mapped")).collect();
        Ok((sub.relabel(coarse, super_names.clone())?, fine))
    };
    let (mut new_train, train_groups) = relabel(train)?;
    let (new_test, test_groups) = relabel(test)?;
    // The split is stratified by fine class, then train keeps every r-th minority image (`orig_indices[mask][::r]`), from
    // the seed's offset within each run of r.
    let base = split(&train_groups, names.len(), new_test.len(), split_config);
    let r = c.minority_keep_every;
    let offset = (c.seed % r as u64) as usize;
    let mut minority_seen = 0usize;
    let kept_train: Vec<usize> = base
        .train
        .iter()
        .copied()
        .filter(|&i| {
            if !minority.contains(&train_groups[i]) {
                return true;
            }
            minority_seen += 1;
            (minority_seen - 1) % r == offset
        })
        .collect();
    if c.label_noise > 0.0 {
        let mut labels = new_train.labels().to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x1abe_1000);
        let supers = super_names.len() as u16;
        let mut flipped = 0usize;
        for &i in kept_train.iter().filter(|&&i| minority.contains(&train_groups[i])) {
            if rand::Rng::random::<f64>(&mut rng) < c.label_noise {
                // Another superclass, uniformly.
                let shift = rand::Rng::random_range(&mut rng, 1..supers);
                labels[i] = (labels[i] + shift) % supers;
                flipped += 1;
            }
        }
        tracing::info!(flipped, "planted label noise");
        new_train = new_train.relabel(labels, super_names.clone())?;
    }
    let split = Split { train: kept_train, ..base };
    let groups = Groups { names: names.to_vec(), planted: minority, train: train_groups, test: test_groups };
    tracing::info!(train = split.train.len(), val = split.val.len(), extra = split.extra.len(), "planted superclasses");
    Ok(Prepared { train: new_train.into(), test: new_test.into(), split, groups: Some(groups), skipped: Vec::new() })
}

fn plant_attribute(
    mut train: Dataset,
    mut test: Dataset,
    split_config: &SplitConfig,
    c: &AttributeConfig,
) -> Result<Prepared> {
    let split = split(train.labels(), train.num_classes(), test.len(), split_config);
    let names = train.class_names().to_vec();
    let chosen: Vec<bool> = names.iter().map(|n| c.classes.is_empty() || c.classes.contains(n)).collect();
    let rate = |class: usize, train: bool| match (chosen[class], train) {
        (true, true) => c.train_rate,
        (true, false) => c.eval_rate,
        (false, true) => c.other_train_rate,
        (false, false) => c.other_eval_rate,
    };
    // Where the attribute is common in train, it is the class's cue: its transformed images are the majority (group 2) and
    // its clean ones the planted group (3).
    let cue: Vec<bool> = (0..names.len()).map(|k| rate(k, true) > 0.5).collect();
    let mut train_groups = vec![0u16; train.len()];
    let mut test_groups = vec![0u16; test.len()];
    let parts: [(u64, &[usize], bool, bool); 4] = [
        (0, &split.train, true, false),
        (1, &split.val, false, false),
        (2, &split.extra, false, false),
        (3, &split.test, false, true),
    ];
    for (part, indices, is_train, is_test) in parts {
        let (dataset, groups) = if is_test { (&mut test, &mut test_groups) } else { (&mut train, &mut train_groups) };
        for (class, &is_cue) in cue.iter().enumerate() {
            let mut members: Vec<usize> =
                indices.iter().copied().filter(|&i| usize::from(dataset.labels()[i]) == class).collect();
            if is_cue {
                members.iter().for_each(|&i| groups[i] = 3);
            }
            let count = (rate(class, is_train) * members.len() as f64).round() as usize;
            if count == 0 {
                continue;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ (part << 32) ^ class as u64);
            members.shuffle(&mut rng);
            let mut picked = members[..count].to_vec();
            picked.sort_unstable();
            for i in picked {
                let seed = c.seed ^ (part << 32) ^ ((i as u64) << 8) ^ 0x5eed;
                let img = apply_transform(&dataset.image(i), c.transform, seed);
                dataset.set_image(i, &img);
                groups[i] = if is_cue { 2 } else { 1 };
            }
        }
    }
    let name = transform_name(c.transform);
    let mut group_names = vec!["clean".to_string(), name.to_string()];
    let mut planted = vec![1];
    if cue.iter().any(|&x| x) {
        group_names.extend([format!("{name} (common in train)"), "clean (rare in train)".to_string()]);
        planted.push(3);
    }
    let groups = Groups { names: group_names, planted, train: train_groups, test: test_groups };
    Ok(Prepared { train: train.into(), test: test.into(), split, groups: Some(groups), skipped: Vec::new() })
}

fn transform_name(t: Transform) -> &'static str {
    match t {
        Transform::Grayscale => "grayscale",
        Transform::Blur { .. } => "blur",
        Transform::Noise { .. } => "noise",
        Transform::LowContrast { .. } => "low-contrast",
    }
}

/// Applies `transform` to `image`; `seed` drives the noise and nothing else.
pub fn apply_transform(image: &Image, transform: Transform, seed: u64) -> Image {
    let (h, w) = (image.height, image.width);
    let data = match transform {
        Transform::Grayscale => image
            .data
            .chunks_exact(3)
            .flat_map(|p| {
                let y = (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).round() as u8;
                [y, y, y]
            })
            .collect(),
        Transform::Blur { radius } => {
            let r = radius as isize;
            let blur = |src: &[u8], horizontal: bool| -> Vec<u8> {
                let mut out = vec![0u8; src.len()];
                for y in 0..h {
                    for x in 0..w {
                        for ch in 0..3 {
                            let mut sum = 0u32;
                            for d in -r..=r {
                                let (yy, xx) = if horizontal {
                                    (y, (x as isize + d).clamp(0, w as isize - 1) as usize)
                                } else {
                                    ((y as isize + d).clamp(0, h as isize - 1) as usize, x)
                                };
                                sum += u32::from(src[(yy * w + xx) * 3 + ch]);
                            }
                            let n = (2 * r + 1) as u32;
                            out[(y * w + x) * 3 + ch] = ((sum + n / 2) / n) as u8;
                        }
                    }
                }
                out
            };
            blur(&blur(&image.data, true), false)
        }
        Transform::Noise { sigma } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            image
                .data
                .iter()
                .map(|&v| (f32::from(v) + sigma * standard_normal(&mut rng)).round().clamp(0.0, 255.0) as u8)
                .collect()
        }
        Transform::LowContrast { factor } => {
            let mean = image.data.iter().map(|&v| f32::from(v)).sum::<f32>() / image.data.len().max(1) as f32;
            image
                .data
                .iter()
                .map(|&v| (mean + factor * (f32::from(v) - mean)).round().clamp(0.0, 255.0) as u8)
                .collect()
        }
    };
    Image::new(h, w, data)
}

/// A standard normal draw by the Box-Muller transform (stable across dependency versions, unlike a distribution crate's).
fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    use rand::RngCore;
    let u = |rng: &mut ChaCha8Rng| ((rng.next_u32() >> 8) as f32 + 0.5) / (1u32 << 24) as f32;
    let (u1, u2) = (u(rng), u(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// How many images of each group fall in each part of the split: `[part][group]`, parts in [`Split::parts`] order.
pub fn group_counts(groups: &Groups, split: &Split) -> Vec<(SplitPart, Vec<usize>)> {
    split
        .parts()
        .into_iter()
        .map(|(name, idx)| {
            let source = if name.is_test() { &groups.test } else { &groups.train };
            let mut counts = vec![0; groups.names.len()];
            for &i in idx {
                counts[usize::from(source[i])] += 1;
            }
            (name, counts)
        })
        .collect()
}

#[cfg(test)]
mod tests;
