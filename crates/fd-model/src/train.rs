//! Training as the paper trains its CIFAR classifier (method spec §1.2), and last-layer retraining (§4.2).
//!
//! SGD with momentum 0.9 and weight decay 5e-4 on every parameter, the per-iteration triangular learning rate, batch 512 with drop_last,
//! 35 epochs peaking at 0.5 at epoch 5, flip + translate + cutout augmentation, optional per-example loss weights; the last epoch's weights are the result.

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use fd_data::{Dataset, Progress};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::resnet::ResNet;
use crate::schedule::triangular_lr;
use crate::{ModelConfig, images_to_tensor};

/// The optimisation settings of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step (the last partial batch is dropped).
    pub batch_size: usize,
    /// The learning rate at the peak of the triangle.
    pub peak_lr: f64,
    /// The epoch of the peak.
    pub peak_epoch: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay, on every parameter.
    pub weight_decay: f64,
    /// Flip, translate and cutout.
    pub augment: bool,
    /// Seeds initialisation, shuffling and augmentation.
    pub seed: u64,
}

impl TrainConfig {
    /// The paper's CIFAR-10 schedule (`cifar.yaml`).
    pub fn paper_cifar10() -> TrainConfig {
        TrainConfig {
            epochs: 35,
            batch_size: 512,
            peak_lr: 0.5,
            peak_epoch: 5.0,
            momentum: 0.9,
            weight_decay: 5e-4,
            augment: true,
            seed: 0,
        }
    }

    /// The paper's last-layer retraining for the generative intervention (§4.2): 15 epochs, peak 0.1 at epoch 5.
    pub fn paper_last_layer() -> TrainConfig {
        TrainConfig { epochs: 15, peak_lr: 0.1, ..TrainConfig::paper_cifar10() }
    }

    /// Checks the values once, at load time.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("train: {m}")));
        if self.epochs == 0 || self.batch_size == 0 {
            return bad(format!("epochs and batch_size must be positive, got {} and {}", self.epochs, self.batch_size));
        }
        if !(self.peak_lr > 0.0 && self.peak_lr.is_finite()) {
            return bad(format!("peak_lr must be positive, got {}", self.peak_lr));
        }
        if !(self.peak_epoch > 0.0 && self.peak_epoch < self.epochs as f64) {
            return bad(format!("peak_epoch must lie in (0, epochs), got {}", self.peak_epoch));
        }
        if !(0.0..1.0).contains(&self.momentum) || !(0.0..1.0).contains(&self.weight_decay) {
            return bad(format!(
                "momentum and weight_decay must lie in [0, 1), got {} and {}",
                self.momentum, self.weight_decay
            ));
        }
        Ok(())
    }
}

/// The images to train on: `indices` into `dataset`, each with an optional loss weight.
#[derive(Debug, Clone, Copy)]
pub struct TrainSet<'a> {
    /// The images and labels.
    pub dataset: &'a Dataset,
    /// Which images (repeats allowed), for example the train split plus selected pool images.
    pub indices: &'a [usize],
    /// A loss weight per entry of `indices` (the paper's `loss_upweight_vec`); 1 when absent.
    pub weights: Option<&'a [f32]>,
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean weighted loss over its steps.
    pub loss: f64,
    /// Training accuracy over its steps (on augmented images).
    pub accuracy: f64,
    /// The learning rate of its last step.
    pub lr: f64,
}

/// Trains a fresh network of `model_config`'s architecture on `set` and returns it (off autodiff) with its epoch logs.
pub fn train(
    model_config: &ModelConfig,
    num_classes: usize,
    set: TrainSet<'_>,
    config: &TrainConfig,
    device: &Device,
    progress: &dyn Progress,
) -> Result<(ResNet, Vec<EpochLog>)> {
    let _s =
        tracing::info_span!("train", architecture = ?model_config.architecture, images = set.indices.len()).entered();
    let device = device.clone().autodiff();
    let model = ResNet::seeded(model_config.architecture, num_classes, &device, config.seed);
    run(model, model_config, set, config, &device, false, progress)
}

/// Retrains only the head of `model` on `set`, the rest frozen but with BatchNorm in train mode (its running statistics follow the new data), as §4.2 does.
pub fn retrain_head(
    model: ResNet,
    model_config: &ModelConfig,
    set: TrainSet<'_>,
    config: &TrainConfig,
    device: &Device,
    progress: &dyn Progress,
) -> Result<(ResNet, Vec<EpochLog>)> {
    let _s = tracing::info_span!("retrain_head", images = set.indices.len()).entered();
    let device = device.clone().autodiff();
    // Fork onto the autodiff device (a model read from a file on a plain device tracks nothing) and ask for the head's
    // gradients only. The backbone must track nothing: autodiff keeps every tracked forward's graph until a backward
    // reaches it, and the head's detached input never lets one, so a tracked backbone held each step's activations for
    // the whole retraining (24 GB after two CIFAR-10 epochs).
    let mut model = model.fork(&device).train().set_require_grad(false);
    model.linear = model.linear.set_require_grad(true);
    run(model, model_config, set, config, &device, true, progress)
}

fn run(
    mut model: ResNet,
    model_config: &ModelConfig,
    set: TrainSet<'_>,
    config: &TrainConfig,
    device: &Device,
    head_only: bool,
    progress: &dyn Progress,
) -> Result<(ResNet, Vec<EpochLog>)> {
    config.validate()?;
    let n = set.indices.len();
    if let Some(w) = set.weights
        && w.len() != n
    {
        return Err(Error::Invalid(format!("{} loss weights for {n} training images", w.len())));
    }
    let per_epoch = n / config.batch_size;
    if per_epoch == 0 {
        return Err(Error::Invalid(format!("{n} training images make no full batch of {}", config.batch_size)));
    }
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: config.momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: config.weight_decay as f32 }))
        .init();
    let fill = model_config.fill();
    let mut logs = Vec::with_capacity(config.epochs);
    progress.start(if head_only { "retrain head" } else { "train" }, (config.epochs * per_epoch) as u64);
    for epoch in 0..config.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ ((epoch as u64 + 1) << 32)));
        let (mut loss_sum, mut hits, mut lr) = (0.0, 0usize, 0.0);
        for step in 0..per_epoch {
            let iteration = epoch * per_epoch + step;
            lr = triangular_lr(iteration, per_epoch, config.epochs, config.peak_epoch, config.peak_lr);
            let batch = &order[step * config.batch_size..(step + 1) * config.batch_size];
            let images: Vec<usize> = batch.iter().map(|&k| set.indices[k]).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ ((iteration as u64) << 20) ^ 0xa5);
            let augment_rng = config.augment.then_some(&mut rng);
            let x = images_to_tensor(set.dataset, &images, model_config, augment_rng, fill, device);
            let labels: Vec<i64> = images.iter().map(|&i| i64::from(set.dataset.labels()[i])).collect();
            let weights: Vec<f32> = batch.iter().map(|&k| set.weights.map_or(1.0, |w| w[k])).collect();
            let logits = if head_only { model.linear.forward(model.features(x).detach()) } else { model.forward(x) };
            let (loss, correct) = weighted_cross_entropy(logits, &labels, &weights, device);
            loss_sum += f64::from(loss.clone().into_scalar::<f32>());
            hits += correct;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            progress.advance(1);
        }
        let log = EpochLog {
            epoch: epoch + 1,
            loss: loss_sum / per_epoch as f64,
            accuracy: hits as f64 / (per_epoch * config.batch_size) as f64,
            lr,
        };
        tracing::info!(epoch = log.epoch, loss = log.loss, accuracy = log.accuracy, lr = log.lr, "epoch");
        logs.push(log);
    }
    progress.finish();
    Ok((model.valid(), logs))
}

/// The mean of per-example cross-entropy times its weight (the paper's `loss_upweight_vec`), and the number of correct predictions.
fn weighted_cross_entropy(logits: Tensor<2>, labels: &[i64], weights: &[f32], device: &Device) -> (Tensor<1>, usize) {
    let [b, _] = logits.dims();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(labels.to_vec(), [b, 1]), device);
    let predicted: Vec<i64> =
        logits.clone().argmax(1).into_data().convert::<i64>().try_to_vec().expect("argmax gives integers");
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    let picked = log_softmax(logits, 1).gather(1, targets).reshape([b]);
    let w = Tensor::<1>::from_data(TensorData::new(weights.to_vec(), [b]), device);
    ((picked * w).neg().mean(), correct)
}
