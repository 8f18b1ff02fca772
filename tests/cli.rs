//! The `quietattn` binary end to end: files in, files out, exit codes and messages.

mod cli_parts;

use std::path::Path;
use std::process::Output;

use cli_parts::{Scratch, assert_fails, quietattn, stderr, stdout, write_tensors};
use quietattn::io::{TensorFile, TensorRef, write_file};
use quietattn::{AttentionInputs, AttentionOptions, DType, Normaliser, Tensor, reference};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Unlike `cli_parts::random_tensor`, in any dtype.
fn random_tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_f64(dtype, &v, shape).unwrap()
}

/// Cells of a table line (columns are separated by at least two spaces).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// The header cells and the rows of the demo table printed with `args`.
fn demo_table(args: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let o = quietattn(args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("How to read it"));
    let owned = |l: &str| cells(l).iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let header = owned(out.lines().find(|l| l.starts_with("variant")).unwrap());
    let rows = out
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(owned)
        .collect();
    (header, rows)
}

const SMALL_DEMO: [&str; 8] = [
    "--seq",
    "48",
    "--heads",
    "2",
    "--noop-heads",
    "1",
    "--dim",
    "32",
];

#[test]
fn demo_table_shows_the_sink_argument() {
    let mut args = vec!["demo", "--device", "reference"];
    args.extend(SMALL_DEMO);
    let (header, rows) = demo_table(&args);
    let col = |name: &str| header.iter().position(|c| c == name).unwrap();
    let (score, rate, noop, other) = (
        col("sink score"),
        col("sink rate"),
        col("|o| no-op"),
        col("|o| other"),
    );
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "softmax",
            "softmax",
            "off-by-one",
            "sink",
            "clipped",
            "softpick",
            "sigmoid",
            "softmax+gate"
        ]
    );
    let val = |r: &[String], c: usize| -> f64 { r[c].parse().unwrap() };
    // Softmax with the planted sink: the no-op head (1 of 2) is a sink head, its output ≈ 0.
    assert!(val(&rows[0], score) > 0.4, "{:?}", rows[0]);
    assert_eq!(val(&rows[0], rate), 0.5);
    assert!(val(&rows[0], noop) < 0.2);
    // Softmax without a sink cannot output ≈ 0: its no-op head is as loud as the other head.
    assert!(
        val(&rows[1], noop) > 0.5 * val(&rows[1], other),
        "{:?}",
        rows[1]
    );
    // Every other variant: quiet no-op head and no sink head.
    for r in &rows[2..] {
        assert!(val(r, noop) < 0.1, "{r:?}");
        assert_eq!(val(r, rate), 0.0, "{r:?}");
        assert!(val(r, score) < 0.1, "{r:?}");
    }
}

#[test]
fn demo_on_the_emulator_agrees_with_the_reference() {
    if quietattn::Device::emulator().is_err() {
        quietattn::testing::skip(
            "demo_on_the_emulator_agrees_with_the_reference",
            &"emulator not built",
        );
        return;
    }
    let mut args = vec!["demo", "--device", "reference"];
    args.extend(SMALL_DEMO);
    let (header, want) = demo_table(&args);
    args[2] = "emulator";
    let (_, got) = demo_table(&args);
    let numeric = 2..header.len() - 2; // all but the labels, `dev` and `ms`
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g[header.len() - 2], "emu");
        for c in numeric.clone() {
            if w[c] == g[c] {
                continue;
            }
            let (a, b): (f64, f64) = (w[c].parse().unwrap(), g[c].parse().unwrap());
            // Table precision plus f16 outputs and f32 statistics in the kernels.
            assert!(
                (a - b).abs() <= 0.01 + 0.01 * a.abs(),
                "{}: {w:?} vs {g:?}",
                header[c]
            );
        }
    }
}

/// q [1, 5, 4, 8], k/v [1, 7, 2, 8] f16, sinks [4].
fn write_batched(path: &Path) -> (Tensor, Tensor, Tensor, Vec<f32>) {
    let q = random_tensor(&[1, 5, 4, 8], 1, DType::F16);
    let k = random_tensor(&[1, 7, 2, 8], 2, DType::F16);
    let v = random_tensor(&[1, 7, 2, 8], 3, DType::F16);
    let sinks = vec![0.5f32, -1.0, 2.0, 0.0];
    let s = Tensor::new(quietattn::TensorData::F32(sinks.clone()), &[4]).unwrap();
    write_tensors(path, &[("q", &q), ("k", &k), ("v", &v), ("sinks", &s)]);
    (q, k, v, sinks)
}

#[test]
fn run_matches_the_reference() {
    let t = Scratch::new("cli-run");
    let (input, output, stats) = (
        t.path("in.safetensors"),
        t.path("out.safetensors"),
        t.path("stats.json"),
    );
    let (q, k, v, sinks) = write_batched(&input);
    let o = quietattn(&[
        "run",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--variant",
        "sink",
        "--causal",
        "--device",
        "reference",
        "--stats",
        stats.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("sink on reference"),
        "{}",
        stdout(&o)
    );

    let mut inputs = AttentionInputs::new(q.view(), k.view(), v.view());
    inputs.sinks = Some(&sinks);
    let options = AttentionOptions {
        normaliser: Normaliser::Sink,
        causal: true,
        ..AttentionOptions::default()
    };
    let want = reference::attention(&inputs, &options).unwrap();
    let file = TensorFile::read(&output).unwrap();
    let got_o = file.require_float("o", &[4]).unwrap();
    let got_lse = file.require_float("lse", &[3]).unwrap();
    assert_eq!(got_o.dtype(), DType::F16);
    assert_eq!(got_o.shape, vec![1, 5, 4, 8]);
    assert_eq!(got_lse.shape, vec![1, 4, 5]);
    assert_eq!(got_lse.dtype(), DType::F32);
    // The file holds the reference rounded once to the output dtype.
    assert_eq!(
        got_o,
        &Tensor::from_f64(DType::F16, &want.o, &[1, 5, 4, 8]).unwrap()
    );
    assert_eq!(
        got_lse,
        &Tensor::from_f64(DType::F32, &want.lse, &[1, 4, 5]).unwrap()
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    for (h, head) in want.stats.heads.iter().enumerate() {
        assert_eq!(json["heads"][h]["rows"], head.rows);
        assert_eq!(json["heads"][h]["first_key_mass"], head.first_key_mass);
        assert_eq!(
            json["heads"][h]["virtual_sink_mass"],
            head.virtual_sink_mass
        );
    }
    assert_eq!(json["tensors"]["k"]["count"].as_array().unwrap().len(), 16);
    assert_eq!(json["tensors"]["q"]["count"][0], 5);
}

#[test]
fn run_varlen() {
    let t = Scratch::new("cli-varlen");
    let (input, output) = (t.path("in.safetensors"), t.path("out.safetensors"));
    let q = random_tensor(&[6, 2, 4], 4, DType::F32);
    let k = random_tensor(&[9, 1, 4], 5, DType::F32);
    let v = random_tensor(&[9, 1, 4], 6, DType::F32);
    let (cq, ck) = ([0i32, 2, 6], [0i32, 4, 9]);
    write_file(
        &input,
        &[
            ("q", TensorRef::Float(&q)),
            ("k", TensorRef::Float(&k)),
            ("v", TensorRef::Float(&v)),
            ("cu_seqlens_q", TensorRef::I32(&cq, &[3])),
            ("cu_seqlens_k", TensorRef::I32(&ck, &[3])),
        ],
    )
    .unwrap();
    let o = quietattn(&[
        "run",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--variant",
        "off-by-one",
        "--window=-1,0",
        "--device",
        "reference",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut inputs = AttentionInputs::new(q.view(), k.view(), v.view());
    inputs.cu_seqlens_q = Some(&cq);
    inputs.cu_seqlens_k = Some(&ck);
    let options = AttentionOptions {
        normaliser: Normaliser::OffByOne,
        window: Some((-1, 0)),
        ..AttentionOptions::default()
    };
    let want = reference::attention(&inputs, &options).unwrap();
    let file = TensorFile::read(&output).unwrap();
    let got = file.require_float("o", &[3]).unwrap();
    assert_eq!(
        got,
        &Tensor::from_f64(DType::F32, &want.o, &[6, 2, 4]).unwrap()
    );
    assert_eq!(file.require_float("lse", &[2]).unwrap().shape, vec![2, 6]);
}

/// Runs `run` on a file holding `tensors`, with extra flags.
fn run_with(name: &str, tensors: &[(&str, TensorRef<'_>)], flags: &[&str]) -> Output {
    let t = Scratch::new(&format!("cli-run-with-{name}"));
    let (input, output) = (t.path("in.safetensors"), t.path("out.safetensors"));
    write_file(&input, tensors).unwrap();
    let mut args = vec![
        "run",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--device",
        "reference",
    ];
    args.extend_from_slice(flags);
    quietattn(&args)
}

#[test]
fn bad_inputs_fail_clearly() {
    let t = Scratch::new("cli-bad-inputs");
    let missing = t.path("does-not-exist.safetensors");
    let o = quietattn(&[
        "run",
        "--input",
        missing.to_str().unwrap(),
        "--output",
        "x.safetensors",
    ]);
    assert_fails(&o, "cannot read");

    let q = random_tensor(&[1, 4, 3, 8], 1, DType::F32);
    let kv = random_tensor(&[1, 4, 2, 8], 2, DType::F32);
    let flat = random_tensor(&[4, 8], 3, DType::F32);
    let (tq, tkv, tflat) = (
        TensorRef::Float(&q),
        TensorRef::Float(&kv),
        TensorRef::Float(&flat),
    );

    let o = run_with("rank", &[("q", tflat), ("k", tkv), ("v", tkv)], &[]);
    assert_fails(&o, "`q` has rank 2");
    let o = run_with(
        "unknown",
        &[("q", tq), ("k", tkv), ("v", tkv), ("bias", tflat)],
        &[],
    );
    assert_fails(&o, "unknown tensor(s) `bias`");
    let o = run_with("missing-v", &[("q", tq), ("k", tkv)], &[]);
    assert_fails(&o, "required tensor `v` is missing");
    let o = run_with("gqa", &[("q", tq), ("k", tkv), ("v", tkv)], &[]);
    assert_fails(&o, "query heads (3) must be a multiple of kv heads (2)");
    let q4 = random_tensor(&[1, 4, 4, 8], 1, DType::F32);
    let tq4 = TensorRef::Float(&q4);
    let o = run_with(
        "nosinks",
        &[("q", tq4), ("k", tkv), ("v", tkv)],
        &["--variant", "sink"],
    );
    assert_fails(&o, "needs per-head sink logits");
    let o = run_with(
        "gamma",
        &[("q", tq4), ("k", tkv), ("v", tkv)],
        &["--variant", "clipped", "--gamma", "0.5"],
    );
    assert_fails(&o, "gamma");
    let o = run_with(
        "gate",
        &[("q", tq4), ("k", tkv), ("v", tkv)],
        &["--gate", "sigmoid-headwise"],
    );
    assert_fails(&o, "needs gate logits");
    // clap's own usage errors also exit 2.
    let o = quietattn(&["run", "--variant", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn stats_names_the_outlier_channels() {
    let t = Scratch::new("cli-act");
    let (input, json) = (t.path("act.safetensors"), t.path("act.json"));
    let mut x = random_tensor(&[64, 16], 9, DType::F32).to_f64();
    for t in 0..64 {
        x[t * 16 + 5] = 8.0; // a constant outlier channel (|x| >= 6 only)
    }
    x[3 * 16 + 11] = 2000.0; // one massive activation (median |x| ≈ 1)
    let x = Tensor::from_f64(DType::F32, &x, &[64, 16]).unwrap();
    let y = random_tensor(&[2, 3, 4], 1, DType::F16);
    write_tensors(&input, &[("x", &x), ("y", &y)]);
    let o = quietattn(&[
        "stats",
        "--input",
        input.to_str().unwrap(),
        "--device",
        "reference",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("2: 5 (8.000), 11 (2000.0)"), "{out}");
    assert!(out.contains("1: 11 (2000.0)"), "{out}");
    assert!(out.contains("skipped y [2, 3, 4] f16"), "{out}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let x = &doc["tensors"]["x"];
    assert_eq!(x["raw"]["count"][5], 64);
    assert_eq!(x["raw"]["absmax"][11], 2000.0);
    assert_eq!(
        x["report"]["tensor"]["outliers"]["massive"],
        serde_json::json!([11])
    );
    assert_eq!(x["token_absmax"][3], 2000.0);
    assert_eq!(doc["skipped"][0]["name"], "y");

    let o = quietattn(&["stats", "--input", input.to_str().unwrap(), "--tensor", "y"]);
    assert_fails(
        &o,
        "`y` has shape [2, 3, 4]: stats reads [tokens, channels]; pass --flatten",
    );
    let o = quietattn(&["stats", "--input", input.to_str().unwrap(), "--tensor", "z"]);
    assert_fails(&o, "no tensor `z` (the file has: x, y)");
}

#[test]
fn ptx_writes_exactly_the_embedded_modules() {
    let t = Scratch::new("cli-ptx");
    let dir = t.path("d");
    let o = quietattn(&["ptx", "--out-dir", dir.to_str().unwrap()]);
    if !quietattn::kernels::KERNELS_BUILT {
        assert_fails(&o, "CUDA kernels were not built");
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    assert_eq!(manifest.lines().count(), quietattn::kernels::FATBINS.len());
    for (f, line) in quietattn::kernels::FATBINS.iter().zip(manifest.lines()) {
        let written = std::fs::read(dir.join(format!("{}.fatbin", f.module))).unwrap();
        assert_eq!(written, f.image, "{}", f.module);
        let fields: Vec<&str> = line.split('\t').collect();
        let suffix = if f.arch_specific { "a" } else { "" };
        let sass: Vec<String> = f.sass.iter().map(|s| format!("sm_{s}{suffix}")).collect();
        let expected = [
            f.module.to_string(),
            f.ptx_arch.map_or("-".into(), |p| format!("compute_{p}")),
            sass.join(","),
            f.image.len().to_string(),
        ];
        assert_eq!(fields, expected, "{manifest}");
    }
}

/// `quietattn bench` on the emulator: one table row per family, variant, mask and statistics
/// setting, labelled as emulator times; tensor-core rows carry their ratio to the CUDA-core row.
#[test]
fn bench_on_the_emulator_prints_a_row_per_variant() {
    let o = quietattn(&[
        "bench", "--device", "emulator", "--seq", "32", "--dim", "64", "--iters", "1",
    ]);
    if !o.status.success() && stderr(&o).contains("emulator is not compiled in") {
        println!("SKIP bench_on_the_emulator_prints_a_row_per_variant: emulator not built");
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("not GPU performance"), "{out}");
    let rows: Vec<Vec<&str>> = out.lines().map(cells).collect();
    for kernel in ["cuda-core", "tensor-core"] {
        for name in [
            "softmax",
            "off-by-one",
            "sink",
            "clipped",
            "softpick",
            "sigmoid",
        ] {
            let mine: Vec<&Vec<&str>> = rows
                .iter()
                .filter(|r| r.first() == Some(&kernel) && r.get(1) == Some(&name))
                .collect();
            // causal no/yes x stats off/on
            assert_eq!(mine.len(), 4, "{kernel} {name}: {out}");
            for r in &mine {
                let ms: f64 = r[4].parse().unwrap_or(-1.0);
                assert!(ms > 0.0, "{kernel} {name}: time {:?} in {out}", r[4]);
                let vs_cuda_core: f64 = r[9].parse().unwrap_or(-1.0);
                assert_eq!(
                    kernel == "tensor-core",
                    vs_cuda_core > 0.0,
                    "{r:?} in {out}"
                );
            }
            if name == "softmax" {
                assert_eq!(mine[0][7], "1.000", "{out}");
            }
        }
    }
}

/// Pinning a family that cannot serve the problem fails and says why.
#[test]
fn pinned_kernel_family_that_cannot_serve_is_an_error() {
    let o = quietattn(&[
        "bench",
        "--device",
        "emulator",
        "--seq",
        "8",
        "--dim",
        "64",
        "--dtype",
        "f32",
        "--kernel",
        "tensor-core",
    ]);
    if !o.status.success() && stderr(&o).contains("emulator is not compiled in") {
        println!("SKIP pinned_kernel_family_that_cannot_serve_is_an_error: emulator not built");
        return;
    }
    assert_fails(&o, "f16 or bf16 inputs only");
    let o = quietattn(&["bench", "--kernel", "gpu"]);
    assert_fails(&o, "expected auto, cuda-core or tensor-core");
}
