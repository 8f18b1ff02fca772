//! The probe with its dense layers on the GPU (cuBLAS f32 sgemm) against the CPU path, for
//! MiniLM and SmolLM2: hidden states, attention maps, per-head readings, logits, kurtosis.
//! SKIP without a GPU (a failure under `QUIETATTN_REQUIRE_GPU=1`) or without the models.
//!
//! Two comparisons per model: (1) cuBLAS against `matrixmultiply` with attention on the GPU on
//! both sides, which isolates the dense layers; (2) the whole probe on the GPU against the whole
//! probe on the CPU (f64 reference attention), what `--device cuda` and `--device reference`
//! print. Both sides compute in f32 and differ only in summation order, so the tolerances are
//! ~10× the deviations the two CPU devices show on the same models (measured by
//! `cpu_devices_agree_within_the_gpu_tolerances_*`, which run everywhere).

mod gguf_parts;
mod probe_parts;

use std::path::{Path, PathBuf};

use gguf_parts::{LlamaShape, llama_gguf};
use probe_parts::{
    MINILM, SMOLLM2, TraceDeviation, TraceTolerance, assert_traces_agree, model_or_skip,
};
use quietattn::probe::dense::Dense;
use quietattn::probe::{LoadedModel, Trace};
use quietattn::testing::cuda_or_skip;
use quietattn::{AttentionOptions, Device};

const TEXT: &str = "The capital of France is Paris. The quick brown fox jumps over the lazy dog.";

/// MiniLM: 6 layers, activations of order 10.
const MINILM_TOL: TraceTolerance = TraceTolerance {
    hidden_rel: 1e-4,
    map_abs: 1e-4,
    reading_abs: 1e-5,
    reading_rel: 1e-4,
    logits_rel: 1e-4,
    kurtosis_rel: 1e-3,
};

/// SmolLM2: 30 layers and a channel near 22 500, so rounding compounds further.
const SMOLLM2_TOL: TraceTolerance = TraceTolerance {
    hidden_rel: 3e-4,
    map_abs: 3e-4,
    reading_abs: 3e-5,
    reading_rel: 3e-4,
    logits_rel: 3e-4,
    kurtosis_rel: 3e-3,
};

/// The synthetic model's vocabulary is `a`, `b`, `ab`, `Ġ`, `Ġab`: 16 tokens of it.
const SYNTHETIC_TEXT: &str = "ab ab a b ab ba ab ab ba a b ab";

fn forward(model: &LoadedModel, device: &Device) -> Trace {
    // The synthetic model has no tokens for English.
    let text = if model.source.ends_with(".gguf") && model.source.contains("synthetic") {
        SYNTHETIC_TEXT
    } else {
        TEXT
    };
    let input = model.encode(text).unwrap();
    model
        .forward(device, &input, &AttentionOptions::default())
        .unwrap()
}

fn log(what: &str, dev: &TraceDeviation) {
    eprintln!("{what}: worst deviations {dev:?}");
}

/// A two-layer synthetic Llama (width 128, 2 query heads and 1 KV head of dim 64, feed-forward
/// 256) written as a GGUF file: the GPU tier has no fetched models, and this one needs none.
fn synthetic_llama(test: &str) -> PathBuf {
    let shape = LlamaShape {
        layers: 2,
        hidden: 128,
        heads: 2,
        kv_heads: 1,
        ffn: 256,
    };
    let path = std::env::temp_dir().join(format!(
        "quietattn-{}-synthetic-{test}.gguf",
        std::process::id()
    ));
    std::fs::write(&path, llama_gguf(&shape, None, None).0).unwrap();
    path
}

fn gpu_agrees_with_cpu(test: &str, rel: &str, tol: &TraceTolerance) {
    let Some(gpu) = cuda_or_skip(test) else {
        return;
    };
    if let Some(path) = model_or_skip(test, rel) {
        gpu_agrees_on(&gpu, &path, rel, tol);
    }
}

fn gpu_agrees_on(gpu: &Device, path: &Path, rel: &str, tol: &TraceTolerance) {
    let mut model = LoadedModel::load(path).unwrap();
    let cpu_dense = forward(&model, gpu);
    let cpu_probe = forward(&model, &Device::reference());
    let dense = Dense::for_device(gpu).expect("cuBLAS opens on a GPU");
    assert!(dense.name().contains("cuBLAS"), "{}", dense.name());
    model.place_dense(&dense).unwrap();
    let gpu_probe = forward(&model, gpu);
    let what = format!("{rel}: cuBLAS vs CPU dense layers");
    log(
        &what,
        &assert_traces_agree(&what, &gpu_probe, &cpu_dense, tol),
    );
    let what = format!("{rel}: GPU probe vs CPU probe");
    log(
        &what,
        &assert_traces_agree(&what, &gpu_probe, &cpu_probe, tol),
    );
    // Back on the CPU the numbers are the CPU path's again, bit for bit.
    model.place_dense(&Dense::Cpu).unwrap();
    let again = forward(&model, gpu);
    for (a, b) in again.hidden.iter().zip(&cpu_dense.hidden) {
        assert_eq!(a.state, b.state);
    }
}

#[test]
fn synthetic_llama_on_cublas_agrees_with_the_cpu_path() {
    let test = "synthetic_llama_on_cublas_agrees_with_the_cpu_path";
    let Some(gpu) = cuda_or_skip(test) else {
        return;
    };
    let path = synthetic_llama(test);
    gpu_agrees_on(&gpu, &path, "synthetic llama", &SMOLLM2_TOL);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn minilm_on_cublas_agrees_with_the_cpu_path() {
    gpu_agrees_with_cpu(
        "minilm_on_cublas_agrees_with_the_cpu_path",
        MINILM,
        &MINILM_TOL,
    );
}

#[test]
fn smollm2_on_cublas_agrees_with_the_cpu_path() {
    gpu_agrees_with_cpu(
        "smollm2_on_cublas_agrees_with_the_cpu_path",
        SMOLLM2,
        &SMOLLM2_TOL,
    );
}

/// The comparison machinery on the CPU, with the f32 emulator against the f64 reference as the
/// perturbation (f32 rounding in another order, as cuBLAS against `matrixmultiply`): the
/// tolerances above hold for it with room to spare, and a deviation past them is caught.
fn cpu_devices_agree(test: &str, rel: &str, tol: &TraceTolerance) {
    if let Some(path) = model_or_skip(test, rel) {
        cpu_devices_agree_on(&path, rel, tol);
    }
}

fn cpu_devices_agree_on(path: &Path, rel: &str, tol: &TraceTolerance) {
    let model = LoadedModel::load(path).unwrap();
    let reference = forward(&model, &Device::reference());
    let emulated = forward(&model, &Device::emulator().unwrap());
    let what = format!("{rel}: emulator vs reference attention");
    log(
        &what,
        &assert_traces_agree(&what, &emulated, &reference, tol),
    );
    // One hidden value moved by 10× the tolerance must fail the check.
    let mut bad = emulated.clone();
    let last = bad.hidden.len() - 1;
    let state = &mut bad.hidden[last].state;
    let scale = state.data.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    state.data[7] += 10.0 * tol.hidden_rel as f32 * scale;
    let caught = std::panic::catch_unwind(|| {
        assert_traces_agree("perturbed", &bad, &reference, tol);
    });
    assert!(
        caught.is_err(),
        "a deviation past the tolerance went unnoticed"
    );
}

#[test]
fn cpu_devices_agree_within_the_gpu_tolerances_synthetic() {
    let path = synthetic_llama("cpu_devices_agree_within_the_gpu_tolerances_synthetic");
    cpu_devices_agree_on(&path, "synthetic llama", &SMOLLM2_TOL);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn cpu_devices_agree_within_the_gpu_tolerances_minilm() {
    let test = "cpu_devices_agree_within_the_gpu_tolerances_minilm";
    cpu_devices_agree(test, MINILM, &MINILM_TOL);
}

#[test]
fn cpu_devices_agree_within_the_gpu_tolerances_smollm2() {
    let test = "cpu_devices_agree_within_the_gpu_tolerances_smollm2";
    cpu_devices_agree(test, SMOLLM2, &SMOLLM2_TOL);
}
