"""What the torch comparison scripts share: torch with a CUDA device (or a SKIP line), and CUDA
event timing."""


def cuda_torch(script):
    """The torch module when it imports and sees a CUDA device; else prints `SKIP script: why`
    and returns None (the scripts then exit 0: no torch is not a failure of quietattn)."""
    try:
        import torch
    except ImportError as e:
        print(f"SKIP {script}: torch is not importable ({e})")
        return None
    if not torch.cuda.is_available():
        print(f"SKIP {script}: torch sees no CUDA device")
        return None
    return torch


def seconds_per_call(torch, fn, iters, repeats=1):
    """Seconds per call of `fn` (after one warm-up call, which also surfaces a backend's
    refusal): `iters` calls between two CUDA events, the best of `repeats` such batches."""
    fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    best = float("inf")
    for _ in range(repeats):
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3 / iters)
    return best
