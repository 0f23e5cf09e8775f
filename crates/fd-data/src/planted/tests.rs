//! Planted subpopulations: group labels, rates, determinism, transforms and config checks.

use crate::planted::*;
use crate::split::{SplitConfig, SplitPart};
use crate::synthetic::{SyntheticConfig, make_synthetic};
use crate::{Dataset, Image, count_labels};

fn synthetic(classes: usize, per_class: usize) -> (Dataset, Dataset) {
    make_synthetic(&SyntheticConfig {
        classes,
        train_per_class: per_class,
        test_per_class: per_class / 2,
        size: 8,
        seed: 3,
    })
}

fn superclass_config() -> SuperclassConfig {
    let spec = |name: &str, members: &[&str], minority: &[&str]| SuperclassSpec {
        name: name.into(),
        members: members.iter().map(|s| s.to_string()).collect(),
        minority: minority.iter().map(|s| s.to_string()).collect(),
    };
    SuperclassConfig {
        superclasses: vec![
            spec("a", &["class0", "class1", "class2"], &["class2"]),
            spec("b", &["class3", "class4"], &[]),
        ],
        minority_keep_every: 4,
        label_noise: 0.0,
        seed: 0,
    }
}

#[test]
fn superclass_task_subsamples_the_minority_in_train_only() {
    let (train, test) = synthetic(6, 100);
    let config = PlantedConfig::Superclass(superclass_config());
    validate(&config, train.class_names()).unwrap();
    let split_config = SplitConfig { val_every: 5, pool_every: 2, swap: false };
    let p = prepare(train.clone(), test.clone(), &split_config, Some(&config)).unwrap();
    let groups = p.groups.as_ref().unwrap();
    // class5 is in no superclass, so its images are gone.
    assert_eq!(p.train.len(), 500);
    assert_eq!(p.test.len(), 250);
    assert_eq!(p.train.class_names(), ["a", "b"]);
    // The config alone knows the classes the classifier predicts, before any image is decoded.
    let data = crate::DataConfig {
        dataset: crate::DatasetConfig::Synthetic(SyntheticConfig {
            classes: 6,
            train_per_class: 100,
            test_per_class: 50,
            size: 8,
            seed: 3,
        }),
        split: split_config.clone(),
        planted: Some(config.clone()),
    };
    assert_eq!(data.class_names().unwrap(), p.train.class_names());
    assert_eq!(crate::DataConfig { planted: None, ..data }.class_names().unwrap().len(), 6);
    assert_eq!(groups.planted, vec![2]);
    for i in 0..p.train.len() {
        let fine = groups.train[i];
        assert_eq!(p.train.labels()[i], if fine <= 2 { 0 } else { 1 });
    }
    let counts = group_counts(groups, &p.split);
    // 100 per class: val takes 20, the pool half of the other 80, train the rest; train keeps 1 in 4 minority images.
    assert_eq!(counts[0], (SplitPart::Train, vec![40, 40, 10, 40, 40, 0]));
    assert_eq!(counts[1], (SplitPart::Val, vec![20, 20, 20, 20, 20, 0]));
    assert_eq!(counts[2], (SplitPart::Extra, vec![40, 40, 40, 40, 40, 0]));
    assert_eq!(counts[3], (SplitPart::Test, vec![50, 50, 50, 50, 50, 0]));
    // The images themselves are untouched.
    assert_eq!(p.train.image(0).unwrap().data, train.image_bytes(0));
}

#[test]
fn planted_attribute_marks_the_asked_fraction_deterministically() {
    let (train, test) = synthetic(4, 100);
    let config = AttributeConfig {
        transform: Transform::Grayscale,
        train_rate: 0.1,
        eval_rate: 0.5,
        classes: vec!["class1".into(), "class3".into()],
        other_train_rate: 0.0,
        other_eval_rate: 0.0,
        seed: 7,
    };
    let planted = PlantedConfig::Attribute(config.clone());
    let split_config = SplitConfig::paper_cifar10();
    let p = prepare(train.clone(), test.clone(), &split_config, Some(&planted)).unwrap();
    let groups = p.groups.as_ref().unwrap();
    for (part, idx) in p.split.parts() {
        let (set, g) = if part.is_test() { (&p.test, &groups.test) } else { (&p.train, &groups.train) };
        let planted_labels: Vec<u16> = idx.iter().filter(|&&i| g[i] == 1).map(|&i| set.labels()[i]).collect();
        let all = count_labels(&idx.iter().map(|&i| set.labels()[i]).collect::<Vec<_>>(), 4);
        let rate = if part == SplitPart::Train { 0.1 } else { 0.5 };
        let expected: Vec<usize> =
            (0..4).map(|k| if k == 1 || k == 3 { (rate * all[k] as f64).round() as usize } else { 0 }).collect();
        assert_eq!(count_labels(&planted_labels, 4), expected, "{part}");
        for &i in idx {
            let img = set.image(i).unwrap();
            let gray = img.data.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]);
            assert_eq!(gray, g[i] == 1, "{part} image {i}");
        }
    }
    let again = prepare(train.clone(), test.clone(), &split_config, Some(&planted)).unwrap();
    assert_eq!(again, p);
    let other = PlantedConfig::Attribute(AttributeConfig { seed: 8, ..config });
    let other = prepare(train, test, &split_config, Some(&other)).unwrap();
    assert_ne!(other.groups.unwrap().train, groups.train);
}

#[test]
fn transforms_do_what_they_say() {
    let img = Image::new(2, 2, vec![200, 100, 0, 0, 0, 0, 255, 255, 255, 10, 20, 30]);
    let gray = apply_transform(&img, Transform::Grayscale, 0);
    // 0.299 * 200 + 0.587 * 100 = 118.5, rounded away from zero.
    assert_eq!(gray.pixel(0, 0), [119, 119, 119]);
    let flat = Image::new(3, 3, vec![77; 27]);
    assert_eq!(apply_transform(&flat, Transform::Blur { radius: 1 }, 0), flat);
    let blurred = apply_transform(&img, Transform::Blur { radius: 1 }, 0);
    // Horizontal box sums with clamped edges: row 0 gives 400/3 and 200/3, row 1 gives 520/3 and 275/3; vertically (133 + 133 + 173) / 3.
    assert_eq!(blurred.pixel(0, 0)[0], 146);
    let low = apply_transform(&img, Transform::LowContrast { factor: 0.5 }, 0);
    let spread = |i: &Image| i.data.iter().max().unwrap() - i.data.iter().min().unwrap();
    assert!(spread(&low) < spread(&img));
    let a = apply_transform(&flat, Transform::Noise { sigma: 10.0 }, 1);
    assert_eq!(a, apply_transform(&flat, Transform::Noise { sigma: 10.0 }, 1));
    assert_ne!(a, apply_transform(&flat, Transform::Noise { sigma: 10.0 }, 2));
    assert_ne!(a, flat);
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let names: Vec<String> = (0..6).map(|k| format!("class{k}")).collect();
    let mut c = superclass_config();
    c.superclasses[0].minority = vec!["class4".into()];
    let e = validate(&PlantedConfig::Superclass(c), &names).unwrap_err().to_string();
    assert_eq!(e, "planted: minority \"class4\" is not a member of superclass \"a\"");
    let mut c = superclass_config();
    c.superclasses[1].members.push("class1".into());
    assert!(validate(&PlantedConfig::Superclass(c), &names).unwrap_err().to_string().contains("in two superclasses"));
    let mut c = superclass_config();
    c.superclasses[1].members.push("zebra".into());
    assert!(
        validate(&PlantedConfig::Superclass(c), &names).unwrap_err().to_string().contains("\"zebra\" is not a class")
    );
    let bad_rate = AttributeConfig {
        transform: Transform::Grayscale,
        train_rate: 1.5,
        eval_rate: 0.5,
        classes: vec![],
        other_train_rate: 0.0,
        other_eval_rate: 0.0,
        seed: 0,
    };
    let e = validate(&PlantedConfig::Attribute(bad_rate), &names).unwrap_err().to_string();
    assert_eq!(e, "planted: train_rate must lie in [0, 1], got 1.5");
}

#[test]
fn label_noise_stays_in_the_minority_and_in_train() {
    let (train, test) = synthetic(6, 100);
    let config = SuperclassConfig { minority_keep_every: 1, label_noise: 0.4, ..superclass_config() };
    let planted = PlantedConfig::Superclass(config.clone());
    validate(&planted, train.class_names()).unwrap();
    let split_config = SplitConfig { val_every: 5, pool_every: 2, swap: false };
    let p = prepare(train.clone(), test.clone(), &split_config, Some(&planted)).unwrap();
    let groups = p.groups.as_ref().unwrap();
    let superclass = |fine: u16| if fine <= 2 { 0 } else { 1 };
    let wrong = |idx: &[usize]| idx.iter().filter(|&&i| p.train.labels()[i] != superclass(groups.train[i])).count();
    let minority: Vec<usize> = p.split.train.iter().copied().filter(|&i| groups.train[i] == 2).collect();
    let majority: Vec<usize> = p.split.train.iter().copied().filter(|&i| groups.train[i] != 2).collect();
    // Keep-every 1 keeps all 40 minority train images; about 40% of them get the other superclass's label.
    assert_eq!(minority.len(), 40);
    let flipped = wrong(&minority);
    assert!((8..=24).contains(&flipped), "{flipped} of 40 flipped");
    assert_eq!(wrong(&majority), 0, "only the minority is noisy");
    assert_eq!(wrong(&p.split.val), 0, "val labels are clean");
    assert_eq!(wrong(&p.split.extra), 0, "pool labels are clean");
    // Another seed flips other images, and keeps another quarter when subsampling.
    let other = PlantedConfig::Superclass(SuperclassConfig { seed: 1, ..config });
    let q = prepare(train.clone(), test.clone(), &split_config, Some(&other)).unwrap();
    assert_ne!(q.train.labels(), p.train.labels());
    let keep = |seed| {
        let c = PlantedConfig::Superclass(SuperclassConfig { seed, ..superclass_config() });
        prepare(train.clone(), test.clone(), &split_config, Some(&c)).unwrap().split.train
    };
    assert_ne!(keep(0), keep(1));
    assert_eq!(keep(1).len(), keep(0).len());
    let none = PlantedConfig::Superclass(SuperclassConfig { minority_keep_every: 1, ..superclass_config() });
    assert!(validate(&none, train.class_names()).unwrap_err().to_string().contains("plants nothing"));
}

#[test]
fn a_cue_class_plants_its_clean_images() {
    let (train, test) = synthetic(4, 100);
    let config = AttributeConfig {
        transform: Transform::Grayscale,
        train_rate: 0.9,
        eval_rate: 0.5,
        classes: vec!["class1".into()],
        other_train_rate: 0.1,
        other_eval_rate: 0.5,
        seed: 2,
    };
    let p = prepare(train, test, &SplitConfig::paper_cifar10(), Some(&PlantedConfig::Attribute(config))).unwrap();
    let groups = p.groups.as_ref().unwrap();
    assert_eq!(groups.names, ["clean", "grayscale", "grayscale (common in train)", "clean (rare in train)"]);
    assert_eq!(groups.planted, vec![1, 3]);
    let test_of = |class: u16, group: u16| {
        p.split.test.iter().filter(|&&i| p.test.labels()[i] == class && groups.test[i] == group).count()
    };
    // Test: half of every class is grayscale; in class1 that half is the majority's look and the clean half is planted.
    assert_eq!((test_of(1, 2), test_of(1, 3), test_of(1, 1)), (25, 25, 0));
    assert_eq!((test_of(0, 1), test_of(0, 0), test_of(0, 3)), (25, 25, 0));
    let train_of = |class: u16, group: u16| {
        p.split.train.iter().filter(|&&i| p.train.labels()[i] == class && groups.train[i] == group).count()
    };
    assert_eq!((train_of(1, 2), train_of(1, 3)), (18, 2));
    assert_eq!((train_of(2, 1), train_of(2, 0)), (2, 18));
    for &i in &p.split.test {
        let gray = p.test.image(i).unwrap().data.chunks_exact(3).all(|x| x[0] == x[1] && x[1] == x[2]);
        assert_eq!(gray, matches!(groups.test[i], 1 | 2), "test image {i}");
    }
}
