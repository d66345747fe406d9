"""Seeded inputs of bench/WORKLOADS.md, the Python twin of bench/_inputs.ts.

fmix32 is murmur3's finaliser; key = fmix32(seed * 0x9E3779B9 mod 2^32); element i uses
h = fmix32(key + i); a value is float32((2 * (h >> 8) / 2^24 - 1) * scale), a label h mod C.

Run as a script it prints JSON of the first values of a few seeds, for the cross-language
test in bench/inputs_test.ts:  python3 bench/_inputs.py
"""

import json
import math
import struct
import sys

M32 = 0xFFFFFFFF


def fmix32(h):
    """murmur3's 32-bit finaliser on one unsigned integer."""
    h &= M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def seed_key(seed):
    return fmix32((seed * 0x9E3779B9) & M32)


def _hashes_np(seed, count):
    import numpy as np

    h = (np.uint64(seed_key(seed)) + np.arange(count, dtype=np.uint64)) & np.uint64(M32)
    h = h.astype(np.uint64)
    m = np.uint64(M32)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & m
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & m
    h ^= h >> np.uint64(16)
    return h


def seeded_values(seed, count, scale=1.0):
    """numpy float32 array of `count` seeded values in [-scale, scale)."""
    import numpy as np

    h = _hashes_np(seed, count)
    v = (2.0 * (h >> np.uint64(8)).astype(np.float64) / 16777216.0 - 1.0) * scale
    return v.astype(np.float32)


def seeded_labels(seed, count, classes):
    """numpy int64 array of `count` seeded labels in [0, classes)."""
    import numpy as np

    return (_hashes_np(seed, count) % np.uint64(classes)).astype(np.int64)


def seeded_values_py(seed, count, scale=1.0):
    """Pure-Python variant (no numpy), float32-rounded, for small counts."""
    key = seed_key(seed)
    out = []
    for i in range(count):
        h = fmix32(key + i)
        v = (2.0 * (h >> 8) / 16777216.0 - 1.0) * scale
        out.append(struct.unpack("f", struct.pack("f", v))[0])
    return out


def seeded_labels_py(seed, count, classes):
    key = seed_key(seed)
    return [fmix32(key + i) % classes for i in range(count)]


# Workload seeds, shapes and scales (same as WORKLOADS in bench/_inputs.ts).
WORKLOADS = {
    "M1": {"a": (1, [1024, 1024], 1.0), "b": (2, [1024, 1024], 1.0)},
    "M4": {"a": (1, [4096, 4096], 1.0), "b": (2, [4096, 4096], 1.0)},
    "C1": {
        "x": (11, [16, 64, 56, 56], 1 / 24),
        "w": (12, [64, 64, 3, 3], 1 / 24),
        "dy": (13, [16, 64, 56, 56], 1.0),
    },
    "L1": {"features": (21, [256, 512], 1.0), "weights": (22, [10000, 512], 1.0), "labels": 23},
    "T1": {"images": (31, [128, 3, 64, 64], 1.0), "labels": 32, "batch": 128, "size": 64, "classes": 1000},
    "T2": {"images": (41, [256, 3, 112, 112], 1.0), "labels": 42, "batch": 256, "size": 112, "classes": 10000},
}
NETWORK = {
    "stage_widths": [32, 64, 128, 256],
    "embedding": 128,
    "s": 64.0,
    "m": 0.35,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "bn_eps": 1e-5,
    "prelu0": 0.25,
}


def values_of(spec):
    seed, shape, scale = spec
    return seeded_values(seed, math.prod(shape), scale).reshape(shape)


def network_params(size, classes):
    """Same deterministic parameters as networkParams() in bench/_inputs.ts (numpy arrays)."""
    if size % 16:
        raise ValueError(f"Image size {size} is not a multiple of 16")
    convs = []
    cin, seed = 3, 100
    for w in NETWORK["stage_widths"]:
        for ci in (cin, w):
            shape = [w, ci, 3, 3]
            convs.append(values_of((seed, shape, math.sqrt(6 / (ci * 9)))))
            seed += 1
        cin = w
    flat = cin * (size // 16) ** 2
    linear = values_of((seed, [flat, NETWORK["embedding"]], math.sqrt(6 / flat)))
    class_weights = values_of((seed + 1, [classes, NETWORK["embedding"]], 1.0))
    return convs, linear, class_weights


if __name__ == "__main__":
    out = {
        "fmix32": [fmix32(x) for x in (0, 1, 0xDEADBEEF)],
        "values": {str(s): seeded_values_py(s, 5, sc) for s, sc in ((1, 1.0), (12, 1 / 24), (22, 1.0))},
        "labels": seeded_labels_py(23, 5, 10000),
    }
    try:
        out["values_np"] = {str(s): seeded_values(s, 5, sc).tolist() for s, sc in ((1, 1.0), (12, 1 / 24))}
    except ImportError:
        pass
    json.dump(out, sys.stdout)
    print()
