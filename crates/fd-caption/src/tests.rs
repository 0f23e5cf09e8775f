//! fd-caption's tests: vocabulary sizes and snapshots, the article fix, known-answer scoring, nearest images, and the held-out check.

use expect_test::expect;

use crate::check::{check_caption, hypergeometric_cdf, hypergeometric_sf};
use crate::class::{CaptionConfig, ClassInput, caption_class};
use crate::score::{caption_deltas, mean_of_rows, top_captions};
use crate::subpopulation::nearest_images;
use crate::vocabulary::{Grammar, class_captions, reference_caption, vocabulary, vocabulary_names};

#[test]
fn vocabulary_sizes_match_the_paper() {
    assert_eq!(
        vocabulary_names(),
        ["celeba", "chestxray", "cifar10-simple", "cifar10-wordnet", "cifar100-superclass", "imagenet"]
    );
    let simple = vocabulary("cifar10-simple").unwrap();
    let sizes: Vec<usize> = simple.classes.iter().map(|c| class_captions(c, Grammar::Fixed).len()).collect();
    // 9 adjectives × (8 backgrounds + the class's extra prepositions): airplane 108.
    assert_eq!(sizes, [108, 90, 108, 108, 108, 108, 90, 90, 108, 90]);
    let count = |name: &str| class_captions(&vocabulary(name).unwrap().classes[0], Grammar::Fixed).len();
    assert_eq!((count("celeba"), count("chestxray"), count("cifar100-superclass")), (288, 15, 5));
    assert_eq!(vocabulary("cifar100-superclass").unwrap().labels.len(), 20);
    assert!(vocabulary("nope").is_none());
}

#[test]
fn the_wordnet_and_imagenet_sets() {
    let wordnet = vocabulary("cifar10-wordnet").unwrap();
    let nouns: Vec<usize> = wordnet.classes.iter().map(|c| c.nouns.len()).collect();
    assert_eq!(nouns, [21, 25, 614, 27, 42, 131, 41, 46, 99, 20]);
    // Every noun of the paper's example negative captions (§2.1) is there.
    for (class, noun) in [
        (0, "bomber"),
        (1, "ambulance"),
        (2, "oscine"),
        (3, "mouser"),
        (4, "kob"),
        (5, "feist"),
        (6, "agua"),
        (7, "protohippus"),
        (8, "racing gig"),
        (9, "passenger van"),
    ] {
        assert!(
            wordnet.classes[class].nouns.iter().any(|n| n == noun),
            "{noun} missing from {}",
            wordnet.labels[class]
        );
    }
    let cat = class_captions(&wordnet.classes[3], Grammar::Fixed);
    assert!(cat.contains(&"a photo of a white mouser on the grass".to_string()));
    assert_eq!(cat.len(), 27 * 9 * 12);
    let imagenet = vocabulary("imagenet").unwrap();
    assert_eq!(imagenet.labels.len(), 1000);
    assert_eq!((imagenet.labels[281].as_str(), imagenet.classes[281].nouns[0].as_str()), ("tabby", "feline"));
    assert_eq!(class_captions(&imagenet.classes[281], Grammar::Fixed).len(), 13 * 13);
    assert_eq!(imagenet.classes[0].nouns, ["fish"]);
}

#[test]
fn captions_read_right_and_the_papers_spelling_stays_available() {
    let celeba = &vocabulary("celeba").unwrap().classes[0];
    let fixed = class_captions(celeba, Grammar::Fixed);
    let paper = class_captions(celeba, Grammar::Paper);
    expect![[r#"
        a photo of a person who has stubble
        a photo of a person who has arched eyebrows
        a photo of an old person who has stubble
        a photo of a young person who has stubble"#]]
    .assert_eq(&[&fixed[0], &fixed[1], &fixed[32], &fixed[64]].map(String::as_str).join("\n"));
    assert_eq!(paper[32], "a photo of a old person who has stubble");
    assert_eq!(reference_caption("x-ray", Grammar::Fixed), "a photo of an x-ray");
    assert_eq!(reference_caption("x-ray", Grammar::Paper), "a photo of a x-ray");
    let airplane = class_captions(&vocabulary("cifar10-simple").unwrap().classes[0], Grammar::Fixed);
    expect![[r#"
        a photo of an airplane
        a photo of an airplane outside
        a photo of an airplane on the tarmac
        a photo of a white airplane
        a photo of a brown airplane on a road"#]]
    .assert_eq(
        &[&airplane[0], &airplane[1], &airplane[10], &airplane[12], &airplane[107]].map(String::as_str).join("\n"),
    );
}

#[test]
fn deltas_and_the_top_captions() {
    let reference = [0.5f32, 0.5];
    let captions = [1.5f32, 0.5, 0.5, -1.5];
    assert_eq!(caption_deltas(&captions, &reference), [1.0, 0.0, 0.0, -2.0]);
    let scores = [1.25, -0.75, 0.25, 0.85];
    assert_eq!(top_captions(&scores, 2), (vec![1, 2], vec![0, 3]));
    // Ties keep caption order on both sides.
    assert_eq!(top_captions(&[0.0, 0.0, 1.0], 2), (vec![0, 1], vec![2, 0]));
}

#[test]
fn a_class_s_captions_checks_curves_and_subpopulations_worked_by_hand() {
    // dim 2. Six held-out images: three along +x (all wrong) and three along +y (all right); dataset ids 100..106.
    let images = [1.0f32, 0.1, 1.0, 0.2, 1.0, 0.3, 0.1, 1.0, 0.2, 1.0, 0.3, 1.0];
    let correct = [false, false, false, true, true, true];
    let ids: Vec<usize> = (100..106).collect();
    let captions: Vec<String> = ["x-ish", "y-ish", "diagonal"].map(String::from).to_vec();
    let texts = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    let scores = [-2.0, 3.0, 0.5];
    let input = ClassInput {
        captions: &captions,
        texts: &texts,
        scores: &scores,
        images: &images,
        correct: &correct,
        ids: &ids,
        dim: 2,
    };
    let config = CaptionConfig { k: 3, top: 2, alpha: 0.1, vocabulary: None };
    let c = caption_class(&input, &config);
    assert_eq!(c.vocabulary_size, 3);
    assert_eq!(c.class_accuracy, 0.5);
    assert_eq!(c.negative.iter().map(|n| n.caption.as_str()).collect::<Vec<_>>(), ["x-ish", "diagonal"]);
    assert_eq!(c.positive.iter().map(|n| n.caption.as_str()).collect::<Vec<_>>(), ["y-ish", "diagonal"]);
    // The 3 images nearest "x-ish" by cosine are the +x ones, most aligned first: ids 100, 101, 102, all wrong.
    assert_eq!(c.hard_subpopulation, [100, 101, 102]);
    assert_eq!(c.easy_subpopulation, [103, 104, 105]);
    // P(0 right of 3 drawn from 3 right and 3 wrong) = 1 / C(6, 3) = 0.05 < 0.1.
    let hard = &c.hard().check;
    assert_eq!((hard.k, hard.accuracy, hard.class_accuracy), (3, 0.0, 0.5));
    assert!((hard.p_value - 0.05).abs() < 1e-12 && hard.supported, "{hard:?}");
    assert!(!c.easy().check.supported);
    // Only K = 5 of the curve's sizes fits in six images: the 5 nearest "x-ish" are 3 wrong and then the 2 most x-like right ones.
    assert_eq!(c.hard_curve.len(), 1);
    assert_eq!((c.hard_curve[0].k, c.hard_curve[0].accuracy), (5, 0.4));
    assert_eq!((c.easy_curve[0].k, c.easy_curve[0].accuracy), (5, 0.6));
}

#[test]
fn a_vocabulary_is_checked_against_the_dataset() {
    let set = vocabulary("cifar10-simple").unwrap();
    assert!(set.check(10).is_ok());
    assert!(set.check(4).unwrap_err().contains("10 labels and 10 class entries, but the dataset has 4 classes"));
    let mut empty = set.clone();
    empty.classes[3].nouns.clear();
    assert!(empty.check(10).unwrap_err().contains("class 3 (\"cat\") has no nouns"));
    assert!(CaptionConfig::default().check().is_ok());
    assert!(CaptionConfig { alpha: 1.0, ..CaptionConfig::default() }.check().is_err());
}

#[test]
fn reference_vectors_of_the_offline_space_are_means() {
    let rows = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert_eq!(mean_of_rows(&rows, 2, &[0, 2]), vec![3.0, 4.0]);
}

#[test]
fn nearest_images_by_cosine() {
    let images = [1.0f32, 0.0, 0.5, 3.0, 2.0, 2.1, -1.0, 0.0];
    assert_eq!(nearest_images(&[1.0, 1.0], &images, 3), vec![2, 1, 0]);
    assert_eq!(nearest_images(&[-1.0, 0.0], &images, 1), vec![3]);
}

#[test]
fn the_held_out_check_flags_an_unsupported_caption() {
    // C(20, 10) / C(100, 10): all ten nearest images wrong, in a class the model gets 80% right.
    let p = hypergeometric_cdf(0, 100, 80, 10);
    assert!((p - 184_756.0 / 17_310_309_456_440.0).abs() < 1e-15, "{p}");
    assert!((hypergeometric_cdf(10, 100, 80, 10) - 1.0).abs() < 1e-12);
    let correct: Vec<bool> = (0..100).map(|i| i >= 20).collect();
    let hard = check_caption(&correct, &(0..10).collect::<Vec<_>>(), 0.05);
    assert!(hard.supported && hard.accuracy == 0.0 && hard.class_accuracy == 0.8, "{hard:?}");
    // A caption whose images are as good as the class: 8 of 10 right.
    let nearest: Vec<usize> = (0..2).chain(30..38).collect();
    let typical = check_caption(&correct, &nearest, 0.05);
    assert!(!typical.supported && typical.p_value > 0.3, "{typical:?}");
}

#[test]
fn the_upper_tail_is_exact_where_one_minus_the_cdf_rounds_to_noise() {
    // P(X >= x) + P(X <= x - 1) = 1 where both are large.
    let (n, c, k) = (100, 30, 20);
    for x in 1..=20 {
        let sum = hypergeometric_sf(x, n, c, k) + hypergeometric_cdf(x - 1, n, c, k);
        assert!((sum - 1.0).abs() < 1e-12, "x = {x}: {sum}");
    }
    // All 10 draws from the 10 successes of 1,000: exactly 1 / C(1000, 10), about 3.8e-24; 1 - cdf gives 0 or noise.
    let exact = (0..10).map(|i| ((10 - i) as f64) / ((1000 - i) as f64)).product::<f64>();
    let sf = hypergeometric_sf(10, 1000, 10, 10);
    assert!((sf / exact - 1.0).abs() < 1e-9, "{sf} vs {exact}");
    // Two tails far apart in the 1e-30s stay ordered.
    assert!(hypergeometric_sf(10, 1000, 20, 10) > hypergeometric_sf(10, 1000, 10, 10));
    assert_eq!(hypergeometric_sf(11, 1000, 10, 10), 0.0, "more successes than exist");
}
