"""CLIP ViT-B/32 image-embedding throughput on the CPU: PyTorch (transformers) and ONNX Runtime, on the files
`crates/fd-clip/fixtures/make_clip_fixtures.py --full DIR` wrote (the same random weights fd-clip loads).

    python bench/clip_reference.py --dir DIR --batch 64 --images 256 --threads 2

Prints one JSON object: images/s for torch and onnxruntime (after one warm-up batch), and peak RSS.
"""

import argparse
import json
import resource
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((args.batch, 3, 224, 224), dtype=np.float32) for _ in range(args.images // args.batch)]
    warm = rng.standard_normal((args.batch, 3, 224, 224), dtype=np.float32)

    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    config = CLIPConfig(text_config=CLIPTextConfig(hidden_act="quick_gelu").to_dict(),
                        vision_config=CLIPVisionConfig(hidden_act="quick_gelu").to_dict(), projection_dim=512)
    model = CLIPModel(config).eval()
    model.load_state_dict(load_file(f"{args.dir}/vit_b32.safetensors"), strict=False)

    def torch_run(x):
        with torch.inference_mode():
            return model.visual_projection(model.vision_model(pixel_values=torch.from_numpy(x)).pooler_output)

    torch_run(warm)
    start = time.perf_counter()
    for b in batches:
        torch_run(b)
    torch_ips = len(batches) * args.batch / (time.perf_counter() - start)

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(f"{args.dir}/vit_b32_vision.onnx", options, providers=["CPUExecutionProvider"])
    session.run(None, {"pixel_values": warm})
    start = time.perf_counter()
    for b in batches:
        session.run(None, {"pixel_values": b})
    ort_ips = len(batches) * args.batch / (time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"torch_images_per_s": torch_ips, "onnxruntime_images_per_s": ort_ips, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
