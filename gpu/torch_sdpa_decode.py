#!/usr/bin/env python3
"""Torch SDPA on the decode problems of issue #9, contiguous, beside quietattn's paged decode of
the same run: bf16, d128, 64 query heads over 8 kv heads (GQA, `enable_gqa=True`), q_len 1 and 4
(causal, the query rows aligned to the end of the keys), every sequence `keys` long.

For each (q_len, batch, keys) row of the `benches/decode.rs` JSON (softmax, statistics off) it
times every SDPA backend that accepts the problem (flash, efficient, cudnn; math only below
1 GB of K/V) with CUDA events, and a device-to-device copy of the K cache. Rates are K/V bytes /
time (a copy: 2 * bytes / time), as in the Rust bench; `x best` is quietattn's time over the
fastest backend's (below 1 = quietattn faster).

Usage: torch_sdpa_decode.py [--quietattn-json FILE] [--iters N]
Without a JSON file it times the default shapes of the Rust bench. Exits 0 with a message when
torch or CUDA is absent.
"""

import argparse
import json
import sys

from torch_common import cuda_torch, seconds_per_call

HEADS = 64
KV_HEADS = 8
DIM = 128
DEFAULT_SHAPES = [(q, b, k) for q in (1, 4) for b in (1, 64) for k in (1024, 32768)]
MATH_LIMIT = 1 << 30  # bytes of K/V above which the math backend (it materialises S) is skipped


def ours_by_shape(path):
    """(q_len, batch, keys) -> {family: (us, GB/s)}, softmax without statistics."""
    if not path:
        return {}
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for r in doc["rows"]:
        if r["variant"] != "softmax" or r["stats"]:
            continue
        key = (r["q_len"], r["batch"], r["keys"])
        out.setdefault(key, {})[r["family"]] = (r["us"], r["gbps"])
    return out


def sdpa_call(torch, q, k, v, q_len):
    import torch.nn.functional as F

    mask = None
    if q_len > 1:
        # Bottom-right causal: query row i sees keys 0 ..= keys - q_len + i (is_causal in SDPA
        # is top-left aligned, which is not decode).
        from torch.nn.attention.bias import causal_lower_right

        mask = causal_lower_right(q_len, k.shape[2])
    return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)


def time_shape(torch, q_len, batch, keys, iters):
    """{name: seconds} of every backend that runs the shape, and the copy's seconds."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(batch, HEADS, q_len, DIM, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(batch, KV_HEADS, keys, DIM, device="cuda", dtype=torch.bfloat16)
            for _ in range(2))
    kv_bytes = 2 * k.numel() * k.element_size()
    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    if kv_bytes <= MATH_LIMIT:
        backends.append(("math", SDPBackend.MATH))
    times, why = {}, {}
    call = sdpa_call(torch, q, k, v, q_len)
    for name, backend in backends:
        try:
            with sdpa_kernel(backend):
                times[name] = seconds_per_call(torch, call, iters, repeats=3)
        except RuntimeError as e:  # the backend does not take this shape on this GPU
            why[name] = str(e).strip().splitlines()[0][:90]
    dst = torch.empty_like(k)
    copy = seconds_per_call(torch, lambda: dst.copy_(k), iters, repeats=3)
    return kv_bytes, times, why, copy


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quietattn-json")
    p.add_argument("--iters", type=int, default=20)
    a = p.parse_args()
    torch = cuda_torch("torch_sdpa_decode")
    if torch is None:
        return 0
    ours = ours_by_shape(a.quietattn_json)
    shapes = sorted(ours) if ours else DEFAULT_SHAPES
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}; bf16 d{DIM}, {HEADS} heads "
          f"over {KV_HEADS} kv heads, causal; GB/s = K/V bytes / time; % = of the torch copy; "
          f"x best = quietattn time / fastest SDPA backend's time")
    for q_len, batch, keys in shapes:
        kv_bytes, times, why, copy = time_shape(torch, q_len, batch, keys, a.iters)
        copy_rate = kv_bytes / copy  # one cache (kv_bytes / 2) read and written
        label = f"q_len {q_len} batch {batch:>2} keys {keys:>6}"
        cells = [f"{n} {kv_bytes / t / 1e9:6.0f} GB/s ({100 * kv_bytes / t / copy_rate:5.1f}%)"
                 for n, t in sorted(times.items(), key=lambda x: x[1])]
        print(f"{label}: copy {copy_rate / 1e9:5.0f} GB/s; " + "; ".join(cells))
        for n, reason in why.items():
            print(f"    {n} unavailable: {reason}")
        best = min(times.values()) if times else None
        for family, (us, gbps) in sorted(ours.get((q_len, batch, keys), {}).items()):
            ratio = f"{us / 1e6 / best:.3f}" if best else "-"
            print(f"    quietattn {family:<11} {gbps:6.0f} GB/s ({100 * gbps * 1e9 / copy_rate:5.1f}% "
                  f"of the torch copy), x best {ratio}")
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
