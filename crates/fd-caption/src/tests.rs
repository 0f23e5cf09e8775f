//! fd-caption's tests: vocabulary sizes and snapshots, the article fix, known-answer scoring, nearest images, and the held-out check.

use expect_test::expect;

use crate::check::{check_caption, hypergeometric_cdf};
use crate::score::{ClassScorer, mean_of_rows, score_captions, top_captions};
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
fn a_direction_aligned_with_a_caption_ranks_it_hardest() {
    // dim 4, identity preprocessing with normalisation, w along axis 0 (pointing at "correct").
    let (mean, std, w) = ([0.0f32; 4], [1.0f32; 4], [1.0, 0.0, 0.0, 0.0]);
    let scorer = ClassScorer { mean: &mean, std: &std, normalize: true, w: &w, b: 0.25 };
    let reference = [0.5f32, 0.5, 0.0, 0.0];
    let shifted = |d: [f32; 4]| -> Vec<f32> { reference.iter().zip(d).map(|(r, d)| r + d).collect() };
    let captions: Vec<f32> = [[1.0, 0.0, 0.0, 0.0], [-2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0]]
        .into_iter()
        .flat_map(shifted)
        .collect();
    let scores = score_captions(&captions, &reference, &scorer);
    let expected = [1.25, -0.75, 0.25, 0.85];
    assert!(scores.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{scores:?}");
    let (negative, positive) = top_captions(&scores, 2);
    assert_eq!((negative, positive), (vec![1, 2], vec![0, 3]));
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
