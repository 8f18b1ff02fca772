//! The Llama forward of `quietattn probe` against Hugging Face transformers' numbers for
//! SmolLM2-135M-Instruct Q4_1 GGUF (tests/fixtures/probe/smollm2.json): ids, hidden states
//! (relative to each layer's max |x|: channel 507 reaches ~22 500), causal attention maps, sink
//! scores with and without row 0, logits, and the greedy continuation " Paris". SKIP when the
//! model is not fetched.

mod probe_parts;

use probe_parts::{
    AttentionTolerance, SMOLLM2, assert_close, check_attention_layer, first_channels, fixture,
    floats, ints, model_or_skip, num, token_l2,
};
use quietattn::probe::dense::Dense;
use quietattn::probe::llama::{Llama, greedy};
use quietattn::probe::{LoadedModel, Trace};
use quietattn::{AttentionOptions, Device};
use serde_json::Value;

fn check_hidden(l: usize, trace: &Trace, want: &Value) {
    let h = &trace.hidden[l];
    let max_abs = num(want, "max_abs");
    let first = first_channels(&h.state);
    let what = format!("hidden[{l}].first_channels");
    assert_close(
        &what,
        &first,
        &floats(&want["first_channels"]),
        1e-3 * max_abs,
        0.0,
    );
    let l2 = token_l2(&h.state);
    let what = format!("hidden[{l}].token_l2");
    assert_close(&what, &l2, &floats(&want["token_l2"]), 1e-3 * max_abs, 0.0);
    let r = &h.probe.report.tensor;
    assert_close(
        &format!("hidden[{l}].max_abs"),
        &[r.max_inf_norm],
        &[max_abs],
        0.0,
        1e-3,
    );
    let k = r.tensor_kurtosis.expect("resolved");
    let what = format!("hidden[{l}].tensor_kurtosis");
    assert_close(&what, &[k], &[num(want, "tensor_kurtosis")], 0.0, 1e-3);
    let got: Vec<(u64, u64)> = h
        .probe
        .massive
        .iter()
        .map(|m| (m.token as u64, m.channel as u64))
        .collect();
    let want_m: Vec<(u64, u64)> = want["massive"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["token"].as_u64().unwrap(), m["channel"].as_u64().unwrap()))
        .collect();
    // The probe lists the largest MASSIVE_LISTED; every one must be in the fixture's full list.
    let listed = want_m.len().min(quietattn::probe::hidden::MASSIVE_LISTED);
    assert_eq!(
        got.len(),
        listed,
        "hidden[{l}] massive activations: {got:?} vs {want_m:?}"
    );
    assert!(
        got.iter().all(|g| want_m.contains(g)),
        "hidden[{l}]: {got:?} vs {want_m:?}"
    );
}

/// Attention map within 1e-3 absolute, per-head readings within 1e-3 relative (1e-4 absolute
/// near zero): 30 layers of Q4_1 weights in f32 drift further than MiniLM's 6.
fn check_attention(l: usize, trace: &Trace, map: &Value, stats: &Value) {
    let tol = AttentionTolerance {
        map_abs: 1e-3,
        abs: 1e-4,
        rel: 1e-3,
        readings: &[
            "sink_score",
            "sink_score_without_row0",
            "mean_normalised_entropy",
            "value_norm_ratio",
        ],
    };
    check_attention_layer(l, trace, map, stats, &tol);
}

fn check_case(trace: &Trace, case: &Value) {
    let hidden = case["hidden"].as_array().unwrap();
    assert_eq!(trace.hidden.len(), hidden.len());
    for (l, want) in hidden.iter().enumerate() {
        check_hidden(l, trace, want);
    }
    for (l, map) in case["attention"].as_array().unwrap().iter().enumerate() {
        check_attention(l, trace, map, &case["attention_stats"][l]);
    }
    let logits = trace.logits.as_ref().unwrap();
    let last = logits.row(logits.rows - 1);
    let top: Vec<&Value> = case["last_logits_top20"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        quietattn::probe::replay::argmax(&last.iter().map(|&x| f64::from(x)).collect::<Vec<_>>())
            as u64,
        top[0][0].as_u64().unwrap(),
        "top-1 next token"
    );
    for pair in top {
        let (id, want) = (
            pair[0].as_u64().unwrap() as usize,
            pair[1].as_f64().unwrap(),
        );
        assert_close(
            &format!("logit {id}"),
            &[f64::from(last[id])],
            &[want],
            1e-2,
            0.0,
        );
    }
}

fn run_cases(device: &Device, test: &str) {
    let Some(path) = model_or_skip(test, SMOLLM2) else {
        return;
    };
    let mut model = LoadedModel::load(&path).expect("SmolLM2 loads");
    assert_eq!(model.kind(), "llama");
    // On a GPU the whole probe runs there, as `--device cuda` runs it: dense layers through
    // cuBLAS too (the CPU devices keep the CPU GEMM).
    let dense = Dense::for_device(device).expect("cuBLAS opens on a GPU");
    model.place_dense(&dense).unwrap();
    let fx = fixture("smollm2.json");
    for case in fx["cases"].as_array().unwrap() {
        let input = model.encode(case["text"].as_str().unwrap()).unwrap();
        let ids: Vec<u64> = input.ids.iter().map(|&i| u64::from(i)).collect();
        assert_eq!(ids, ints(&case["ids"]));
        let trace = model
            .forward(device, &input, &AttentionOptions::default())
            .unwrap();
        check_case(&trace, case);
    }
}

#[test]
fn forward_on_the_reference_matches_transformers() {
    run_cases(
        &Device::reference(),
        "forward_on_the_reference_matches_transformers",
    );
}

#[test]
fn forward_on_the_emulator_matches_transformers() {
    run_cases(
        &Device::emulator().unwrap(),
        "forward_on_the_emulator_matches_transformers",
    );
}

#[test]
fn forward_on_a_gpu_matches_transformers() {
    if let Some(gpu) =
        quietattn::testing::cuda_or_skip("smollm2 forward_on_a_gpu_matches_transformers")
    {
        run_cases(&gpu, "forward_on_a_gpu_matches_transformers");
    }
}

#[test]
fn greedy_continuation_is_paris() {
    let Some(path) = model_or_skip("greedy_continuation_is_paris", SMOLLM2) else {
        return;
    };
    let fx = fixture("smollm2.json");
    let g = &fx["greedy"];
    let loaded = LoadedModel::load(&path).unwrap();
    let prompt = loaded.encode(g["prompt"].as_str().unwrap()).unwrap().ids;
    assert_eq!(
        prompt.iter().map(|&i| u64::from(i)).collect::<Vec<_>>(),
        ints(&g["prompt_ids"])
    );
    let (model, _) = Llama::load(&path).unwrap();
    let new = greedy(
        &model,
        &Device::reference(),
        &prompt,
        8,
        &AttentionOptions::default(),
    )
    .unwrap();
    assert_eq!(
        new.iter().map(|&i| u64::from(i)).collect::<Vec<_>>(),
        ints(&g["new_ids"])
    );
    let text = loaded.tokenizer.decode(&new, false).unwrap();
    assert!(text.starts_with(" Paris"), "{text:?}");
    assert_eq!(text, g["new_text"].as_str().unwrap());
}
