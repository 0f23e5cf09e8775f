//! Naming by contrast on hand-made data.

use super::*;

#[test]
fn the_predicate_of_the_hardest_images_is_named_first_and_checked_on_held_out_images() {
    // 100 discovery images; decision = index, so images 0..20 are the hardest. "dark" holds for 0..15 and for 5 images
    // elsewhere (20% of the class, 75% of the hardest); "blue" for every 5th image (no signal); "sharp" for 80..100.
    let dark: Vec<bool> = (0..100).map(|i| i < 15 || (50..55).contains(&i)).collect();
    let blue: Vec<bool> = (0..100).map(|i| i % 5 == 0).collect();
    let sharp: Vec<bool> = (0..100).map(|i| i >= 80).collect();
    // Over-represented too (6 of the hardest 20 against 26 of 100), but less than "dark".
    let dark_weak: Vec<bool> = (0..100).map(|i| i < 6 || (40..60).contains(&i)).collect();
    let decisions: Vec<f32> = (0..100).map(|i| i as f32).collect();
    // Held out: 40 images, the 10 dark ones all wrong, the other 30 right.
    let correct: Vec<bool> = (0..40).map(|i| i >= 10).collect();
    let held_dark: Vec<bool> = (0..40).map(|i| i < 10).collect();
    let held_blue: Vec<bool> = (0..40).map(|i| i % 4 == 0).collect();
    let held_sharp: Vec<bool> = (0..40).map(|i| i >= 30).collect();
    let candidates = [
        Candidate {
            phrase: "mostly blue images",
            family: "hue blue",
            discovery: &blue,
            held_out: &held_blue,
            values: None,
            labelled: None,
        },
        Candidate {
            phrase: "dark images",
            family: "dark",
            discovery: &dark,
            held_out: &held_dark,
            values: None,
            labelled: None,
        },
        Candidate {
            phrase: "sharp images",
            family: "sharp",
            discovery: &sharp,
            held_out: &held_sharp,
            values: None,
            labelled: None,
        },
        // The same images as "dark" under another name: one name, not two.
        Candidate {
            phrase: "dim images",
            family: "dim",
            discovery: &dark,
            held_out: &held_dark,
            values: None,
            labelled: None,
        },
        // A weaker member of the dark family: never shown beside the stronger one.
        Candidate {
            phrase: "dark-ish images",
            family: "dark",
            discovery: &dark_weak,
            held_out: &held_blue,
            values: None,
            labelled: None,
        },
    ];
    let names = name_class(&candidates, &decisions, &correct, None, &NameConfig::default());
    assert_eq!(names.top, 20);
    assert_eq!(names.hard[0].phrase, "dark images");
    let dark = &names.hard[0];
    assert!((dark.share_top - 0.75).abs() < 1e-12 && (dark.share_class - 0.2).abs() < 1e-12);
    assert!((dark.lift - 3.75).abs() < 1e-12);
    // P(X >= 15) for 20 draws from 100 with 20 successes: tiny.
    assert!(dark.p_value < 1e-8, "{}", dark.p_value);
    assert!(dark.check.supported && dark.check.accuracy == 0.0 && (dark.check.class_accuracy - 0.75).abs() < 1e-12);
    assert_eq!(names.top_verified().unwrap().phrase, "dark images");
    assert!(names.hard.iter().all(|n| n.phrase != "dark-ish images" && n.phrase != "dim images"));
    // "sharp" is never among the hardest: not a hard name, but the first easy one, and held-out sharp images are all right.
    assert!(names.hard.iter().all(|n| n.phrase != "sharp images"));
    assert_eq!(names.easy[0].phrase, "sharp images");
    assert!(names.easy[0].check.accuracy == 1.0);
    // "blue" is spread evenly (4 of the hardest 20 = its 20% share): not over-represented, so not a name on either side.
    assert!(names.hard.iter().chain(&names.easy).all(|n| n.phrase != "mostly blue images"));
}

#[test]
fn a_name_whose_held_out_images_are_not_harder_is_flagged_not_hidden() {
    let flag: Vec<bool> = (0..60).map(|i| i < 10).collect();
    let decisions: Vec<f32> = (0..60).map(|i| i as f32).collect();
    let correct = vec![true; 30];
    let held: Vec<bool> = (0..30).map(|i| i < 5).collect();
    let names = name_class(
        &[Candidate { phrase: "x", family: "x", discovery: &flag, held_out: &held, values: None, labelled: None }],
        &decisions,
        &correct,
        None,
        &NameConfig::default(),
    );
    assert_eq!(names.hard.len(), 1);
    assert!(!names.hard[0].check.supported && names.hard[0].check.p_value == 1.0);
    assert!(names.top_verified().is_none());
}

#[test]
fn of_two_names_for_the_same_hardest_images_the_one_that_moved_furthest_leads() {
    // The hardest 20 of 100 (decision = index) are all low on two measures. "Washed-out" picks fewer other images, so its
    // p-value is the better; but the hardest moved 0.2 → 0.03 on contrast, whose class spread is narrow (many robust
    // standard deviations), and only about halved on saturation, whose spread is wide: "low contrast" names them.
    let contrast: Vec<f32> =
        (0..100).map(|i| if i < 20 { 0.03 } else { 0.15 + 0.1 * ((i * 37) % 80) as f32 / 80.0 }).collect();
    let saturation: Vec<f32> =
        (0..100).map(|i| if i < 20 { 0.15 } else { 0.05 + 0.75 * ((i * 53) % 80) as f32 / 80.0 }).collect();
    let low_contrast: Vec<bool> = (0..100).map(|i| i < 30).collect();
    let washed_out: Vec<bool> = (0..100).map(|i| i < 20 || (40..48).contains(&i)).collect();
    // Unrelated evidence: "noisy" holds for every one of the hardest, but over the class it goes with "washed-out" no more
    // than chance would (60 and 28 images, 20 together: 1.2 times), so its far larger effect does not make it the name of
    // the contrast failure; it is a piece of evidence of its own.
    let noise: Vec<f32> = (0..100).map(|i| if i < 20 { 10.0 } else { 0.1 + 0.001 * i as f32 }).collect();
    let noisy: Vec<bool> = (0..100).map(|i| i < 20 || (50..90).contains(&i)).collect();
    // "Dark" goes with "washed-out" over the class (18 images, all washed-out: 3.6 times chance) but holds for only half the
    // hardest (overlap 0.5): another piece of evidence too, though its effect is the largest of all.
    let brightness: Vec<f32> = (0..100)
        .map(|i| if i < 10 || (40..48).contains(&i) { 1e-4 } else { 0.4 + 0.05 * ((i * 37) % 80) as f32 / 80.0 })
        .collect();
    let dark: Vec<bool> = (0..100).map(|i| i < 10 || (40..48).contains(&i)).collect();
    // Other evidence: a tag on ten of the hardest and fifteen others, which go with neither "washed-out" nor "noisy".
    let tag: Vec<bool> = (0..100).map(|i| i % 2 == 0 && i < 20 || (20..35).contains(&i)).collect();
    let decisions: Vec<f32> = (0..100).map(|i| i as f32).collect();
    let correct: Vec<bool> = (0..40).map(|i| i >= 10).collect();
    let held: Vec<bool> = (0..40).map(|i| i < 10).collect();
    let candidates = [
        Candidate {
            phrase: "washed-out colours",
            family: "low saturation",
            discovery: &washed_out,
            held_out: &held,
            values: Some(&saturation),
            labelled: None,
        },
        Candidate {
            phrase: "low contrast",
            family: "low contrast",
            discovery: &low_contrast,
            held_out: &held,
            values: Some(&contrast),
            labelled: None,
        },
        Candidate {
            phrase: "tagged “x”",
            family: "tag x",
            discovery: &tag,
            held_out: &held,
            values: None,
            labelled: None,
        },
        Candidate {
            phrase: "noisy",
            family: "high noise",
            discovery: &noisy,
            held_out: &held,
            values: Some(&noise),
            labelled: None,
        },
        Candidate {
            phrase: "dark",
            family: "low brightness",
            discovery: &dark,
            held_out: &held,
            values: Some(&brightness),
            labelled: None,
        },
    ];
    let names = name_class(&candidates, &decisions, &correct, None, &NameConfig::default());
    let phrases: Vec<&str> = names.hard.iter().map(|n| n.phrase.as_str()).collect();
    let (contrast_name, washed) =
        (&names.hard[0], names.hard.iter().find(|n| n.phrase == "washed-out colours").unwrap());
    // The p-value alone would have put "washed-out colours" first.
    assert!(washed.p_value < contrast_name.p_value, "{phrases:?}");
    // The leaders of the four pieces of evidence first, then the rest: "washed-out" last.
    assert_eq!(phrases[0], "low contrast");
    let mut middle = phrases[1..4].to_vec();
    middle.sort_unstable();
    assert_eq!(middle, ["dark", "noisy", "tagged “x”"], "{phrases:?}");
    assert_eq!(phrases[4], "washed-out colours");
    let effect = |p: &str| names.hard.iter().find(|n| n.phrase == p).unwrap().effect;
    assert!(effect("noisy") > contrast_name.effect && effect("dark") > contrast_name.effect, "{:?}", names.hard);
    assert!(
        contrast_name.effect > 5.0 && washed.effect < contrast_name.effect / 2.0,
        "{} {}",
        contrast_name.effect,
        washed.effect
    );
    // A yes/no predicate's effect: share 10/20 against 25/100, in binomial standard deviations.
    let tag = names.hard.iter().find(|n| n.phrase == "tagged “x”").unwrap();
    assert!((tag.effect - (0.5 - 0.25) / (0.25f64 * 0.75).sqrt()).abs() < 1e-9, "{}", tag.effect);
}

#[test]
fn a_measure_effect_counts_in_the_predicate_s_direction() {
    // Ten values low, the rest spread: the low predicate's effect is positive, a high predicate on the same picks negative.
    let values: Vec<f32> = (0..50).map(|i| if i < 10 { 0.01 } else { 0.1 + i as f32 * 0.01 }).collect();
    let low: Vec<bool> = (0..50).map(|i| i < 15).collect();
    let high: Vec<bool> = (0..50).map(|i| i >= 35).collect();
    let picked: Vec<usize> = (0..10).collect();
    assert!(measure_effect(&values, &low, &picked) > 1.0);
    assert!(measure_effect(&values, &high, &picked) < -1.0);
}

#[test]
fn given_labelled_images_each_name_carries_their_check_and_the_order_stays_the_direction_s() {
    // 100 discovery images, the hardest 20 (decision = index). "Natural" holds for 16 of them and 4 others: the direction's
    // strongest lean. "Planted" holds for 6 of them (14..20) and 6 others: over-represented, less strongly.
    let natural: Vec<bool> = (0..100).map(|i| i < 16 || (60..64).contains(&i)).collect();
    let planted: Vec<bool> = (0..100).map(|i| (14..20).contains(&i) || (70..76).contains(&i)).collect();
    let decisions: Vec<f32> = (0..100).map(|i| i as f32).collect();
    let correct: Vec<bool> = (0..40).map(|i| i >= 10).collect();
    let held: Vec<bool> = (0..40).map(|i| i < 10).collect();
    // Labelled (validation): the classifier is right on all 20 "natural" images and wrong on all 15 "planted" ones.
    let right: Vec<bool> = (0..60).map(|i| !(40..55).contains(&i)).collect();
    let natural_labelled: Vec<bool> = (0..60).map(|i| i < 20).collect();
    let planted_labelled: Vec<bool> = (0..60).map(|i| (40..55).contains(&i)).collect();
    let candidates = [
        Candidate {
            phrase: "natural",
            family: "natural",
            discovery: &natural,
            held_out: &held,
            values: None,
            labelled: Some(&natural_labelled),
        },
        Candidate {
            phrase: "planted",
            family: "planted",
            discovery: &planted,
            held_out: &held,
            values: None,
            labelled: Some(&planted_labelled),
        },
    ];
    let names = name_class(&candidates, &decisions, &correct, Some(&right), &NameConfig::default());
    let phrases: Vec<&str> = names.hard.iter().map(|n| n.phrase.as_str()).collect();
    // The direction's order, whatever the errors say.
    assert_eq!(phrases, ["natural", "planted"]);
    let planted_errors = names.hard[1].errors.as_ref().unwrap();
    assert!(planted_errors.accuracy == 0.0 && (planted_errors.class_accuracy - 0.75).abs() < 1e-12);
    assert!(planted_errors.supported && planted_errors.k == 15);
    let natural_errors = names.hard[0].errors.as_ref().unwrap();
    assert!(natural_errors.accuracy == 1.0 && !natural_errors.supported);
    // Without labelled images no errors are measured, and the field stays out of the JSON.
    let plain = name_class(&candidates, &decisions, &correct, None, &NameConfig::default());
    assert!(plain.hard.iter().all(|n| n.errors.is_none()));
    assert!(!serde_json::to_string(&plain.hard[0]).unwrap().contains("errors"));
}

#[test]
fn a_distinct_name_leads_a_more_significant_mild_one() {
    // 1000 images, the 100 hardest first. "mild" holds for half the class and 95 of the hardest (p about 1e-23, a rise
    // of 0.9 binomial standard deviations); "distinct" for 15 images, all among the hardest (p about 1e-15, a rise of 1.1).
    let mild: Vec<bool> = (0..1000).map(|i| i < 95 || (100..505).contains(&i)).collect();
    let distinct: Vec<bool> = (0..1000).map(|i| i < 15).collect();
    let decisions: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let correct: Vec<bool> = (0..40).map(|i| i >= 10).collect();
    let held: Vec<bool> = (0..40).map(|i| i < 10).collect();
    let candidate = |phrase, discovery| Candidate {
        phrase,
        family: phrase,
        discovery,
        held_out: &held,
        values: None,
        labelled: None,
    };
    let candidates = [candidate("mild", &mild), candidate("distinct", &distinct)];
    let names = name_class(&candidates, &decisions, &correct, None, &NameConfig::default());
    let phrases: Vec<&str> = names.hard.iter().map(|n| n.phrase.as_str()).collect();
    assert_eq!(phrases, ["distinct", "mild"]);
    assert!(names.hard[1].p_value < names.hard[0].p_value, "the mild name is the more significant");
    assert!(names.hard[0].effect >= DISTINCT_EFFECT && names.hard[1].effect < DISTINCT_EFFECT);
}

#[test]
fn a_name_shared_by_most_classes_leads_each_of_them() {
    let check = CaptionCheck { k: 10, accuracy: 0.5, class_accuracy: 0.8, p_value: 0.01, supported: true };
    let name = |family: &str, p_value: f64| AttributeName {
        phrase: format!("{family} (threshold)"),
        family: family.into(),
        share_top: 0.5,
        share_class: 0.3,
        lift: 5.0 / 3.0,
        p_value,
        effect: 0.5,
        check: check.clone(),
        errors: None,
    };
    // Five classes, each led by a failure of its own; "cue" is over-represented among the hardest of all five (p 1e-5),
    // "pair" of two only, "weak" of all five but not significantly (p 0.01).
    let mut classes: Vec<ClassNames> = (0..5)
        .map(|k| {
            let mut hard = vec![name(&format!("own {k}"), 1e-20), name("weak", 1e-2)];
            if k < 2 {
                hard.push(name("pair", 1e-8));
            }
            hard.extend((0..6).map(|j| name(&format!("filler {k} {j}"), 1e-4)));
            hard.push(name("cue", 1e-5));
            ClassNames { top: 10, hard, easy: Vec::new() }
        })
        .collect();
    // A mode of class 0 is reordered by the classes' own names.
    let mode = ClassNames { top: 10, hard: vec![name("mode's own", 1e-9), name("cue", 1e-4)], easy: Vec::new() };
    let mut modes = vec![vec![mode], Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let config = NameConfig::default();
    lead_with_shared(&mut classes, &mut modes, &config);
    for (k, class) in classes.iter().enumerate() {
        let families: Vec<&str> = class.hard.iter().map(|n| n.family.as_str()).collect();
        assert_eq!(families[..2], ["cue", &format!("own {k}")], "class {k}: {families:?}");
        assert_eq!(class.hard.len(), config.names, "cut to the names kept");
        // "weak" stays where its p-value put it; "pair" is shared by one other class of four: not enough to lead.
        let rest = if k < 2 { ["weak", "pair"] } else { ["weak", &format!("filler {k} 0")] };
        assert_eq!(families[2..4], rest, "class {k}: {families:?}");
    }
    assert_eq!(modes[0][0].hard[0].family, "cue");
}
