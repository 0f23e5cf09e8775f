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
        Candidate { phrase: "mostly blue images", family: "hue blue", discovery: &blue, held_out: &held_blue },
        Candidate { phrase: "dark images", family: "dark", discovery: &dark, held_out: &held_dark },
        Candidate { phrase: "sharp images", family: "sharp", discovery: &sharp, held_out: &held_sharp },
        // The same images as "dark" under another name: one name, not two.
        Candidate { phrase: "dim images", family: "dim", discovery: &dark, held_out: &held_dark },
        // A weaker member of the dark family: never shown beside the stronger one.
        Candidate { phrase: "dark-ish images", family: "dark", discovery: &dark_weak, held_out: &held_blue },
    ];
    let names = name_class(&candidates, &decisions, &correct, &NameConfig::default());
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
        &[Candidate { phrase: "x", family: "x", discovery: &flag, held_out: &held }],
        &decisions,
        &correct,
        &NameConfig::default(),
    );
    assert_eq!(names.hard.len(), 1);
    assert!(!names.hard[0].check.supported && names.hard[0].check.p_value == 1.0);
    assert!(names.top_verified().is_none());
}
