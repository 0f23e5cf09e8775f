//! fd-model: the classifier whose failures the toolkit studies.
//!
//! It will hold the CIFAR ResNet-18 of the paper (§1.2 of the method spec), smaller CPU presets, the training loop with the paper's triangular learning-rate schedule, evaluation of any split, and last-layer retraining.
//! It will depend on fd-data only, and will never know about CLIP, SVMs or captions.
//!
//! Nothing is implemented yet: this crate is a placeholder for the workspace layout, with no functions that pretend to work.
