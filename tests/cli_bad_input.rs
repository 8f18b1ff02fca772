//! Bad inputs to `run` and `stats` that used to get through silently (issue 11): offsets that
//! end early, non-finite and overflowing values, constant tensors, inputs that never end, and
//! parameters a variant ignores. Each one is now an error or a message on stderr.

mod cli_parts;

use std::time::Duration;

use cli_parts::*;
use quietattn::io::{TensorFile, TensorRef, write_file};
use quietattn::{DType, Tensor};

#[test]
fn cu_seqlens_that_end_before_the_rows_are_rejected() {
    let t = Scratch::new("cu-short");
    let input = t.path("in.safetensors");
    let out = t.path("out.safetensors");
    let q = random_tensor(&[12, 2, 8], 1);
    let k = random_tensor(&[12, 2, 8], 2);
    let full = [0i32, 6, 12];
    let short = [0i32, 5, 10];
    for (cq, ck, name) in [
        (&short, &full, "cu_seqlens_q"),
        (&full, &short, "cu_seqlens_k"),
    ] {
        write_file(
            &input,
            &[
                ("q", TensorRef::Float(&q)),
                ("k", TensorRef::Float(&k)),
                ("v", TensorRef::Float(&k)),
                ("cu_seqlens_q", TensorRef::I32(cq, &[3])),
                ("cu_seqlens_k", TensorRef::I32(ck, &[3])),
            ],
        )
        .unwrap();
        let o = run_ref(s(&input), s(&out), &[]);
        assert_fails(&o, &format!("{name} ends at 10 but the tensor has 12 rows"));
        assert!(!out.exists());
    }
}

/// q, k, v with q's first element set to `q0` and v's last to `v_last`.
fn with_values(q0: f64, v_last: f64) -> [Tensor; 3] {
    let [q, k, v] = qkv(4, 8);
    let mut qv = q.to_f64();
    qv[0] = q0;
    let mut vv = v.to_f64();
    let n = vv.len();
    vv[n - 1] = v_last;
    [
        Tensor::from_f64(DType::F32, &qv, &q.shape).unwrap(),
        k,
        Tensor::from_f64(DType::F32, &vv, &v.shape).unwrap(),
    ]
}

#[test]
fn non_finite_inputs_are_announced_or_refused() {
    let t = Scratch::new("non-finite");
    let input = t.path("in.safetensors");
    let out = t.path("out.safetensors");
    write_qkv(&input, &with_values(f64::NAN, f64::INFINITY), &[]);
    let o = run_ref(s(&input), s(&out), &[]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("warning: non-finite input elements (NaN/inf): q 1, v 1"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(&out).unwrap();
    let o = run_ref(s(&input), s(&out), &["--strict-numerics"]);
    assert_fails(&o, "non-finite input elements");
    assert!(!out.exists(), "nothing written under --strict-numerics");
    // The gate is scanned too.
    let [q, k, v] = qkv(4, 8);
    let mut g = vec![0.5; 4 * 2];
    g[3] = f64::NAN;
    let gate = Tensor::from_f64(DType::F32, &g, &[1, 4, 2]).unwrap();
    write_qkv(&input, &[q, k, v], &[("gate", TensorRef::Float(&gate))]);
    let o = run_ref(s(&input), s(&out), &["--gate", "sigmoid-headwise"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("gate 1"), "{}", stderr(&o));
    // Clean inputs: no warning at all.
    small_input(&input);
    let o = run_ref(s(&input), s(&out), &[]);
    assert_ok(&o);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn inputs_beyond_the_f32_range_are_announced_before_the_launch() {
    let t = Scratch::new("range");
    let input = t.path("in.safetensors");
    let out = t.path("out.safetensors");
    small_input(&input);
    // |scale|·log2(e)·‖q‖·‖k‖ ≈ 1e38 · 1.44 · ~3 · ~3 > f32::MAX.
    let o = run_ref(s(&input), s(&out), &["--scale", "1e38"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("logits may overflow f32"),
        "{}",
        stderr(&o)
    );
    let o = run_ref(
        s(&input),
        s(&out),
        &["--scale", "1e38", "--strict-numerics"],
    );
    assert_fails(&o, "logits may overflow f32");
    // A q row and a k row at 1e20: their dot product overflows f32 whatever the scale.
    let [q, k, v] = with_values(1e20, 0.0);
    let mut kv = k.to_f64();
    kv[0] = 1e20;
    let k = Tensor::from_f64(DType::F32, &kv, &k.shape).unwrap();
    write_qkv(&input, &[q, k, v], &[]);
    let o = run_ref(s(&input), s(&out), &[]);
    assert!(
        stderr(&o).contains("logits may overflow f32"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn overflow_on_the_emulator_is_reported_not_hidden() {
    let t = Scratch::new("emu-overflow");
    let input = t.path("in.safetensors");
    let out = t.path("out.safetensors");
    // Every value 3e38: the f32 accumulator Σ p·v over 6 keys exceeds f32::MAX.
    let [q, k, v] = qkv(4, 8);
    let big = Tensor::from_f64(DType::F32, &vec![3e38; v.data.len()], &v.shape).unwrap();
    write_qkv(&input, &[q, k, big], &[]);
    let o = quietattn(&[
        "run",
        "--device",
        "emulator",
        "--input",
        s(&input),
        "--output",
        s(&out),
    ]);
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("output accumulators may overflow f32"),
        "{err}"
    );
    let o_values = TensorFile::read(&out).unwrap().tensors["o"].clone();
    let quietattn::io::FileTensor::Float(o_tensor) = o_values else {
        panic!("o is a float tensor")
    };
    let bad = o_tensor.to_f64().iter().filter(|x| !x.is_finite()).count();
    // Whatever the kernel produced, a non-finite output from finite inputs is announced.
    if bad > 0 {
        assert!(
            err.contains(&format!("{bad} output element(s) of `o` are NaN or inf")),
            "{err}"
        );
    } else {
        assert!(!err.contains("output element(s)"), "{err}");
    }
}

/// `stats --json` of one `[8, 4]` tensor filled with `x`: the tensor's report and stdout.
fn constant_report(t: &Scratch, x: f64, device: &str) -> (serde_json::Value, String) {
    let input = t.path("c.safetensors");
    let json = t.path("c.json");
    let c = Tensor::from_f64(DType::F32, &[x; 32], &[8, 4]).unwrap();
    write_file(&input, &[("x", TensorRef::Float(&c))]).unwrap();
    let o = quietattn(&[
        "stats",
        "--device",
        device,
        "--input",
        s(&input),
        "--json",
        s(&json),
    ]);
    assert_ok(&o);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (doc["tensors"]["x"]["report"]["tensor"].clone(), stdout(&o))
}

#[test]
fn stats_of_a_constant_tensor_are_exact() {
    let t = Scratch::new("constant");
    for device in ["reference", "emulator"] {
        for x in [1e-9, 1e5, 0.25, 1e30] {
            let (r, out) = constant_report(&t, x, device);
            // Only the kernels sum in f32: 1e30² overflows there, and the report says so.
            let overflow = device == "emulator" && x == 1e30;
            assert_eq!(
                out.contains("power sums overflowed"),
                overflow,
                "{device} {x}: {out}"
            );
            let (med, max) = (
                r["median_abs"].as_f64().unwrap(),
                r["max_inf_norm"].as_f64().unwrap(),
            );
            assert!(med <= max, "{device} {x}: median {med} above max {max}");
            assert!((med - x).abs() <= 1e-6 * x, "{device} {x}: median {med}");
            // σ of a constant is 0, also when Σx² overflows the kernels' f32 partial sums.
            let sigma = r["sigma"].as_f64();
            assert!(
                sigma.is_some_and(|s| s <= 1e-3 * x),
                "{device} {x}: σ {sigma:?}"
            );
        }
    }
}

#[test]
fn inputs_that_never_end_are_refused_at_once() {
    let t = Scratch::new("endless");
    let out = t.path("out.safetensors");
    let limit = Duration::from_secs(20);
    let o = quietattn_within(&["run", "--input", "/dev/zero", "--output", s(&out)], limit);
    assert_fails(&o, "/dev/zero: is not a regular file");
    let fifo = t.path("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let o = quietattn_within(&["run", "--input", s(&fifo), "--output", s(&out)], limit);
    assert_fails(&o, "is not a regular file");
    let o = quietattn_within(&["stats", "--input", s(&fifo)], limit);
    assert_fails(&o, "is not a regular file");
    let o = quietattn_within(&["stats", "--input", s(&t.dir)], limit);
    assert_fails(&o, "is a directory");
    // A regular file above --max-input-bytes.
    let input = t.path("in.safetensors");
    small_input(&input);
    let o = quietattn(&[
        "run",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--max-input-bytes",
        "100",
    ]);
    assert_fails(&o, "is larger than the input limit of 100 bytes");
    assert!(!out.exists());
}

#[test]
fn parameters_a_variant_ignores_are_noted() {
    let t = Scratch::new("notes");
    let input = t.path("in.safetensors");
    let out = t.path("out.safetensors");
    small_input(&input);
    let o = run_ref(
        s(&input),
        s(&out),
        &["--gamma", "-0.1", "--zeta", "1.2", "--sigmoid-bias", "-1"],
    );
    assert_ok(&o);
    let err = stderr(&o);
    for flag in ["--gamma", "--zeta", "--sigmoid-bias"] {
        assert!(
            err.contains(&format!("note: {flag} ignored (variant softmax)")),
            "{err}"
        );
    }
    let o = run_ref(
        s(&input),
        s(&out),
        &["--variant", "clipped", "--gamma", "-0.1"],
    );
    assert_ok(&o);
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    // Head dim 12 is not a multiple of 8: the reference computes it and says so.
    write_qkv(&input, &qkv(4, 12), &[]);
    let o = run_ref(s(&input), s(&out), &[]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("note: only the reference runs this: unsupported: head dim 12"),
        "{}",
        stderr(&o)
    );
}
