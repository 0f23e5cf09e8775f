"""Fashion-MNIST as a user would bring it to `fd-cli audit`: an image folder and a classifier's predictions.

    python3 tools/fashion_mnist.py IDX_DIR OUT

IDX_DIR holds the four `*-idx?-ubyte.gz` files of Fashion-MNIST (Debian's package `dataset-fashion-mnist` installs them in
/usr/share/datasets/fashion-mnist; `apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb pkg` unpacks
them without root). OUT receives:

- `OUT/images/train/<class>/<index>.png` and `OUT/images/test/<class>/<index>.png`: the official test set, and the training
  images the classifier below did not see (index 20,000 on); the audit splits the train part into train, val and extra;
- `OUT/predictions.csv`: `path,prediction` and `prob_<class>` for every image of the folder, from a classifier trained on the
  first 20,000 training images: scikit-learn's multinomial logistic regression on the raw pixels (a user's own model).

Needs numpy, Pillow and scikit-learn (pip install numpy Pillow scikit-learn).
"""

import csv
import gzip
import os
import sys

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
TRAINED_ON = 20_000


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    src, out = sys.argv[1], sys.argv[2]
    train_x = idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    train_y = idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))
    test_x = idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
    test_y = idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"))
    model = LogisticRegression(max_iter=200)
    model.fit(train_x[:TRAINED_ON].reshape(TRAINED_ON, -1) / 255.0, train_y[:TRAINED_ON])
    rows = []
    for split, xs, ys, first in [("train", train_x, train_y, TRAINED_ON), ("test", test_x, test_y, 0)]:
        for c in CLASSES:
            os.makedirs(os.path.join(out, "images", split, c), exist_ok=True)
        probs = model.predict_proba(xs[first:].reshape(len(xs) - first, -1) / 255.0)
        for k, i in enumerate(range(first, len(xs))):
            rel = f"{split}/{CLASSES[ys[i]]}/{i:05d}.png"
            Image.fromarray(xs[i]).save(os.path.join(out, "images", rel))
            rows.append([rel, CLASSES[int(np.argmax(probs[k]))]] + [f"{p:.6g}" for p in probs[k]])
    with open(os.path.join(out, "predictions.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "prediction"] + [f"prob_{c}" for c in CLASSES])
        w.writerows(rows)
    test_acc = np.mean([r[1] == r[0].split("/")[1] for r in rows if r[0].startswith("test/")])
    print(f"wrote {len(rows)} images and their predictions to {out}; the classifier's test accuracy {test_acc:.4f}")


if __name__ == "__main__":
    main()
