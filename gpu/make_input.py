#!/usr/bin/env python3
"""Writes a small attention input for `quietattn run` (q, k, v, sinks, gate; f32) as safetensors,
or with --activations a 2-D tensor `x` [tokens = seq, channels = heads*dim*3] for `quietattn stats`.

Standard library only: the GPU machine's runner and the bundle builder both may lack numpy.
Usage: make_input.py OUT [--seq 16] [--heads 2] [--kv-heads 1] [--dim 64] [--activations]
"""

import argparse
import json
import math
import struct


def tensor(shape, seed):
    n = math.prod(shape)
    # Deterministic values in [-2, 2): a multiplicative-congruential walk, no RNG module state.
    vals = [((i * 7919 + seed * 104729) % 1013) / 1013.0 * 4.0 - 2.0 for i in range(n)]
    return shape, struct.pack(f"<{n}f", *vals)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--kv-heads", type=int, default=1)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--activations", action="store_true")
    a = p.parse_args()
    tensors = {"x": tensor([a.seq, a.heads * a.dim * 3], 6)} if a.activations else {
        "q": tensor([1, a.seq, a.heads, a.dim], 1),
        "k": tensor([1, a.seq, a.kv_heads, a.dim], 2),
        "v": tensor([1, a.seq, a.kv_heads, a.dim], 3),
        "sinks": tensor([a.heads], 4),
        "gate": tensor([1, a.seq, a.heads], 5),
    }
    header, offset, blobs = {}, 0, []
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(a.out, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


if __name__ == "__main__":
    main()
