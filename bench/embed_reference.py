"""CPU throughput of EfficientNet-Lite0 on CIFAR-sized images in PyTorch or ONNX Runtime, the references for
`cargo xtask bench embed`.

Usage: python embed_reference.py --size 128 --batch 64 --images 512 [--backend torch|ort]

timm's tf_efficientnet_lite0 (random weights: throughput does not depend on them), eval mode, 2 threads, NCHW; the input
is 32x32 images of 0-255 values, upsampled with F.interpolate(bilinear) and normalised inside the timed loop, as fd-clip
does it. `--backend ort` exports that whole function (upsampling, normalisation, features, pooling) with torch.onnx.export
(opset 17, TorchScript exporter, dynamic batch) and runs it in onnxruntime's CPUExecutionProvider with 2 intra-op
threads, 1 inter-op thread and every graph optimisation (it folds BatchNorm into the convolutions and fuses the
activations). Prints one JSON line with images per second and the library's version.
"""
import argparse
import json
import os
import tempfile
import time

import torch
import torch.nn.functional as F
from timm import create_model


class Embed(torch.nn.Module):
    def __init__(self, size):
        super().__init__()
        self.size = size
        self.model = create_model("tf_efficientnet_lite0", pretrained=False).eval()

    def forward(self, images):
        x = F.interpolate(images / 255.0, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model.forward_head(self.model.forward_features((x - 0.5) / 0.5), pre_logits=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--backend", choices=["torch", "ort"], default="torch")
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = Embed(a.size).eval()
    images = torch.randint(0, 256, (a.batch, 3, 32, 32), dtype=torch.uint8).float()
    if a.backend == "torch":
        version = torch.__version__

        def embed():
            with torch.inference_mode():
                return model(images)
    else:
        import onnxruntime as ort

        version = ort.__version__
        path = os.path.join(tempfile.mkdtemp(), "lite0.onnx")
        torch.onnx.export(model, (images,), path, opset_version=17, dynamo=False, input_names=["images"],
                          output_names=["features"], dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}})
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {"images": images.numpy()}

        def embed():
            return session.run(None, feed)[0]

    embed()
    steps = max(1, a.images // a.batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        embed()
    ips = steps * a.batch / (time.perf_counter() - t0)
    print(json.dumps({"images_per_s": ips, "backend": a.backend, "version": version}))


if __name__ == "__main__":
    main()
