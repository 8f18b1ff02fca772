#!/usr/bin/env python3
"""Writes a small attention input for `quietattn run` (q, k, v, sinks, gate; f32) as safetensors,
or with --activations a 2-D tensor `x` [tokens = seq, channels = heads*dim*3] for `quietattn stats`,
or with --paged a decode step over a paged KV cache (q [2, 2, h, d], k_cache/v_cache in shuffled
pages of 16, block_table, seq_lens_k 600 and 37 keys, so the automatic plan splits the long one;
sinks, gate), f32 or with --dtype bf16 (q and the caches; the tensor-core decode chunk's input).

Standard library only: the GPU machine's runner and the bundle builder both may lack numpy.
Usage: make_input.py OUT [--seq 16] [--heads 2] [--kv-heads 1] [--dim 64]
                         [--activations | --paged [--dtype f32|bf16]]
"""

import argparse
import json
import math
import struct


def tensor(shape, seed, dtype="F32"):
    n = math.prod(shape)
    # Deterministic values in [-2, 2): a multiplicative-congruential walk, no RNG module state.
    vals = [((i * 7919 + seed * 104729) % 1013) / 1013.0 * 4.0 - 2.0 for i in range(n)]
    data = struct.pack(f"<{n}f", *vals)
    if dtype == "BF16":  # the high half of each f32, rounded to nearest even
        words = struct.unpack(f"<{n}I", data)
        data = struct.pack(f"<{n}H", *((w + 0x7FFF + ((w >> 16) & 1)) >> 16 for w in words))
    return dtype, shape, data


def int32s(shape, vals):
    return "I32", shape, struct.pack(f"<{len(vals)}i", *vals)


PAGE = 16
PAGED_LENS = (600, 37)


def paged(a):
    """A decode step: 2 sequences, q_len 2, pages of 16 in a shuffled order, -1 past the end."""
    dtype = a.dtype.upper()
    per_seq = [(n + PAGE - 1) // PAGE for n in PAGED_LENS]
    pages = sum(per_seq) + 1  # one page no sequence maps
    order = [(i * 17 + 5) % pages for i in range(pages)]  # 17 is coprime with the 42 pages
    rows, at = [], 0
    for n in per_seq:
        rows.append(order[at:at + n] + [-1] * (max(per_seq) - n))
        at += n
    cache = [pages, PAGE, a.kv_heads, a.dim]
    return {
        "q": tensor([2, 2, a.heads, a.dim], 1, dtype),
        "k_cache": tensor(cache, 2, dtype),
        "v_cache": tensor(cache, 3, dtype),
        "block_table": int32s([2, max(per_seq)], [p for r in rows for p in r]),
        "seq_lens_k": int32s([2], list(PAGED_LENS)),
        "sinks": tensor([a.heads], 4),
        "gate": tensor([2, 2, a.heads], 5),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--kv-heads", type=int, default=1)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--activations", action="store_true")
    p.add_argument("--paged", action="store_true")
    p.add_argument("--dtype", choices=("f32", "bf16"), default="f32")
    a = p.parse_args()
    if a.activations:
        tensors = {"x": tensor([a.seq, a.heads * a.dim * 3], 6)}
    elif a.paged:
        tensors = paged(a)
    else:
        tensors = {
            "q": tensor([1, a.seq, a.heads, a.dim], 1),
            "k": tensor([1, a.seq, a.kv_heads, a.dim], 2),
            "v": tensor([1, a.seq, a.kv_heads, a.dim], 3),
            "sinks": tensor([a.heads], 4),
            "gate": tensor([1, a.seq, a.heads], 5),
        }
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
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
