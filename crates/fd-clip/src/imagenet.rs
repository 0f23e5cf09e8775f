//! The 1000 ImageNet-1k classes (WordNet ids and names) and their CIFAR-10 parents, as data (`data/imagenet_classes.tsv`, made by `data/make_imagenet_classes.py` from WordNet 3.0).
//!
//! They are the closed caption vocabulary of the offline latent space: a caption is an ImageNet class name, embedded as its row of EfficientNet-Lite0's classifier.

/// One ImageNet class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNetClass {
    /// The class index, 0..1000.
    pub index: usize,
    /// The WordNet id, for example `n02123045`.
    pub wnid: &'static str,
    /// The first lemma, for example `tabby`.
    pub name: &'static str,
    /// Every lemma, comma-separated.
    pub lemmas: &'static str,
    /// The CIFAR-10 class it is a hyponym of, if any.
    pub cifar10: Option<&'static str>,
}

const TABLE: &str = include_str!("../data/imagenet_classes.tsv");

/// All 1000 classes in index order.
pub fn imagenet_classes() -> Vec<ImageNetClass> {
    TABLE
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&'static str> = line.split('\t').collect();
            ImageNetClass {
                index: f[0].parse().expect("the table's indices are numbers"),
                wnid: f[1],
                name: f[2],
                lemmas: f[3],
                cifar10: (f[4] != "-").then_some(f[4]),
            }
        })
        .collect()
}

/// The ImageNet classes that are hyponyms of each CIFAR-10 class, in CIFAR-10 label order.
pub fn cifar10_hyponyms(cifar10_names: &[&str]) -> Vec<Vec<usize>> {
    let classes = imagenet_classes();
    cifar10_names.iter().map(|n| classes.iter().filter(|c| c.cifar10 == Some(*n)).map(|c| c.index).collect()).collect()
}
