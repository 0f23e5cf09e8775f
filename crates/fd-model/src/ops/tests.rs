//! Our operations against burn's own modules, forward and every gradient, on the flex backend.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;

use burn::nn::BatchNormConfig;

use super::conv::takes_fast_path;
use super::{batch_norm, conv2d};

fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
    let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}, element {i}: {x} vs {y}");
    }
}

#[test]
fn matches_burns_convolution_and_its_gradients() {
    let device = Device::flex().autodiff();
    // (c_in, c_out, kernel, stride, padding, batch, side): the ResNets' three kinds, and an odd size.
    for (c_in, c_out, k, s, p, batch, side) in
        [(3, 8, 3, 1, 1, 2, 8), (8, 16, 3, 2, 1, 3, 9), (8, 16, 1, 2, 0, 20, 6), (4, 4, 3, 1, 1, 40, 4)]
    {
        device.seed(7);
        let conv = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random([batch, c_in, side, side], burn::tensor::Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        assert!(takes_fast_path(&conv, &x));
        let ours = conv2d(&conv, x.clone());
        let theirs = conv.forward(x.clone());
        close(ours.clone(), theirs.clone(), "forward");
        // A loss that weighs every output differently, so the gradients are not symmetric.
        let weights = Tensor::<4>::random(ours.dims(), burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (ours * weights.clone()).sum().backward();
        let g_theirs = (theirs * weights).sum().backward();
        close(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap(), "input gradient");
        let w = conv.weight.val();
        close(w.grad(&g_ours).unwrap(), w.grad(&g_theirs).unwrap(), "weight gradient");
    }
}

#[test]
fn plain_flex_tensors_take_the_fast_path_too() {
    let device = Device::flex();
    let conv = Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
    let x = Tensor::<4>::random([2, 3, 5, 5], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    // With a bias it falls back to burn's convolution.
    assert!(!takes_fast_path(&conv, &x));
    let conv = Conv2dConfig::new([3, 4], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(&device);
    assert!(takes_fast_path(&conv, &x));
    close(conv2d(&conv, x.clone()), conv.forward(x), "forward");
}

fn close1(a: Tensor<1>, b: Tensor<1>, what: &str) {
    close(a.reshape([1, 1, 1, -1]), b.reshape([1, 1, 1, -1]), what);
}

#[test]
fn batch_norm_matches_burns_in_training_and_inference() {
    let device = Device::flex().autodiff();
    for (batch, channels, side) in [(4, 3, 5), (33, 2, 1), (2, 5, 7)] {
        device.seed(3);
        let ours = BatchNormConfig::new(channels).init(&device);
        let theirs = BatchNormConfig::new(channels).init(&device);
        // Non-trivial affine parameters, the same in both.
        let gamma = Tensor::<1>::random([channels], burn::tensor::Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<1>::random([channels], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let (ours, theirs) = (
            burn::nn::BatchNorm {
                gamma: burn::module::Param::from_tensor(gamma.clone()),
                beta: burn::module::Param::from_tensor(beta.clone()),
                ..ours
            },
            burn::nn::BatchNorm {
                gamma: burn::module::Param::from_tensor(gamma),
                beta: burn::module::Param::from_tensor(beta),
                ..theirs
            },
        );
        let x =
            Tensor::<4>::random([batch, channels, side, side], burn::tensor::Distribution::Normal(2.0, 3.0), &device)
                .require_grad();
        assert!(super::batch_norm::takes_fast_path(&ours, &x));
        let y_ours = batch_norm(&ours, x.clone());
        let y_theirs = theirs.forward(x.clone());
        close(y_ours.clone(), y_theirs.clone(), "training output");
        let weights = Tensor::<4>::random(y_ours.dims(), burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (y_ours * weights.clone()).sum().backward();
        let g_theirs = (y_theirs * weights).sum().backward();
        close(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap(), "input gradient");
        close1(ours.gamma.val().grad(&g_ours).unwrap(), theirs.gamma.val().grad(&g_theirs).unwrap(), "gamma gradient");
        close1(ours.beta.val().grad(&g_ours).unwrap(), theirs.beta.val().grad(&g_theirs).unwrap(), "beta gradient");
        close1(ours.running_mean.value(), theirs.running_mean.value(), "running mean");
        close1(ours.running_var.value(), theirs.running_var.value(), "running variance");
        // Inference on the plain device uses the running statistics.
        let (ours, theirs) = (ours.valid(), theirs.valid());
        let x = x.inner();
        assert!(super::batch_norm::takes_fast_path(&ours, &x));
        close(batch_norm(&ours, x.clone()), theirs.forward(x), "inference output");
    }
}

/// Inference through convolution, BatchNorm, skip and ReLU in one pass equals burn's modules composed: running statistics
/// away from 0 and 1, with and without a skip and a ReLU.
#[test]
fn conv_bn_in_one_pass_equals_the_composition() {
    let device = Device::flex();
    device.seed(11);
    let conv = Conv2dConfig::new([4, 6], [3, 3])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(&device);
    let mut bn = BatchNormConfig::new(6).init(&device);
    let stat = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [6]), &device);
    bn.running_mean = burn::module::RunningState::new(stat(vec![0.3, -0.2, 0.0, 1.5, -1.0, 0.1]));
    bn.running_var = burn::module::RunningState::new(stat(vec![0.5, 2.0, 1.0, 0.25, 3.0, 1.1]));
    bn.gamma = burn::module::Param::from_tensor(stat(vec![1.2, 0.8, -0.5, 1.0, 0.3, 2.0]));
    bn.beta = burn::module::Param::from_tensor(stat(vec![0.1, -0.4, 0.2, 0.0, 0.7, -0.1]));
    let x = Tensor::<4>::random([3, 4, 7, 7], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let skip = Tensor::<4>::random([3, 6, 4, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    for (with_skip, relu) in [(false, false), (false, true), (true, false), (true, true)] {
        assert!(super::conv_bn::takes_one_pass(&conv, &bn, &x), "the one-pass path applies on the plain flex device");
        let ours = super::conv_bn(&conv, &bn, x.clone(), with_skip.then(|| skip.clone()), relu);
        let mut theirs = bn.forward(conv.forward(x.clone()));
        if with_skip {
            theirs = theirs + skip.clone();
        }
        if relu {
            theirs = burn::tensor::activation::relu(theirs);
        }
        close(ours, theirs, &format!("skip {with_skip}, relu {relu}"));
    }
}

/// Grouped inference (`ResNet::features`) changes no convolution task on 32 × 32 images: its group size is a multiple of
/// the images one task covers on each feature map of the ResNets (32, 16, 8 and 4 pixels a side).
#[test]
fn the_inference_group_is_a_whole_number_of_tasks_on_cifar_maps() {
    for side in [32usize, 16, 8, 4] {
        let per = super::conv_kernel::MIN_COLUMNS.div_ceil(side * side);
        assert_eq!(crate::resnet::INFERENCE_GROUP % per, 0, "{side} × {side} maps: {per} images a task");
    }
}

/// Training BatchNorm, skip and ReLU as one op equals, bit for bit, BatchNorm, the addition and burn's ReLU composed:
/// the output, the gradients of whichever of the input, γ, β and the skip are tracked, and the running statistics;
/// and it stays within rounding of burn's own BatchNorm module composed the same way.
#[test]
fn batch_norm_skip_and_relu_in_one_op_equal_the_composition() {
    let device = Device::flex().autodiff();
    let normal = |dims: [usize; 4], mean: f64, sd: f64, tracked: bool| {
        let t = Tensor::<4>::random(dims, burn::tensor::Distribution::Normal(mean, sd), &device);
        if tracked { t.require_grad() } else { t }
    };
    // (skip, ReLU, input tracked, skip tracked, γ and β tracked); the last case tracks nothing (no backward)
    let cases = [
        (true, true, true, true, true),
        (false, true, true, false, true),
        (true, false, true, true, true),
        (true, true, false, true, true),
        (true, true, true, false, true),
        (true, true, true, true, false),
        (true, true, false, false, false),
    ];
    // (batch, channels, side): planes shorter and longer than the sixteen lanes, and a remainder
    for (batch, channels, side) in [(4, 3, 5), (3, 2, 9), (2, 5, 4)] {
        let dims = [batch, channels, side, side];
        for (with_skip, relu, x_tracked, skip_tracked, params_tracked) in cases {
            device.seed(5);
            let vector = |f: &dyn Fn(usize) -> f32| {
                let t = Tensor::<1>::from_data(TensorData::new((0..channels).map(f).collect(), [channels]), &device);
                burn::module::Param::from_tensor(t).set_require_grad(params_tracked)
            };
            let layer = || burn::nn::BatchNorm {
                gamma: vector(&|c| 0.6 + 0.3 * c as f32),
                beta: vector(&|c| 0.4 - 0.35 * c as f32),
                ..BatchNormConfig::new(channels).init(&device)
            };
            let (fused, composed, burns) = (layer(), layer(), layer());
            let (x, skip) = (normal(dims, 1.0, 2.0, x_tracked), normal(dims, 0.0, 1.0, skip_tracked));
            let what = |part: &str| {
                format!(
                    "{dims:?}, skip {with_skip}, relu {relu}, tracked {x_tracked} {skip_tracked} {params_tracked}: {part}"
                )
            };
            let bits = |t: Tensor<4>| {
                t.into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let same = |a: Vec<u32>, b: Vec<u32>, part: &str| {
                assert_eq!(a.len(), b.len(), "{}", what(part));
                let first = a.iter().zip(&b).position(|(p, q)| p != q);
                assert!(first.is_none(), "{}: element {first:?} differs", what(part));
            };
            let skip_in = with_skip.then(|| skip.clone());
            assert!(super::batch_norm::act_takes_one_op(&fused, &x, skip_in.as_ref()), "{}", what("one op"));
            let y_fused = super::batch_norm_act(&fused, x.clone(), skip_in, relu);
            let compose = |y: Tensor<4>| {
                let y = if with_skip { y + skip.clone() } else { y };
                if relu { burn::tensor::activation::relu(y) } else { y }
            };
            let y_composed = compose(batch_norm(&composed, x.clone()));
            let y_burns = compose(burns.forward(x.clone()));
            let masked = y_fused.clone().into_data().try_to_vec::<f32>().unwrap().iter().filter(|v| **v == 0.0).count();
            assert!(!relu || (masked > 0 && masked < y_fused.dims().iter().product()), "{}", what("mixed mask"));
            same(bits(y_fused.clone()), bits(y_composed.clone()), "output");
            close(y_fused.clone(), y_burns.clone(), &what("output against burn's module"));
            let flat = |t: Tensor<1>| t.reshape([1, 1, 1, -1]);
            let running = |bn: &burn::nn::BatchNorm| [bn.running_mean.value(), bn.running_var.value()];
            for ((a, b), c) in running(&fused).into_iter().zip(running(&composed)).zip(running(&burns)) {
                same(bits(flat(a.clone())), bits(flat(b)), "running statistics");
                close(flat(a), flat(c), &what("running statistics against burn's module"));
            }
            if !(x_tracked || skip_tracked || params_tracked) {
                continue;
            }
            let weights = Tensor::<4>::random(dims, burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let g_fused = (y_fused * weights.clone()).sum().backward();
            let g_composed = (y_composed * weights.clone()).sum().backward();
            let g_burns = (y_burns * weights).sum().backward();
            let inputs = [("input gradient", &x, x_tracked), ("skip gradient", &skip, with_skip && skip_tracked)];
            for (part, t, tracked) in inputs {
                let (a, b, c) = (t.grad(&g_fused), t.grad(&g_composed), t.grad(&g_burns));
                assert_eq!(a.is_some(), tracked, "{}", what(part));
                if let (Some(a), Some(b), Some(c)) = (a, b, c) {
                    same(bits(a.clone()), bits(b), part);
                    close(a, c, &what(part));
                }
            }
            let params = |bn: &burn::nn::BatchNorm, g: &burn::tensor::Gradients| {
                [("gamma gradient", bn.gamma.val().grad(g)), ("beta gradient", bn.beta.val().grad(g))]
            };
            let all =
                params(&fused, &g_fused).into_iter().zip(params(&composed, &g_composed)).zip(params(&burns, &g_burns));
            for (((part, a), (_, b)), (_, c)) in all {
                assert_eq!(a.is_some(), params_tracked, "{}", what(part));
                if let (Some(a), Some(b), Some(c)) = (a, b, c) {
                    same(bits(flat(a.clone())), bits(flat(b)), part);
                    close(flat(a), flat(c), &what(part));
                }
            }
        }
    }
}
