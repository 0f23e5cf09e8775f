//! The CIFAR ResNets: the paper's ResNet-18 (method spec §1.2) and smaller presets for a 2-core CPU.
//!
//! The structure and parameter names follow the CIFAR ResNet the paper trains (the kuangliu/pytorch-cifar layout that
//! failure_directions' `cifar_resnet.py` uses): a 3×3 stem `conv1`/`bn1` with no max-pool, stages `layer1..4` of
//! BasicBlocks (`conv1`, `bn1`, `conv2`, `bn2`, and a 1×1-conv + BN `shortcut` where the shape changes), global average
//! pooling, and a linear head `linear`. PyTorch's `shortcut.0`/`shortcut.1` are `shortcut.conv`/`shortcut.bn` here;
//! `load.rs` maps the names.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ops::conv_bn;

/// Images per group in batched inference (see [`ResNet::features`]): a multiple of the images one convolution task
/// covers on every feature map of a ResNet on 32 × 32 images (1 at 32 × 32 and 16 × 16, 4 at 8 × 8, 16 at 4 × 4: a
/// task has at least `conv_kernel`'s 256 columns), so there grouping changes no task.
pub(crate) const INFERENCE_GROUP: usize = 16;

/// The architecture, chosen by preset name in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// The paper's CIFAR ResNet-18: widths 64/128/256/512, two BasicBlocks per stage (11.2 M parameters).
    Resnet18,
    /// A CPU preset: widths 32/64/128/256, one BasicBlock per stage (about 1.2 M parameters, an eighth of ResNet-18's work).
    Resnet10Narrow,
    /// A smaller CPU preset: widths 16/32/64/128, one BasicBlock per stage (about 0.3 M parameters).
    Resnet10Small,
    /// A tiny preset for tests: widths 8/16/32/64, one BasicBlock per stage.
    Tiny,
}

impl Architecture {
    /// Stage widths and blocks per stage.
    pub fn shape(self) -> ([usize; 4], [usize; 4]) {
        match self {
            Architecture::Resnet18 => ([64, 128, 256, 512], [2, 2, 2, 2]),
            Architecture::Resnet10Narrow => ([32, 64, 128, 256], [1, 1, 1, 1]),
            Architecture::Resnet10Small => ([16, 32, 64, 128], [1, 1, 1, 1]),
            Architecture::Tiny => ([8, 16, 32, 64], [1, 1, 1, 1]),
        }
    }
}

fn conv3x3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

/// The 1×1 projection shortcut.
#[derive(Module, Debug)]
pub struct Shortcut {
    /// PyTorch's `shortcut.0`.
    pub conv: Conv2d,
    /// PyTorch's `shortcut.1`.
    pub bn: BatchNorm,
}

/// A BasicBlock: two 3×3 convolutions with BatchNorm and a residual connection.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// The first convolution (carries the stride).
    pub conv1: Conv2d,
    /// Its BatchNorm.
    pub bn1: BatchNorm,
    /// The second convolution.
    pub conv2: Conv2d,
    /// Its BatchNorm.
    pub bn2: BatchNorm,
    /// The projection, where the shape changes.
    pub shortcut: Option<Shortcut>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> BasicBlock {
        let shortcut = (stride != 1 || cin != cout).then(|| Shortcut {
            conv: Conv2dConfig::new([cin, cout], [1, 1]).with_stride([stride, stride]).with_bias(false).init(device),
            bn: BatchNormConfig::new(cout).init(device),
        });
        BasicBlock {
            conv1: conv3x3(cin, cout, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv3x3(cout, cout, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = conv_bn(&self.conv1, &self.bn1, x.clone(), None, true);
        let skip = match &self.shortcut {
            Some(s) => conv_bn(&s.conv, &s.bn, x, None, false),
            None => x,
        };
        conv_bn(&self.conv2, &self.bn2, out, Some(skip), true)
    }
}

/// A CIFAR ResNet.
#[derive(Module, Debug)]
pub struct ResNet {
    /// The 3×3 stem.
    pub conv1: Conv2d,
    /// Its BatchNorm.
    pub bn1: BatchNorm,
    /// Stage 1 (stride 1).
    pub layer1: Vec<BasicBlock>,
    /// Stage 2 (stride 2).
    pub layer2: Vec<BasicBlock>,
    /// Stage 3 (stride 2).
    pub layer3: Vec<BasicBlock>,
    /// Stage 4 (stride 2).
    pub layer4: Vec<BasicBlock>,
    /// The classifier head.
    pub linear: Linear,
}

/// Touches every parameter, which makes burn draw lazily initialised ones.
struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Serialises seeding and initialisation: burn draws initial weights from the device's shared RNG, so two threads that seed and initialise at once would interleave their draws.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl ResNet {
    /// A network initialised from `seed`: the same seed gives the same weights, whatever other threads do meanwhile.
    pub fn seeded(architecture: Architecture, num_classes: usize, device: &Device, seed: u64) -> ResNet {
        let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let model = ResNet::build(architecture, num_classes, device);
        // burn initialises parameters lazily, on first use; draw them now, while the seeded RNG is ours.
        model.visit(&mut Materialize);
        model
    }

    /// A freshly initialised network of `architecture` with `num_classes` outputs, drawing from `device`'s RNG as it stands (see [`ResNet::seeded`]).
    pub fn new(architecture: Architecture, num_classes: usize, device: &Device) -> ResNet {
        let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let model = ResNet::build(architecture, num_classes, device);
        model.visit(&mut Materialize);
        model
    }

    fn build(architecture: Architecture, num_classes: usize, device: &Device) -> ResNet {
        let (widths, blocks) = architecture.shape();
        let mut cin = widths[0];
        let mut stage = |k: usize| -> Vec<BasicBlock> {
            (0..blocks[k])
                .map(|b| {
                    let stride = if k > 0 && b == 0 { 2 } else { 1 };
                    let block = BasicBlock::new(cin, widths[k], stride, device);
                    cin = widths[k];
                    block
                })
                .collect()
        };
        let (layer1, layer2, layer3, layer4) = (stage(0), stage(1), stage(2), stage(3));
        ResNet {
            conv1: conv3x3(3, widths[0], 1, device),
            bn1: BatchNormConfig::new(widths[0]).init(device),
            layer1,
            layer2,
            layer3,
            layer4,
            linear: LinearConfig::new(widths[3], num_classes).init(device),
        }
    }

    /// The penultimate features: global average of the last stage, `[batch, feature_dim]`.
    ///
    /// In inference on the plain CPU device a large batch runs as groups of 16 images, the groups
    /// spread over rayon's threads: each thread carries its own images through the whole network while their
    /// activations stay in its cache (at batch 64 on 2 cores the forward pass took 15.6 ms against 23.5 in a timing
    /// harness; BENCHMARKS.md). No image's value depends on another's outside training, and on 32 × 32 images the
    /// groups split each convolution into the same tasks as the whole batch, so the features are the same bit for
    /// bit; on smaller images the last stages' tasks (and so their sums' rounding) can differ.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let batch = x.dims()[0];
        if batch > INFERENCE_GROUP && crate::ops::is_plain_flex(&x) {
            let groups: Vec<Tensor<2>> =
                x.split(INFERENCE_GROUP, 0).into_par_iter().map(|group| self.features_of_group(group)).collect();
            return Tensor::cat(groups, 0);
        }
        self.features_of_group(x)
    }

    /// [`ResNet::features`] over the whole batch at once.
    pub(crate) fn features_of_group(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = conv_bn(&self.conv1, &self.bn1, x, None, true);
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3).chain(&self.layer4) {
            x = block.forward(x);
        }
        let [b, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([b, c])
    }

    /// Logits, `[batch, num_classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.linear.forward(self.features(x))
    }
}
