#!/usr/bin/env python3
"""Times torch SDPA with the FLASH_ATTENTION and CUDNN_ATTENTION backends pinned on the shapes of
issue #8 (bf16, 16k tokens, 16 heads, d64/d128, seq 1k/4k/16k, causal and not) with CUDA events,
prints TFLOP/s (FLOPs = 4*b*h*s^2*d, halved when causal) and, given `quietattn bench --json`
files of the same run, quietattn's TFLOP/s and the ratio quietattn / backend per shape.

Usage: torch_sdpa.py [--quietattn-json FILE ...] [--iters N] [--quick]
Exits 0 with a message when torch or CUDA is absent.
"""

import argparse
import json
import sys

from torch_common import cuda_torch, seconds_per_call

TOKENS = 16384
HEADS = 16
DIMS = (64, 128)
SEQS = (1024, 4096, 16384)


def flops(b, h, s, d, causal):
    f = 4.0 * b * h * s * s * d
    return f / 2 if causal else f


def quietattn_rows(paths):
    """(head_dim, seq, causal) -> TFLOP/s of softmax without statistics, from bench --json files."""
    best = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for r in doc["rows"]:
            if r["variant"] != "softmax" or r["stats"] or r["dtype"] != "bf16":
                continue
            key = (r["head_dim"], r["seq"], r["causal"])
            best[key] = max(best.get(key, 0.0), r["tflops"])
    return best


def time_backend(torch, backend, q, k, v, causal, iters):
    from torch.nn.attention import sdpa_kernel
    import torch.nn.functional as F

    with sdpa_kernel(backend):
        return seconds_per_call(
            torch, lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), iters)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quietattn-json", nargs="*", default=[])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--quick", action="store_true", help="d128 s4096 only")
    a = p.parse_args()
    torch = cuda_torch("torch_sdpa")
    if torch is None:
        return 0
    from torch.nn.attention import SDPBackend

    ours = quietattn_rows(a.quietattn_json)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}; bf16, {TOKENS} tokens, "
          f"{HEADS} heads; TFLOP/s = 4*b*h*s^2*d (/2 causal) / time; x = quietattn / backend")
    backends = (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION))
    print(f"{'shape':<22} {'flash':>8} {'cudnn':>8} {'quietattn':>10} {'x flash':>8} {'x cudnn':>8}")
    shapes = [(128, 4096)] if a.quick else [(d, s) for d in DIMS for s in SEQS]
    for d, s in shapes:
        b = TOKENS // s
        for causal in (False, True):
            q, k, v = (torch.randn(b, HEADS, s, d, device="cuda", dtype=torch.bfloat16)
                       for _ in range(3))
            tf = {}
            for name, backend in backends:
                try:
                    sec = time_backend(torch, backend, q, k, v, causal, a.iters)
                    tf[name] = flops(b, HEADS, s, d, causal) / sec / 1e12
                except RuntimeError as e:  # backend unavailable for this shape/GPU
                    print(f"  {name} unavailable for d{d} s{s}: {str(e).splitlines()[0]}")
            mine = ours.get((d, s, causal))
            cell = lambda x: f"{x:8.1f}" if x else f"{'-':>8}"
            ratio = lambda n: f"{mine / tf[n]:8.3f}" if mine and tf.get(n) else f"{'-':>8}"
            label = f"d{d} s{s}{' causal' if causal else ''}"
            print(f"{label:<22} {cell(tf.get('flash'))} {cell(tf.get('cudnn'))} "
                  f"{(f'{mine:10.1f}' if mine else f'{chr(45):>10}')} {ratio('flash')} {ratio('cudnn')}")
            del q, k, v
    return 0


if __name__ == "__main__":
    sys.exit(main())
