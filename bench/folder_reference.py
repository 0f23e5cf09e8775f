"""The reference of `cargo xtask bench folder`: Pillow decodes every image of an image folder to RGB, one file after another.

    python folder_reference.py DIR   prints {"images": N, "bytes": B, "seconds": S} as JSON

The folder is walked as fd-data's `read_image_folder` walks it (class folders sorted, files sorted, png/jpg/jpeg/webp only), and
each image is decoded with `Image.open(path).convert("RGB")` into a numpy array, so both sides do the same work: list, read,
decode and convert every file. Pillow decodes on one thread; the Rust side is timed on one thread and on all of them.
"""

import json
import os
import sys
import time

import numpy as np
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SPLITS = ("train", "val", "extra", "test")


def subfolders(folder):
    names = sorted(d for d in os.listdir(folder) if not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))
    return [os.path.join(folder, d) for d in names]


def main():
    root = sys.argv[1]
    start = time.perf_counter()
    files = []
    top = subfolders(root)
    # `root/<split>/<class>/…` when every top folder names a split, as fd-data reads it; else `root/<class>/…`.
    splits = top if top and all(os.path.basename(d) in SPLITS for d in top) else [root]
    for split in splits:
        for folder in subfolders(split):
            files += [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.lower().endswith(EXTENSIONS)]
    total = 0
    for f in files:
        with Image.open(f) as image:
            total += np.asarray(image.convert("RGB")).nbytes
    seconds = time.perf_counter() - start
    print(json.dumps({"images": len(files), "bytes": total, "seconds": seconds}))


if __name__ == "__main__":
    main()
