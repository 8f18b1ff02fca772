//! The BERT forward of `quietattn probe` against Hugging Face transformers' numbers for
//! MiniLM-L6 (tests/fixtures/probe/minilm.json): token ids, every hidden state, every attention
//! map and the docs/contract.md §8 readings, within the tolerances stated per check. SKIP when the
//! model is not fetched (scripts/fetch-models.sh).

mod probe_parts;

use probe_parts::{
    AttentionTolerance, MINILM, assert_close, check_attention_layer, first_channels, fixture,
    floats, ints, model_or_skip, num, token_l2,
};
use quietattn::probe::dense::Dense;
use quietattn::probe::{LoadedModel, Trace};
use quietattn::{AttentionOptions, Device};
use serde_json::Value;

fn load(test: &str) -> Option<LoadedModel> {
    let dir = model_or_skip(test, MINILM)?;
    Some(LoadedModel::load(&dir).expect("MiniLM loads"))
}

fn run(model: &LoadedModel, device: &Device, text: &str) -> (Vec<u32>, Trace) {
    let input = model.encode(text).unwrap();
    let trace = model
        .forward(device, &input, &AttentionOptions::default())
        .unwrap();
    (input.ids, trace)
}

#[test]
fn tokenizer_matches_the_fixture() {
    let Some(model) = load("tokenizer_matches_the_fixture") else {
        return;
    };
    let fx = fixture("minilm.json");
    for case in fx["tokenizer"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<u64> = model
            .encode(text)
            .unwrap()
            .ids
            .iter()
            .map(|&i| u64::from(i))
            .collect();
        assert_eq!(ids, ints(&case["ids"]), "text {text:?}");
    }
}

/// Hidden state `l` against the fixture: values relative to the layer's max |x| (1e-4), sums and
/// statistics 1e-4 relative (the kernel's f32 power sums; docs/contract.md §6 allows 1e-3).
fn check_hidden(l: usize, trace: &Trace, want: &Value) {
    let h = &trace.hidden[l];
    let x: Vec<f64> = h.state.data.iter().map(|&v| f64::from(v)).collect();
    let max_abs = num(want, "max_abs");
    let sum: f64 = x.iter().sum();
    let sum_sq: f64 = x.iter().map(|v| v * v).sum();
    assert_close(
        &format!("hidden[{l}].sum"),
        &[sum],
        &[num(want, "sum")],
        1e-4 * max_abs * (x.len() as f64).sqrt(),
        0.0,
    );
    assert_close(
        &format!("hidden[{l}].sum_sq"),
        &[sum_sq],
        &[num(want, "sum_sq")],
        0.0,
        1e-4,
    );
    let first = first_channels(&h.state);
    assert_close(
        &format!("hidden[{l}].first_channels"),
        &first,
        &floats(&want["first_channels"]),
        1e-4 * max_abs,
        0.0,
    );
    let l2 = token_l2(&h.state);
    assert_close(
        &format!("hidden[{l}].token_l2"),
        &l2,
        &floats(&want["token_l2"]),
        0.0,
        1e-4,
    );
    let r = &h.probe.report.tensor;
    assert_close(
        &format!("hidden[{l}].max_abs"),
        &[r.max_inf_norm],
        &[max_abs],
        0.0,
        1e-5,
    );
    let kurt = r.tensor_kurtosis.expect("resolved");
    assert_close(
        &format!("hidden[{l}].tensor_kurtosis"),
        &[kurt],
        &[num(want, "tensor_kurtosis")],
        0.0,
        1e-4,
    );
    let (argmax, kmax) = r.max_kurtosis.expect("some channel resolved");
    assert_eq!(
        argmax as u64,
        want["channel_kurtosis_argmax"].as_u64().unwrap(),
        "hidden[{l}] argmax"
    );
    assert_close(
        &format!("hidden[{l}].channel_kurtosis_max"),
        &[kmax],
        &[num(want, "channel_kurtosis_max")],
        0.0,
        1e-4,
    );
    // The fixture's mean counts every channel; the op leaves a channel's kurtosis out when its
    // spread is below what f32 power sums resolve. So: the mean by definition from the state,
    // and every kurtosis the op did resolve against the same definition.
    let by_def: Vec<f64> = (0..h.state.cols)
        .map(|c| channel_kurtosis(&x, h.state.cols, c))
        .collect();
    let kmean = by_def.iter().sum::<f64>() / by_def.len() as f64;
    assert_close(
        &format!("hidden[{l}].channel_kurtosis_mean"),
        &[kmean],
        &[num(want, "channel_kurtosis_mean")],
        0.0,
        1e-4,
    );
    for (c, m) in r.channels.iter().enumerate() {
        if let Some(k) = m.kurtosis {
            assert_close(
                &format!("hidden[{l}] channel {c} kurtosis"),
                &[k],
                &[by_def[c]],
                0.0,
                1e-3,
            );
        }
    }
    // The report's median comes from the log2 histogram: within a factor √2 of the exact one.
    let (med, exact) = (r.median_abs.unwrap(), num(want, "median_abs"));
    assert!(
        med / exact <= 2f64.sqrt() && exact / med <= 2f64.sqrt(),
        "hidden[{l}] median {med} vs {exact}"
    );
    assert_eq!(
        h.probe.massive.len(),
        want["massive"].as_array().unwrap().len(),
        "hidden[{l}] massive"
    );
}

/// μ4/σ⁴ of channel `c` of a row-major `[tokens, cols]` state (0 for a constant channel).
fn channel_kurtosis(x: &[f64], cols: usize, c: usize) -> f64 {
    let v: Vec<f64> = x.iter().skip(c).step_by(cols).copied().collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let central = |p: i32| v.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
    let var = central(2);
    if var == 0.0 {
        0.0
    } else {
        central(4) / (var * var)
    }
}

/// Attention map and per-head readings of layer `l`: weights within 1e-5 absolute, readings
/// within 1e-4 relative (1e-5 absolute for near-zero values).
fn check_attention(l: usize, trace: &Trace, map: &Value, stats: &Value) {
    let tol = AttentionTolerance {
        map_abs: 1e-5,
        abs: 1e-5,
        rel: 1e-4,
        readings: &["sink_score", "mean_normalised_entropy", "value_norm_ratio"],
    };
    check_attention_layer(l, trace, map, stats, &tol);
    let a = &trace.attention[l];
    let pick = |f: fn(&quietattn::probe::attention_layer::HeadProbe) -> Option<f64>| -> Vec<f64> {
        a.heads.iter().map(|h| f(h).expect("defined")).collect()
    };
    // The kernel's binned entropy is the exact one up to half a bin.
    let binned = pick(|h| h.mean_entropy_binned);
    assert_close(
        &format!("layer {l} binned entropy"),
        &binned,
        &floats(&stats["mean_normalised_entropy"]),
        1.0 / 32.0 + 1e-6,
        0.0,
    );
    // The fixture's rate is rounded to 7 digits: compare the count of sink heads.
    let sinks = a
        .heads
        .iter()
        .filter(|h| h.sink_score.unwrap() > 0.3)
        .count();
    let want = (num(stats, "sink_rate") * a.heads.len() as f64).round() as usize;
    assert_eq!(sinks, want, "layer {l} sink heads");
    assert!(
        a.heads.iter().all(|h| h.sink_score_without_row0.is_none()),
        "an encoder has no causal row 0"
    );
}

fn check_case(trace: &Trace, ids: &[u32], case: &Value) {
    let ids: Vec<u64> = ids.iter().map(|&i| u64::from(i)).collect();
    assert_eq!(ids, ints(&case["ids"]));
    let hidden = case["hidden"].as_array().unwrap();
    assert_eq!(trace.hidden.len(), hidden.len());
    for (l, want) in hidden.iter().enumerate() {
        check_hidden(l, trace, want);
    }
    let maps = case["attention"].as_array().unwrap();
    assert_eq!(trace.attention.len(), maps.len());
    for (l, map) in maps.iter().enumerate() {
        check_attention(l, trace, map, &case["attention_stats"][l]);
    }
    let last: Vec<f64> = {
        let x = trace.last_hidden().unwrap();
        (0..x.rows)
            .flat_map(|t| x.row(t)[..8].iter().map(|&v| f64::from(v)))
            .collect()
    };
    let max_abs = num(&hidden[hidden.len() - 1], "max_abs");
    assert_close(
        "last_hidden_first_channels",
        &last,
        &floats(&case["last_hidden_first_channels"]),
        1e-4 * max_abs,
        0.0,
    );
}

#[test]
fn forward_on_the_reference_matches_transformers() {
    let Some(model) = load("forward_on_the_reference_matches_transformers") else {
        return;
    };
    let fx = fixture("minilm.json");
    for case in fx["cases"].as_array().unwrap() {
        let (ids, trace) = run(&model, &Device::reference(), case["text"].as_str().unwrap());
        check_case(&trace, &ids, case);
    }
}

#[test]
fn forward_on_the_emulator_matches_transformers() {
    let Some(model) = load("forward_on_the_emulator_matches_transformers") else {
        return;
    };
    let fx = fixture("minilm.json");
    let device = Device::emulator().unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let (ids, trace) = run(&model, &device, case["text"].as_str().unwrap());
        check_case(&trace, &ids, case);
    }
}

#[test]
fn forward_on_a_gpu_matches_transformers() {
    let Some(device) = quietattn::testing::cuda_or_skip("forward_on_a_gpu_matches_transformers")
    else {
        return;
    };
    let Some(mut model) = load("forward_on_a_gpu_matches_transformers") else {
        return;
    };
    // The whole probe on the GPU, as `--device cuda` runs it: dense layers through cuBLAS too.
    let dense = Dense::for_device(&device).expect("cuBLAS opens on a GPU");
    model.place_dense(&dense).unwrap();
    let fx = fixture("minilm.json");
    for case in fx["cases"].as_array().unwrap() {
        let (ids, trace) = run(&model, &device, case["text"].as_str().unwrap());
        check_case(&trace, &ids, case);
    }
}
