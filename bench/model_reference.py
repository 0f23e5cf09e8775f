"""PyTorch CPU throughput of fd-model's architectures, the reference for `cargo xtask bench model`.

Usage: python model_reference.py --architecture resnet18 --batch 512 --steps 3

The network is the CIFAR ResNet of the paper (kuangliu layout, as fd-model's resnet.rs and crates/fd-model/fixtures/make_fixtures.py),
at the widths and depths of fd-model's presets. Training steps are forward, cross-entropy, backward and SGD (momentum 0.9,
weight decay 5e-4) on random 32x32 inputs, 2 threads, after one warm-up step; inference runs under inference_mode.
Prints one JSON line with images per second.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "resnet18": ([64, 128, 256, 512], [2, 2, 2, 2]),
    "resnet10-narrow": ([32, 64, 128, 256], [1, 1, 1, 1]),
    "resnet10-small": ([16, 32, 64, 128], [1, 1, 1, 1]),
    "tiny": ([8, 16, 32, 64], [1, 1, 1, 1]),
}


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet(widths, blocks, num_classes=10):
    layers = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    cin = widths[0]
    for k, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            layers.append(Block(cin, w, 2 if k > 0 and b == 0 else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--architecture", default="resnet18", choices=sorted(PRESETS))
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = resnet(*PRESETS[a.architecture])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    train_ips = a.batch * a.steps / (time.perf_counter() - t0)
    model.eval()
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            model(x)
        infer_ips = a.batch * a.steps / (time.perf_counter() - t0)
    print(json.dumps({"train_images_per_s": train_ips, "infer_images_per_s": infer_ips,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
