"""PyTorch CPU throughput of EfficientNet-Lite0 on CIFAR-sized images, the reference for `cargo xtask bench embed`.

Usage: python embed_reference.py --size 128 --batch 64 --images 512

timm's tf_efficientnet_lite0 (random weights: throughput does not depend on them), eval mode, inference_mode, 2 threads,
NCHW; the input is 32x32 uint8 images, upsampled with F.interpolate(bilinear) and normalised inside the timed loop, as
fd-clip does it. Prints one JSON line with images per second.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from timm import create_model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--images", type=int, default=512)
    a = p.parse_args()
    torch.set_num_threads(2)
    model = create_model("tf_efficientnet_lite0", pretrained=False).eval()
    images = torch.randint(0, 256, (a.batch, 3, 32, 32), dtype=torch.uint8)

    def embed():
        x = F.interpolate(images.float() / 255.0, size=(a.size, a.size), mode="bilinear", align_corners=False)
        return model.forward_head(model.forward_features((x - 0.5) / 0.5), pre_logits=True)

    with torch.inference_mode():
        embed()
        steps = max(1, a.images // a.batch)
        t0 = time.perf_counter()
        for _ in range(steps):
            embed()
        ips = steps * a.batch / (time.perf_counter() - t0)
    print(json.dumps({"images_per_s": ips}))


if __name__ == "__main__":
    main()
